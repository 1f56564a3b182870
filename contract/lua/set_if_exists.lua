-- set_if_exists.lua: HSET one field of a hash only if the hash exists (a
-- batch limit change must not create the meta of an inactive batch).
--
-- KEYS[1] hash                  e.g. bc:{org}:batch:{b}:meta
-- ARGV[1] field
-- ARGV[2] value
--
-- Returns 1 if set, 0 if the hash does not exist.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
