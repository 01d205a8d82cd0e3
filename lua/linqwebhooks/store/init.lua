--- De-duplication stores: the interface every store implements, the key
-- the dispatcher derives from an event id, and the store constructors
-- (`linq.store.memory{...}`, `linq.store.shdict(dict, {...})`,
-- `linq.store.redis(...)`, each loaded on first use).
--
-- ## The store interface (what `linq.webhooks{ dedupe = store }` calls)
--
-- A store is any object (table or userdata) with the methods below. Keys are
-- made by `store.key(event_id)` from the authenticated `event_id` of a
-- verified delivery: the id itself when it is at most `store.MAX_KEY` (128)
-- bytes, else "sha256:" .. the hex SHA-256 of the id, so a hostile or odd
-- 70 KB id never exceeds a backend's key limit. Every key is in one of three
-- states: absent, "in_flight" (claimed, handlers running) or "seen"
-- (handlers succeeded).
--
--   store:claim(key) -> true
--                     | false, "seen" | "in_flight"
--                     | nil, err [, "full"]   (the store itself failed)
--     Atomically: if `key` is absent (or its entry expired), record it as
--     "in_flight" for at most `lease` seconds and return true: the caller now
--     owns the key and MUST later call exactly one of commit/release.
--     Otherwise return false and the current state; nothing changes.
--     Atomic means: of several concurrent claims of one absent key (coroutines,
--     nginx workers sharing a dict) exactly one returns true.
--     A store that has no room for a new claim (and will not evict a live
--     one to make room) returns nil, err, "full": the dispatcher answers 503
--     and logs an error, and Linq retries later.
--   store:commit(key) -> true | nil, err
--     The claimed key's handlers succeeded: record it as "seen" for `ttl`
--     seconds from now (replacing the claim).
--   store:release(key) -> true | nil, err
--     The claimed key's handlers failed: forget it, so the sender's retry of
--     the same event can claim it again.
--   store:touch(key) -> true | false            (optional)
--     Renews this caller's in-flight claim for another `lease` seconds.
--     false: the claim is no longer held (its lease ran out, so a retry may
--     have claimed and dispatched the event again). The dispatcher calls it
--     after a handler that took a second or more, and logs a warning on false.
--
-- An in-flight claim that is neither committed nor released (the process or
-- worker died mid-dispatch) expires after `lease` seconds, so the event is
-- not blocked forever. A "seen" entry expires after `ttl` seconds. Linq
-- retries a failed delivery for about 25 minutes, so every store here
-- remembers handled ids for 1800 s (30 minutes) by default: a retry inside
-- that window is recognised as a duplicate. A shorter ttl lets a very late
-- retry dispatch again (at-least-once, as Linq documents).
--
-- What the dispatcher answers: claim true -> dispatch, then commit (200) or
-- release (500, Linq retries); false "seen" -> 200, duplicate; false
-- "in_flight" -> 503, duplicate (Linq retries later, by when the first
-- delivery has either committed or released); nil, err, "full" -> 503;
-- nil, err -> 500. Any other second value after false is treated as "seen".
--
-- Leases: a handler that runs longer than the lease (60 s by default) lets
-- a retry of the same event claim it while it still runs. Plain-Lua handlers
-- block, so the lease can only be renewed between handlers (touch); keep
-- long work out of handlers (queue it, or use an inbox) or raise `lease`.
local core = require "linqwebhooks.core"

local M = {}

--- Longest event id used as a store key as it is; longer ids are hashed.
M.MAX_KEY = 128

--- Default seconds a handled id is remembered, for every store (Linq's
-- retry window is about 25 minutes).
M.DEFAULT_TTL = 1800

--- Default seconds an in-flight claim lasts.
M.DEFAULT_LEASE = 60

local sha256_hex = core.sha256_hex

--- store.key(event_id) -> the key the dispatcher passes to every store:
-- the id itself when it is at most MAX_KEY bytes, else "sha256:" .. hex
-- digest (71 bytes). A short id that itself starts with "sha256:" is hashed
-- too, so no id can pose as the hash of another.
function M.key(id)
  if type(id) ~= "string" then
    error("store.key: argument 'id' must be a string, got " .. type(id), 2)
  end
  if #id <= M.MAX_KEY and id:sub(1, 7) ~= "sha256:" then
    return id
  end
  return "sha256:" .. sha256_hex(id)
end

--- Raises unless `key` is a string, at the caller of the store method that
-- calls it (`what` names the method): shared by the stores here.
function M.check_key(what, key)
  if type(key) ~= "string" then
    error("store:" .. what .. ": argument 'key' must be a string, got " .. type(key), 3)
  end
end

--- True when `v` has the store methods claim, commit and release.
function M.is_store(v)
  if type(v) ~= "table" and type(v) ~= "userdata" then
    return false
  end
  for _, m in ipairs({ "claim", "commit", "release" }) do
    local ok, f = pcall(function() return v[m] end)
    if not ok or type(f) ~= "function" then
      return false
    end
  end
  return true
end

-- Constructors, loaded on first use. No tail calls: errors raised at
-- level 2 point at the user's line.

--- store.memory{ max, ttl, lease, clock }
function M.memory(opts)
  local s = require("linqwebhooks.store.memory").new(opts, 2)
  return s
end

--- store.shdict(ngx.shared.NAME, { ttl, lease, prefix })
function M.shdict(dict, opts)
  local s = require("linqwebhooks.store.shdict").new(dict, opts, 2)
  return s
end

--- store.redis{ url, prefix, ttl, lease, ... }: see linqwebhooks.store.redis
-- (called as new(opts, level), like the other stores).
function M.redis(opts)
  local s = require("linqwebhooks.store.redis").new(opts, 2)
  return s
end

return M
