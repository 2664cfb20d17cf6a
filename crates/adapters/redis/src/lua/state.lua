-- Where a new subscriber stands. KEYS: meta, log, slot.
-- Makes the session's counter when it has none, so that ids given from now
-- on continue from what the subscriber is told.
local first, next_id = counter(KEYS[1], KEYS[2], now_us())
redis.call('PEXPIRE', KEYS[1], LIMITS.meta_ttl)
return {first, next_id, oldest(KEYS[2], next_id), reply_start(KEYS[3])}
