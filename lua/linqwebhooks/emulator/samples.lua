--- Sample `data` objects for every catalogued event type, made from the
-- reference examples in the catalogue (linqwebhooks.catalogue_data, generated
-- from data/linq-events.json): each sample is the example of its payload
-- version with fresh ids (every UUID of the example replaced, consistently
-- within the sample), timestamps moved so the newest one is now, and the
-- example's line (+12025551234) replaced by the line the event concerns.
--
-- Fidelity choices (see docs/events.md):
--   * phone_number.status_updated also carries the deprecated
--     previous_health_status / new_health_status pair (required by the official
--     Node SDK 0.28.2) next to previous_reputation / new_reputation;
--   * 2025-01-01 message payloads never carry a null `effect` / `reply_to`
--     (the spec types them as non-nullable objects: absent means omitted);
--   * types with no public schema (call.*) get an empty `data` object: Linq
--     documents no field of theirs, so the emulator invents none.
--
-- samples.data(event_type, version, line) -> fresh table (nil for unknown types)
local json = require "linqwebhooks.json"
local events = require "linqwebhooks.events"
local util = require "linqwebhooks.emulator.util"

local M = {}

M.DEFAULT_LINE = "+12025551234"
M.EXAMPLE_LINE = "+12025551234" -- the line in the reference examples

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local TIME = "^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(%.?%d*)Z$"

-- Seconds since the epoch of a UTC civil time (no os.time: local time zone).
local function epoch(y, m, d, hh, mm, ss)
  y = m <= 2 and y - 1 or y
  local floor = math.floor
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + hh * 3600 + mm * 60 + ss
end

local function parse_time(s)
  local y, mo, d, h, mi, se, frac = s:match(TIME)
  if not y then
    return nil
  end
  return epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)), frac
end

local function newest(v, best)
  if type(v) == "string" then
    local t = parse_time(v)
    if t and (not best or t > best) then
      return t
    end
  elseif type(v) == "table" then
    for _, x in pairs(v) do
      best = newest(x, best)
    end
  end
  return best
end

local function refresh(v, ctx)
  if type(v) == "string" then
    if v == M.EXAMPLE_LINE then
      return ctx.line
    end
    if v:match(UUID) then
      local id = ctx.ids[v]
      if not id then
        id = util.uuid4()
        ctx.ids[v] = id
      end
      return id
    end
    local t, frac = parse_time(v)
    if t then
      return os.date("!%Y-%m-%dT%H:%M:%S", t + ctx.shift) .. frac .. "Z"
    end
    return v
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      v[k] = refresh(x, ctx)
    end
  end
  return v
end

local MESSAGE = { ["message.sent"] = true, ["message.received"] = true,
                  ["message.read"] = true, ["message.delivered"] = true }

local function drop_nulls(t, keys)
  if type(t) == "table" then
    for _, k in ipairs(keys) do
      if t[k] == json.null then
        t[k] = nil
      end
    end
  end
end

function M.data(event_type, version, line)
  if not events.SET[event_type] then
    return nil
  end
  line = line or M.DEFAULT_LINE
  local text = events.example(event_type, version)
  if not text then
    return {} -- no public schema (call.*): no invented fields
  end
  local d = assert(json.decode(text))
  local last = newest(d)
  local shift = last and (math.floor(util.now()) - last) or 0
  d = refresh(d, { line = line, ids = {}, shift = shift })
  if event_type == "phone_number.status_updated" then
    d.previous_health_status = d.previous_health_status or d.previous_reputation
    d.new_health_status = d.new_health_status or d.new_reputation
  end
  if MESSAGE[event_type] and version == "2025-01-01" then
    drop_nulls(d, { "effect", "reply_to" })
    drop_nulls(d.message, { "effect", "reply_to" })
  end
  return d
end

return M
