-- Release the lock only if it is still ours, and tell standbys.
-- KEYS[1] lock; ARGV[1] our lock value, ARGV[2] events channel
-- Returns 1 if released, 0 if it was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  -- Best effort: the last_update marker is what guarantees pickup, and a user without channel rights must
  -- still be able to write.
  redis.pcall('PUBLISH', ARGV[2], cjson.encode({event = 'lock_released'}))
  return 1
end
return 0
