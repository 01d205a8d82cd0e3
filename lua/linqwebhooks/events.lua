--- The catalogue of Linq webhook event types, as data (`linq.events`).
-- Generated from data/linq-events.json into linqwebhooks.catalogue_data
-- (`make catalogue`); this module only answers questions about it.
--
--   events.TYPES                   array of every known type (= linq.EVENT_TYPES)
--   events.SET                     name -> true
--   events.PAYLOAD_VERSIONS        { "2025-01-01", "2026-02-03" }
--   events.known(name)             -> boolean
--   events.group(name)             -> "message" | "poll" | "account" | ... | nil
--   events.subgroup(name)          -> account events: "api_token", ...; else nil
--   events.has_schema(name)        -> true when Linq publishes a `data` schema
--   events.versions(name)          -> array of payload versions the sources tie
--                                     the type to, or nil (one shape, any version)
--   events.delivered_in(name, v)   -> false when the type does not exist in
--                                     payload version v (message.edited, 2025-01-01)
--   events.info(name)              -> copy of the catalogue entry, or nil
--   events.well_formed(name)       -> true for lowercase dot-separated segments
--                                     of [a-z0-9_], optionally ending in ".*"
--   events.suggest(name[, max])    -> array of the closest known names (edit distance)
--   events.PREFIXES                sorted array of the prefixes P of known types
--                                     ("message", "chat.typing_indicator"): the
--                                     wildcards "P.*" that match something
--   events.is_prefix(p)            -> true when "p.*" matches a known type
--   events.suggest_prefix(p[, max])-> array of the closest known prefixes
--   events.example(name, version)  -> `data` of the reference example (JSON text) or nil
local data = require "linqwebhooks.catalogue_data"

local M = {}

local TYPES, SET, BY_NAME = {}, {}, {}
for i, t in ipairs(data.types) do
  TYPES[i] = t.name
  SET[t.name] = true
  BY_NAME[t.name] = t
end
M.TYPES = TYPES
M.SET = SET
M.PAYLOAD_VERSIONS = data.payload_versions
M.REMOVED = data.removed

local function check(what, name)
  if type(name) ~= "string" then
    error("linq.events." .. what .. ": argument 'name' must be a string, got " .. type(name), 3)
  end
end

function M.known(name)
  check("known", name)
  return SET[name] == true
end

function M.group(name)
  check("group", name)
  local t = BY_NAME[name]
  return t and t.group
end

function M.subgroup(name)
  check("subgroup", name)
  local t = BY_NAME[name]
  return t and t.subgroup
end

function M.has_schema(name)
  check("has_schema", name)
  local t = BY_NAME[name]
  return t ~= nil and t.schema
end

function M.versions(name)
  check("versions", name)
  local t = BY_NAME[name]
  if not (t and t.versions) then
    return nil
  end
  return { (table.unpack or unpack)(t.versions) }
end

function M.delivered_in(name, version)
  check("delivered_in", name)
  local t = BY_NAME[name]
  if not (t and t.versions) then
    return true
  end
  for _, v in ipairs(t.versions) do
    if v == version then
      return true
    end
  end
  return false
end

function M.info(name)
  check("info", name)
  local t = BY_NAME[name]
  if not t then
    return nil
  end
  return {
    name = t.name, group = t.group, subgroup = t.subgroup, category = t.category,
    schema = t.schema, versions = M.versions(name), first_seen = t.first_seen,
  }
end

--- Well-formed event names: "a.b_c.d" (lowercase segments of [a-z0-9_],
-- at least one), optionally followed by ".*"; "*" alone is the catch-all.
function M.well_formed(name)
  if type(name) ~= "string" then
    return false
  end
  if name == "*" then
    return true
  end
  local base = name
  if name:sub(-2) == ".*" then
    base = name:sub(1, -3)
  end
  if #base == 0 or #base > 200 then
    return false
  end
  for seg in (base .. "."):gmatch("([^.]*)%.") do
    if seg == "" or seg:find("[^a-z0-9_]") then
      return false
    end
  end
  return true
end

-- Levenshtein distance, bounded by `limit` (returns limit + 1 beyond it).
local function distance(a, b, limit)
  local la, lb = #a, #b
  if math.abs(la - lb) > limit then
    return limit + 1
  end
  local prev = {}
  for j = 0, lb do
    prev[j] = j
  end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = a:byte(i)
    local best = i
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      local v = prev[j - 1] + cost
      if prev[j] + 1 < v then v = prev[j] + 1 end
      if cur[j - 1] + 1 < v then v = cur[j - 1] + 1 end
      cur[j] = v
      if v < best then best = v end
    end
    if best > limit then
      return limit + 1
    end
    prev = cur
  end
  return prev[lb]
end
M._distance = distance

-- The names of `list` nearest to `name` (see M.suggest).
local function nearest(name, list, max)
  local limit = math.max(2, math.floor(#name / 3))
  local found = {}
  for _, t in ipairs(list) do
    local d = distance(name, t, limit)
    if d <= limit then
      found[#found + 1] = { t, d }
    end
  end
  table.sort(found, function(x, y)
    if x[2] ~= y[2] then
      return x[2] < y[2]
    end
    return x[1] < y[1]
  end)
  local out = {}
  for i = 1, math.min(max, #found) do
    if found[i][2] > found[1][2] then
      break
    end
    out[i] = found[i][1]
  end
  return out
end

--- The known names nearest to `name` (all at the smallest edit distance, at
-- most `max`, default 3, sorted); empty when none is within a third of the
-- name's length (at least 2 edits).
function M.suggest(name, max)
  check("suggest", name)
  return nearest(name, TYPES, max or 3)
end

-- Prefixes: every proper dot-prefix of a known type ("message", "chat",
-- "chat.typing_indicator", ...), what a wildcard "PREFIX.*" can match.
local PREFIXES, PREFIX_SET = {}, {}
for _, t in ipairs(TYPES) do
  local pos = t:find(".", 1, true)
  while pos do
    local g = t:sub(1, pos - 1)
    if not PREFIX_SET[g] then
      PREFIX_SET[g] = true
      PREFIXES[#PREFIXES + 1] = g
    end
    pos = t:find(".", pos + 1, true)
  end
end
table.sort(PREFIXES)
M.PREFIXES = PREFIXES

--- events.is_prefix(prefix) -> true when the wildcard "prefix.*" matches a
-- known type ("message", "chat.typing_indicator").
function M.is_prefix(prefix)
  check("is_prefix", prefix)
  return PREFIX_SET[prefix] == true
end

--- events.suggest_prefix(prefix[, max]) -> the known prefixes nearest to
-- `prefix` (as M.suggest does for names).
function M.suggest_prefix(prefix, max)
  check("suggest_prefix", prefix)
  return nearest(prefix, PREFIXES, max or 3)
end

function M.example(name, version)
  check("example", name)
  local ex = data.examples[name]
  if not ex then
    return nil
  end
  return ex[version] or ex["*"] or ex["2026-02-03"]
end

return M
