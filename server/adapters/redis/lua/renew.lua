-- renew.lua: heartbeat of one lease. ZADD XX only: a lease that was
-- released (or lost with Redis' data) is never re-created by its holder.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] lease info hash       bc:{org}:lease:{lease id}
-- ARGV[1] lease id
-- ARGV[2] new expiry (epoch ms)
-- ARGV[3] lease info hash ttl (ms)
--
-- Returns 1 when renewed, 0 when the lease is lost (nothing changed).

if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
