-- Closes a deleted session. KEYS: meta, log. ARGV[1]: how long (ms) its
-- events stay for the readers still catching up, ARGV[2]: the closed
-- channel, ARGV[3]: the session id. The next use of the session starts it
-- afresh. Returns the last event id of the closed session (0 for none).
local m = redis.call('HMGET', KEYS[1], 'next', 'closed')
local last = 0
if m[2] then
  last = tonumber(m[2])
elseif m[1] then
  last = tonumber(m[1]) - 1
  redis.call('HSET', KEYS[1], 'closed', int(last))
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. int(last))
return last
