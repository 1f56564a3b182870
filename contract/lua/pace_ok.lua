-- pace_ok.lua: the carrier accepted a call of this trunk (any answer that
-- is not a push-back: ringing, answered, busy, no answer...). Ends the
-- push-back streak (the next adaptive back-off starts again from its base)
-- and raises a lowered effective rate by an additive step towards the
-- configured rate (AIMD with pushback.lua's multiplicative decrease).
-- Calls placed before the last counted push-back do not count: they say
-- nothing about the carrier since. docs/pacing.md. Redis 6.2 / 7.x; one key.
-- Writes nothing (and creates no key) when there is no push-back state.
--
-- KEYS[1] trunk pace hash   bc:{org}:trunk:{trunk}:pace
-- ARGV[1] now (epoch ms, integer)
-- ARGV[2] trunk's configured CPS ("" or <= 0: none)
-- ARGV[3] start instant of the accepted call (epoch ms); "" = unknown
-- ARGV[4] additive increase per success (CPS, e.g. 10% of the configured)
-- ARGV[5] idle periods (expiry, see pace.lua)
-- ARGV[6] push-back memory (ms)
--
-- Returns {changed, effective_cps, streak}: changed 1 if the state moved;
-- effective_cps as a string ("" if the trunk has no CPS limit).

-- #include lib_pace.lua

local now_ms = tonumber(ARGV[1])
local cps = pace_num(ARGV[2])
if cps and cps <= 0 then
  cps = nil
end
local started = pace_num(ARGV[3])
local step = tonumber(ARGV[4])
local idle_periods = tonumber(ARGV[5])
local memory_ms = tonumber(ARGV[6])

local f = redis.call('HMGET', KEYS[1], 'rate', 'until', 'streak', 'last_pb')
local rate = pace_num(f[1])
local til = pace_num(f[2])
local streak = pace_num(f[3]) or 0
local last_pb = pace_num(f[4])

local eff = nil
if cps then
  eff = pace_effective(cps, rate)
end
local function out(changed)
  local e = ''
  if eff then
    e = pace_fmt(eff)
  end
  return {changed, e, streak}
end

if not rate and streak == 0 and not til and not last_pb then
  return out(0)
end
if started and last_pb and started < last_pb then
  return out(0)
end

streak = 0
redis.call('HDEL', KEYS[1], 'streak', 'backoff')
if rate then
  if cps and rate + step < cps then
    eff = rate + step
    redis.call('HSET', KEYS[1], 'rate', pace_fmt(eff))
  else
    redis.call('HDEL', KEYS[1], 'rate')
    rate = nil
    eff = cps
  end
end
if not rate and (not til or now_ms >= til) then
  -- Fully recovered and not paused: forget the push-back.
  redis.call('HDEL', KEYS[1], 'until', 'last_pb')
end

local period_ms = 1000
if eff then
  period_ms = 1000 / eff
end
pace_expire(KEYS[1], now_ms, period_ms, idle_periods, memory_ms)
return out(1)
