-- Enable or disable one cron job without touching its definition. Enabling retries a quarantined job.
-- KEYS[1] job hash, KEYS[2] schedule zset, KEYS[3] last_update marker, KEYS[4] revision counter,
-- KEYS[5] the audit log
-- ARGV[1] id, ARGV[2] '1' enable / '0' disable, ARGV[3] events channel, ARGV[4] now (RQ time string)
-- ARGV[5] candidate next slot score, ARGV[6] candidate next_enqueue_time (used when enabling; '' and '':
-- the job has ended and is not indexed), ARGV[7] who makes the change, ARGV[8] the audit log's length
-- Returns 0 if the job does not exist, else the new revision.
local hash, schedule, marker = KEYS[1], KEYS[2], KEYS[3]
local id, enable, channel, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('TYPE', hash)['ok'] ~= 'hash' then return 0 end
-- INCR comes first: under maxmemory it is refused before anything has changed.
local revision = incr_counter(KEYS[4])
local was = redis.call('HGET', hash, 'enabled') or '1'
local quarantined = false
if enable == '1' then
  local score = redis.call('ZSCORE', schedule, id)
  -- Enabling a quarantined job is a retry: clear the error and index it again (the scheduler
  -- quarantines it anew if it still cannot be used).
  quarantined = redis.call('HEXISTS', hash, 'last_error') == 1 or score == 'inf'
  redis.call('HSET', hash, 'enabled', '1', 'updated_at', now)
  redis.call('HDEL', hash, 'last_error')
  if (was == '0' or not score or quarantined) and ARGV[5] ~= '' then
    redis.call('HSET', hash, 'next_enqueue_time', ARGV[6])
    redis.call('ZADD', schedule, ARGV[5], id)
  elseif was == '0' or not score or quarantined then
    redis.call('HDEL', hash, 'next_enqueue_time')
    redis.call('ZREM', schedule, id)
  end
else
  redis.call('HSET', hash, 'enabled', '0', 'updated_at', now)
  redis.call('ZREM', schedule, id)
end
redis.call('HSET', hash, 'revision', revision)
incr_counter(marker)
local event = 'disabled'
if enable == '1' then event = 'enabled' end
if was ~= enable or quarantined then
  audit(KEYS[5], ARGV[8], {'id', id, 'action', event, 'actor', ARGV[7], 'revision', revision,
    'changes', cjson.encode({enabled = {was, enable}})})
end
-- Best effort: the last_update marker is what guarantees pickup, and a user without channel rights must
-- still be able to write.
redis.pcall('PUBLISH', channel, cjson.encode({event = event, id = id, revision = tonumber(revision)}))
return revision
