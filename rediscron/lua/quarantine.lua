-- Move an unusable job out of the due range and record why, unless it changed meanwhile.
-- KEYS[1] job hash, KEYS[2] schedule zset, KEYS[3] revision counter
-- ARGV[1] id, ARGV[2] revision read ('' if none), ARGV[3] error text
-- Returns 1 if quarantined, 0 if the record changed (or vanished) since it was read.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'hash' and (redis.call('HGET', KEYS[1], 'revision') or '') ~= ARGV[2] then return 0 end
if kind == 'hash' then
  redis.call('HSET', KEYS[1], 'last_error', ARGV[3])
  redis.call('HSET', KEYS[1], 'revision', incr_counter(KEYS[3]))
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
end
return 1
