-- Take the singleton lock with a new fencing epoch, unless someone holds it.
-- KEYS[1] lock, KEYS[2] epoch counter
-- ARGV[1] token, ARGV[2] scheduler name, ARGV[3] ttl in milliseconds,
-- ARGV[4] the highest epoch the caller has seen (the counter never goes below it, even after Redis lost it)
-- Returns {1, our lock value} or {0, the holder's lock value}
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
-- An epoch above 2^53 (a hostile lock value) would turn the counter into a float: ignore it.
local seen = tonumber(ARGV[4]) or 0
if seen > 9007199254740991 then seen = 0 end
local stored = redis.pcall('GET', KEYS[2])
if type(stored) ~= 'string' or (tonumber(stored) or 0) < seen then redis.call('SET', KEYS[2], string.format('%d', seen)) end
local epoch = incr_counter(KEYS[2])
local value = epoch .. '|' .. ARGV[1] .. '|' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', tonumber(ARGV[3]))
return {1, value}
