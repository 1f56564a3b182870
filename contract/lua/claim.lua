-- claim.lua: take up to N concurrency slots (leases) and as many due
-- contacts of ONE batch, atomically: both limits are checked for the whole
-- group, so a claim never goes past either. Runs on Redis 6.2 and 7.x;
-- every key is of ONE organization (hash tag {org_id}).
--
-- One call claims several contacts so that a dialer refilling many free
-- slots makes one round trip per batch, not one per contact. Fairness
-- across an organization's batches stays with the caller: it asks each
-- batch of the round-robin ring for a share of the free slots per pass.
--
-- Expired leases are NOT dropped here: a lease whose holder stopped
-- heartbeating still guards a call that may be live at the carrier, so it
-- keeps counting against both limits until a reaper has learned that the
-- call is over and released it (docs/design.md §5).
--
-- KEYS[1]     org config hash       bc:{org}:config            (field "limit")
-- KEYS[2]     org leases zset       bc:{org}:leases            (lease id -> expiry ms)
-- KEYS[3]     batch meta hash       bc:{org}:batch:{b}:meta    (field "limit")
-- KEYS[4]     batch leases zset     bc:{org}:batch:{b}:leases  (lease id -> expiry ms)
-- KEYS[5]     batch ready zset      bc:{org}:batch:{b}:ready   (contact id -> due ms)
-- KEYS[6]     org fence counter     bc:{org}:fence
-- KEYS[7]     org reserved zset     bc:{org}:reserved          (lease id -> expiry ms)
-- KEYS[7+i]   lease info hash of the i-th lease id, i = 1..N
--                                   bc:{org}:lease:{lease id}
-- KEYS[8+N]   optional: org marker  bc:{org}:marker (Redis Cluster). When
--             given, nothing is claimed unless it names this node's
--             replication id (lib_marker.lua; docs/recovery.md).
-- ARGV[1]     now (epoch ms)
-- ARGV[2]     lease ttl (ms)
-- ARGV[3]     batch id
-- ARGV[4]     dialer id
-- ARGV[5]     lease info hash ttl (ms; a safety net, far above any call length)
-- ARGV[6]     N, the most contacts to claim (>= 1)
-- ARGV[7]     mode: "slot" = take slots (the leases count against both
--             limits at once) | "reserve" = grant ahead: the leases go to
--             the org's reserved zset and hold NO slot; activate.lua moves
--             one into the slot zsets (checking both limits) right before
--             its call is placed. At most org-limit reservations per org.
-- ARGV[7+i]   i-th lease id (new, unique), i = 1..N, used in order
-- ARGV[7+N+i] i-th provider call id (chosen by the dialer before the call)
--
-- Returns {status, next_due_ms, org_free, contact_1, token_1, due_1, ...}:
-- the claimed contacts in due order with their fencing token (integer) and
-- the ready score they were claimed with (string); org_free = free org
-- slots left after these claims; status says why the claiming stopped:
--   "ok"                N contacts claimed (the batch may have more)
--   "org_unconfigured"  no org limit (state not built / being rebuilt)
--   "no_marker"         the org marker (KEYS[8+N]) is missing or was
--                       written on another node (a failover): the org's
--                       state awaits its rebuild from Postgres
--   "inactive"          no batch meta (batch not active)
--   "org_full"          org leases reached the org limit (reserve mode:
--                       the org's reservations reached it)
--   "batch_full"        batch leases reached the batch limit
--   "empty"             ready queue empty
--   "not_due"           the next contact is not due; next_due_ms = its due
-- next_due_ms is "" unless status is "not_due".

-- #include lib_marker.lua

local org_limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not org_limit then
  return {'org_unconfigured', '', 0}
end
if #KEYS > 7 + tonumber(ARGV[6]) and not org_marker_ok(KEYS[8 + tonumber(ARGV[6])]) then
  return {'no_marker', '', 0}
end
local batch_limit = tonumber(redis.call('HGET', KEYS[3], 'limit'))
if not batch_limit then
  return {'inactive', '', 0}
end
local reserve = ARGV[7] == 'reserve'
local org_free, batch_free
if reserve then
  org_free = org_limit - redis.call('ZCARD', KEYS[7])
  batch_free = org_free
else
  org_free = org_limit - redis.call('ZCARD', KEYS[2])
  batch_free = batch_limit - redis.call('ZCARD', KEYS[4])
end
if org_free <= 0 then
  return {'org_full', '', 0}
end
if batch_free <= 0 then
  return {'batch_full', '', org_free}
end

local now = tonumber(ARGV[1])
local n = tonumber(ARGV[6])
local k = math.min(n, org_free, batch_free)
local head = redis.call('ZRANGE', KEYS[5], 0, k - 1, 'WITHSCORES')
if #head == 0 then
  return {'empty', '', org_free}
end

local expiry = now + tonumber(ARGV[2])
local out = {'', '', 0}
local got = 0
local status = nil
local next_due = ''
for i = 1, #head, 2 do
  local contact, due = head[i], head[i + 1]
  if tonumber(due) > now then
    status = 'not_due'
    next_due = due
    break
  end
  got = got + 1
  local lease_id = ARGV[7 + got]
  redis.call('ZREM', KEYS[5], contact)
  local token = redis.call('INCR', KEYS[6])
  if reserve then
    redis.call('ZADD', KEYS[7], expiry, lease_id)
  else
    redis.call('ZADD', KEYS[2], expiry, lease_id)
    redis.call('ZADD', KEYS[4], expiry, lease_id)
  end
  redis.call('HSET', KEYS[7 + got],
    'batch', ARGV[3],
    'contact', contact,
    'token', token,
    'dialer', ARGV[4],
    'provider_call_id', ARGV[7 + n + got],
    'claimed_ms', ARGV[1],
    'started_ms', ARGV[1],
    'due_ms', due)
  redis.call('PEXPIRE', KEYS[7 + got], ARGV[5])
  out[#out + 1] = contact
  out[#out + 1] = token
  out[#out + 1] = due
end

if not status then
  if got == n then
    status = 'ok'
  elseif got < k then
    status = 'empty'
  elseif got == org_free then
    status = 'org_full'
  else
    status = 'batch_full'
  end
end
out[1] = status
out[2] = next_due
out[3] = org_free - got
return out
