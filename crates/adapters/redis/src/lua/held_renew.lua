-- Renews the places a process holds. KEYS: each place's set.
-- ARGV[1]: the lease (ms), ARGV[1 + i]: the token of KEYS[i].
-- Only places still there are renewed: one given back while the renewal
-- was on its way must not come back. (A place that lapsed during an outage
-- longer than a lease stays lapsed; the limit is softer until it ends.)
local deadline = int(now_ms() + tonumber(ARGV[1]))
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[i + 1]) then
    redis.call('ZADD', key, deadline, ARGV[i + 1])
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return #KEYS
