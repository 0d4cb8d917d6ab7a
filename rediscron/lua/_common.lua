-- Prepended to every script when it is loaded (scripts.py); its lines come first in error line numbers.
-- A counter (a revision, the fencing epoch, the change marker) overwritten with something that is
-- not a whole number would refuse INCR for ever, and with it every write: restart it above any
-- value it can have reached, the server's time in milliseconds (under maxmemory the SET is refused
-- too, before anything has changed). Returned as text: Lua would print a large number as 1.8e+12.
local function incr_counter(key)
  local value = redis.pcall('INCR', key)
  if type(value) == 'table' and value.err then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
    value = redis.call('INCR', key)
  end
  return string.format('%d', value)
end

-- Append one entry to the audit log (a capped stream), as part of the change it records. Best effort:
-- a key of another type there, or a user without XADD rights, must not fail the change itself.
local function audit(key, maxlen, fields)
  redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
