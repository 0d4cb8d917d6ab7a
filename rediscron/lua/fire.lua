-- Fire a batch of planned due jobs, all or nothing per job, only while the lock is ours.
-- KEYS[1] lock, KEYS[2] schedule zset, KEYS[3] revision counter, KEYS[4] recent fires list,
-- KEYS[5] totals hash, KEYS[6] failing jobs zset (id scored by its consecutive failures),
-- KEYS[7] the registry-wide pause (while it exists, nothing fires), KEYS[8] the audit log
-- ARGV[1] our lock value, ARGV[2] number of jobs, ARGV[3] now (epoch seconds),
-- ARGV[4] history entries kept per job, ARGV[5] recent fires kept, ARGV[6] now in RQ's time format
-- (the RQ jobs' enqueued_at and the cron jobs' latest_enqueue_time), ARGV[7] the events channel,
-- ARGV[8] the audit log's length, ARGV[9] the number of run templates, then each template (rq's writes
-- for the runs of one shape, `template.RunTemplate.script_part`): the command count, the length of its
-- writes laid out (as below) and those, then (each count first) the places of the RQ job id, the places
-- of the times (place, 0 for created_at / 1 for enqueued_at), then the places of the call, description,
-- meta and enqueued_at of rq's HSET (0: none), and the RQ job id its writes hold; then per job:
--   id, job hash key, revision read, index score read, next score ('' = the job has ended),
--   rq job key ('' = nothing to run: the slots were dropped), rq job id, history key,
--   rq job key prefix ('' = overlap allowed; else skip while the newest run is queued or running),
--   '1' if this run is the job's last (max_runs), the slot run ('' if none), slots dropped (a count),
--   then four field lists (count, then field/value pairs): set always, set when run, set when
--   skipped for overlap, set when disabled for failing (max_consecutive_failures); then where its enqueued_at value is among the arguments that follow (0: it
--   has none; then the script sets it with its own HSET), the command count and per command:
--   argument count, arguments (rq's own enqueue writes); or, for a run filled in from a template, -2,
--   the template's number, then its RQ job id, created_at, enqueued_at, call, description and meta
-- Returns {2} while paused (nothing done), else {lock ok (1/0), per job: 1 enqueued, 2 already enqueued (advanced only), 0 stale,
--          3 disabled job found in the index (removed from it), 4 dropped slots only (advanced),
--          5 skipped for overlap (advanced), 6 Redis refused one of rq's enqueue commands (nothing of it
--          kept, not advanced: the caller quarantines the job), 7 disabled, not run: its previous runs
--          failed max_consecutive_failures times in a row; then, for each 6 in order, the error}
-- One job's keys of the wrong type never stop the others: the job's own reads and writes, and the
-- bookkeeping (history, failing set, totals, recent fires), are error-tolerant.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if redis.call('EXISTS', KEYS[7]) == 1 then return {2} end
local result = {1}
local now, keep, keep_fires, stamp = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
-- Numbers given to redis.call are formatted with %.17g at every call: these are formatted once.
local now_number, trimmed_from = tonumber(now), string.format('%d', -(keep + 1))
-- The counts among the arguments (fields, commands, their lengths), read without tonumber(): a table
-- lookup of a string Lua has already hashed costs a fraction of a parse.
local counts = {}
for i = -1, 255 do counts[tostring(i)] = i end
local function count(text) return counts[text] or tonumber(text) end
-- Each slot's lag text, made once for the runs of one slot.
local lags = {}
local pos = 10
local fired, missed, overlapped, recent, errors = 0, 0, 0, {}, {}
local busy = {queued = true, started = true, deferred = true, scheduled = true}
local added = {}
local new_revision = nil

-- Where a field list's pairs are among the arguments (first, last): read only if it is written.
local function fields()
  local first = pos + 1
  pos = pos + 2 * count(ARGV[pos]) + 1
  return first, pos - 1
end

-- How many runs in a row have failed, the newest included, if that reaches the job's
-- max_consecutive_failures (else nil).
local function failed_out(hash)
  local t = redis.pcall('HMGET', hash, 'max_consecutive_failures', 'consecutive_failures')
  if type(t) ~= 'table' or t.err then return nil end
  local limit = tonumber(t[1])
  if not limit then return nil end
  local failures = (tonumber(t[2]) or 0) + 1
  if failures >= limit then return failures end
  return nil
end

-- Each command of a list of writes as (first argument, last argument) in ``list``, from ``at`` on (each
-- command's length, then its arguments): no table built per command. Returns them and where they end.
local function commands(list, at, ncmd)
  local cmds = {}
  for c = 1, ncmd do
    local argc = count(list[at])
    cmds[c] = at + 1
    cmds[ncmd + c] = at + argc
    at = at + argc + 1
  end
  return cmds, at
end

-- ``text`` with every ``old`` in it replaced by ``new`` (plain text, as Python's str.replace).
local function replaced(text, old, new)
  local parts, from = {}, 1
  while true do
    local a, b = string.find(text, old, from, true)
    if not a then break end
    parts[#parts + 1] = string.sub(text, from, a - 1)
    parts[#parts + 1] = new
    from = b + 1
  end
  if from == 1 then return text end
  parts[#parts + 1] = string.sub(text, from)
  return table.concat(parts)
end

-- A list of places (a count, then ``step`` arguments each).
local function places(step)
  local n = count(ARGV[pos])
  local list = {unpack(ARGV, pos + 1, pos + n * step)}
  pos = pos + n * step + 1
  return list
end

local templates = {}
for t = 1, count(ARGV[9]) do
  local ncmd, nflat = count(ARGV[pos]), count(ARGV[pos + 1])
  local flat = {unpack(ARGV, pos + 2, pos + 1 + nflat)}
  pos = pos + 2 + nflat
  local ids, times = places(1), places(2)
  local rq_id = ARGV[pos + 4]
  -- What comes before and after the RQ job id in each text that holds it once (most do): a run's is
  -- one concatenation away.
  local heads, tails = {}, {}
  for k = 1, #ids do
    ids[k] = count(ids[k])
    local text = flat[ids[k]]
    local a, b = string.find(text, rq_id, 1, true)
    if a and not string.find(text, rq_id, b + 1, true) then
      heads[k], tails[k] = string.sub(text, 1, a - 1), string.sub(text, b + 1)
    end
  end
  for i = 1, #times, 2 do times[i] = count(times[i]) end
  templates[t] = {flat = flat, ncmd = ncmd, cmds = commands(flat, 1, ncmd), ids = ids, heads = heads,
    tails = tails, times = times, data = count(ARGV[pos]), description = count(ARGV[pos + 1]),
    meta = count(ARGV[pos + 2]), stamp = count(ARGV[pos + 3]), rq_id = rq_id}
  pos = pos + 5
end

for _ = 1, tonumber(ARGV[2]) do
  local id, hash, revision, slot = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3]
  local next_score, rq_key, rq_id, history = ARGV[pos + 4], ARGV[pos + 5], ARGV[pos + 6], ARGV[pos + 7]
  local prefix, final = ARGV[pos + 8], ARGV[pos + 9] == '1'
  local run, dropped = ARGV[pos + 10], count(ARGV[pos + 11])
  pos = pos + 12
  local always, always_end = fields()
  local on_run, on_run_end = fields()
  local on_overlap, on_overlap_end = fields()
  local on_failed, on_failed_end = fields()
  -- rq's writes: in the arguments (``src`` is ARGV), or filled in from a template (a table of their own).
  local src, cmds, ncmd, stamp_at = ARGV, nil, 0, count(ARGV[pos])
  if stamp_at == -2 then
    local t = templates[count(ARGV[pos + 1])]
    local created, enqueued = ARGV[pos + 3], ARGV[pos + 4]
    src = {unpack(t.flat)}
    local own_id = ARGV[pos + 2]
    for k, i in ipairs(t.ids) do
      local head = t.heads[k]
      if head then src[i] = head .. own_id .. t.tails[k] else src[i] = replaced(t.flat[i], t.rq_id, own_id) end
    end
    for i = 1, #t.times, 2 do
      if t.times[i + 1] == '0' then src[t.times[i]] = created else src[t.times[i]] = enqueued end
    end
    if t.data > 0 then src[t.data] = ARGV[pos + 5] end
    if t.description > 0 then src[t.description] = ARGV[pos + 6] end
    if t.meta > 0 then src[t.meta] = ARGV[pos + 7] end
    if t.stamp > 0 then src[t.stamp] = stamp end
    -- Stamped above (-1), or, where rq's writes hold no enqueued_at, by an HSET of its own below (0).
    cmds, ncmd, stamp_at = t.cmds, t.ncmd, t.stamp > 0 and -1 or 0
    pos = pos + 8
  else
    ncmd = count(ARGV[pos + 1])
    if stamp_at > 0 then stamp_at = pos + 1 + stamp_at end
    cmds, pos = commands(ARGV, pos + 2, ncmd)
  end
  local score = redis.call('ZSCORE', KEYS[2], id)
  -- Another type of key where the hash should be is an error reply: stale, like a missing hash.
  local stored = redis.pcall('HMGET', hash, 'revision', 'enabled')
  if stored.err then stored = {} end
  -- A hash without a revision (written by hand) reads as '' and still fires, as it was read.
  if (stored[1] or '') ~= revision or not score or (score ~= slot and tonumber(score) ~= tonumber(slot)) then
    result[#result + 1] = 0
  elseif stored[2] == '0' then
    redis.call('ZREM', KEYS[2], id)
    result[#result + 1] = 3
  else
    -- What the outcome writes besides the fields set always: a field list (first, last), and whether it ran.
    local status, extra, extra_end, ran, failures = 4, nil, nil, false, nil
    if rq_key ~= '' then
      local newest = redis.pcall('ZRANGE', history, '-1', '-1')
      newest = type(newest) == 'table' and not newest.err and newest[1] or nil
      local newest_status = nil
      if newest then
        newest_status = redis.pcall('HGET', string.sub(rq_key, 1, #rq_key - #rq_id) .. newest, 'status')
        if type(newest_status) ~= 'string' then newest_status = nil end
      end
      if redis.call('EXISTS', rq_key) == 1 then
        status, extra, extra_end, ran = 2, on_run, on_run_end, true
      elseif prefix ~= '' and busy[newest_status or ''] then
        status, extra, extra_end = 5, on_overlap, on_overlap_end
      elseif newest_status == 'failed' and failed_out(hash) then
        failures = failed_out(hash)
        status, extra, extra_end = 7, on_failed, on_failed_end
        redis.pcall('ZADD', KEYS[6], failures, id)
      else
        local refused = nil
        for c = 1, ncmd do
          local first, last = cmds[c], cmds[ncmd + c]
          -- rq registers the queue on every enqueue: once per script is the same write.
          local once = src[first] == 'SADD' and last == first + 2
          if not (once and added[src[first + 1]] == src[last]) then
            local reply
            if stamp_at >= first and stamp_at <= last then
              -- The run may have been built ahead of its slot: it is enqueued now. (ARGV itself is
              -- left alone: newer servers make it read-only.)
              local args = {unpack(ARGV, first, last)}
              args[stamp_at - first + 1] = stamp
              reply = redis.pcall(unpack(args))
            else
              reply = redis.pcall(unpack(src, first, last))
            end
            if type(reply) == 'table' and reply.err then refused = reply.err break end
            if once then added[src[first + 1]] = src[last] end
          end
        end
        if refused then
          -- Nothing half-written stays behind (a run whose key exists would count as enqueued).
          redis.pcall('DEL', rq_key)
          status = 6
          errors[#errors + 1] = refused
        else
          -- The run before this one is counted now, once: failed in a row, or not.
          if newest_status == 'failed' then
            failures = (tonumber(redis.pcall('HGET', hash, 'consecutive_failures')) or 0) + 1
            redis.pcall('ZADD', KEYS[6], failures, id)
          elseif newest_status == 'finished' then
            failures = 0
            redis.pcall('ZREM', KEYS[6], id)
          end
          if stamp_at == 0 then redis.pcall('HSET', rq_key, 'enqueued_at', stamp) end
          -- rq's own history format (member: RQ job id, score: enqueue time), bounded.
          redis.pcall('ZADD', history, now, rq_id)
          redis.pcall('ZREMRANGEBYRANK', history, '0', trimmed_from)
          status, extra, extra_end, ran = 1, on_run, on_run_end, true
        end
      end
    end
    if status == 6 then
      result[#result + 1] = status
    else
      local writes = {unpack(ARGV, always, always_end)}
      if extra then
        for i = extra, extra_end do writes[#writes + 1] = ARGV[i] end
      end
      if ran then
        writes[#writes + 1] = 'latest_enqueue_time'
        writes[#writes + 1] = stamp
      end
      if failures then
        writes[#writes + 1] = 'consecutive_failures'
        writes[#writes + 1] = failures
      end
      -- One new revision for the whole script: each job's record still changes it (an edit read before
      -- this fire is refused), and a value is never handed out twice by two writes to one job.
      if not new_revision then new_revision = incr_counter(KEYS[3]) end
      writes[#writes + 1] = 'revision'
      writes[#writes + 1] = new_revision
      if status == 7 then
        writes[#writes + 1] = 'enabled'
        writes[#writes + 1] = '0'
      end
      redis.call('HSET', hash, unpack(writes))
      if status == 7 then
        -- Disabled as disable() does it: out of the index, said to every process and in the audit log.
        redis.call('ZREM', KEYS[2], id)
        redis.pcall('PUBLISH', ARGV[7], cjson.encode({event = 'disabled', id = id, revision = tonumber(new_revision)}))
        audit(KEYS[8], ARGV[8], {'id', id, 'action', 'disabled', 'actor', 'rediscron scheduler',
          'revision', new_revision, 'detail', failures .. ' runs in a row failed (max_consecutive_failures)',
          'changes', cjson.encode({enabled = {'1', '0'}})})
      elseif next_score == '' or (final and (status == 1 or status == 2)) then
        redis.call('HDEL', hash, 'next_enqueue_time')
        redis.call('ZREM', KEYS[2], id)
      else
        redis.call('ZADD', KEYS[2], next_score, id)
      end
      result[#result + 1] = status
      missed = missed + dropped
      if status == 1 then
        fired = fired + 1
        local lag = lags[run]
        if not lag then
          lag = now .. ' ' .. string.format('%.3f', now_number - tonumber(run))
          lags[run] = lag
        end
        recent[#recent + 1] = lag
      elseif status == 5 then
        overlapped = overlapped + 1
      end
    end
  end
end
-- Totals and recent fires are for `rqrcron status`: a key of another type there must not fail the fires.
if fired > 0 then redis.pcall('HINCRBY', KEYS[5], 'fired', fired) end
if missed > 0 then redis.pcall('HINCRBY', KEYS[5], 'missed', missed) end
if overlapped > 0 then redis.pcall('HINCRBY', KEYS[5], 'overlap_skipped', overlapped) end
for i = 1, #recent, 1000 do
  redis.pcall('LPUSH', KEYS[4], unpack(recent, i, math.min(i + 999, #recent)))
end
if #recent > 0 then redis.pcall('LTRIM', KEYS[4], 0, keep_fires - 1) end
for _, message in ipairs(errors) do result[#result + 1] = message end
return result
