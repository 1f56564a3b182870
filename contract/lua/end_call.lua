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
-- KEYS[7] org reserved zset     bc:{org}:reserved
-- KEYS[8] org waiting zset      bc:{org}:waiting          (lease id -> ms)
-- KEYS[9] optional: the org marker bc:{org}:marker (Redis Cluster, see
--         activate.lua)
-- ARGV[1] lease id
-- ARGV[2] now (epoch ms): the call's end, written as ended_ms
-- ARGV[3] expiry (epoch ms) of the ended entry (renewed by renew.lua), and
--         of the slot a reservation takes
-- ARGV[4] lease info hash ttl (ms)
-- ARGV[5] this dialer's first waiting reservation's lease id, or ""
-- ARGV[6] its batch id
-- ARGV[7] how many of the org's waiting reservations (KEYS[8], oldest
--         first) to try when ARGV[5] did not take the slot: another
--         dialer's reservation takes it; 0 = none
-- ARGV[8] hand-off channel prefix (keys.dialer_handoffs("")): the chosen
--         reservation's dialer is told on ARGV[8] .. its dialer id
-- ARGV[9] optional: the trunk id of ARGV[5]'s call ("" or absent: none);
--         when ARGV[5] takes the slot, its call's calls-per-second cell is
--         taken in the same script (pace.lua's rule, lib_pace.lua, on
--         bc:{org}:trunk:{ARGV[9]}:pace and bc:{org}:pace, derived from
--         the org prefix like the waiting lease's keys)
-- ARGV[10..18] pace.lua's ARGV[1..9] for that cell (now, trunk CPS, trunk
--         burst, org CPS, org burst, idle periods, push-back memory, "take",
--         ahead ms)
--
-- The freed slot goes, in the same round trip, to a granted reservation
-- waiting for one (activate.lua's rule, lib_activate.lua): first this
-- dialer's own (ARGV[5]), else the oldest waiting one of any dialer, whose
-- dialer learns it from a PUBLISH of its lease id and dials it at once. So
-- N dialers share one line of granted reservations, and a call end never
-- leaves its slot to a fresh claim (a StartAttempt round trip idle) while
-- another dialer holds a granted contact. The keys of a waiting lease the
-- caller cannot name (its info hash, its batch's meta and leases zset) are
-- derived from the org prefix of KEYS[1] ("bc:{org}:"), so they share its
-- hash tag: still one cluster slot (keys.org_waiting).
--
-- Returns {0} when the lease is not held or carries no attempt (nothing
-- changed: a slot it still holds is given back by its release);
-- otherwise, the lease being (now or already) in the ended zset,
-- {1, org_free, activation, handed, pace status, pace wait, pace
-- push-back state, batch id, batch id, ...}: the org's free slots after any hand-over (-1 when the
-- org has no limit configured), what activating ARGV[5] answered
-- (activate.lua's words; "" when none was given), the lease id of another
-- waiting reservation that took the slot ("" if none), pace.lua's answer
-- for ARGV[5]'s cell ("", 0, 1 when none was asked or ARGV[5] did not take
-- the slot) and the org's rotated ring of running batches.

-- #include lib_marker.lua
-- #include lib_activate.lua
-- #include lib_pace.lua

local org_prefix = string.sub(KEYS[1], 1, #KEYS[1] - #'leases')

-- activate.lua's rule for one reservation of this org.
local function activate(lease, batch)
  return activate_reservation(KEYS[6], KEYS[1],
                              org_prefix .. 'batch:' .. batch .. ':meta',
                              org_prefix .. 'batch:' .. batch .. ':leases',
                              KEYS[7], org_prefix .. 'lease:' .. lease, KEYS[5], KEYS[8],
                              lease, batch, ARGV[3], ARGV[4], ARGV[2], KEYS[9])
end

-- The oldest waiting reservation (of any dialer) that takes the slot: its
-- lease id, its dialer told; "" if none could. A member whose lease is gone
-- or whose batch stopped running leaves the line.
local function hand_off()
  local scan = tonumber(ARGV[7]) or 0
  if scan <= 0 then
    return ''
  end
  for _, lease in ipairs(redis.call('ZRANGE', KEYS[8], 0, scan - 1)) do
    local fields = redis.call('HMGET', org_prefix .. 'lease:' .. lease, 'batch', 'dialer')
    if not fields[1] or not fields[2] then
      redis.call('ZREM', KEYS[8], lease)
    else
      local answer = activate(lease, fields[1])
      if answer == 'ok' then
        redis.call('PUBLISH', ARGV[8] .. fields[2], lease)
        return lease
      elseif answer == 'org_full' or answer == 'org_unconfigured' then
        return ''
      elseif answer ~= 'batch_full' then
        redis.call('ZREM', KEYS[8], lease)
      end
    end
  end
  return ''
end

local function round()
  local activation = ''
  if ARGV[5] and ARGV[5] ~= '' then
    activation = activate(ARGV[5], ARGV[6])
  end
  local handed = ''
  local pace = {'', 0, 1}
  if activation ~= 'ok' then
    handed = hand_off()
  elseif ARGV[9] and ARGV[9] ~= '' then
    pace = pace_decide(org_prefix .. 'trunk:' .. ARGV[9] .. ':pace', org_prefix .. 'pace',
                       {ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18]})
  end
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
  local out = {1, free, activation, handed, pace[1], pace[2], pace[3]}
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
