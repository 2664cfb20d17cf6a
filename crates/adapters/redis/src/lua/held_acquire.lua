-- Takes one place of a principal's kind if one is free. KEYS: the places.
-- ARGV[1]: the place's token, ARGV[2]: most places, ARGV[3]: the place's
-- lease (ms). Places whose lease ran out (their replica died) are dropped
-- first. Returns 1 when taken, 0 when every place is held.
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[3])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
