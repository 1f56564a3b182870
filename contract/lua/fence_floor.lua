-- fence_floor.lua: raise an organization's fencing counter to at least a
-- floor (never lowers it), so tokens handed out after a Redis data loss are
-- above every token already stored in Postgres. Redis 6.2 / 7.x.
--
-- KEYS[1] org fence counter     bc:{org}:fence
-- ARGV[1] floor (integer)
--
-- Returns the counter value after the call.

local floor = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return cur
