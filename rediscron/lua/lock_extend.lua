-- Extend the lock if it is still ours.
-- KEYS[1] lock; ARGV[1] our lock value, ARGV[2] ttl in milliseconds
-- Returns 1 if extended, 0 if the lock is not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
