-- attach.lua: record the granted attempt on a lease, only if the lease is
-- still held. The dialer places the call only when this returns 1, so a
-- lease that a reaper released (or that Redis lost) never guards a call.
-- A reservation (granted ahead, no slot yet) is held too: it can only be
-- dialed after activate.lua gave it its slots.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[3] org reserved zset     bc:{org}:reserved
-- ARGV[1] lease id
-- ARGV[2] attempt id
-- ARGV[3] started (epoch ms, grant instant)
-- ARGV[4] max call duration (ms)
-- ARGV[5] trunk (json of TrunkSettings)
-- ARGV[6] lease info hash ttl (ms)
--
-- Returns 1 when attached, 0 when the lease is gone.

if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2],
  'attempt_id', ARGV[2],
  'started_ms', ARGV[3],
  'max_call_ms', ARGV[4],
  'trunk', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
