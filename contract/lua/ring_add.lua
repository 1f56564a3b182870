-- ring_add.lua: put a batch id into its organization's round-robin ring of
-- running batches, at most once. (LPOS needs Redis >= 6.0.6.)
--
-- KEYS[1] org ring list         bc:{org}:running
-- ARGV[1] batch id
--
-- Returns 1 if added, 0 if it was already there.

if redis.call('LPOS', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
