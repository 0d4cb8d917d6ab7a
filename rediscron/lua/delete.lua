-- Delete one cron job: hash, index entries, marker and event together.
-- KEYS[1] job hash, KEYS[2] schedule zset, KEYS[3] ids set, KEYS[4] last_update marker, KEYS[5] history,
-- KEYS[6] the set of ids `apply` owns (a job deleted and made again by hand is not apply's),
-- KEYS[7] the failing jobs zset, KEYS[8] the audit log, KEYS[9] the job's backfilled slots
-- ARGV[1] id, ARGV[2] events channel, ARGV[3] who deletes, ARGV[4] the audit log's length, then the names of
-- the job's definition fields (what the audit entry records of the job deleted)
-- Returns 1 if the job existed (hash or index entry), else 0.
-- The definition as it was, for the audit log (a delete can be undone by hand from it).
local gone, revision = {}, ''
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
  revision = redis.call('HGET', KEYS[1], 'revision') or ''
  local defined = {}
  for i = 5, #ARGV do defined[ARGV[i]] = true end
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    if defined[flat[i]] then gone[flat[i]] = {flat[i + 1], false} end
  end
end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[5])
redis.call('DEL', KEYS[9])
existed = existed + redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
-- A delete must work even under maxmemory (it frees memory); the marker is best effort then,
-- and the event still goes out.
redis.pcall('INCR', KEYS[4])  -- plain: the shared counter repair needs a write, refused here under maxmemory
-- Best effort: the last_update marker is what guarantees pickup, and a user without channel rights must
-- still be able to write.
redis.pcall('PUBLISH', ARGV[2], cjson.encode({event = 'deleted', id = ARGV[1]}))
if existed > 0 then
  audit(KEYS[8], ARGV[4], {'id', ARGV[1], 'action', 'deleted', 'actor', ARGV[3], 'revision', revision,
    'changes', cjson.encode(gone)})
  return 1
end
return 0
