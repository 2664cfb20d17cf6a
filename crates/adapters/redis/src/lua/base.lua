-- Put in front of every script: Redis's clock, and integers as text.

local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

-- Lua's numbers are doubles: exact up to 2^53 (ids are near 2^51), but
-- tostring would print large ones in exponent form.
local function int(n)
  return string.format('%.0f', n)
end

-- A stream entry's id for an event id, and back.
local function entry_id(id)
  return int(id) .. '-0'
end

local function id_of(entry)
  return tonumber(string.match(entry, '^(%d+)'))
end
