--- Strict option tables: every known key with its type; unknown keys raise.
-- Used by every public constructor so a typo (`tolerence = 300`) cannot
-- silently weaken anything.
local M = {}

local function typename(v)
  return type(v)
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
    local ok = false
    for _, t in ipairs(spec.types) do
      if t == typename(v) then
        ok = true
        break
      end
    end
    if not ok then
      error(what .. ": option '" .. k .. "' must be " .. table.concat(spec.types, " or ")
        .. ", got " .. typename(v), level)
    end
    if spec.enum then
      local found = false
      for _, e in ipairs(spec.enum) do
        if e == v then
          found = true
          break
        end
      end
      if not found then
        error(what .. ": option '" .. k .. "' must be one of " .. table.concat(spec.enum, ", ")
          .. ", got '" .. tostring(v) .. "'", level)
      end
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

--- Checks shared by the transports' option schemas.
function M.positive_seconds(v)
  if v > 0 and v < 2147483 then
    return true
  end
  return false, "must be a positive number of seconds"
end

function M.body_bytes(v)
  if v >= 1 and v < 2147483647 then
    return true
  end
  return false, "must be a number of bytes >= 1"
end

--- Raises unless `v` has Lua type `t`; `name` is the argument's name.
function M.arg(what, name, v, t, level)
  if type(v) ~= t then
    error(what .. ": argument '" .. name .. "' must be a " .. t .. ", got " .. type(v), (level or 2) + 1)
  end
  return v
end

return M
