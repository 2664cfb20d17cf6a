-- KEYS: meta, log. ARGV[6]: the event's stored form, ARGV[7]: its size,
-- ARGV[8]: the mark of events lost before it, or ''.
append_lost_mark(KEYS[1], KEYS[2], ARGV[8])
return append(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[7]))
