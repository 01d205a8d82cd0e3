--- De-duplication store on an OpenResty shared dictionary, shared by every
-- nginx worker: `linq.store.shdict(ngx.shared.NAME, { ttl, lease, prefix })`.
--
-- Implements the store interface documented at the top of store/memory.lua
-- (claim / commit / release), with the dictionary's atomic `add` so that of
-- several workers receiving the same event at once exactly one dispatches it:
--   claim   = dict:add(prefix .. key, "in_flight", lease)
--             ("exists" -> false, and the current state from dict:get)
--   commit  = dict:set(prefix .. key, "seen", ttl)
--   release = dict:delete(prefix .. key) (only while still "in_flight")
-- Expiry is the dictionary's own (nginx's clock). When the dictionary is
-- full, `add` evicts the least recently used entries to make room (nginx
-- logs nothing); with `no memory` (a value larger than a slab) claim returns
-- nil, err and the dispatcher answers 500 so Linq retries.
--
-- nginx.conf: `lua_shared_dict linq_dedupe 10m;` (about 10k ids per MB).
local M = {}

local Store = {}
Store.__index = Store
Store.__tostring = function(s)
  return "linqwebhooks.store.shdict (ttl " .. s._ttl .. "s)"
end
M.Store = Store

local DEFAULTS = { ttl = 1800, lease = 60, prefix = "linqwh:" }

local options = require "linqwebhooks.options"

local function positive(v)
  if v ~= v or v <= 0 or v == math.huge then
    return false, "must be a number of seconds > 0"
  end
  return true
end

M.SCHEMA = {
  ttl = { types = { "number" }, check = positive },
  lease = { types = { "number" }, check = positive },
  prefix = "string",
}

local function is_dict(d)
  if type(d) ~= "table" and type(d) ~= "userdata" then
    return false
  end
  local ok, res = pcall(function()
    return type(d.add) == "function" and type(d.get) == "function"
      and type(d.set) == "function" and type(d.delete) == "function"
  end)
  return ok and res
end

--- linq.store.shdict(dict, { ttl = 1800, lease = 60, prefix = "linqwh:" })
-- dict: an `ngx.shared.NAME` dictionary (declare it with lua_shared_dict).
-- ttl: seconds a handled event id is remembered (Linq retries for about
-- 25 minutes, hence 30 minutes by default); lease: seconds an in-flight
-- claim lasts if a worker dies mid-dispatch; prefix: key prefix, so the
-- dictionary can be shared with other data.
function M.new(dict, opts, level)
  level = (level or 1) + 1
  if not is_dict(dict) then
    error("linq.store.shdict: argument 'dict' must be an ngx.shared dictionary (declare it with"
      .. " lua_shared_dict in nginx.conf and pass ngx.shared.NAME), got " .. type(dict), level)
  end
  options.check("linq.store.shdict", opts, M.SCHEMA, level)
  opts = opts or {}
  return setmetatable({
    _dict = dict,
    _ttl = opts.ttl or DEFAULTS.ttl,
    _lease = opts.lease or DEFAULTS.lease,
    _prefix = opts.prefix or DEFAULTS.prefix,
  }, Store)
end

local function check_key(what, key)
  if type(key) ~= "string" then
    error("store:" .. what .. ": argument 'key' must be a string, got " .. type(key), 3)
  end
end

--- store:claim(key) -> true | false, "seen" | "in_flight" | nil, err
function Store:claim(key)
  check_key("claim", key)
  local dict, k = self._dict, self._prefix .. key
  -- two rounds: the entry may expire between a failed add and the get
  for _ = 1, 2 do
    local ok, err = dict:add(k, "in_flight", self._lease)
    if ok then
      return true
    end
    if err ~= "exists" then
      return nil, "shared dict add failed: " .. tostring(err)
    end
    local state = dict:get(k)
    if state == "seen" or state == "in_flight" then
      return false, state
    end
    if state ~= nil then
      -- a foreign value under our key: treat as seen, never dispatch twice
      return false, "seen"
    end
  end
  return false, "in_flight"
end

--- store:commit(key) -> true | nil, err
function Store:commit(key)
  check_key("commit", key)
  local ok, err = self._dict:set(self._prefix .. key, "seen", self._ttl)
  if not ok then
    return nil, "shared dict set failed: " .. tostring(err)
  end
  return true
end

--- store:release(key) -> true | nil, err
function Store:release(key)
  check_key("release", key)
  local dict, k = self._dict, self._prefix .. key
  if dict:get(k) == "in_flight" then
    dict:delete(k)
  end
  return true
end

--- store:state(key) -> "seen" | "in_flight" | nil (extra, as in store.memory)
function Store:state(key)
  check_key("state", key)
  return (self._dict:get(self._prefix .. key))
end

return M
