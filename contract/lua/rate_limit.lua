-- rate_limit.lua: GCRA (a token bucket without a refill loop) for one API
-- key's request rate, shared by every server replica. One key per call, so
-- it runs on Redis Cluster as it is (server/api/rate_limit.py).
--
-- KEYS[1] theoretical arrival time, integer µs   e.g. bc:{org}:rl:<sha256 of key id>
-- ARGV[1] now, epoch µs (the server's injected clock, never Redis TIME)
-- ARGV[2] emission interval, µs per request (1e6 / requests per second)
-- ARGV[3] burst: requests allowed at once (>= 1)
--
-- Returns {1, 0} admitted (the TAT advanced), or {0, retry_after_µs}
-- refused (nothing written).

local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, 0}
