-- restore_lease.lua: re-create the lease of an attempt still open in
-- Postgres after Redis lost its data (the reconciler's rebuild). ZADD NX: a
-- lease that already exists keeps its score and is never added twice. A
-- lease in the org's ended zset (its call is over, its outcome not yet
-- recorded: end_call.lua) holds no slot and is left as it is. After a real
-- data loss the ended zset is gone too, so every open attempt gets its
-- slots back: conservative, the limits hold whatever the calls' state.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[4] org ended zset        bc:{org}:ended
-- ARGV[1] lease id
-- ARGV[2] expiry (epoch ms) = now + lease ttl, so the live holder's
--         heartbeat (ZADD XX) works again and a reaper judges it later
-- ARGV[3] lease info hash ttl (ms)
-- ARGV[4..] field, value, field, value ... of the lease info hash
--
-- Returns 1 if the lease was added, 0 if it existed already (held or ended).

if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return 0
end
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
if #ARGV >= 5 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 4))
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return added
