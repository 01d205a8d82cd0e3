--- Header objects as well as header tables.
--
-- verify / unwrap / handle read the signature headers from a plain table
-- ({ [name] = value }, any letter case, a value may be an array). Web
-- stacks often hand over an object instead: lua-http's `headers`, or
-- anything else with a `:get(name)` method. normalize() turns such an
-- object into the plain table of the five signature-bearing headers, keeping
-- repeated values repeated (an array of several values), which the verifier
-- rejects -- never joined, never the first one silently.
--
-- The object's `get` is called with lowercase names. All values of a name
-- are taken from `get_as_sequence(name)` when the object has it (lua-http:
-- { n = count, ... }), else from every value `get(name)` returns (lua-http
-- returns all of them as multiple values).
local M = {}

local NAMES = { "webhook-id", "webhook-timestamp", "webhook-signature", "x-webhook-timestamp",
                "x-webhook-signature" }

local function index(o, k)
  return o[k]
end

-- The object's method `name`, or nil. Indexing goes through pcall: an
-- __index that raises (strict objects) means "no such method".
local function method(o, name)
  local ok, f = pcall(index, o, name)
  if ok and f ~= nil and (type(f) == "function" or (getmetatable(f) or {}).__call) then
    return f
  end
  return nil
end

--- Is `h` a header object (not a plain table)? Plain tables (no metatable)
-- are never objects, so a header table whose key is "get" stays a table.
function M.is_object(h)
  local t = type(h)
  if t == "table" then
    if getmetatable(h) == nil then
      return false
    end
  elseif t ~= "userdata" then
    return false
  end
  return method(h, "get") ~= nil
end

local function collect(...)
  return select("#", ...), { ... }
end

--- normalize(h) -> h unchanged if it is not a header object, else a plain
-- table of the signature headers it holds. `get` raising propagates (a
-- broken object is a programming error, not a bad delivery).
function M.normalize(h)
  if not M.is_object(h) then
    return h
  end
  local get = method(h, "get")
  local seq = method(h, "get_as_sequence")
  local out = {}
  for _, name in ipairs(NAMES) do
    local n, vals
    if seq then
      local s = seq(h, name)
      if type(s) == "table" then
        n = tonumber(s.n) or #s
        vals = s
      end
    end
    if not vals then
      n, vals = collect(get(h, name))
    end
    -- trailing nils from get() mean "absent"
    while n > 0 and vals[n] == nil do
      n = n - 1
    end
    if n == 1 then
      out[name] = vals[1]
    elseif n > 1 then
      local arr = {}
      for i = 1, n do
        arr[i] = vals[i]
      end
      out[name] = arr -- repeated: the verifier rejects it
    end
  end
  return out
end

return M
