-- The events after a cursor, with where the log stands. KEYS: meta, log,
-- slot. ARGV[6]: the cursor, ARGV[7]: most events, ARGV[8]: the last id
-- wanted (0 for no bound). Returns first, next, oldest, reply start, then
-- each event's id and stored form.
local m = redis.call('HMGET', KEYS[1], 'first', 'next')
local first, next_id
if m[1] then
  first, next_id = tonumber(m[1]), tonumber(m[2])
else
  -- The counter is gone (Redis restarted, or nobody kept it alive): what a
  -- reader had is gone with it, and the fresh counter says so.
  first, next_id = counter(KEYS[1], KEYS[2], now_us())
end
local result = {first, next_id, oldest(KEYS[2], next_id), reply_start(KEYS[3])}
local last = '+'
if tonumber(ARGV[8]) > 0 then
  last = entry_id(tonumber(ARGV[8]))
end
local entries = redis.call('XRANGE', KEYS[2], '(' .. entry_id(tonumber(ARGV[6])), last, 'COUNT', tonumber(ARGV[7]))
for _, entry in ipairs(entries) do
  table.insert(result, id_of(entry[1]))
  table.insert(result, entry[2][6])
end
return result
