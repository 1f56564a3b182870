-- set_if_unchanged.lua: HSET one field of a hash only if it still holds the
-- value read earlier (compare-and-set). The reconciler's repair pass reads
-- an organization's limit, then a snapshot of Postgres; an UpdateOrganization
-- that lands in between has written the new limit to Redis itself, and the
-- repair must not put the snapshot's older value back over it.
-- Redis 6.2 / 7.x; one key.
--
-- KEYS[1] hash                  e.g. bc:{org}:config
-- ARGV[1] field
-- ARGV[2] expected value, or "" for "the field is absent"
-- ARGV[3] new value
--
-- Returns 1 if set (or already equal to the new value), 0 if the field
-- changed since it was read (nothing written).

local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current == ARGV[3] then
  return 1
end
if current ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
