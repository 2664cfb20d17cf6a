-- Renews a lease that is still ours. KEYS: slot, running, meta, sweep.
-- ARGV[1]: the token, ARGV[2]: the lease (ms), ARGV[3]: the reply's member
-- of `running`, ARGV[4]: the counter's time to live (ms), ARGV[5]: the
-- reply's message id, ARGV[6]: the id of its first event.
-- Returns -1 when the lease is lost, 1 when a cancel was asked for, else 0.
--
-- A lease that lapsed while its replica could not reach Redis, and that
-- nobody took since (the slot is free, the reply still listed as running,
-- no sweeper on it), is taken again: the reply went on meanwhile, and
-- stopping it now would throw away what it wrote.
local slot = redis.call('HMGET', KEYS[1], 'token', 'cancelled')
if slot[1] ~= ARGV[1] then
  local lapsed = not slot[1]
    and redis.call('ZSCORE', KEYS[2], ARGV[3])
    and redis.call('EXISTS', KEYS[4]) == 0
  if not lapsed then
    return -1
  end
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'message', ARGV[5], 'first', ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], int(now_ms() + tonumber(ARGV[2])), ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if slot[2] then
  return 1
end
return 0
