-- lib_activate.lua: included (scripts.py "-- #include lib_activate.lua")
-- by activate.lua and end_call.lua, so the one rule for giving a
-- reservation its slots is written once. Not a script of its own.
--
-- activate_reservation(org config hash, org leases zset, batch meta hash,
--   batch leases zset, org reserved zset, lease info hash, org ring list,
--   org waiting zset, lease id, batch id, slot expiry ms, info ttl ms,
--   now ms, org marker key or nil) ->
--   "ok" | "lost" | "org_unconfigured" | "inactive" | "org_full" | "batch_full"
-- (see activate.lua for what each answer means). With an org marker key
-- (Redis Cluster), a marker that is missing or names another node's
-- replication id answers "org_unconfigured" (lib_marker.lua, which the
-- including script must include first).
-- The org's waiting zset (keys.org_waiting) lists granted reservations
-- waiting for a slot, so another dialer's call end can hand them one
-- (end_call.lua): a "org_full"/"batch_full" answer puts the lease there
-- (NX: it keeps its place in line), taking the slots takes it out.
local function activate_reservation(config, org_leases, meta, batch_leases, reserved, info, ring,
                                    waiting, lease, batch, expiry, ttl, now, marker)
  if redis.call('ZSCORE', org_leases, lease) then
    redis.call('ZREM', waiting, lease)
    return 'ok'
  end
  if not redis.call('ZSCORE', reserved, lease) or redis.call('EXISTS', info) == 0 then
    return 'lost'
  end
  local org_limit = tonumber(redis.call('HGET', config, 'limit'))
  if not org_limit then
    return 'org_unconfigured'
  end
  if marker and not org_marker_ok(marker) then
    return 'org_unconfigured'
  end
  local batch_limit = tonumber(redis.call('HGET', meta, 'limit'))
  if not batch_limit or not redis.call('LPOS', ring, batch) then
    return 'inactive'
  end
  if redis.call('ZCARD', org_leases) >= org_limit then
    redis.call('ZADD', waiting, 'NX', now, lease)
    return 'org_full'
  end
  if redis.call('ZCARD', batch_leases) >= batch_limit then
    redis.call('ZADD', waiting, 'NX', now, lease)
    return 'batch_full'
  end
  redis.call('ZREM', reserved, lease)
  redis.call('ZREM', waiting, lease)
  redis.call('ZADD', org_leases, expiry, lease)
  redis.call('ZADD', batch_leases, expiry, lease)
  redis.call('HSET', info, 'activated_ms', now)
  redis.call('PEXPIRE', info, ttl)
  return 'ok'
end
