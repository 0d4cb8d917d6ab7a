-- Take the singleton lock with a new fencing epoch, unless someone holds it.
-- KEYS[1] lock, KEYS[2] epoch counter
-- ARGV[1] token, ARGV[2] scheduler name, ARGV[3] ttl in milliseconds,
-- ARGV[4] the highest epoch the caller has seen (the counter never goes below it, even after Redis lost it)
-- Returns {1, our lock value} or {0, the holder's lock value}
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local seen = tonumber(ARGV[4]) or 0
if (tonumber(redis.call('GET', KEYS[2])) or 0) < seen then redis.call('SET', KEYS[2], seen) end
local epoch = redis.call('INCR', KEYS[2])
local value = epoch .. '|' .. ARGV[1] .. '|' .. ARGV[2]
redis.call('SET', KEYS[1], value, 'PX', tonumber(ARGV[3]))
return {1, value}
