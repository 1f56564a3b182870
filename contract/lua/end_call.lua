-- end_call.lua: the call under a lease is over at the provider (its
-- place_call returned, or the dialer's settle path decided it is over), but
-- its outcome is not yet recorded by the server. Give both concurrency
-- slots back at once (ZREM from the org and the batch lease zsets) and keep
-- the lease in the organization's "ended" zset until the dialer's release
-- (after FinishAttempt is answered) or a reaper (the dialer died meanwhile)
-- removes it. The info hash stays, with ended_ms, so a reaper can still
-- close the attempt with the provider's result.
--
-- Why this keeps docs/design.md §5: limits count calls live at the provider
-- (invariant 3) and this call is over; the contact stays DIALING/CONNECTED
-- with its attempt open in Postgres and out of the ready queue until
-- FinishAttempt, so it cannot be claimed again meanwhile (invariant 2).
--
-- It also starts the org's next claim round, so the dialer can refill the
-- freed slot without another round trip: the ring of running batches is
-- rotated by one (LMOVE on itself, as a claim round does) and returned with
-- the org's free slots.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] org ended zset        bc:{org}:ended            (lease id -> expiry ms)
-- KEYS[4] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[5] org ring list         bc:{org}:running
-- KEYS[6] org config hash       bc:{org}:config           (field "limit")
-- Optionally, to hand the freed slot straight to a waiting reservation
-- (grant ahead, see activate.lua) in the same round trip:
-- KEYS[7] its batch meta hash, KEYS[8] its batch leases zset,
-- KEYS[9] org reserved zset, KEYS[10] its lease info hash, and optionally
-- KEYS[11] the org marker bc:{org}:marker (Redis Cluster, see activate.lua)
-- ARGV[1] lease id
-- ARGV[2] now (epoch ms): the call's end, written as ended_ms
-- ARGV[3] expiry (epoch ms) of the ended entry (renewed by renew.lua)
-- ARGV[4] lease info hash ttl (ms)
-- ARGV[5] the reservation's lease id, or "" (then KEYS[7..10] are absent)
-- ARGV[6] its batch id
--
-- Returns {0} when the lease is not held or carries no attempt (nothing
-- changed: a slot it still holds is given back by its release);
-- otherwise, the lease being (now or already) in the ended zset,
-- {1, org_free, activation, batch id, batch id, ...}: the org's free slots
-- after the activation (-1 when the org has no limit configured), what
-- activating the reservation answered (activate.lua's words; "" when none
-- was given) and the org's rotated ring of running batches.

-- #include lib_marker.lua
-- #include lib_activate.lua

-- activate.lua's rule, for the reservation of ARGV[5] (if any).
local function activate()
  if not ARGV[5] or ARGV[5] == '' then
    return ''
  end
  return activate_reservation(KEYS[6], KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[5],
                              ARGV[5], ARGV[6], ARGV[3], ARGV[4], ARGV[2], KEYS[11])
end

local function round()
  local activation = activate()
  local ring = KEYS[5]
  redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
  local limit = tonumber(redis.call('HGET', KEYS[6], 'limit'))
  local free = -1
  if limit then
    free = limit - redis.call('ZCARD', KEYS[1])
    if free < 0 then
      free = 0
    end
  end
  local out = {1, free, activation}
  for _, batch in ipairs(redis.call('LRANGE', ring, 0, -1)) do
    out[#out + 1] = batch
  end
  return out
end

if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return round()
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {0}
end
if redis.call('HEXISTS', KEYS[4], 'attempt_id') == 0 then
  return {0}
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], 'ended_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return round()
