-- Keeps the counters of the sessions a process serves alive, and tells it
-- how each stands. KEYS: meta and log of each session, in pairs.
-- Returns two numbers per session: its first id (0 when it is closed) and
-- its last id when closed (else 0). A counter that is gone is made afresh,
-- which the caller sees as a first id above what it had read.
local now = now_us()
local result = {}
for i = 1, #KEYS, 2 do
  local closed = redis.call('HGET', KEYS[i], 'closed')
  if closed then
    table.insert(result, 0)
    table.insert(result, tonumber(closed))
  else
    local first = counter(KEYS[i], KEYS[i + 1], now)
    redis.call('PEXPIRE', KEYS[i], LIMITS.meta_ttl)
    table.insert(result, first)
    table.insert(result, 0)
  end
end
return result
