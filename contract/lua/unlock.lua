-- unlock.lua: delete a lock only if it still holds our token.
--
-- KEYS[1] lock key              e.g. bc:{org}:reaper-lock
-- ARGV[1] owner token
--
-- Returns 1 if deleted, 0 otherwise.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
