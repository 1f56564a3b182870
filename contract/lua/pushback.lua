-- pushback.lua: the carrier pushed back on a call of this trunk (503 with
-- or without Retry-After, or a 403/480 channel-limit answer; the dialer
-- classifies, dialer/pacing.py). Pauses new calls on the trunk and lowers
-- its effective rate (multiplicative decrease); pace_ok.lua raises it
-- again as calls succeed. docs/pacing.md. Redis 6.2 / 7.x; one key.
--
-- One congestion event is counted once: push-backs that arrive while the
-- trunk is already throttled, or for a call placed before the last counted
-- push-back (calls in flight when the carrier started refusing), do not
-- halve the rate or double the back-off again; they only extend the pause
-- to their own Retry-After, if longer.
--
-- KEYS[1] trunk pace hash   bc:{org}:trunk:{trunk}:pace
-- ARGV[1]  now (epoch ms, integer)
-- ARGV[2]  trunk's configured CPS ("" or <= 0: none; the rate is not lowered)
-- ARGV[3]  Retry-After (ms, >= 0, already capped by the caller);
--          "": none, use the adaptive back-off
-- ARGV[4]  start instant of the refused call (epoch ms); "" = unknown
-- ARGV[5]  decrease factor (e.g. 0.5)
-- ARGV[6]  rate floor (CPS, e.g. 0.1; the configured rate if lower)
-- ARGV[7]  adaptive back-off base (ms, e.g. 1000): base * 2^(streak-1) ...
-- ARGV[8]  ... capped at this (ms, e.g. 60000)
-- ARGV[9]  idle periods (expiry, see pace.lua)
-- ARGV[10] push-back memory (ms): the state outlives the throttle by it
--
-- Returns {counted, throttled_until_ms, effective_cps, streak}:
--   counted 1 = a new congestion event (rate lowered, streak + 1),
--           0 = part of the current one (at most the pause extended);
--   effective_cps as a string, "" if the trunk has no CPS limit.

-- #include lib_pace.lua

local now_ms = tonumber(ARGV[1])
local cps = pace_num(ARGV[2])
if cps and cps <= 0 then
  cps = nil
end
local retry_ms = pace_num(ARGV[3])
local started = pace_num(ARGV[4])
local factor = tonumber(ARGV[5])
local floor = tonumber(ARGV[6])
local base = tonumber(ARGV[7])
local cap = tonumber(ARGV[8])
local idle_periods = tonumber(ARGV[9])
local memory_ms = tonumber(ARGV[10])

local f = redis.call('HMGET', KEYS[1], 'rate', 'until', 'streak', 'last_pb')
local rate = pace_num(f[1])
local til = pace_num(f[2]) or 0
local streak = pace_num(f[3]) or 0
local last_pb = pace_num(f[4])

local counted = now_ms >= til and not (started and last_pb and started < last_pb)

local eff = nil
if cps then
  eff = pace_effective(cps, rate)
end
if counted then
  streak = streak + 1
  local pause = retry_ms
  if not pause then
    pause = math.min(cap, base * 2 ^ (streak - 1))
    redis.call('HSET', KEYS[1], 'backoff', string.format('%.0f', pause))
  end
  til = math.max(til, now_ms + pause)
  redis.call('HSET', KEYS[1], 'streak', streak, 'last_pb', ARGV[1], 'until', string.format('%.0f', til))
  if cps then
    eff = math.max(math.min(floor, cps), eff * factor)
    redis.call('HSET', KEYS[1], 'rate', pace_fmt(eff))
  end
elseif retry_ms and now_ms + retry_ms > til then
  til = now_ms + retry_ms
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', til))
end

local period_ms = 1000
if eff then
  period_ms = 1000 / eff
end
pace_expire(KEYS[1], now_ms, period_ms, idle_periods, memory_ms)
local eff_out = ''
if eff then
  eff_out = pace_fmt(eff)
end
return {counted and 1 or 0, til, eff_out, streak}
