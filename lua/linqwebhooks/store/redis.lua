--- De-duplication store on Redis, shared by every host and nginx worker:
-- `linq.store.redis{ url, prefix = "linqwh:", ttl = 1800, lease = 60, timeout = 5 }`.
--
-- Implements the store interface documented at the top of store/memory.lua,
-- plus touch():
--   claim   = SET prefix..key "in_flight" NX PX lease   (atomic: one winner)
--             not set -> GET (-> false, "seen" | "in_flight"; an entry that
--             expired in between -> false, "in_flight", so the sender retries)
--   commit  = SET prefix..key "seen" PX ttl
--   release = DEL, only while the value is still "in_flight" (a script)
--   touch   = PEXPIRE lease, only while "in_flight" (a script)
--             -> true | false (the claim expired or was committed)
-- Every operation is one round trip (a failed claim two). When Redis is
-- unreachable every method returns nil, err (the dispatcher answers 503 and
-- Linq retries); the next call reconnects.
-- In OpenResty the calls go through cosockets (a pooled connection per
-- request); the store can be built anywhere, e.g. at module level.
-- Other options: connect_timeout, cafile, verify, server_name, pool_size
-- (see linqwebhooks.redis).
local backend = require "linqwebhooks.redis_backend"
local stores = require "linqwebhooks.store"

local M = {}

local Store = {}
Store.__index = Store
M.Store = Store

local DEFAULTS = { ttl = 1800, lease = 60, prefix = "linqwh:" }

M.SCHEMA = backend.schema({
  url = "string",
  prefix = "string",
  ttl = { types = { "number" }, check = backend.seconds },
  lease = { types = { "number" }, check = backend.seconds },
})

--- linq.store.redis{ url = "redis://127.0.0.1:6379/0", prefix = "linqwh:", ttl = 1800,
--   lease = 60, timeout = 5, ... } -> store (does not connect yet)
function M.new(opts, level)
  level = (level or 1) + 1
  local client = backend.client("linq.store.redis", opts, M.SCHEMA, level)
  local ttl = opts.ttl or DEFAULTS.ttl
  local lease = opts.lease or DEFAULTS.lease
  return setmetatable({
    _redis = client,
    _prefix = opts.prefix or DEFAULTS.prefix,
    _ttl_ms = math.max(1, math.floor(ttl * 1000 + 0.5)),
    _lease_ms = math.max(1, math.floor(lease * 1000 + 0.5)),
  }, Store)
end

Store.__tostring = function(s)
  return backend.describe("store.redis", s._redis, s._prefix)
end

local check_key = stores.check_key

local function fail(err)
  return nil, tostring(err)
end

function Store:claim(key)
  check_key("claim", key)
  local k = self._prefix .. key
  local r, err = self._redis:call("SET", k, "in_flight", "NX", "PX", self._lease_ms)
  if r == nil then
    return fail(err)
  end
  if type(r) == "table" and r.ok then
    return true
  end
  local state, gerr = self._redis:call("GET", k)
  if state == nil then
    return fail(gerr)
  end
  if state == "seen" then
    return false, "seen"
  end
  return false, "in_flight"
end

function Store:commit(key)
  check_key("commit", key)
  local r, err = self._redis:call("SET", self._prefix .. key, "seen", "PX", self._ttl_ms)
  if r == nil then
    return fail(err)
  end
  return true
end

local RELEASE = [[
if redis.call('GET', KEYS[1]) == 'in_flight' then
  return redis.call('DEL', KEYS[1])
end
return 0]]

function Store:release(key)
  check_key("release", key)
  local r, err = self._redis:eval(RELEASE, { self._prefix .. key })
  if r == nil then
    return fail(err)
  end
  return true
end

local TOUCH = [[
if redis.call('GET', KEYS[1]) == 'in_flight' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0]]

function Store:touch(key)
  check_key("touch", key)
  local r, err = self._redis:eval(TOUCH, { self._prefix .. key }, { self._lease_ms })
  if r == nil then
    return fail(err)
  end
  return r == 1
end

--- "seen" | "in_flight" | nil (absent) | nil, err -- not part of the interface.
function Store:state(key)
  check_key("state", key)
  local r, err = self._redis:call("GET", self._prefix .. key)
  if r == nil then
    return fail(err)
  end
  return r or nil
end

function Store:close()
  return self._redis:close()
end

return M
