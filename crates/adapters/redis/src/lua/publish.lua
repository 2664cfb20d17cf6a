-- KEYS: meta, log. ARGV[6]: the event's stored form, ARGV[7]: its size.
return append(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[7]))
