--- A small JSON-schema checker for the specs: the subset the Linq catalogue
-- (data/linq-events.json) uses, OpenAPI 3.0 flavoured: type (or a list of
-- types), nullable, properties, required, additionalProperties, enum, const,
-- items, oneOf / anyOf / allOf, minimum, and the formats uuid, date-time, uri.
-- Values are decoded with linqwebhooks.json (json.null, marked arrays).
--
--   local check = require("support.jsonschema").check
--   local ok, problems = check(schema, value, { no_extra = true, allow_extra = { ["$.x"] = true } })
--   require("support.jsonschema").deep_equal(a, b[, metatables])  -- see below
--
-- no_extra: properties not named by an object schema are violations (the
-- reference's own rule for its examples: "no fields outside the schema");
-- allow_extra: paths exempted from it (documented compatibility fields).
local json = require "linqwebhooks.json"

local M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local DATETIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*[Zz]$"
local DATETIME_OFF = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*[+-]%d%d:%d%d$"

local function is_integer(v)
  if type(v) ~= "number" then
    return false
  end
  if math.type then
    return math.type(v) == "integer" or (v == math.floor(v) and v > -2^53 and v < 2^53)
  end
  return v == math.floor(v) and v > -2^53 and v < 2^53
end

local function json_type(v)
  if v == json.null then
    return "null"
  end
  local t = type(v)
  if t == "table" then
    if json.is_array(v) then
      return "array"
    end
    return "object"
  elseif t == "string" or t == "boolean" then
    return t
  elseif t == "number" then
    return is_integer(v) and "integer" or "number"
  end
  return t
end

local function type_ok(want, got)
  return want == got or (want == "number" and got == "integer")
end

--- Structural equality of two decoded values: tables member by member, NaN
-- equal to NaN. With `metatables` true, tables must also have the same
-- metatable, at every level (marked arrays, event classes): spec/17 compares
-- decoded events with it.
local function deep_equal(a, b, metatables)
  if type(a) ~= type(b) then
    return false
  end
  if type(a) ~= "table" then
    return a == b or (a ~= a and b ~= b)
  end
  if metatables and getmetatable(a) ~= getmetatable(b) then
    return false
  end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k], metatables) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

M.deep_equal = deep_equal

local validate

local function count_ok(schemas, value, path, opts)
  local n = 0
  for _, s in ipairs(schemas) do
    local sub = {}
    validate(s, value, path, opts, sub)
    if #sub == 0 then
      n = n + 1
    end
  end
  return n
end

function validate(schema, value, path, opts, out)
  if type(schema) ~= "table" then
    return
  end
  local function bad(msg)
    out[#out + 1] = path .. ": " .. msg
  end
  local got = json_type(value)
  if got == "null" and (schema.nullable == true) then
    return
  end
  local want = schema.type
  if want ~= nil then
    local wants = type(want) == "table" and want or { want }
    local okt = false
    for _, w in ipairs(wants) do
      if type_ok(w, got) then
        okt = true
      end
    end
    if not okt then
      return bad("expected " .. table.concat(wants, "|") .. ", got " .. got)
    end
  end
  if schema.enum ~= nil then
    local found = false
    for _, e in ipairs(schema.enum) do
      if deep_equal(e, value) then
        found = true
      end
    end
    if not found then
      bad("value " .. tostring(value) .. " not in enum")
    end
  end
  if schema.const ~= nil and not deep_equal(schema.const, value) then
    bad("value " .. tostring(value) .. " is not the const " .. tostring(schema.const))
  end
  if got == "string" and schema.format then
    local f = schema.format
    if f == "uuid" and not value:match(UUID) then
      bad("not a uuid: " .. value)
    elseif f == "date-time" and not (value:match(DATETIME) or value:match(DATETIME_OFF)) then
      bad("not a date-time: " .. value)
    elseif f == "uri" and not value:match("^%a[%w+.-]*:") then
      bad("not a uri: " .. value)
    end
  end
  if (got == "integer" or got == "number") and schema.minimum ~= nil and value < schema.minimum then
    bad("below minimum " .. schema.minimum)
  end
  if got == "object" then
    for _, r in ipairs(schema.required or {}) do
      if value[r] == nil then
        bad("missing required property '" .. r .. "'")
      end
    end
    local props = schema.properties or {}
    for k, v in pairs(value) do
      local p = path .. "." .. tostring(k)
      if props[k] ~= nil then
        validate(props[k], v, p, opts, out)
      elseif type(schema.additionalProperties) == "table" then
        validate(schema.additionalProperties, v, p, opts, out)
      elseif schema.additionalProperties == false
        or (opts.no_extra and schema.properties ~= nil and schema.additionalProperties == nil
            and not (opts.allow_extra and opts.allow_extra[p])) then
        bad("property '" .. tostring(k) .. "' is not in the schema")
      end
    end
  end
  if got == "array" and schema.items ~= nil then
    for i, v in ipairs(value) do
      validate(schema.items, v, path .. "[" .. (i - 1) .. "]", opts, out)
    end
  end
  if schema.oneOf then
    local n = count_ok(schema.oneOf, value, path, opts)
    if n ~= 1 then
      bad("matches " .. n .. " of oneOf (want exactly 1)")
    end
  end
  if schema.anyOf and count_ok(schema.anyOf, value, path, opts) == 0 then
    bad("matches none of anyOf")
  end
  for _, s in ipairs(schema.allOf or {}) do
    validate(s, value, path, opts, out)
  end
end

function M.check(schema, value, opts)
  local out = {}
  validate(schema, value, "$", opts or {}, out)
  return #out == 0, out
end

return M
