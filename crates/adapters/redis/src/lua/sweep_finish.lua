-- Ends a swept reply, publishing its last event unless ARGV[8] is empty.
-- KEYS: meta, log, running, sweep. ARGV[6]: the sweeper's token,
-- ARGV[7]: the member, ARGV[8]: the event's stored form, ARGV[9]: its size,
-- ARGV[10]: the mark of events lost before it, or ''.
-- Returns the event's id (0 with no event), or nothing when the sweeper's
-- lease ran out meanwhile.
if redis.call('GET', KEYS[4]) ~= ARGV[6] then
  return false
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[7])
append_lost_mark(KEYS[1], KEYS[2], ARGV[10])
if ARGV[8] == '' then
  return 0
end
return append(KEYS[1], KEYS[2], ARGV[8], tonumber(ARGV[9]))
