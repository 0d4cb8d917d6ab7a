-- Create or update one cron job definition, keeping what the scheduler owns.
-- KEYS[1] job hash, KEYS[2] schedule zset, KEYS[3] ids set, KEYS[4] last_update marker,
-- KEYS[5] revision counter (revisions are unique across all jobs and all time, so a deleted and
-- re-created job can never be mistaken for the one a scheduler read), KEYS[6] the set of ids whose
-- definition came from a file (`rqrcron apply`): only those may `apply --prune` delete, KEYS[7] the audit log
-- ARGV[1] id, ARGV[2] event name, ARGV[3] events channel, ARGV[4] now (RQ time string)
-- ARGV[5] candidate next slot score, ARGV[6] candidate next_enqueue_time string ('' and '': no next slot,
-- the job has ended)
-- ARGV[7] enabled: '1', '0', or '' to keep the stored state (new jobs: enabled)
-- ARGV[8] '1' to take the candidate next slot even if the schedule is unchanged
-- ARGV[9] latest_enqueue_time to store, or '' to keep the stored one
-- ARGV[10] conflict: 'replace', 'ignore' or 'raise' when the id exists; 'update' to write only if it exists
-- ARGV[11] the revision the caller read ('' to write whatever is stored; '-' to write only if there is
-- no record yet: else status 2, with the stored timing fields appended to the reply)
-- ARGV[12] 'file' if this definition comes from a file (apply), 'hand' if from anything else, '' if the
-- definition is not what changes
-- ARGV[13] k, then k names of the fields that make up the schedule
-- then n, and n field/value pairs to set; then m, and m field names to delete; then who makes the change
-- (the audit log's actor) and the audit log's length
-- Returns {status, revision, created_at, next_enqueue_time, enabled} (then, for ARGV[11] '-' and a record
-- found: interval, next_enqueue_time, latest_enqueue_time, revision, run_count as stored):
-- status 1 written, 0 left alone (conflict 'ignore'), -1 exists (conflict 'raise'),
-- 2 the record changed since the caller read it (nothing written; read again),
-- 3 no such job (conflict 'update'; nothing written)
local hash, schedule, ids, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, event, channel, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cand_score, cand_next = ARGV[5], ARGV[6]
local enabled, force_next, latest, conflict = ARGV[7], ARGV[8] == '1', ARGV[9], ARGV[10]

local kind = redis.call('TYPE', hash)['ok']
if kind ~= 'hash' and kind ~= 'none' then
  -- Not a job record (a corrupted key in our namespace): writing the job repairs it.
  redis.call('DEL', hash)
end
local exists = kind == 'hash'
if not exists and conflict == 'update' then return {3, '', '', '', ''} end
if ARGV[11] == '-' and exists then
  -- The caller took the job for new, and placed its first slot so: it places it again from these.
  local t = redis.call('HMGET', hash, 'interval', 'next_enqueue_time', 'latest_enqueue_time', 'revision', 'run_count')
  return {2, '', '', '', '', t[1] or '', t[2] or '', t[3] or '', t[4] or '', t[5] or ''}
end
if ARGV[11] ~= '' and ARGV[11] ~= '-' and (redis.call('HGET', hash, 'revision') or '') ~= ARGV[11] then
  return {2, '', '', '', ''}
end
local old = {}
if exists then
  if conflict ~= 'replace' and conflict ~= 'update' then
    local status = 0
    if conflict == 'raise' then status = -1 end
    local cur = redis.call('HMGET', hash, 'revision', 'created_at', 'next_enqueue_time', 'enabled')
    return {status, cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or ''}
  end
  local flat = redis.call('HGETALL', hash)
  for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
end

local pos = 13
local k = tonumber(ARGV[pos])
local sched_fields = {}
for i = 1, k do sched_fields[i] = ARGV[pos + i] end
pos = pos + k + 1
local n = tonumber(ARGV[pos])
local new = {}
local set = {}
for i = 0, n - 1 do
  local f, v = ARGV[pos + 1 + 2 * i], ARGV[pos + 2 + 2 * i]
  new[f] = v
  set[#set + 1] = f
  set[#set + 1] = v
end
pos = pos + 2 * n + 1
local m = tonumber(ARGV[pos])
local del = {}
for i = 1, m do del[i] = ARGV[pos + i] end
local actor, audit_length = ARGV[pos + m + 1], ARGV[pos + m + 2]

local changed = not exists
for _, f in ipairs(sched_fields) do
  if old[f] ~= new[f] then changed = true end
end

if enabled == '' then enabled = old['enabled'] or '1' end
if enabled ~= '0' then enabled = '1' end

local old_score = redis.call('ZSCORE', schedule, id)
local score, next_time = cand_score, cand_next
local reenabled = old['enabled'] == '0' and enabled == '1'
local quarantined = old['last_error'] ~= nil
if exists and not changed and not force_next and not reenabled and not quarantined
    and old_score and old['next_enqueue_time'] then
  score, next_time = old_score, old['next_enqueue_time']
end

local revision = incr_counter(KEYS[5])
set[#set + 1] = 'enabled'; set[#set + 1] = enabled
set[#set + 1] = 'revision'; set[#set + 1] = tostring(revision)
set[#set + 1] = 'updated_at'; set[#set + 1] = now
set[#set + 1] = 'created_at'; set[#set + 1] = old['created_at'] or now
if next_time ~= '' then set[#set + 1] = 'next_enqueue_time'; set[#set + 1] = next_time end
if latest ~= '' then set[#set + 1] = 'latest_enqueue_time'; set[#set + 1] = latest end

-- What the audit log records: each definition field that changes, from what to what (false: absent).
local changes, changed_any = {}, not exists
for f, v in pairs(new) do
  if old[f] ~= v then changes[f] = {old[f] or false, v}; changed_any = true end
end
for _, f in ipairs(del) do
  if old[f] ~= nil then changes[f] = {old[f], false}; changed_any = true end
end
if exists and (old['enabled'] or '1') ~= enabled then
  changes['enabled'] = {old['enabled'] or '1', enabled}; changed_any = true
end

-- HSET first: under maxmemory it is refused before anything has changed (scripts do not roll back).
redis.call('HSET', hash, unpack(set))
-- A new record has nothing to delete: only the fields an older definition of it set.
if exists then
  del[#del + 1] = 'last_error'
  if next_time == '' then del[#del + 1] = 'next_enqueue_time' end
  redis.call('HDEL', hash, unpack(del))
end
if enabled == '1' and score ~= '' then
  redis.call('ZADD', schedule, score, id)
else
  redis.call('ZREM', schedule, id)
end
redis.call('SADD', ids, id)
-- Bookkeeping of `apply`: a key of another type there must not fail the write.
if ARGV[12] == 'file' then
  redis.pcall('SADD', KEYS[6], id)
elseif ARGV[12] == 'hand' then
  redis.pcall('SREM', KEYS[6], id)
end
incr_counter(marker)
if not exists and event == 'updated' then event = 'created' end
if changed_any then
  -- An upsert that changes nothing (an app registering its jobs at every start) is no change to record.
  audit(KEYS[7], audit_length, {'id', id, 'action', event, 'actor', actor, 'revision', tostring(revision),
    'source', ARGV[12], 'changes', cjson.encode(changes)})
end
-- Best effort: the last_update marker is what guarantees pickup, and a user without channel rights must
-- still be able to write.
redis.pcall('PUBLISH', channel, cjson.encode({event = event, id = id, revision = tonumber(revision)}))
return {1, tostring(revision), old['created_at'] or now, next_time, enabled}
