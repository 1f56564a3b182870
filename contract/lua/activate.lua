-- activate.lua: a reservation (a lease granted ahead by claim.lua in
-- "reserve" mode, holding no slot) takes its org and batch slots, checking
-- both limits, right before its call is placed. The dialer dials only on
-- "ok", so a reservation never guards a call without holding its slots.
-- Redis 6.2 / 7.x; keys of one organization.
--
-- KEYS[1] org config hash       bc:{org}:config            (field "limit")
-- KEYS[2] org leases zset       bc:{org}:leases
-- KEYS[3] batch meta hash       bc:{org}:batch:{b}:meta    (field "limit")
-- KEYS[4] batch leases zset     bc:{org}:batch:{b}:leases
-- KEYS[5] org reserved zset     bc:{org}:reserved
-- KEYS[6] lease info hash       bc:{org}:lease:{lease id}
-- KEYS[7] org ring list         bc:{org}:running           (running batches)
-- KEYS[8] org waiting zset      bc:{org}:waiting           (lease id -> ms)
-- KEYS[9] optional: org marker bc:{org}:marker (Redis Cluster): while it
--         is missing or names another node, "org_unconfigured"
-- ARGV[1] lease id
-- ARGV[2] expiry (epoch ms) of the slot leases (renewed by renew.lua)
-- ARGV[3] lease info hash ttl (ms)
-- ARGV[4] now (epoch ms), written as activated_ms
-- ARGV[5] batch id
--
-- Returns one of:
--   "ok"                the lease now holds both slots (or already did: a
--                       rebuild after a Redis loss restores open attempts
--                       as slot-holding leases)
--   "lost"              neither reserved nor held (a reaper or a Redis
--                       loss took it): no call may be placed under it
--   "org_unconfigured"  no org limit (state being rebuilt)
--   "inactive"          the batch is not running: out of the ring (paused)
--                       or without meta (cancelled, failed, completed)
--   "org_full" / "batch_full"   no slot free now; the reservation stays,
--                       and waits in KEYS[8] for a call end to hand it one

-- #include lib_marker.lua
-- #include lib_activate.lua

return activate_reservation(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
                            ARGV[1], ARGV[5], ARGV[2], ARGV[3], ARGV[4], KEYS[9])
