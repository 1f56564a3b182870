-- lib_marker.lua: included (scripts.py "-- #include lib_marker.lua") by
-- claim.lua, activate.lua and end_call.lua. Not a script of its own.
--
-- The per-organization state marker (Redis Cluster; docs/recovery.md,
-- "Failover without loss"): bc:{org}:marker = "<epoch>:<replid>", written
-- by the server's rebuild of the organization LAST, where <epoch> is the
-- organization's redis_epoch in Postgres and <replid> the replication id
-- (INFO replication "master_replid") of the node that holds the slot when
-- the marker is written. A replica promoted by a failover starts a new
-- replication id, and may have missed the last writes (asynchronous
-- replication): on it the marker no longer matches, or is gone, so the
-- organization's queues and leases are not trusted until the server has
-- rebuilt them from Postgres and written a new marker.
--
-- org_marker_ok(marker key) -> true when the marker exists and names this
-- node's current replication id.
local function org_marker_ok(marker)
  local m = redis.call('GET', marker)
  if not m then
    return false
  end
  local want = string.match(m, ':(%w+)$')
  local info = redis.call('INFO', 'replication')
  return want ~= nil and want == string.match(info, 'master_replid:(%w+)')
end
