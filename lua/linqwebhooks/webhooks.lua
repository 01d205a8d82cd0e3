--- Event dispatcher: `linq.webhooks{...}` verifies a delivery, decodes it into
-- an event, de-duplicates on the authenticated event id and runs the
-- registered handlers, answering with the HTTP status that makes Linq retry
-- exactly when it should.
local verifier = require "linqwebhooks.verifier"
local event = require "linqwebhooks.event"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local event_types = require "linqwebhooks.event_types"
local events = require "linqwebhooks.events"

local M = {}

local Hooks = {}
Hooks.__index = Hooks
Hooks.__tostring = function(h)
  return "linqwebhooks.webhooks (" .. h._count .. " handler(s))"
end
M.Hooks = Hooks

local KNOWN = {}
for _, t in ipairs(event_types) do
  KNOWN[t] = true
end

local function check_dedupe(v)
  if v == false or v == true then
    return true
  end
  for _, m in ipairs({ "claim", "commit", "release" }) do
    local ok, f = pcall(function() return v[m] end)
    if not ok or type(f) ~= "function" then
      return false, "must be a store with claim/commit/release methods (e.g. linq.store.memory{}), or false"
    end
  end
  return true
end

M.SCHEMA = {
  secret = "string",
  secrets = "table",
  secrets_file = "string", -- instead of secret(s): linqwebhooks.secrets_file, re-read on change
  endpoint = "string",     -- with secrets_file: that endpoint's secrets only
  tolerance = verifier.SCHEMA.tolerance,
  scheme = verifier.SCHEMA.scheme,
  clock = "function",
  dedupe = { types = { "table", "userdata", "boolean" }, check = check_dedupe },
  strict = "boolean",
}

--- linq.webhooks{ secret | secrets, tolerance, scheme, clock, dedupe, strict }
function M.new(opts, level)
  level = (level or 1) + 1
  if type(opts) ~= "table" then
    error("linq.webhooks: options table expected, got " .. type(opts), level)
  end
  options.check("linq.webhooks", opts, M.SCHEMA, level)
  if opts.secret == nil and opts.secrets == nil and opts.secrets_file == nil then
    error("linq.webhooks: option 'secret' (or 'secrets') is required", level)
  end
  local vopts = {}
  for _, k in ipairs({ "secret", "secrets", "tolerance", "scheme", "clock" }) do
    vopts[k] = opts[k]
  end
  local v
  if opts.secrets_file ~= nil or opts.endpoint ~= nil then
    v = require("linqwebhooks.secrets_file").verifier(opts, vopts, level, "linq.webhooks")
  else
    v = verifier.new(vopts, level, "linq.webhooks")
  end
  local store = opts.dedupe
  if store == nil or store == true then
    store = require("linqwebhooks.store.memory").new(nil, level)
  end
  return setmetatable({
    _verifier = v,
    _store = store or nil,
    _strict = opts.strict ~= false,
    _exact = {},    -- name -> array of entries (replaced, never mutated)
    _wild = {},     -- array of entries with .prefix ("" for "*")
    _onerr = {},
    _cache = {},    -- event type -> array of entries to run
    _ncache = 0,
    _count = 0,
  }, Hooks)
end

-- Entries: { name = registered name, fn = handler, once = bool, prefix = s|nil }.
-- Handler lists are copy-on-write so a dispatch in progress keeps iterating
-- the list it started with while handlers are added or removed.

-- Event names: "*", or lowercase dot-separated segments of [a-z0-9_]
-- ("message.received"), optionally ending in ".*" (a prefix wildcard). Under
-- `strict` (the default) an exact name must be in the catalogue; an unknown one
-- raises with the closest known names. Returns the wildcard prefix or nil.
local function check_name(self, what, name, level)
  if type(name) ~= "string" then
    error(what .. ": argument 'name' must be a string, got " .. type(name), level)
  end
  if name == "*" then
    return ""
  end
  if name == "" then
    error(what .. ": argument 'name' must not be empty", level)
  end
  if not events.well_formed(name) then
    if name:find("*", 1, true) then
      error(what .. ": bad event name pattern '" .. name:sub(1, 100)
        .. "': a wildcard is '*' or a prefix ending in '.*' (e.g. 'message.*')", level)
    end
    error(what .. ": bad event name '" .. name:sub(1, 100) .. "': lowercase segments of"
      .. " [a-z0-9_] separated by dots (e.g. 'message.received')", level)
  end
  if name:sub(-2) == ".*" then
    return name:sub(1, -2) -- "message.*" -> "message."
  end
  if self._strict and not KNOWN[name] then
    local near = events.suggest(name)
    local hint = ""
    if #near > 0 then
      hint = "did you mean '" .. table.concat(near, "' or '") .. "'? "
    end
    error(what .. ": unknown event type '" .. name .. "' (" .. hint .. "not in linq.EVENT_TYPES;"
      .. " use a wildcard, or linq.webhooks{ strict = false } to allow it)", level)
  end
  return nil
end

local function invalidate(self)
  if self._ncache > 0 then
    self._cache = {}
    self._ncache = 0
  end
end

local function copy_with(list, entry)
  local out = {}
  for i = 1, #list do
    out[i] = list[i]
  end
  out[#out + 1] = entry
  return out
end

local function add(self, what, name, fn, once)
  local prefix = check_name(self, what, name, 4)
  if type(fn) ~= "function" then
    -- callable tables are fine too
    local mt = getmetatable(fn)
    if not (type(mt) == "table" and mt.__call) then
      error(what .. ": argument 'fn' must be a function, got " .. type(fn), 3)
    end
  end
  local entry = { name = name, fn = fn, once = once, prefix = prefix }
  if prefix then
    self._wild = copy_with(self._wild, entry)
  else
    self._exact[name] = copy_with(self._exact[name] or {}, entry)
  end
  self._count = self._count + 1
  invalidate(self)
  return self
end

--- hooks:on(name, fn) -> hooks. `name` is an exact event type, a prefix
-- wildcard ending in ".*" or "*". `fn(event)` runs for each matching event.
function Hooks:on(name, fn)
  local h = add(self, "hooks:on", name, fn, false) -- not a tail call: error levels
  return h
end

--- hooks:once(name, fn) -> hooks: like on, removed when it first runs.
function Hooks:once(name, fn)
  local h = add(self, "hooks:once", name, fn, true)
  return h
end

local function without(list, pred)
  local out, removed = {}, 0
  for i = 1, #list do
    if pred(list[i]) then
      removed = removed + 1
    else
      out[#out + 1] = list[i]
    end
  end
  return out, removed
end

local function remove_where(self, name, pred)
  local removed
  if name == "*" or name:sub(-2) == ".*" then
    self._wild, removed = without(self._wild, function(e) return e.name == name and pred(e) end)
  else
    local list = self._exact[name]
    if not list then
      return
    end
    list, removed = without(list, pred)
    self._exact[name] = (#list > 0) and list or nil
  end
  if removed > 0 then
    self._count = self._count - removed
    invalidate(self)
  end
end

--- hooks:off(name, fn) -> hooks: removes fn's registrations under `name`
-- (the same string given to on/once); without fn, every handler of `name`.
function Hooks:off(name, fn)
  -- same name rules as on(): a typo raises instead of silently removing nothing
  check_name(self, "hooks:off", name, 3)
  if fn == nil then
    remove_where(self, name, function() return true end)
  else
    remove_where(self, name, function(e) return e.fn == fn end)
  end
  return self
end

--- hooks:on_error(fn) -> hooks. `fn(err, event)` receives every handler
-- failure; err is an error object (kind "handler", reason "handler_failed",
-- message, cause = the raised value, traceback, event_type).
function Hooks:on_error(fn)
  if type(fn) ~= "function" then
    error("hooks:on_error: argument 'fn' must be a function, got " .. type(fn), 2)
  end
  self._onerr = copy_with(self._onerr, fn)
  return self
end

--- The handlers for an event type, in run order: exact ones in registration
-- order, then matching wildcards in registration order. Cached per type.
local MAX_CACHE = 256

local function handlers_for(self, etype)
  local list = self._cache[etype]
  if list then
    return list
  end
  list = {}
  local exact = self._exact[etype]
  if exact then
    for i = 1, #exact do
      list[#list + 1] = exact[i]
    end
  end
  local wild = self._wild
  for i = 1, #wild do
    local p = wild[i].prefix
    if p == "" or (#etype > #p and etype:sub(1, #p) == p) then
      list[#list + 1] = wild[i]
    end
  end
  if self._ncache < MAX_CACHE then
    self._cache[etype] = list
    self._ncache = self._ncache + 1
  end
  return list
end

local traceback = debug.traceback

local function on_fail(e)
  return { cause = e, traceback = traceback("", 2):gsub("^\n", "") }
end

local function report(self, err, ev)
  local list = self._onerr
  for i = 1, #list do
    -- an error handler that raises must not break the answer to Linq
    pcall(list[i], err, ev)
  end
end

--- Removes one registration (a fired once handler). Kept out of dispatch's
-- loop: a closure there would stop LuaJIT from compiling the loop.
local function remove_entry(self, entry)
  remove_where(self, entry.name, function(e) return e == entry end)
end

-- tostring that cannot raise (a raised table may have a failing __tostring)
local function describe(v)
  local ok, s = pcall(tostring, v)
  return ok and type(s) == "string" and s or ("(a " .. type(v) .. ")")
end

--- Runs one handler entry; returns nil, or its error object.
local function run_entry(self, entry, ev)
  if entry.once then
    if entry.fired then
      return nil
    end
    entry.fired = true
    remove_entry(self, entry)
  end
  local ok, info = xpcall(entry.fn, on_fail, ev)
  if ok then
    return nil
  end
  local err = errors.new({
    kind = "handler",
    reason = "handler_failed",
    message = "handler for '" .. entry.name .. "' raised: " .. describe(info.cause),
    cause = info.cause,
    traceback = info.traceback,
    event_type = ev.type,
    event_id = ev.id,
  })
  report(self, err, ev)
  return err
end

--- Runs the handlers for ev; returns nil, or the first error object.
-- The first four run without a loop: a loop that turns once per delivery
-- gets blacklisted by LuaJIT's trace compiler, and with it the caller's loop.
local function dispatch(self, ev)
  local list = handlers_for(self, ev.type)
  local n = #list
  if n == 0 then
    return nil
  end
  local first = run_entry(self, list[1], ev)
  if n == 1 then
    return first
  end
  local e = run_entry(self, list[2], ev)
  first = first or e
  if n == 2 then
    return first
  end
  e = run_entry(self, list[3], ev)
  first = first or e
  if n == 3 then
    return first
  end
  e = run_entry(self, list[4], ev)
  first = first or e
  for i = 5, n do
    e = run_entry(self, list[i], ev)
    first = first or e
  end
  return first
end

local function check_handle_args(body, headers)
  if type(body) ~= "string" then
    error("hooks:handle: argument 'body' must be a string (the raw request body), got "
      .. type(body), 3)
  end
  if type(headers) ~= "table" then
    error("hooks:handle: argument 'headers' must be a table, got " .. type(headers), 3)
  end
end

-- Verifies (unless `info`, the verifier's result for this very body, is
-- given), decodes and claims the event id. Returns the final answer, or nil
-- and the event when it is claimed and must be dispatched (by complete).
local function admit(self, body, headers, info)
  if not info then
    local verr
    info, verr = self._verifier:verify(body, headers)
    if not info then
      return { status = 401, body = "verification failed: " .. tostring(verr.reason),
               err = verr, duplicate = false }
    end
  end
  local ev, derr = event.decode(body, info) -- the verification result is the delivery info
  if not ev then
    return { status = 400, body = "invalid event: " .. tostring(derr.reason),
             err = derr, duplicate = false }
  end
  local store = self._store
  if store then
    local claimed, state = store:claim(ev.id)
    if claimed == nil then
      local err = errors.new({ kind = "store", reason = "store_failed",
                               message = "dedupe store claim failed: " .. tostring(state) })
      return { status = 500, body = "dedupe store failed", event = ev, err = err,
               duplicate = false }
    elseif not claimed then
      if state == "in_flight" then
        return { status = 503, body = "duplicate in flight, retry later", event = ev,
                 duplicate = true }
      end
      return { status = 200, body = "duplicate", event = ev, duplicate = true }
    end
  end
  return nil, ev
end

-- Dispatches a claimed event, then commits the claim (success) or releases
-- it (a handler failed: Linq's retry must dispatch again).
local function complete(self, ev)
  local store = self._store
  -- (dispatch itself never raises: handlers run under xpcall, on_error
  -- handlers under pcall)
  local herr = dispatch(self, ev)
  if herr then
    if store then
      pcall(store.release, store, ev.id) -- a failing store must not hide the 500
    end
    return { status = 500, body = "handler failed", event = ev, err = herr, duplicate = false }
  end
  if store then
    local pok, committed, cerr = pcall(store.commit, store, ev.id)
    if not pok then
      -- a store that raises: release the claim so Linq's retry is not stuck
      -- on 503 until the lease ends
      cerr = committed
      committed = nil
      pcall(store.release, store, ev.id)
    end
    if not committed then
      -- handled; a retry may dispatch again (at-least-once)
      return { status = 200, body = "ok", event = ev, duplicate = false,
               err = errors.new({ kind = "store", reason = "store_failed",
                                  message = "dedupe store commit failed: " .. tostring(cerr) }) }
    end
  end
  return { status = 200, body = "ok", event = ev, duplicate = false }
end

--- hooks:handle(body, headers) -> { status, body, event, err, duplicate }
--   200 handled, or a duplicate of an id already handled (not re-dispatched)
--   401 verification failed (Linq does not retry 4xx: forgeries are not retried)
--   400 signed, but not a Linq event (err.reason "invalid_json")
--   500 a handler raised (the id is not marked seen, so Linq's retry dispatches
--       again), or the dedupe store failed
--   503 a duplicate of an id whose handlers are still running elsewhere
--       (duplicate = true; Linq retries later and then gets 200 or a dispatch)
function Hooks:handle(body, headers)
  check_handle_args(body, headers)
  local res, ev = admit(self, body, headers, nil)
  if res then
    return res
  end
  return complete(self, ev)
end

--- hooks:prepare(body, headers, info) -> res, run
-- The first half of handle, for callers that answer before dispatching
-- (openresty.serve{ quick_ack = true }) or verified the body themselves (a
-- body nginx spilled to a file, checked with verifier:verify_file; pass that
-- result as `info`). If the event is to be dispatched, res is { status =
-- 200, body = "accepted", event, duplicate = false } and run() dispatches,
-- commits or releases the claim and returns the final result, as handle
-- does; run must be called exactly once. Otherwise run is nil and res is the
-- final answer.
function Hooks:prepare(body, headers, info)
  check_handle_args(body, headers)
  if info ~= nil and type(info) ~= "table" then
    error("hooks:prepare: argument 'info' must be a verification result table, got "
      .. type(info), 2)
  end
  local res, ev = admit(self, body, headers, info)
  if res then
    return res
  end
  local done = false
  return { status = 200, body = "accepted", event = ev, duplicate = false }, function()
    if done then
      error("hooks:prepare: run() called twice for event " .. tostring(ev.id), 2)
    end
    done = true
    return complete(self, ev)
  end
end

--- hooks:verifier() -> the underlying linq.verifier object.
function Hooks:verifier()
  return self._verifier
end

--- hooks:store() -> the dedupe store, or nil when disabled.
function Hooks:store()
  return self._store
end

return M
