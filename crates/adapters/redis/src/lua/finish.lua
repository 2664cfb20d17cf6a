-- Publishes a reply's last event and frees its slot, in one step.
-- KEYS: meta, log, slot, running, sweep. ARGV[6]: the lease's token,
-- ARGV[7]: the reply's member of `running`, ARGV[8]: the event's stored
-- form, ARGV[9]: its size, ARGV[10]: the mark of events lost before it, or ''.
--
-- A reply's last event is published by whoever takes the reply out of
-- `running`, and only by them: its own claim (even one whose lease lapsed,
-- as long as no sweeper took the reply on), or the sweeper. Returns the
-- event's id, or nothing when a sweeper ended the reply already.
local ours = redis.call('HGET', KEYS[3], 'token') == ARGV[6]
if ours then
  redis.call('DEL', KEYS[3])
end
local running = redis.call('ZSCORE', KEYS[4], ARGV[7])
local swept = redis.call('EXISTS', KEYS[5]) == 1
if not ours and (not running or swept) then
  return false
end
redis.call('ZREM', KEYS[4], ARGV[7])
append_lost_mark(KEYS[1], KEYS[2], ARGV[10])
return append(KEYS[1], KEYS[2], ARGV[8], tonumber(ARGV[9]))
