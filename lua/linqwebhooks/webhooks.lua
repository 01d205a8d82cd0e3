--- Event dispatcher: `linq.webhooks{...}` verifies a delivery, decodes it into
-- an event, de-duplicates on the authenticated event id and runs the
-- registered handlers, answering with the HTTP status that makes Linq retry
-- exactly when it should.
local verifier = require "linqwebhooks.verifier"
local event = require "linqwebhooks.event"
local errors = require "linqwebhooks.errors"
local options = require "linqwebhooks.options"
local events = require "linqwebhooks.events"
local stores = require "linqwebhooks.store"
local hdrs = require "linqwebhooks.headers"

local M = {}

local Hooks = {}
Hooks.__index = Hooks
Hooks.__tostring = function(h)
  return "linqwebhooks.webhooks (" .. h._count .. " handler(s))"
end
M.Hooks = Hooks

local KNOWN = events.SET
local store_key = stores.key

local function check_dedupe(v)
  if v == false or v == true or stores.is_store(v) then
    return true
  end
  return false, "must be a store with claim/commit/release methods (e.g. linq.store.memory{}), or false"
end

--- The default `log`: nginx's error log inside OpenResty, else stderr.
local function default_log(level, message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.log) == "function" and ngx.ERR then
    ngx.log(level == "error" and ngx.ERR or ngx.WARN, "linqwebhooks: ", message)
  else
    io.stderr:write("linqwebhooks: ", level, ": ", message, "\n")
  end
end

local function no_log() end

M.SCHEMA = {
  secret = "string",
  secrets = "table",
  secrets_file = "string", -- instead of secret(s): linqwebhooks.secrets_file, re-read on change
  endpoint = "string",     -- with secrets_file: that endpoint's secrets only
  tolerance = verifier.SCHEMA.tolerance,
  scheme = verifier.SCHEMA.scheme,
  clock = "function",
  dedupe = { types = { "table", "userdata", "boolean" }, check = check_dedupe },
  inbox = { types = { "table", "userdata" },
            check = function(v) return require("linqwebhooks.inbox").is_inbox(v) end },
  strict = "boolean",
  log = { types = { "function", "boolean" }, check = function(v)
    return v ~= true, "must be a function(level, message), or false"
  end },
}

--- linq.webhooks{ secret | secrets, tolerance, scheme, clock, dedupe, strict, log }
-- log(level, message): level "warn" or "error"; for what the HTTP answer
-- does not show (a handler outran its claim's lease, a failed commit, a
-- memory store forgetting ids before their ttl) or an operator must fix (a
-- full or failing dedupe store, a secrets file that stopped reloading).
-- Default: ngx.log in OpenResty, else stderr; false silences it.
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
  local log = opts.log
  if log == nil then
    log = default_log
  elseif log == false then
    log = no_log
  end
  local v
  if opts.secrets_file ~= nil or opts.endpoint ~= nil then
    -- a reload that fails (the file became unreadable, invalid, or lists
    -- more secrets than a verifier holds) keeps the last good secrets and is
    -- logged once per change of the file
    v = require("linqwebhooks.secrets_file").verifier({
      secrets_file = opts.secrets_file, endpoint = opts.endpoint,
      on_error = function(err)
        pcall(log, "error", tostring(err.message) .. " (still verifying with the last good"
          .. " secrets: deliveries signed with a newer secret are answered 401)")
      end,
    }, vopts, level, "linq.webhooks")
  else
    v = verifier.new(vopts, level, "linq.webhooks")
  end
  if opts.inbox ~= nil and opts.dedupe ~= nil then
    error("linq.webhooks: options 'inbox' and 'dedupe' are mutually exclusive"
      .. " (the inbox de-duplicates)", level)
  end
  local store = opts.dedupe
  if opts.inbox ~= nil then
    store = false
  elseif store == nil or store == true then
    store = require("linqwebhooks.store.memory").new(nil, level)
  end
  local memory = package.loaded["linqwebhooks.store.memory"] -- loaded if store is one
  if store and type(memory) == "table" and getmetatable(store) == memory.Store then
    -- a memory store without a `log` of its own warns through ours when it
    -- forgets handled ids before their ttl
    store:_wire_log(log)
  end
  local has_touch = false
  if store then
    local ok, f = pcall(function() return store.touch end)
    has_touch = ok and type(f) == "function"
  end
  return setmetatable({
    _verifier = v,
    _store = store or nil,
    _touch = has_touch, -- the store can renew a claim's lease
    _clock = opts.clock or os.time,
    _log = log,
    _inbox = opts.inbox,
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
    local base = name:sub(1, -3)
    if self._strict and not events.is_prefix(base) then
      local near = events.suggest_prefix(base)
      local hint = ""
      if #near > 0 then
        hint = "did you mean '" .. table.concat(near, ".*' or '") .. ".*'? "
      end
      error(what .. ": wildcard '" .. name .. "' matches no event type (" .. hint
        .. "no type in linq.EVENT_TYPES starts with '" .. base .. ".'; use '*', or"
        .. " linq.webhooks{ strict = false } to allow it)", level)
    end
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

-- Event ids in log lines are cut to this many bytes (ids can be 70 KB).
local function short_id(id)
  id = tostring(id)
  if #id > 128 then
    return id:sub(1, 128) .. "..."
  end
  return id
end

-- Writes a log line; a raising log function must not break the answer.
local function log(self, level, message)
  pcall(self._log, level, message)
end

--- Renews the claim on `key` after a handler that took a second or more;
-- returns false (and logs a warning) when the claim had already lapsed, so
-- the caller stops renewing.
local function renew(self, key, ev)
  local store = self._store
  local ok, held = pcall(store.touch, store, key)
  if ok and held == true then
    return true
  end
  log(self, "warn", "handlers of event " .. short_id(ev.id) .. " (" .. tostring(ev.type)
    .. ") outran the dedupe store's claim lease"
    .. (ok and "" or (" (touch failed: " .. tostring(held) .. ")"))
    .. ": a retry may have dispatched this event a second time while it ran; raise the"
    .. " store's lease or move long work out of the handler")
  return false
end

--- Runs the handlers for ev in order; returns nil, or an array of the error
-- objects of the handlers that raised. With `key` (a claimed event) and a
-- store that has touch, the claim is renewed after every handler that took
-- a second or more on the dispatcher's clock.
-- A plain loop: the former hand-unrolled first four iterations did not pay
-- (bench/dispatch.lua, LuaJIT, hooks:handle: 11.4-11.9 us/op with this loop,
-- 12.9-14.4 us/op unrolled, same machine and run).
local function dispatch(self, ev, key)
  local list = handlers_for(self, ev.type)
  local errs
  local renewing = key ~= nil and self._touch
  local clock = self._clock
  local last = renewing and clock()
  for i = 1, #list do
    local err = run_entry(self, list[i], ev)
    if err then
      if errs then
        errs[#errs + 1] = err
      else
        errs = { err }
      end
    end
    if renewing then
      local t = clock()
      if type(t) == "number" and type(last) == "number" and t - last >= 1 then
        last = t
        renewing = renew(self, key, ev)
      end
    end
  end
  return errs
end

local function check_handle_args(body, headers)
  if type(body) ~= "string" then
    error("hooks:handle: argument 'body' must be a string (the raw request body), got "
      .. type(body), 3)
  end
  headers = hdrs.normalize(headers) -- a header object (:get) becomes a table
  if type(headers) ~= "table" then
    error("hooks:handle: argument 'headers' must be a table, got " .. type(headers), 3)
  end
  return headers
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
  if self._inbox then
    return require("linqwebhooks.inbox").accept(self._inbox, ev, body, headers, info)
  end
  local store = self._store
  if store then
    local key = store_key(ev.id)
    local claimed, state, full = store:claim(key)
    if claimed == nil and full == "full" then
      local err = errors.new({ kind = "store", reason = "store_full", logged = true,
                               message = "dedupe store full: " .. tostring(state) })
      log(self, "error", "cannot claim event " .. short_id(ev.id) .. ": " .. tostring(err.message)
        .. " (answered 503: Linq retries)")
      return { status = 503, body = "dedupe store full, retry later", event = ev, err = err,
               duplicate = false }
    elseif claimed == nil then
      -- logged = true: logged here (openresty.serve need not log it again)
      local err = errors.new({ kind = "store", reason = "store_failed", logged = true,
                               message = "dedupe store claim failed: " .. tostring(state) })
      log(self, "error", "cannot claim event " .. short_id(ev.id) .. " (" .. tostring(ev.type)
        .. "): " .. err.message .. " (answered 503: Linq retries)")
      return { status = 503, body = "dedupe store unavailable, retry later", event = ev,
               err = err, duplicate = false }
    elseif not claimed then
      if state == "in_flight" then
        return { status = 503, body = "duplicate in flight, retry later", event = ev,
                 duplicate = true }
      end
      return { status = 200, body = "duplicate", event = ev, duplicate = true }
    end
    return nil, ev, key
  end
  return nil, ev
end

-- Dispatches a claimed event (key: its store key), then commits the claim
-- (success) or releases it (a handler failed: Linq's retry must dispatch
-- again).
local function complete(self, ev, key)
  local store = self._store
  -- (dispatch itself never raises: handlers run under xpcall, on_error
  -- handlers and log under pcall)
  local errs = dispatch(self, ev, key)
  local herr = errs and errs[1]
  if herr then
    if store then
      pcall(store.release, store, key) -- a failing store must not hide the 500
    end
    return { status = 500, body = "handler failed", event = ev, err = herr, duplicate = false }
  end
  if store then
    local pok, committed, cerr = pcall(store.commit, store, key)
    if not pok then
      -- a store that raises: release the claim so Linq's retry is not stuck
      -- on 503 until the lease ends
      cerr = committed
      committed = nil
      pcall(store.release, store, key)
    end
    if not committed then
      -- handled; a retry may dispatch again (at-least-once)
      local err = errors.new({ kind = "store", reason = "store_failed",
                               message = "dedupe store commit failed: " .. tostring(cerr) })
      log(self, "warn", "event " .. short_id(ev.id) .. " (" .. tostring(ev.type) .. ") was handled"
        .. " but not marked handled: " .. err.message .. " (answered 200; a redelivery of it"
        .. " would run the handlers again)")
      return { status = 200, body = "ok", event = ev, duplicate = false, err = err }
    end
  end
  return { status = 200, body = "ok", event = ev, duplicate = false }
end

--- hooks:handle(body, headers) -> { status, body, event, err, duplicate }
--   200 handled, or a duplicate of an id already handled (not re-dispatched)
--   401 verification failed (Linq does not retry 4xx: forgeries are not retried)
--   400 signed, but not a Linq event (err.reason "invalid_json")
--   500 a handler raised (the id is not marked seen, so Linq's retry dispatches
--       again)
--   503 a duplicate of an id whose handlers are still running elsewhere
--       (duplicate = true; Linq retries later and then gets 200 or a dispatch),
--       or the dedupe store is full (err.reason "store_full", logged) or
--       unreachable (claim returned nil, err; err.reason "store_failed",
--       logged at error level)
--   A 200 whose commit failed carries err (reason "store_failed", logged at
--   warning level): handled, but a redelivery would dispatch again.
-- With an inbox (linq.webhooks{ inbox = ... }) no handler runs here: 200
-- "stored" (or "duplicate", duplicate = true) once the delivery is persisted,
-- 503 when it could not be (Linq retries), 401/400 as above.
function Hooks:handle(body, headers)
  headers = check_handle_args(body, headers)
  local res, ev, key = admit(self, body, headers, nil)
  if res then
    return res
  end
  return complete(self, ev, key)
end

--- hooks:_handle(body, headers, info): handle for a caller that may have
-- verified the body itself (info, as for prepare), without prepare's
-- closure: creating a closure per request stops LuaJIT's trace compiler
-- (openresty.serve without quick_ack uses this).
function Hooks:_handle(body, headers, info)
  check_handle_args(body, headers)
  local res, ev, key = admit(self, body, headers, info)
  if res then
    return res
  end
  return complete(self, ev, key)
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
  headers = check_handle_args(body, headers)
  if info ~= nil and type(info) ~= "table" then
    error("hooks:prepare: argument 'info' must be a verification result table, got "
      .. type(info), 2)
  end
  local res, ev, key = admit(self, body, headers, info)
  if res then
    return res
  end
  local done = false
  return { status = 200, body = "accepted", event = ev, duplicate = false }, function()
    if done then
      error("hooks:prepare: run() called twice for event " .. tostring(ev.id), 2)
    end
    done = true
    return complete(self, ev, key)
  end
end

--- hooks:dispatch(event) -> ok, errs
-- Runs the handlers registered for event.type in order, as handle does
-- after verification and de-duplication, neither of which happens here
-- (for events that were verified and stored before, e.g. by an inbox
-- worker). ok is true when every handler returned; otherwise false and
-- errs, an array of the error objects of the handlers that raised (each
-- also went to on_error). `event` is a table with a string `type` (an
-- event from event.decode or verifier:unwrap).
function Hooks:dispatch(ev)
  if type(ev) ~= "table" or type(ev.type) ~= "string" then
    error("hooks:dispatch: argument 'event' must be an event (a table with a string 'type'), got "
      .. type(ev), 2)
  end
  local errs = dispatch(self, ev, nil)
  if errs then
    return false, errs
  end
  return true
end

--- hooks:work{...} -> stats: runs the handlers of the inbox's deliveries
-- (see lua/linqwebhooks/inbox/worker.lua).
function Hooks:work(opts)
  if not self._inbox then
    error("hooks:work: this dispatcher has no inbox (linq.webhooks{ inbox = ... })", 2)
  end
  local s = require("linqwebhooks.inbox.worker").run(self, self._inbox, opts, 2)
  return s
end

--- hooks:heartbeat() -> true | false | nil, err: inside a handler run by
-- hooks:work, renews the delivery's lease (false: another worker took it over).
function Hooks:heartbeat()
  local ok, err = require("linqwebhooks.inbox.worker").heartbeat(self)
  return ok, err
end

--- hooks:inbox() -> the inbox, or nil.
function Hooks:inbox()
  return self._inbox
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
