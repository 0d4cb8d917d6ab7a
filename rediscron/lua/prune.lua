-- Drop index entries whose job hash is gone.
-- KEYS[1] schedule zset, KEYS[2] ids set
-- ARGV[1] job hash key prefix, ARGV[2...] ids to check
-- Returns the number of ids pruned.
local pruned = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('SREM', KEYS[2], ARGV[i])
    pruned = pruned + 1
  end
end
return pruned
