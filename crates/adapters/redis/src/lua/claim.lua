-- Takes the reply slot, if free. KEYS: meta, log, slot, running.
-- ARGV[6]: the lease's token, ARGV[7]: the reply's message id,
-- ARGV[8]: the lease (ms), ARGV[9]: the reply's member of `running`.
-- Returns the id the reply's first event will have, or nothing when the
-- slot is taken.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return false
end
local now = now_us()
local _, next_id = counter(KEYS[1], KEYS[2], now)
redis.call('HSET', KEYS[3], 'token', ARGV[6], 'message', ARGV[7], 'first', int(next_id))
redis.call('PEXPIRE', KEYS[3], ARGV[8])
redis.call('ZADD', KEYS[4], int(math.floor(now / 1000) + tonumber(ARGV[8])), ARGV[9])
redis.call('PEXPIRE', KEYS[1], LIMITS.meta_ttl)
return next_id
