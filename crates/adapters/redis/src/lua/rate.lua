-- Counts one request against a GCRA: a burst of n, then one every
-- interval. KEYS: the client's key. ARGV[1]: the interval (µs),
-- ARGV[2]: the tolerance, (n - 1) intervals (µs).
-- Returns 0 when the request is let through, else how long (µs) until the
-- next one will be. The key lives only while it differs from a fresh one.
local now = now_us()
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
if tat - now > tolerance then
  return tat - tolerance - now
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], int(next_tat), 'PX', int(math.ceil((next_tat - now) / 1000)))
return 0
