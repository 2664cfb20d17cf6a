-- Replies whose lease ran out while they ran. KEYS: running.
-- ARGV[1]: most to list. Returns members of `running`.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now_ms()), 'LIMIT', 0, tonumber(ARGV[1]))
