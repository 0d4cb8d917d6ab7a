-- One scheduler pass: the time, the change marker, the due jobs and the next slot.
-- KEYS[1] schedule zset, KEYS[2] last_update marker
-- ARGV[1] now as epoch seconds, or '' to use the server's TIME
-- ARGV[2] most due jobs to return, ARGV[3] job hash key prefix,
-- ARGV[4] entries to skip (default 0), ARGV[5] seconds to look ahead (default 0): also return
-- the jobs due by now + that, so their runs can be built before their slots; ARGV[6] seconds of the
-- horizon to count the entries due within (0: none counted)
-- Returns {now, marker, next score after now or '', entries due within the horizon,
--          {id, score, {hash fields...} or the key's type}...}
local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local marker = redis.call('GET', KEYS[2]) or ''
local horizon = now
if (tonumber(ARGV[5]) or 0) > 0 then horizon = string.format('%.6f', tonumber(now) + tonumber(ARGV[5])) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon, 'WITHSCORES', 'LIMIT',
                       tonumber(ARGV[4]) or 0, tonumber(ARGV[2]))
local upcoming = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '(inf', 'WITHSCORES', 'LIMIT', 0, 1)
local coming = 0
if (tonumber(ARGV[6]) or 0) > 0 then
  coming = redis.call('ZCOUNT', KEYS[1], '-inf', string.format('%.6f', tonumber(now) + tonumber(ARGV[6])))
end
local result = {now, marker, upcoming[2] or '', coming}
for i = 1, #due, 2 do
  local key = ARGV[3] .. due[i]
  local kind = redis.call('TYPE', key)['ok']
  local fields = {}
  if kind == 'hash' then
    fields = redis.call('HGETALL', key)
  elseif kind ~= 'none' then
    fields = kind  -- another type of key sits where the hash should be
  end
  result[#result + 1] = {due[i], due[i + 1], fields}
end
return result
