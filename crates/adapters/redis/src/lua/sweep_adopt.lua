-- Takes on the sweep of a reply the store holds `streaming` but no lease
-- names. KEYS: running, sweep, slot. ARGV[1]: the member, ARGV[2]: the
-- sweeper's token, ARGV[3]: its lease (ms), ARGV[4]: the reply's message id.
-- Refused while a lease names it (expired ones are `sweep_claim`'s), while
-- another sweeper has it, or while its session's slot is held by a turn it
-- may belong to. A turn stores all its assistant messages `streaming` up
-- front and its slot names the first of them, so every message whose id is
-- that one's or later may be the live turn's: refused. Ids are UUID v7 in
-- hyphenated lower case, so byte order (Lua's string `<=`) is creation
-- order. A message older than the slot's is an earlier turn's, orphaned.
-- Once adopted it is in `running` like any reply, under the sweeper's
-- lease, so a sweeper that dies leaves it to the next.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local holder = redis.call('HGET', KEYS[3], 'message')
if holder and holder <= ARGV[4] then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('ZADD', KEYS[1], int(now_ms() + tonumber(ARGV[3])), ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
