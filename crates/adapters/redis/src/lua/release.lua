-- Frees a reply slot without an event. KEYS: slot, running, sweep.
-- ARGV[1]: the lease's token, ARGV[2]: the reply's member of `running`.
-- A reply being swept stays the sweeper's to end.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
