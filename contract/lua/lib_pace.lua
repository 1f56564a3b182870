-- lib_pace.lua: included (scripts.py "-- #include lib_pace.lua") by
-- pace.lua, pushback.lua and pace_ok.lua, so the cell-rate arithmetic,
-- the effective rate and the expiry rule are written once. Not a script of
-- its own. See docs/pacing.md.
--
-- Units: times in ARGV and in the hashes' "until"/"last_pb" fields are
-- epoch MILLISECONDS; the GCRA theoretical arrival time "tat" is stored in
-- integer MICROSECONDS, rounded UP, so a fractional emission interval
-- (1000 / 3 ms at 3 CPS) never drifts towards a faster rate, and the
-- value stays an exact integer in a Lua double (< 2^53).
--
-- Trunk pace hash fields (bc:{org}:trunk:{trunk}:pace):
--   tat       GCRA theoretical arrival time (us)
--   rate      effective CPS after push-back; ABSENT = the configured rate
--   until     throttled until (epoch ms); no call may start before it
--   streak    consecutive push-backs (reset by a success)
--   last_pb   instant of the last counted push-back (epoch ms)
--   backoff   last adaptive back-off applied (ms)
-- Org pace hash fields (bc:{org}:pace): tat.

-- A number from ARGV / a hash field, or nil for "", nil or false.
local function pace_num(v)
  if v == nil or v == false or v == '' then
    return nil
  end
  return tonumber(v)
end

-- The rate a trunk may use now: the configured one, lowered by push-back
-- (the stored "rate" never raises it above the configured one).
local function pace_effective(configured, stored)
  if stored and stored < configured then
    return stored
  end
  return configured
end

-- GCRA (generic cell-rate algorithm) for one bucket at rate `cps` with
-- `burst` cells of tolerance. Returns allow_at_us (the earliest instant a
-- cell may be taken; taking is allowed iff now_us >= allow_at_us) and
-- new_tat_us (the TAT to store if the cell is taken).
-- burst 1: allowed iff now >= tat, so grants are >= 1/cps apart.
local function pace_gcra(tat_us, now_us, cps, burst)
  local t = 1000000 / cps
  local base = now_us
  if tat_us and tat_us > now_us then
    base = tat_us
  end
  return base - (burst - 1) * t, math.ceil(base + t)
end

-- Milliseconds to wait until `at_us` (rounded up: asking again after that
-- many ms succeeds), at least 1.
local function pace_wait_ms(at_us, now_us)
  local w = math.ceil((at_us - now_us) / 1000)
  if w < 1 then
    w = 1
  end
  return w
end

-- Format a rate for storage / return (a Lua number would be truncated to an
-- integer in a Redis reply).
local function pace_fmt(x)
  return string.format('%.6g', x)
end

-- Set the expiry of a pace hash from what it holds now, so an idle trunk
-- leaves no garbage: the GCRA state is worthless once its TAT is past (a
-- missing TAT behaves the same), so it is kept until TAT + `idle_periods`
-- emission intervals; push-back state (lowered rate, streak, throttle) is
-- kept until max(until, last_pb) + memory_ms. Deletes a hash with nothing
-- left to keep.
local function pace_expire(key, now_ms, period_ms, idle_periods, memory_ms)
  local f = redis.call('HMGET', key, 'tat', 'until', 'last_pb', 'rate', 'streak')
  local ttl = 0
  local tat = pace_num(f[1])
  if tat then
    ttl = math.ceil((tat - now_ms * 1000) / 1000) + math.ceil(idle_periods * period_ms)
  end
  local til = pace_num(f[2])
  local last_pb = pace_num(f[3])
  if til or last_pb or f[4] or (pace_num(f[5]) or 0) > 0 then
    local since = math.max(til or 0, last_pb or 0)
    ttl = math.max(ttl, since - now_ms + memory_ms)
  end
  if ttl <= 0 then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, ttl)
  end
end

-- pace.lua's decision (its ARGV as `a`, its KEYS[1] and KEYS[2] as the
-- two keys): see pace.lua for the arguments and the answer. A function
-- so that end_call.lua can take the cell of the reservation it hands a
-- slot to in the same script (docs/pacing.md).
local function pace_decide(trunk_key, org_key, a)
  local now_ms = tonumber(a[1])
  local now_us = now_ms * 1000
  local trunk_cps = pace_num(a[2])
  if trunk_cps and trunk_cps <= 0 then
    trunk_cps = nil
  end
  local trunk_burst = tonumber(a[3])
  local org_cps = pace_num(a[4])
  if org_cps and org_cps <= 0 then
    org_cps = nil
  end
  local org_burst = tonumber(a[5])
  local idle_periods = tonumber(a[6])
  local memory_ms = tonumber(a[7])
  local take = a[8] ~= 'peek'
  local ahead_us = (tonumber(a[9]) or 0) * 1000

  local f = redis.call('HMGET', trunk_key, 'tat', 'rate', 'until', 'streak', 'last_pb')
  -- Whether the trunk has push-back state (pace_ok.lua's test): without
  -- it, the caller's pace_ok after the call would change nothing.
  local state = 0
  if f[2] or f[3] or (pace_num(f[4]) or 0) > 0 or f[5] then
    state = 1
  end
  local til = pace_num(f[3])
  if til and now_ms < til then
    return {'throttled', til - now_ms, state}
  end

  local status, wait_at = nil, nil
  local trunk_rate, trunk_tat
  local trunk_last = pace_num(f[1])
  if trunk_cps then
    trunk_rate = pace_effective(trunk_cps, pace_num(f[2]))
    local allow_at
    allow_at, trunk_tat = pace_gcra(trunk_last, now_us, trunk_rate, trunk_burst)
    if now_us < allow_at then
      status, wait_at = 'trunk', allow_at
    end
  end

  local org_tat, org_last
  if org_cps then
    org_last = pace_num(redis.call('HGET', org_key, 'tat'))
    local allow_at
    allow_at, org_tat = pace_gcra(org_last, now_us, org_cps, org_burst)
    if now_us < allow_at and (not wait_at or allow_at > wait_at) then
      status, wait_at = 'org', allow_at
    end
  end

  local delay_us = 0
  if status and take and wait_at - now_us <= ahead_us then
    -- Reserve the first instant both buckets allow: compute the cells as
    -- if asked then (allow_at <= at, so both are free at `at`).
    local at = math.ceil(wait_at)
    delay_us = at - now_us
    if trunk_cps then
      local _
      _, trunk_tat = pace_gcra(trunk_last, at, trunk_rate, trunk_burst)
    end
    if org_cps then
      local _
      _, org_tat = pace_gcra(org_last, at, org_cps, org_burst)
    end
    status = nil
  end
  if status then
    return {status, pace_wait_ms(wait_at, now_us), state}
  end
  if take then
    if trunk_cps then
      redis.call('HSET', trunk_key, 'tat', string.format('%.0f', trunk_tat))
      pace_expire(trunk_key, now_ms, 1000 / trunk_rate, idle_periods, memory_ms)
    end
    if org_cps then
      redis.call('HSET', org_key, 'tat', string.format('%.0f', org_tat))
      pace_expire(org_key, now_ms, 1000 / org_cps, idle_periods, memory_ms)
    end
  end
  return {'go', delay_us, state}
end
