--- linqwebhooks.emulator: a local stand-in for the Linq Partner API v3 webhook
-- endpoints that also delivers signed events the way Linq does.
--
--   require("linqwebhooks.emulator").serve{ host = "127.0.0.1", port = 8787, api_key = "test_key" }
--   local emu = require("linqwebhooks.emulator").spawn{ api_key = "test_key" }
--   -- emu.url, emu.api_url, emu.pid, emu.stop()
--
-- One process, one socket.select() loop (linqwebhooks.select_loop): HTTP
-- clients (linqwebhooks.http_server) and outgoing deliveries are non-blocking
-- actors, retries are timers. Inbound connections and in-flight deliveries are
-- capped so the process never runs out of select() descriptors.
local sys = require "linqwebhooks.process"
local options = require "linqwebhooks.options"
local json = require "linqwebhooks.json"
local socket = require "socket"
local util = require "linqwebhooks.emulator.util"
local loop_mod = require "linqwebhooks.select_loop"
local http = require "linqwebhooks.http_server"
local api = require "linqwebhooks.emulator.api"
local state_mod = require "linqwebhooks.emulator.state"
local delivery_mod = require "linqwebhooks.emulator.delivery"
local samples = require "linqwebhooks.emulator.samples"
local process = require "linqwebhooks.emulator.process"

local M = {}

M.DEFAULT_VERSION = "2026-02-03"
M.MAX_CONNECTIONS = 256

local function positive(v)
  if v > 0 and v < 1e9 then
    return true
  end
  return false, "must be a positive number of seconds"
end

local function seconds_from_zero(v)
  if v >= 0 and v < 1e9 then
    return true
  end
  return false, "must be a number of seconds >= 0"
end

-- check: a whole number from 1 to max
local function count_to(max)
  local msg = "must be a whole number from 1 to " .. max
  return function(v)
    if v >= 1 and v <= max and v == math.floor(v) then
      return true
    end
    return false, msg
  end
end

local DELIVERY_SCHEMA = {
  attempts = { types = { "number" }, check = count_to(100) },
  base_delay = { types = { "number" }, check = seconds_from_zero },
  max_delay = { types = { "number" }, check = seconds_from_zero },
  timeout = { types = { "number" }, check = positive },
  max_in_flight = { types = { "number" }, check = count_to(512) },
  ca_file = "string",
  insecure = "boolean",
}

local SERVE_SCHEMA = {
  host = "string",
  port = { types = { "number" }, check = function(v)
    if v >= 0 and v <= 65535 and v == math.floor(v) then
      return true
    end
    return false, "must be a port number (0 = any free port)"
  end },
  api_key = { types = { "string" }, check = function(v)
    if v ~= "" and not v:find("%s") then
      return true
    end
    return false, "must be a non-empty token without whitespace"
  end },
  state_file = "string",
  partner_id = "string",
  delivery = "table",
  client_timeout = { types = { "number" }, check = positive },
  max_body = { types = { "number" }, check = positive },
  max_connections = { types = { "number" }, check = count_to(512) },
  quiet = "boolean",
  verbose = "boolean",
  watch_pid = { types = { "number" }, check = function(v)
    if v > 1 and v == math.floor(v) then
      return true
    end
    return false, "must be a process id"
  end },
}

local SPAWN_ONLY = {
  interpreter = "string",
  startup_timeout = { types = { "number" }, check = positive },
  log_file = "string",
}

local function check_serve(what, opts, level)
  options.check(what, opts, SERVE_SCHEMA, level + 1)
  if opts.delivery then
    options.check(what .. " delivery", opts.delivery, DELIVERY_SCHEMA, level + 1)
  end
end

--- Builds the envelope body for one subscription (webhook_version from its URL).
local function envelope(ev, sub)
  local u = util.parse_url(sub.target_url)
  local version = util.query_param(u and u.query, "version") or M.DEFAULT_VERSION
  local data = ev.data or samples.data(ev.event_type, version, ev.phone_number)
  return version, assert(json.encode({
    api_version = "v3",
    webhook_version = version,
    event_type = ev.event_type,
    event_id = ev.event_id,
    created_at = ev.created_at,
    trace_id = ev.trace_id,
    partner_id = ev.partner_id,
    data = data,
  }))
end

local function matches(sub, ev)
  if not sub.is_active then
    return false
  end
  local subscribed = false
  for _, t in ipairs(sub.subscribed_events) do
    if t == ev.event_type then
      subscribed = true
      break
    end
  end
  if not subscribed then
    return false
  end
  if sub.phone_numbers then
    for _, p in ipairs(sub.phone_numbers) do
      if p == ev.phone_number then
        return true
      end
    end
    return false
  end
  return true
end

--- Runs the emulator in this process until SIGTERM/SIGINT. Returns true after a
-- clean stop (flushes the state file, closes the sockets); nil, err when the
-- state file is unreadable or the port cannot be bound; raises on bad options.
-- Options (strict):
--   api_key (required)   bearer token the API accepts
--   host = "127.0.0.1", port = 8787 (0 = any free port, printed)
--   state_file           JSON file keeping subscriptions (and their secrets,
--                        mode 0600) across restarts; rewritten atomically
--   partner_id           envelope partner_id (default a fixed UUID)
--   delivery = { attempts = 10, base_delay = 3, max_delay = 900, timeout = 10,
--                max_in_flight = 128, ca_file = nil, insecure = false }
--                        retry n waits min(base_delay * 2^(n-1), max_delay) s;
--                        at most max_in_flight attempts at once (the rest wait
--                        in a queue); ca_file / insecure: TLS for https://
--                        targets (insecure = true skips certificate checks)
--   client_timeout = 30  seconds a client may take to send a request / stay idle
--   max_body = 1048576   larger request bodies get 413
--   max_connections = 256  inbound connections at once; at the cap the
--                        quietest one is closed so a new client is served
--   verbose = false      log requests and delivery attempts to stderr
--   quiet = false        no "stopped" line on stderr at exit
--   watch_pid            exit when this process is gone (spawn sets it)
function M.serve(opts)
  if type(opts) ~= "table" then
    error("linqwebhooks.emulator.serve: options table expected, got " .. type(opts), 2)
  end
  check_serve("linqwebhooks.emulator.serve", opts, 2)
  if not opts.api_key then
    error("linqwebhooks.emulator.serve: option 'api_key' is required", 2)
  end
  local host = opts.host or "127.0.0.1"
  local port = opts.port or 8787
  local partner_id = opts.partner_id or "7ac8224b-c41a-54fb-96ed-e28a94f97ff6"
  local sok, state = pcall(state_mod.new, opts.state_file)
  if not sok then
    return nil, "linqwebhooks.emulator.serve: " .. tostring(state)
  end
  local logger
  if opts.verbose then
    logger = function(msg)
      io.stderr:write(os.date("!%H:%M:%S "), msg, "\n")
    end
  end
  local lp = loop_mod.new{ log = function(msg)
    io.stderr:write(os.date("!%H:%M:%S "), "linqwebhooks emulator: ", msg, "\n")
  end }
  local delivery = delivery_mod.new(lp, opts.delivery, state, logger)

  local function save()
    local ok, err = state:save()
    if not ok then
      io.stderr:write("linqwebhooks emulator: ", err, "\n")
    end
  end
  save()

  local ctx = {
    api_key = opts.api_key,
    state = state,
    save = save,
    deliveries = function() return delivery:entries() end,
    clear_deliveries = function() delivery:clear() end,
    on_delete = function(sub) delivery:cancel(sub.id) end,
  }
  function ctx.trigger(event_type, data, phone)
    local ev = {
      event_type = event_type,
      event_id = util.uuid4(),
      created_at = util.rfc3339(util.now(), 9),
      trace_id = util.trace_id(),
      partner_id = partner_id,
      data = data,
      phone_number = phone,
    }
    local ids = {}
    for _, sub in ipairs(state.list) do
      if matches(sub, ev) then
        local version, body = envelope(ev, sub)
        -- message.edited exists only in the 2026-02-03 payload version.
        if event_type ~= "message.edited" or version ~= "2025-01-01" then
          delivery:submit(sub, ev.event_id, event_type, body)
          ids[#ids + 1] = sub.id
        end
      end
    end
    return {
      event_id = ev.event_id,
      event_type = event_type,
      matched = #ids,
      subscription_ids = json.array(ids),
    }
  end

  local listener, err = http.listen(lp, {
    host = host,
    port = port,
    handler = api.handler(ctx),
    on_error = api.transport_error,
    timeout = opts.client_timeout or 30,
    max_body = opts.max_body or http.MAX_BODY,
    max_clients = opts.max_connections or M.MAX_CONNECTIONS,
    log = logger and function(req, status)
      logger((req and (req.method .. " " .. req.path) or "-") .. " -> " .. tostring(status))
    end,
  })
  if not listener then
    return nil, "linqwebhooks.emulator.serve: " .. err
  end
  sys.signal_watch()
  local shown = host:find(":", 1, true) and ("[" .. host .. "]") or host
  io.stdout:write("linqwebhooks emulator listening on http://", shown, ":", listener.port, "\n")
  io.stdout:flush()
  local next_watch = socket.gettime() + 1
  while not sys.signal_pending() do
    lp:step(0.25)
    if opts.watch_pid and socket.gettime() >= next_watch then
      next_watch = socket.gettime() + 1
      if not process.alive(opts.watch_pid) then
        break -- the process that spawned us is gone: do not linger as an orphan
      end
    end
  end
  -- Clean stop: stop accepting, close every connection, flush state.
  local why = sys.signal_pending() or "parent exited"
  sys.signal_unwatch() -- previous handlers back, flag cleared: serve() can run again
  listener:close(lp)
  lp:close_all()
  save()
  if not opts.quiet then
    io.stderr:write("linqwebhooks emulator: stopped (", why, ")\n")
  end
  io.stdout:flush()
  return true
end

-------------------------------------------------------------------------------
-- spawn: run serve() in a child process

--- Starts the emulator as a child process and waits (bounded) until it
-- listens. Takes serve()'s options (port defaults to 0 = a free port,
-- api_key to "test_key") plus interpreter (default: "luajit" under LuaJIT,
-- else "lua5.4"), startup_timeout (seconds, default 15) and log_file (the
-- child's stdout+stderr; default a temp file removed by stop()).
-- Returns { url, api_url, api_key, pid, log_file, output(), stop() }.
-- stop() sends SIGTERM, waits up to 10 s for the child to exit (then sends
-- SIGKILL and returns false) and returns true; calling it again is a no-op.
-- Raises if the child does not come up (with the child's output).
function M.spawn(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("linqwebhooks.emulator.spawn: options table expected, got " .. type(opts), 2)
  end
  local serve_opts, spawn_opts = {}, {}
  for k, v in pairs(opts) do
    if SPAWN_ONLY[k] then
      spawn_opts[k] = v
    else
      serve_opts[k] = v
    end
  end
  options.check("linqwebhooks.emulator.spawn", spawn_opts, SPAWN_ONLY, 2)
  check_serve("linqwebhooks.emulator.spawn", serve_opts, 2)
  if serve_opts.port == nil then
    serve_opts.port = 0
  end
  if serve_opts.api_key == nil then
    serve_opts.api_key = "test_key"
  end
  if serve_opts.quiet == nil then
    serve_opts.quiet = true
  end
  if serve_opts.watch_pid == nil then
    serve_opts.watch_pid = sys.getpid()
  end
  local child, out = process.spawn({
    code = "local ok, err = require('linqwebhooks.emulator').serve(" .. util.serialize(serve_opts)
      .. ") if not ok then io.stderr:write(tostring(err), '\\n') end os.exit(ok and 0 or 1, true)",
    ready = "linqwebhooks emulator listening on (http://%S+)\n",
    interpreter = spawn_opts.interpreter,
    timeout = spawn_opts.startup_timeout,
    log_file = spawn_opts.log_file,
  })
  if not child then
    error("linqwebhooks.emulator.spawn: emulator did not start: " .. out:sub(1, 2000), 2)
  end
  return {
    url = child.match,
    api_url = child.match .. "/api/partner",
    api_key = serve_opts.api_key,
    pid = child.pid,
    log_file = child.log_file,
    output = child.output,
    stop = child.stop,
  }
end

return M
