-- Asks the reply holding the slot to stop. KEYS: slot. ARGV[1]: the only
-- message id to stop ('' for any), ARGV[2]: the cancel channel.
-- Returns the stopped lease's token, or nothing when no such reply runs.
-- The flag stays on the slot for a claim that missed the message.
local slot = redis.call('HMGET', KEYS[1], 'token', 'message')
if not slot[1] then
  return false
end
if ARGV[1] ~= '' and ARGV[1] ~= slot[2] then
  return false
end
redis.call('HSET', KEYS[1], 'cancelled', '1')
redis.call('PUBLISH', ARGV[2], slot[1])
return slot[1]
