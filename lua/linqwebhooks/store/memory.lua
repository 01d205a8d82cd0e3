--- In-process de-duplication store: a bounded LRU with expiry, O(1) per
-- operation, with an injectable clock. `linq.store.memory{ max, ttl, lease, clock }`.
--
-- Implements the store interface documented in linqwebhooks.store
-- (store/init.lua): claim / commit / release, and touch (renews a live
-- claim's lease; false once it ran out). Handled ids are remembered for
-- `ttl` = 1800 s by default, which covers Linq's ~25-minute retry window.
--
-- This module's extra methods (not part of the interface): store:state(key)
-- -> "seen" | "in_flight" | nil, store:size(), store:clear().
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
}

--- linq.store.memory{ max = 10000, ttl = 1800, lease = 60, clock = os.time }
-- max: entries kept (least recently used evicted first); ttl: seconds a
-- "seen" id is remembered; lease: seconds an in-flight claim lasts; clock:
-- function returning "now" in seconds (tests inject a fake one).
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
    drop(self, tail)
    -- then drop expired entries from the cold end, and entries over max left
    -- by claims that have ended (each entry goes once: amortised O(1))
    local tail2 = e[PREV]
    while tail2 ~= 0 and (e[5 * tail2 + EXP] <= t
        or (self._n >= self._max and not live_claim(e, tail2, t))) do
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

--- Number of entries held (expired ones not yet dropped included).
function Store:size()
  return self._n
end

function Store:clear()
  self._slot, self._e, self._free = {}, { false, false, 0, 0, 0 }, {}
  self._top, self._n = 0, 0
end

return M
