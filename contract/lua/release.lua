-- release.lua: give a lease back: ZREM from both slot zsets, from the
-- org's ended zset (a lease whose call ended before its outcome was
-- recorded, see end_call.lua) and from its reserved zset (a lease granted
-- ahead that never took its slots, see activate.lua), DEL info. Optionally puts the claimed
-- contact back into the batch's ready queue (only while the batch is
-- active, i.e. its meta hash exists, so a cancelled batch is never
-- resurrected). Redis 6.2 / 7.x; one organization.
--
-- KEYS[1] org leases zset       bc:{org}:leases
-- KEYS[2] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[3] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[4] batch meta hash       bc:{org}:batch:{b}:meta
-- KEYS[5] batch ready zset      bc:{org}:batch:{b}:ready
-- KEYS[6] org ended zset        bc:{org}:ended
-- KEYS[7] org reserved zset     bc:{org}:reserved
-- KEYS[8] org waiting zset      bc:{org}:waiting (a reservation waiting for
--         a slot leaves the line too)
-- ARGV[1] lease id
-- ARGV[2] "1" = only if no attempt is attached (reaper of a dead claim;
--         serialises with attach.lua), else "0"
-- ARGV[3] contact id to re-queue, or "" for none
-- ARGV[4] due (epoch ms) for the re-queued contact
-- ARGV[5] "nx" = ZADD NX (keep an existing score) | "set" = ZADD
--
-- Returns 1 if the lease was held (or ended) and is now released, 0 if it
-- was already gone, -1 if ARGV[2] = "1" and an attempt is attached
-- (nothing changed).

if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[3], 'attempt_id') == 1 then
  return -1
end
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local ended = redis.call('ZREM', KEYS[6], ARGV[1])
local reserved = redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('DEL', KEYS[3])
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then
  if ARGV[5] == 'nx' then
    redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[3])
  else
    redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
  end
end
if removed == 1 or ended == 1 or reserved == 1 then
  return 1
end
return 0
