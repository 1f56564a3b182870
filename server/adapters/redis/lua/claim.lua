-- claim.lua: take one concurrency slot (a lease) and one due contact of a
-- batch, atomically. Runs on Redis 6.2 and 7.x; every key is of ONE
-- organization (hash tag {org_id}).
--
-- Expired leases are NOT dropped here: a lease whose holder stopped
-- heartbeating still guards a call that may be live at the carrier, so it
-- keeps counting against both limits until a reaper has learned that the
-- call is over and released it (DESIGN.md §5).
--
-- KEYS[1] org config hash       bc:{org}:config            (field "limit")
-- KEYS[2] org leases zset       bc:{org}:leases            (lease id -> expiry ms)
-- KEYS[3] batch meta hash       bc:{org}:batch:{b}:meta    (field "limit")
-- KEYS[4] batch leases zset     bc:{org}:batch:{b}:leases  (lease id -> expiry ms)
-- KEYS[5] batch ready zset      bc:{org}:batch:{b}:ready   (contact id -> due ms)
-- KEYS[6] org fence counter     bc:{org}:fence
-- KEYS[7] lease info hash       bc:{org}:lease:{lease id}
-- ARGV[1] now (epoch ms)
-- ARGV[2] lease ttl (ms)
-- ARGV[3] lease id (new, unique)
-- ARGV[4] batch id
-- ARGV[5] dialer id
-- ARGV[6] provider call id (chosen by the dialer before the call)
-- ARGV[7] lease info hash ttl (ms; a safety net, far above any call length)
--
-- Returns one of:
--   {"ok", contact_id, fencing_token (integer), due_ms (string)}
--   {"org_unconfigured"}   no org limit (state not built / being rebuilt)
--   {"inactive"}           no batch meta (batch not active)
--   {"org_full"}           org leases >= org limit
--   {"batch_full"}         batch leases >= batch limit
--   {"empty"}              ready queue empty
--   {"not_due", next_due_ms (string)}

local org_limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not org_limit then
  return {'org_unconfigured'}
end
local batch_limit = tonumber(redis.call('HGET', KEYS[3], 'limit'))
if not batch_limit then
  return {'inactive'}
end
if redis.call('ZCARD', KEYS[2]) >= org_limit then
  return {'org_full'}
end
if redis.call('ZCARD', KEYS[4]) >= batch_limit then
  return {'batch_full'}
end

local now = tonumber(ARGV[1])
local head = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
if #head == 0 then
  return {'empty'}
end
if tonumber(head[2]) > now then
  return {'not_due', head[2]}
end

local contact = head[1]
redis.call('ZREM', KEYS[5], contact)
local token = redis.call('INCR', KEYS[6])
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], expiry, ARGV[3])
redis.call('ZADD', KEYS[4], expiry, ARGV[3])
redis.call('HSET', KEYS[7],
  'batch', ARGV[4],
  'contact', contact,
  'token', token,
  'dialer', ARGV[5],
  'provider_call_id', ARGV[6],
  'claimed_ms', ARGV[1],
  'started_ms', ARGV[1],
  'due_ms', head[2])
redis.call('PEXPIRE', KEYS[7], ARGV[7])
return {'ok', contact, token, head[2]}
