-- renew.lua: heartbeat of one lease. ZADD XX only: a lease that was
-- released (or lost with Redis' data) is never re-created by its holder.
-- A lease whose call ended (end_call.lua) lives in the org's ended zset
-- until its outcome is recorded: it is renewed there, so no reaper judges
-- it while its dialer lives. Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[4] org ended zset        bc:{org}:ended
-- KEYS[5] org reserved zset     bc:{org}:reserved  (a reservation granted
--         ahead, no slot yet: renewed there, see claim.lua "reserve")
-- ARGV[1] lease id
-- ARGV[2] new expiry (epoch ms)
-- ARGV[3] lease info hash ttl (ms)
--
-- Returns 1 when renewed (in the slot zsets, the ended zset, the reserved
-- zset), 0 when the lease is lost (nothing changed).

local held = redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZSCORE', KEYS[2], ARGV[1])
local ended = redis.call('ZSCORE', KEYS[4], ARGV[1])
local reserved = redis.call('ZSCORE', KEYS[5], ARGV[1])
if not held and not ended and not reserved then
  return 0
end
if reserved then
  redis.call('ZADD', KEYS[5], 'XX', ARGV[2], ARGV[1])
end
if held then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
end
if ended then
  redis.call('ZADD', KEYS[4], 'XX', ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
