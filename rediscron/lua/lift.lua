-- Lift the quarantine of a job whose record can be used again (the scheduler has just checked it),
-- unless the record changed since it was read.
-- KEYS[1] job hash, KEYS[2] schedule zset, KEYS[3] revision counter, KEYS[4] last_update marker
-- ARGV[1] id, ARGV[2] revision read, ARGV[3] index score of its next slot ('' if the job has ended),
-- ARGV[4] next_enqueue_time of that slot, ARGV[5] events channel
-- Returns the new revision if lifted, 0 if the record changed or is no longer quarantined.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if (redis.call('HGET', KEYS[1], 'revision') or '') ~= ARGV[2] then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) ~= math.huge then return 0 end
-- INCR comes first: under maxmemory it is refused before anything has changed.
local revision = incr_counter(KEYS[3])
redis.call('HDEL', KEYS[1], 'last_error')
redis.call('HSET', KEYS[1], 'revision', revision)
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], 'next_enqueue_time')
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[1], 'next_enqueue_time', ARGV[4])
end
incr_counter(KEYS[4])
redis.pcall('PUBLISH', ARGV[5], cjson.encode({event = 'updated', id = ARGV[1], revision = tonumber(revision)}))
return revision
