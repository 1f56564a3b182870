-- deactivate.lua: take a batch out of its organization's ring; with
-- discard, also delete its ready queue and meta (claims then answer
-- "inactive"). Leases are untouched: calls in progress keep their slots.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org ring list         bc:{org}:running
-- KEYS[2] batch ready zset      bc:{org}:batch:{b}:ready
-- KEYS[3] batch meta hash       bc:{org}:batch:{b}:meta
-- ARGV[1] batch id
-- ARGV[2] "1" = discard queue and meta, "0" = keep them (pause)
--
-- Returns the ring's length afterwards.

redis.call('LREM', KEYS[1], 0, ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3])
end
return redis.call('LLEN', KEYS[1])
