-- org_marker.lua: read or write an organization's state marker
-- (lib_marker.lua says what it is). Redis 6.2 / 7.x; one key.
--
-- KEYS[1] org marker            bc:{org}:marker
-- ARGV[1] "get" | "set"
-- ARGV[2] epoch (set only): the organization's redis_epoch in Postgres
--
-- get: returns {marker or "", this node's replication id}
-- set: writes "<epoch>:<replication id>" and returns it

local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
if ARGV[1] == 'set' then
  local value = ARGV[2] .. ':' .. replid
  redis.call('SET', KEYS[1], value)
  return value
end
local m = redis.call('GET', KEYS[1])
return {m or '', replid}
