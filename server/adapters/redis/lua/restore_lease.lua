-- restore_lease.lua: re-create the lease of an attempt still open in
-- Postgres after Redis lost its data (the reconciler's rebuild). ZADD NX: a
-- lease that already exists keeps its score and is never added twice.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] lease info hash       bc:{org}:lease:{lease id}
-- ARGV[1] lease id
-- ARGV[2] expiry (epoch ms) = now + lease ttl, so the live holder's
--         heartbeat (ZADD XX) works again and a reaper judges it later
-- ARGV[3] lease info hash ttl (ms)
-- ARGV[4..] field, value, field, value ... of the lease info hash
--
-- Returns 1 if the lease was added, 0 if it existed already.

local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
if #ARGV >= 5 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 4))
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return added
