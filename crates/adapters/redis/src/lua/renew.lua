-- Renews a lease that is still ours. KEYS: slot, running, meta.
-- ARGV[1]: the token, ARGV[2]: the lease (ms), ARGV[3]: the reply's member
-- of `running`, ARGV[4]: the counter's time to live (ms).
-- Returns -1 when the lease is lost, 1 when a cancel was asked for, else 0.
local slot = redis.call('HMGET', KEYS[1], 'token', 'cancelled')
if slot[1] ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], int(now_ms() + tonumber(ARGV[2])), ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if slot[2] then
  return 1
end
return 0
