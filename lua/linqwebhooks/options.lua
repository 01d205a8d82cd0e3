--- Strict option tables: every known key with its type; unknown keys raise.
-- Used by every public constructor so a typo (`tolerence = 300`) cannot
-- silently weaken anything.
local M = {}

local function typename(v)
  return type(v)
end

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

--- Checks `opts` (a table or nil) against `schema` and raises at `level`
-- (default: the caller of the public function) on the first problem.
-- schema: { key = "string" | "number" | "boolean" | "table" | "function"
--                 | { types = {...}, enum = {...}, check = fn(v) -> ok, msg } }
-- `what` names the function in messages, e.g. "linq.verifier".
function M.check(what, opts, schema, level)
  level = (level or 2) + 1
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    error(what .. ": options must be a table, got " .. typename(opts), level)
  end
  for k, v in pairs(opts) do
    local spec = schema[k]
    if spec == nil then
      error(what .. ": unknown option '" .. tostring(k) .. "'", level)
    end
    if type(spec) == "string" then
      spec = { types = { spec } }
    end
    if not contains(spec.types, typename(v)) then
      error(what .. ": option '" .. k .. "' must be " .. table.concat(spec.types, " or ")
        .. ", got " .. typename(v), level)
    end
    if spec.enum and not contains(spec.enum, v) then
      error(what .. ": option '" .. k .. "' must be one of " .. table.concat(spec.enum, ", ")
        .. ", got '" .. tostring(v) .. "'", level)
    end
    if spec.check then
      local good, msg = spec.check(v)
      if not good then
        error(what .. ": option '" .. k .. "' " .. msg, level)
      end
    end
  end
  return opts
end

--- True when `t` is a table whose keys are exactly 1..#t (a Lua list).
function M.is_list(t)
  if type(t) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n == #t
end

--- os.getenv(name), with an empty value read as unset (nil).
function M.getenv(name)
  local v = os.getenv(name)
  if v == "" then
    return nil
  end
  return v
end

--- True when lists a and b hold equal values in the same order.
function M.same_list(a, b)
  if #a ~= #b then
    return false
  end
  for i = 1, #a do
    if a[i] ~= b[i] then
      return false
    end
  end
  return true
end

--- options.number{ min, max, above, below, integer, unit, allow } -> check
-- The one numeric option validator: returns a `check` function for a
-- schema entry (`{ types = { "number" }, check = options.number{...} }`).
--   min / max      inclusive bounds; above / below: exclusive bounds
--   integer = true whole numbers only
--   unit           word used in the message ("seconds", "bytes", ...)
--   allow          a non-number value also accepted (e.g. false)
-- NaN and +-inf are always rejected. The message says what is expected:
-- "must be a whole number of seconds >= 0".
function M.number(spec)
  spec = spec or {}
  local parts = {}
  if spec.min then
    parts[#parts + 1] = ">= " .. spec.min
  end
  if spec.above then
    parts[#parts + 1] = "> " .. spec.above
  end
  if spec.max then
    parts[#parts + 1] = "<= " .. spec.max
  end
  if spec.below then
    parts[#parts + 1] = "< " .. spec.below
  end
  local msg = "must be " .. (spec.integer and "a whole number" or "a number")
    .. (spec.unit and (" of " .. spec.unit) or "")
    .. (#parts > 0 and (" " .. table.concat(parts, " and ")) or "")
    .. (spec.allow ~= nil and (", or " .. tostring(spec.allow)) or "")
  local min, max, above, below, integer, allow =
    spec.min, spec.max, spec.above, spec.below, spec.integer, spec.allow
  return function(v)
    if allow ~= nil and v == allow then
      return true
    end
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge
        or (integer and v % 1 ~= 0)
        or (min and v < min) or (max and v > max)
        or (above and v <= above) or (below and v >= below) then
      return false, msg
    end
    return true
  end
end

--- Checks shared by the transports' option schemas (built on M.number).
M.positive_seconds = M.number{ above = 0, below = 2147483, unit = "seconds" }
M.body_bytes = M.number{ min = 1, below = 2147483647, unit = "bytes" }

--- Raises unless `v` has Lua type `t`; `name` is the argument's name.
function M.arg(what, name, v, t, level)
  if type(v) ~= t then
    error(what .. ": argument '" .. name .. "' must be a " .. t .. ", got " .. type(v), (level or 2) + 1)
  end
  return v
end

return M
