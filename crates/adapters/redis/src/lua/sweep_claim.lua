-- Takes on the sweep of one expired reply; two replicas cannot both win.
-- KEYS: running, sweep (and the slot, unused: the keys and arguments are
-- `sweep_adopt.lua`'s). ARGV[1]: the member, ARGV[2]: the sweeper's token,
-- ARGV[3]: its lease (ms). The reply's deadline moves to the end of the
-- sweeper's lease, so a sweeper that dies leaves it to the next one.
local now = now_ms()
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) > now then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[3])), ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
