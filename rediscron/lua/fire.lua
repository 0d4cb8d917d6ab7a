-- Enqueue a batch of due slots, all or nothing per slot, only while the lock is ours.
-- KEYS[1] lock, KEYS[2] schedule zset, KEYS[3] revision counter
-- ARGV[1] our lock value, ARGV[2] number of slots, ARGV[3] now (epoch seconds),
-- ARGV[4] history entries kept per job, then per slot:
--   id, job hash key, revision read, slot score read, next score ('' = none),
--   next_enqueue_time, latest_enqueue_time, rq job key, rq job id, history key, command count,
--   then per command: argument count, arguments (rq's own enqueue writes)
-- Returns {lock ok (1/0), per slot: 1 enqueued, 2 already enqueued (advanced only), 0 stale,
--          3 disabled job found in the index (removed from it)}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local result = {1}
local now, keep = ARGV[3], tonumber(ARGV[4])
local pos = 5
for _ = 1, tonumber(ARGV[2]) do
  local id, hash, revision, slot = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3]
  local next_score, next_time, latest = ARGV[pos + 4], ARGV[pos + 5], ARGV[pos + 6]
  local rq_key, rq_id, history, ncmd = ARGV[pos + 7], ARGV[pos + 8], ARGV[pos + 9], tonumber(ARGV[pos + 10])
  pos = pos + 11
  local cmds = {}
  for c = 1, ncmd do
    local argc = tonumber(ARGV[pos])
    cmds[c] = {unpack(ARGV, pos + 1, pos + argc)}
    pos = pos + argc + 1
  end
  local score = redis.call('ZSCORE', KEYS[2], id)
  local current = nil
  if redis.call('TYPE', hash)['ok'] == 'hash' then current = redis.call('HGET', hash, 'revision') or '' end
  if current ~= revision or not score or tonumber(score) ~= tonumber(slot) then
    result[#result + 1] = 0
  elseif redis.call('HGET', hash, 'enabled') == '0' then
    redis.call('ZREM', KEYS[2], id)
    result[#result + 1] = 3
  else
    local status = 2
    if redis.call('EXISTS', rq_key) == 0 then
      for _, cmd in ipairs(cmds) do redis.call(unpack(cmd)) end
      -- rq's own history format (member: RQ job id, score: enqueue time), bounded.
      redis.call('ZADD', history, now, rq_id)
      redis.call('ZREMRANGEBYRANK', history, 0, -(keep + 1))
      status = 1
    end
    redis.call('HSET', hash, 'latest_enqueue_time', latest, 'next_enqueue_time', next_time)
    redis.call('HSET', hash, 'revision', redis.call('INCR', KEYS[3]))
    if next_score == '' then
      redis.call('ZREM', KEYS[2], id)
    else
      redis.call('ZADD', KEYS[2], next_score, id)
    end
    result[#result + 1] = status
  end
end
return result
