-- Put in front of every script that touches a session's log. Its KEYS are
-- the session's counter (meta) and stream (log) among others; ARGV[1..5]
-- are always the log's limits.

local LIMITS = {
  retention = tonumber(ARGV[1]), -- microseconds
  max_events = tonumber(ARGV[2]),
  max_bytes = tonumber(ARGV[3]),
  log_ttl = tonumber(ARGV[4]), -- milliseconds
  meta_ttl = tonumber(ARGV[5]), -- milliseconds
}

-- The session's first and next event id. A session without a counter
-- (new, expired, or lost with a restart of Redis) or a closed one starts
-- afresh: at the time in microseconds, and above every id it is known to
-- have given, so that ids never repeat and never go back.
local function counter(meta, log, now)
  local m = redis.call('HMGET', meta, 'first', 'next', 'closed')
  if m[1] and not m[3] then
    return tonumber(m[1]), tonumber(m[2])
  end
  local first = now
  if m[3] then
    first = math.max(first, tonumber(m[2]))
    redis.call('DEL', log)
  else
    local newest = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
    if newest then
      first = math.max(first, id_of(newest[1]) + 1)
    end
  end
  redis.call('DEL', meta)
  redis.call('HSET', meta, 'first', int(first), 'next', int(first), 'bytes', '0', 'head', int(now))
  redis.call('PEXPIRE', meta, LIMITS.meta_ttl)
  return first, first
end

-- The oldest event id the log keeps, or the next id when it keeps none.
local function oldest(log, next_id)
  local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if head then
    return id_of(head[1])
  end
  return next_id
end

-- The id of the running reply's first event, or 0 when no reply runs.
local function reply_start(slot)
  local first = redis.call('HGET', slot, 'first')
  if first then
    return tonumber(first)
  end
  return 0
end

-- Drops the oldest events while the log holds more than its limits (the
-- newest always stays) or they are past the retention time, exactly as the
-- in-process log does, and keeps the byte total and the oldest event's
-- time in the counter in step. `head` is when the oldest event was
-- published: when it need not go and the log is within its limits, no
-- entry is read at all.
local function trim(meta, log, count, bytes, head, now)
  local expired_at = now - LIMITS.retention
  local function must_go(published)
    local over = count > 1 and (count > LIMITS.max_events or bytes > LIMITS.max_bytes)
    return over or published <= expired_at
  end
  if not must_go(head) then
    return
  end
  local keep = nil
  local start = '-'
  local batch = 2
  while keep == nil do
    local entries = redis.call('XRANGE', log, start, '+', 'COUNT', batch)
    if #entries == 0 then
      break
    end
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      local published = tonumber(fields[4])
      if not must_go(published) then
        keep = entry[1]
        head = published
        break
      end
      count = count - 1
      bytes = bytes - tonumber(fields[2])
    end
    start = '(' .. entries[#entries][1]
    batch = math.min(batch * 4, 64)
  end
  if keep then
    redis.call('XTRIM', log, 'MINID', keep)
  else
    -- Everything is past the retention time (a retention of zero).
    redis.call('DEL', log)
    bytes = 0
  end
  redis.call('HSET', meta, 'bytes', int(bytes), 'head', int(head))
end

-- Appends one event (its stored form and its size for the byte limit) and
-- returns its id: the counter is read and bumped in the same script, so two
-- replicas publishing at once can never give out one id twice.
local function append(meta, log, data, bytes)
  local now = now_us()
  local _, id = counter(meta, log, now)
  local m = redis.call('HMGET', meta, 'bytes', 'head')
  local total, head = tonumber(m[1]), tonumber(m[2])
  if redis.call('EXISTS', log) == 0 then
    -- The log expired while its counter lived on: it starts empty.
    total, head = 0, now
  end
  -- Field order matters: `trim` reads the size and time by position.
  redis.call('XADD', log, entry_id(id), 'b', bytes, 't', int(now), 'e', data)
  total = total + bytes
  redis.call('HSET', meta, 'next', int(id + 1), 'bytes', int(total), 'head', int(head))
  trim(meta, log, redis.call('XLEN', log), total, head, now)
  redis.call('PEXPIRE', log, LIMITS.log_ttl)
  redis.call('PEXPIRE', meta, LIMITS.meta_ttl)
  return id
end

-- Appends the mark of events a replica could not publish (its stored
-- form, or '' when nothing was lost), so that it comes before the event
-- appended next.
local function append_lost_mark(meta, log, mark)
  if mark ~= '' then
    append(meta, log, mark, string.len(mark))
  end
end
