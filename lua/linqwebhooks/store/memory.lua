--- In-process de-duplication store: a bounded LRU with expiry, O(1) per
-- operation, with an injectable clock. `linq.store.memory{ max, ttl, lease, clock }`.
--
-- Implements the store interface documented in linqwebhooks.store
-- (store/init.lua): claim / commit / release, and touch (renews a live
-- claim's lease; false once it ran out). Handled ids are remembered for
-- `ttl` = 1800 s by default, which covers Linq's ~25-minute retry window.
--
-- This module's extra methods (not part of the interface): store:state(key)
-- -> "seen" | "in_flight" | nil, store:size(), store:clear(),
-- store:evictions().
local options = require "linqwebhooks.options"

local M = {}

local Store = {}
Store.__index = Store
Store.__tostring = function(s)
  return "linqwebhooks.store.memory (" .. s._n .. "/" .. s._max .. " entries)"
end
M.Store = Store

local stores = require "linqwebhooks.store"

local DEFAULTS = { max = 10000, ttl = stores.DEFAULT_TTL, lease = stores.DEFAULT_LEASE }

local seconds = options.number{ above = 0, unit = "seconds" }

M.SCHEMA = {
  max = { types = { "number" }, check = options.number{ above = 0, integer = true } },
  ttl = { types = { "number" }, check = seconds },
  lease = { types = { "number" }, check = seconds },
  clock = "function",
  log = { types = { "function", "boolean" }, check = function(v)
    return v ~= true, "must be a function(level, message), or false"
  end },
}

-- Seconds between two warnings about ids evicted before their ttl.
M.WARN_INTERVAL = 60

-- Where the warning goes when neither the store's `log` nor a dispatcher's
-- was given: nginx's error log inside OpenResty, else stderr.
local function default_log(level, message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.log) == "function" and ngx.WARN then
    ngx.log(ngx.WARN, "linqwebhooks: ", message)
  else
    io.stderr:write("linqwebhooks: ", level, ": ", message, "\n")
  end
end

--- linq.store.memory{ max = 10000, ttl = 1800, lease = 60, clock = os.time, log }
-- max: entries kept (least recently used evicted first); ttl: seconds a
-- "seen" id is remembered; lease: seconds an in-flight claim lasts; clock:
-- function returning "now" in seconds (tests inject a fake one); log:
-- function(level, message) for the warning below, false to silence it
-- (default: the `log` of the dispatcher it is given to, else stderr /
-- ngx.log).
--
-- A full store evicts handled ids before their ttl, so a redelivery of such
-- an id runs the handlers again: the first such eviction, and then at most
-- one per WARN_INTERVAL seconds, is logged at "warn" level, naming `max`;
-- store:evictions() counts them.
--
-- Layout: entry i (slot number) occupies five consecutive cells of one
-- array, e[5i+1 .. 5i+5] = key, state, expiry, prev slot, next slot, so an
-- entry is one or two cache lines and there is no table per entry (little
-- work for the garbage collector). Slot 0 is the sentinel of the doubly
-- linked recency list: its next is the most recently used entry, its prev
-- the least recently used one. `_slot` maps a key to its slot; freed slots
-- are reused.
local KEY, STATE, EXP, PREV, NEXT = 1, 2, 3, 4, 5

function M.new(opts, level)
  level = (level or 1) + 1
  options.check("linq.store.memory", opts, M.SCHEMA, level)
  opts = opts or {}
  return setmetatable({
    _max = opts.max or DEFAULTS.max,
    _ttl = opts.ttl or DEFAULTS.ttl,
    _lease = opts.lease or DEFAULTS.lease,
    _clock = opts.clock or os.time,
    _slot = {},
    _e = { false, false, 0, 0, 0 }, -- the sentinel (slot 0)
    _free = {},
    _top = 0, -- highest slot number ever used
    _n = 0,
    _log = opts.log, -- nil: not given (a dispatcher may wire its own)
    _early = 0,      -- handled ids evicted before their ttl, ever
    _unreported = 0, -- of those, not yet in a warning
    _warned = nil,   -- clock time of the last warning
  }, Store)
end

local function now(self)
  local t = self._clock()
  if type(t) ~= "number" then
    error("linq.store.memory: clock must return a number, got " .. type(t), 3)
  end
  return t
end

local check_key = stores.check_key

-- The hot paths below work on the entry array through locals: this runs
-- for every delivery. b = 5 * slot is an entry's base index.

local function unlink(e, b)
  local p, n = e[b + PREV], e[b + NEXT]
  e[5 * p + NEXT] = n
  e[5 * n + PREV] = p
end

local function push_front(e, i)
  local b = 5 * i
  local first = e[NEXT]
  e[b + PREV] = 0
  e[b + NEXT] = first
  e[5 * first + PREV] = i
  e[NEXT] = i
end

--- Unlinks slot i and forgets its key.
local function drop(self, i)
  local e = self._e
  local b = 5 * i
  unlink(e, b)
  self._slot[e[b + KEY]] = nil
  e[b + KEY] = false
  e[b + STATE] = false
  self._n = self._n - 1
end

local function remove(self, i)
  drop(self, i)
  local free = self._free
  free[#free + 1] = i
end

--- Counts an id evicted before its ttl (the store is full) and warns, the
-- first time and then at most once per WARN_INTERVAL. Cold path.
local function evicted_early(self, t)
  self._early = self._early + 1
  self._unreported = self._unreported + 1
  local last = self._warned
  if last and t - last < M.WARN_INTERVAL and t >= last then
    return
  end
  self._warned = t
  local n = self._unreported
  self._unreported = 0
  local log = self._log
  if log == false then
    return
  end
  pcall(log or default_log, "warn", "dedupe store linq.store.memory is full (max = "
    .. self._max .. " ids): " .. n .. " handled event id(s) forgotten before their ttl ("
    .. self._ttl .. " s)" .. (last and (" in the last " .. (t - last) .. " s") or "")
    .. ", so a redelivery of such an event runs the handlers again; raise max (about ttl"
    .. " times your peak events per second: linq.store.memory{ max = ... }) or use a shared"
    .. " store (linq.store.shdict, linq.store.redis)")
end

--- A slot for a new key: an expired or evicted one from the cold end, a
-- freed one, or a new one.
local ROTATE = 4 -- live claims moved away from the tail per insertion, at most

local function live_claim(e, i, t)
  local b = 5 * i
  return e[b + STATE] == "in_flight" and e[b + EXP] > t
end

local function new_slot(self, t)
  local e = self._e
  local tail = e[PREV]
  -- A full store never evicts a claim whose handlers are still running (a
  -- concurrent duplicate would then dispatch twice): such entries move to
  -- the front, a few per insertion; if the tail is still a live claim the
  -- store grows past max by the claims in flight.
  local full = self._n >= self._max
  if full then
    for _ = 1, ROTATE do
      if tail == 0 or not live_claim(e, tail, t) then
        break
      end
      unlink(e, 5 * tail)
      push_front(e, tail)
      tail = e[PREV]
    end
  end
  if tail ~= 0 and (e[5 * tail + EXP] <= t or (full and not live_claim(e, tail, t))) then
    -- reuse the least recently used slot: it expired, or the store is full
    if e[5 * tail + EXP] > t then
      evicted_early(self, t)
    end
    drop(self, tail)
    -- then drop expired entries from the cold end, and entries over max left
    -- by claims that have ended (each entry goes once: amortised O(1))
    local tail2 = e[PREV]
    while tail2 ~= 0 and (e[5 * tail2 + EXP] <= t
        or (self._n >= self._max and not live_claim(e, tail2, t))) do
      if e[5 * tail2 + EXP] > t then
        evicted_early(self, t)
      end
      remove(self, tail2)
      tail2 = e[PREV]
    end
    return tail
  end
  local free = self._free
  local nfree = #free
  if nfree > 0 then
    local i = free[nfree]
    free[nfree] = nil
    return i
  end
  local i = self._top + 1
  self._top = i
  return i
end

--- Inserts or refreshes key as the most recently used entry.
local function put(self, key, state, expires, t)
  local e = self._e
  local i = self._slot[key]
  if i then
    if e[NEXT] ~= i then
      unlink(e, 5 * i)
      push_front(e, i)
    end
  else
    i = new_slot(self, t)
    self._slot[key] = i
    e[5 * i + KEY] = key
    self._n = self._n + 1
    push_front(e, i)
  end
  local b = 5 * i
  e[b + STATE] = state
  e[b + EXP] = expires
end

function Store:claim(key)
  if type(key) ~= "string" then
    check_key("claim", key)
  end
  local t = now(self)
  local i = self._slot[key]
  if i then
    local e = self._e
    local b = 5 * i
    if e[b + EXP] > t then
      if e[NEXT] ~= i then
        unlink(e, b)
        push_front(e, i)
      end
      return false, e[b + STATE]
    end
    remove(self, i)
  end
  put(self, key, "in_flight", t + self._lease, t)
  return true
end

function Store:commit(key)
  if type(key) ~= "string" then
    check_key("commit", key)
  end
  local t = now(self)
  put(self, key, "seen", t + self._ttl, t)
  return true
end

function Store:release(key)
  check_key("release", key)
  local i = self._slot[key]
  if i and self._e[5 * i + STATE] == "in_flight" then
    remove(self, i)
  end
  return true
end

--- store:touch(key) -> true | false: renews a live in-flight claim for
-- another `lease` seconds; false when the key is not in flight or its lease
-- already ran out (a retry may have claimed it meanwhile).
function Store:touch(key)
  check_key("touch", key)
  local i = self._slot[key]
  if not i then
    return false
  end
  local t = now(self)
  local b = 5 * i
  local e = self._e
  if e[b + STATE] ~= "in_flight" or e[b + EXP] <= t then
    return false
  end
  e[b + EXP] = t + self._lease
  return true
end

--- "seen" | "in_flight" | nil (absent or expired); does not touch recency.
function Store:state(key)
  check_key("state", key)
  local i = self._slot[key]
  if i and self._e[5 * i + EXP] > now(self) then
    return self._e[5 * i + STATE]
  end
  return nil
end

--- store:evictions() -> how many handled ids the store evicted before their
-- ttl because it was full (each one a possible second dispatch).
function Store:evictions()
  return self._early
end

--- Wires the dispatcher's log (linq.webhooks does this) unless the store
-- was given its own `log` (or false).
function Store:_wire_log(fn)
  if self._log == nil then
    self._log = fn
  end
end

--- Number of entries held (expired ones not yet dropped included).
function Store:size()
  return self._n
end

function Store:clear()
  self._slot, self._e, self._free = {}, { false, false, 0, 0, 0 }, {}
  self._top, self._n = 0, 0
end

return M
