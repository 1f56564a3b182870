-- pace.lua: may a call start now on this trunk? Checks, in one atomic
-- step across all dialers, the trunk's throttle (carrier push-back), the
-- trunk's calls-per-second bucket and the organization's CPS bucket, and
-- either takes one cell from BOTH buckets ("go") or takes NOTHING and says
-- how long to wait. A contact that waits only for CPS keeps its place and
-- spends no attempt. GCRA, as in redis-cell; docs/pacing.md. Redis 6.2 and
-- 7.x, no 7-only commands; both keys of ONE organization (hash tag
-- {org_id}); time comes in ARGV (the callers' clock), never Redis TIME.
--
-- KEYS[1] trunk pace hash   bc:{org}:trunk:{trunk}:pace  (lib_pace.lua lists
--                           its fields: tat, rate, until, streak, ...)
-- KEYS[2] org pace hash     bc:{org}:pace                (field tat)
-- ARGV[1] now (epoch ms, integer)
-- ARGV[2] trunk's configured CPS (fractional allowed, e.g. 0.5);
--         "" or <= 0: no trunk CPS limit (the throttle still applies)
-- ARGV[3] trunk burst (cells taken at once beyond the rate; 1 = none)
-- ARGV[4] org CPS; "" or <= 0: no org limit
-- ARGV[5] org burst
-- ARGV[6] idle periods: a bucket expires this many emission intervals
--         after its TAT (a past TAT is the same as no state)
-- ARGV[7] push-back memory (ms): push-back state outlives the throttle by it
-- ARGV[8] mode: "take" (take the cells when allowed) | "peek" (only answer)
-- ARGV[9] ahead (ms, take mode; optional, default 0): when the cells are
--         free within this many ms, take them AT that instant (a future
--         cell, GCRA computed from it) and say when: one round trip per
--         call, and concurrent callers each get their own cell instead of
--         asking again together every millisecond and racing for it.
--
-- Returns {status, wait}:
--   {"go", 0}               a call may start now (cells taken unless peek)
--   {"go", delay_us}        take mode with ahead: the cells taken are
--                           delay_us (> 0) from now; start the call then
--   {"throttled", wait_ms}  trunk paused by carrier push-back until now+wait
--   {"trunk", wait_ms}      trunk CPS: the next cell is free in wait_ms
--   {"org", wait_ms}        org CPS: the next cell is free in wait_ms
-- On a refusal nothing is written. wait_ms >= 1, rounded up: asking again
-- after wait_ms succeeds unless another dialer took the cell meanwhile.

-- #include lib_pace.lua

local now_ms = tonumber(ARGV[1])
local now_us = now_ms * 1000
local trunk_cps = pace_num(ARGV[2])
if trunk_cps and trunk_cps <= 0 then
  trunk_cps = nil
end
local trunk_burst = tonumber(ARGV[3])
local org_cps = pace_num(ARGV[4])
if org_cps and org_cps <= 0 then
  org_cps = nil
end
local org_burst = tonumber(ARGV[5])
local idle_periods = tonumber(ARGV[6])
local memory_ms = tonumber(ARGV[7])
local take = ARGV[8] ~= 'peek'
local ahead_us = (tonumber(ARGV[9]) or 0) * 1000

local f = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'until')
local til = pace_num(f[3])
if til and now_ms < til then
  return {'throttled', til - now_ms}
end

local status, wait_at = nil, nil
local trunk_rate, trunk_tat
if trunk_cps then
  trunk_rate = pace_effective(trunk_cps, pace_num(f[2]))
  local allow_at
  allow_at, trunk_tat = pace_gcra(pace_num(f[1]), now_us, trunk_rate, trunk_burst)
  if now_us < allow_at then
    status, wait_at = 'trunk', allow_at
  end
end

local org_tat
if org_cps then
  local allow_at
  allow_at, org_tat = pace_gcra(pace_num(redis.call('HGET', KEYS[2], 'tat')), now_us, org_cps, org_burst)
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
    _, trunk_tat = pace_gcra(pace_num(f[1]), at, trunk_rate, trunk_burst)
  end
  if org_cps then
    local _
    _, org_tat = pace_gcra(pace_num(redis.call('HGET', KEYS[2], 'tat')), at, org_cps, org_burst)
  end
  status = nil
end
if status then
  return {status, pace_wait_ms(wait_at, now_us)}
end
if take then
  if trunk_cps then
    redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', trunk_tat))
    pace_expire(KEYS[1], now_ms, 1000 / trunk_rate, idle_periods, memory_ms)
  end
  if org_cps then
    redis.call('HSET', KEYS[2], 'tat', string.format('%.0f', org_tat))
    pace_expire(KEYS[2], now_ms, 1000 / org_cps, idle_periods, memory_ms)
  end
end
return {'go', delay_us}
