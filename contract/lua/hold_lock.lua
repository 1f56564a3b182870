-- hold_lock.lua: take a lock if it is free, or renew it if we hold it.
--
-- KEYS[1] lock key              e.g. bc:scheduler-lock (the leader lease)
-- ARGV[1] owner token
-- ARGV[2] time to live (ms)
--
-- Returns 1 if we hold the lock now (taken or renewed), 0 if another
-- owner holds it. Compare-and-set on one key: an owner never extends
-- another's lock. Release with unlock.lua.

local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
