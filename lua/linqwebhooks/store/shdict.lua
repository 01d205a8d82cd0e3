--- De-duplication store on an OpenResty shared dictionary, shared by every
-- nginx worker: `linq.store.shdict(ngx.shared.NAME, { ttl, lease, prefix })`.
--
-- Implements the store interface documented in linqwebhooks.store
-- (store/init.lua), with the dictionary's atomic operations so that of
-- several workers receiving the same event at once exactly one dispatches it:
--   claim   = dict:safe_add(prefix .. key, "in_flight", lease, token)
--             ("exists" -> false, and the current state from dict:get;
--             "no memory" -> nil, err, "full")
--   commit  = dict:safe_set(prefix .. key, "seen", ttl)
--   release = dict:delete(prefix .. key) (only while it is still our claim)
--   touch   = dict:replace(prefix .. key, "in_flight", lease, token) while
--             the entry is still our claim (same token), else false
-- `token` (the entry's flags) is random per claim, so a worker never renews
-- or releases a claim another worker took after its own lease ran out.
-- Expiry is the dictionary's own (nginx's clock).
--
-- A full dictionary never loses a live claim: `safe_add` does not evict
-- (plain `add` would silently evict the least recently used entries, claims
-- of handlers still running included, and a copy of such an event would be
-- dispatched twice). A claim that finds no room fails with "full": the
-- dispatcher answers 503 and logs an error, so Linq retries once entries have
-- expired. Size the dictionary for ttl x delivery rate: about 10k ids per MB.
--
-- nginx.conf: `lua_shared_dict linq_dedupe 10m;`
local M = {}

local Store = {}
Store.__index = Store
Store.__tostring = function(s)
  return "linqwebhooks.store.shdict (ttl " .. s._ttl .. "s)"
end
M.Store = Store

local options = require "linqwebhooks.options"
local stores = require "linqwebhooks.store"
local core = require "linqwebhooks.core"

local DEFAULTS = { ttl = stores.DEFAULT_TTL, lease = stores.DEFAULT_LEASE, prefix = "linqwh:" }

local seconds = options.number{ above = 0, unit = "seconds" }

M.SCHEMA = {
  ttl = { types = { "number" }, check = seconds },
  lease = { types = { "number" }, check = seconds },
  prefix = "string",
}

local function is_dict(d)
  if type(d) ~= "table" and type(d) ~= "userdata" then
    return false
  end
  local ok, res = pcall(function()
    return type(d.safe_add) == "function" and type(d.get) == "function"
      and type(d.safe_set) == "function" and type(d.delete) == "function"
      and type(d.replace) == "function"
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
    _mine = {}, -- key -> token of the claims this worker holds
  }, Store)
end

local check_key = stores.check_key

-- A random non-zero 31-bit token (the dict entry's flags) per claim: flags
-- pass through a C int in lua-resty-core, so stay below 2^31.
local function new_token()
  local a, b, c, d = core.random_bytes(4):byte(1, 4)
  return ((a % 128 * 256 + b) * 256 + c) * 256 + d + 1 -- 1 .. 2^31
end

--- store:claim(key) -> true | false, "seen" | "in_flight" | nil, err [, "full"]
function Store:claim(key)
  check_key("claim", key)
  local dict, k = self._dict, self._prefix .. key
  -- two rounds: the entry may expire between a failed add and the get
  for _ = 1, 2 do
    local token = new_token()
    if token > 2147483647 then
      token = 1
    end
    local ok, err = dict:safe_add(k, "in_flight", self._lease, token)
    if ok then
      self._mine[key] = token
      return true
    end
    if err == "no memory" then
      return nil, "shared dict is full (no memory for a new claim; live claims are never"
        .. " evicted): enlarge lua_shared_dict or lower the store's ttl", "full"
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
  self._mine[key] = nil
  local ok, err = self._dict:safe_set(self._prefix .. key, "seen", self._ttl)
  if not ok then
    return nil, "shared dict set failed: " .. tostring(err)
  end
  return true
end

--- Is the entry under k still the claim this worker made (token)?
local function ours(self, key, k)
  local value, flags = self._dict:get(k)
  local mine = self._mine[key]
  return value == "in_flight" and (mine == nil or flags == mine), mine
end

--- store:release(key) -> true | nil, err
function Store:release(key)
  check_key("release", key)
  local k = self._prefix .. key
  if ours(self, key, k) then
    self._dict:delete(k)
  end
  self._mine[key] = nil
  return true
end

--- store:touch(key) -> true | false: renews this worker's claim for another
-- `lease` seconds; false when it expired (another worker may hold it now).
function Store:touch(key)
  check_key("touch", key)
  local k = self._prefix .. key
  local live, mine = ours(self, key, k)
  if not live or mine == nil then
    return false
  end
  -- same value length: replaced in place, never needs memory
  return (self._dict:replace(k, "in_flight", self._lease, mine)) == true
end

--- store:state(key) -> "seen" | "in_flight" | nil (extra, as in store.memory)
function Store:state(key)
  check_key("state", key)
  return (self._dict:get(self._prefix .. key))
end

return M
