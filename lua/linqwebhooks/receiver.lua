--- A small plain-Lua webhook receiver (LuaSocket) for scripts and tools
-- without nginx: serves a `linq.webhooks` dispatcher on a loopback port.
--
--   local receiver = require "linqwebhooks.receiver"
--   receiver.serve{ hooks = hooks, host = "127.0.0.1", port = 8788, path = "/webhooks" }
--
-- or, driven from the caller's own loop:
--
--   local r = receiver.new{ hooks = hooks, port = 0 }   -- 0 = a free port
--   print(r.url)                                          -- http://127.0.0.1:PORT/webhooks
--   while running do r:step(0.1) end                     -- serves what arrives
--   r:close()
--
-- Many connections at once on one non-blocking select() loop
-- (linqwebhooks.http_server): a slow or idle client never delays another
-- delivery. One request per connection (`Connection: close`), each bounded by
-- `timeout` seconds; at most `max_connections` open connections (at the cap
-- the quietest one is closed). Meant for local development, tests and demos,
-- not for the open internet (put nginx + linqwebhooks there).
-- The raw body is read exactly (Content-Length, at most `max_body` bytes,
-- 413 beyond; no chunked bodies: 411), header names keep their case,
-- repeated headers become arrays, and the answer is `hooks:handle`'s status
-- and body. A delivery refused for its timestamp (timestamp_too_old/new)
-- logs an ERROR line with the measured clock skew.
local socket = require "socket"
local options = require "linqwebhooks.options"
local http_server = require "linqwebhooks.http_server"
local select_loop = require "linqwebhooks.select_loop"

local M = {}

M.MAX_HEAD = http_server.MAX_HEAD
M.MAX_HEADERS = http_server.MAX_HEADERS

local Receiver = {}
Receiver.__index = Receiver
Receiver.__tostring = function(r)
  return "linqwebhooks.receiver " .. (r._server and r.url or "(closed)")
end
M.Receiver = Receiver

local function check_hooks(v)
  local ok, f = pcall(function() return v.handle end)
  if ok and type(f) == "function" then
    return true
  end
  return false, "must be a linq.webhooks dispatcher (an object with a handle method)"
end

local function check_port(v)
  if v % 1 ~= 0 or v < 0 or v > 65535 then
    return false, "must be a whole number from 0 to 65535 (0 = any free port)"
  end
  return true
end

local function check_positive(v)
  if v ~= v or v <= 0 or v == math.huge then
    return false, "must be a number > 0"
  end
  return true
end

local function check_path(v)
  if v:sub(1, 1) ~= "/" or v:find("[%s?#]") then
    return false, "must start with '/' and contain no spaces, '?' or '#'"
  end
  return true
end

M.SCHEMA = {
  hooks = { types = { "table", "userdata" }, check = check_hooks },
  host = "string",
  port = { types = { "number" }, check = check_port },
  path = { types = { "string" }, check = check_path },
  max_body = { types = { "number" }, check = check_positive },
  timeout = { types = { "number" }, check = check_positive },
  max_connections = { types = { "number" }, check = function(v)
    if v % 1 ~= 0 or v < 1 or v > 512 then
      return false, "must be a whole number from 1 to 512"
    end
    return true
  end },
  log = { types = { "function", "boolean" } },
}

local DEFAULTS = { host = "127.0.0.1", port = 0, path = "/webhooks", max_body = 1024 * 1024,
                   timeout = 10, max_connections = 128 }

local function stdout_log(line)
  io.stdout:write("[", os.date("!%Y-%m-%dT%H:%M:%SZ"), "] ", line, "\n")
  io.stdout:flush()
end

local TEXT = { ["Content-Type"] = "text/plain; charset=utf-8" }

local function text(extra)
  local h = { ["Content-Type"] = TEXT["Content-Type"] }
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end

local function utc_stamp()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local SKEW = { timestamp_too_old = true, timestamp_too_new = true }

-- The delivery's signed timestamp (either header set), or nil.
local function header_timestamp(headers)
  for k, v in pairs(headers) do
    local l = k:lower()
    if (l == "webhook-timestamp" or l == "x-webhook-timestamp") and type(v) == "string" then
      local n = tonumber(v:match("^%s*(%d+)%s*$") or "")
      if n then
        return n
      end
    end
  end
end

--- A delivery whose signature may be fine but whose timestamp is outside the
-- tolerance: Linq does not retry 4xx, so say it loudly (reason and the
-- measured skew: positive = this clock is ahead of the sender's).
local function report_skew(self, err, headers)
  local skew = tonumber(err.skew)
  if not skew then
    local ts = header_timestamp(headers)
    skew = ts and (os.time() - ts) or nil
  end
  local line = string.format("ERROR webhook rejected: %s (clock skew %s s); "
    .. "Linq does not retry 4xx answers: check this host's clock (NTP)", err.reason,
    skew and string.format("%+d", math.floor(skew + 0.5)) or "unknown")
  self:_emit(line)
end

function Receiver:_emit(line)
  if self._log then
    pcall(self._log, line) -- a failing log function never changes the answer
  else
    io.stderr:write("[", utc_stamp(), "] linqwebhooks receiver: ", line, "\n")
    io.stderr:flush()
  end
end

-- Refuses what is not a delivery before its body is read.
local function on_head(self, req)
  if req.path ~= self.path then
    return 404, text(), "not found"
  end
  if req.method ~= "POST" then
    return 405, text{ Allow = "POST" }, "use POST"
  end
  if req.headers["transfer-encoding"] then
    return 411, text(), "send the body with Content-Length (no Transfer-Encoding)"
  end
  if req.headers["content-length"] == nil then
    return 411, text(), "Content-Length required"
  end
end

local function handle(self, req)
  local hooks = self._hooks
  if not hooks then
    return 503, text(), "receiver not ready (no hooks yet)"
  end
  local ok, res = pcall(hooks.handle, hooks, req.body, req.raw_headers)
  if not ok then
    io.stderr:write("[", utc_stamp(), "] linqwebhooks receiver: hooks:handle raised: ", tostring(res), "\n")
    return 500, text(), "internal error"
  end
  local err = res.err
  if type(err) == "table" and SKEW[err.reason] then
    report_skew(self, err, req.raw_headers)
  end
  return res.status, text(), res.body, res
end

local function log_line(self, req, status, res)
  if not self._log then
    return
  end
  local ev = type(res) == "table" and res.event or nil
  self._log(string.format("%s %s -> %d%s%s", req and req.method or "-",
    req and req.target or "-", status,
    ev and (" " .. ev.type .. " " .. ev.id) or "",
    type(res) == "table" and (res.duplicate and " (duplicate)" or
      (res.err and (" (" .. tostring(res.err.reason or res.err.kind) .. ")") or "")) or ""))
end

--- receiver.new{ hooks, host = "127.0.0.1", port = 0, path = "/webhooks",
--                max_body = 1 MiB, timeout = 10, max_connections = 128,
--                log = false | true | fn(line) }
-- Binds and listens; raises on bad options, returns nil, err when the
-- address cannot be bound. `hooks` may be given later with r:set_hooks.
-- log = true prints one "[2026-12-01T16:00:00Z] POST /webhooks -> 200 ..."
-- line per request on stdout; ERROR lines (clock skew) go to the log, or to
-- stderr (timestamped) when there is none.
function M.new(opts, level)
  level = (level or 1) + 1
  if type(opts) ~= "table" then
    error("linqwebhooks.receiver: options table expected, got " .. type(opts), level)
  end
  options.check("linqwebhooks.receiver", opts, M.SCHEMA, level)
  local host = opts.host or DEFAULTS.host
  local port = opts.port or DEFAULTS.port
  local path = opts.path or DEFAULTS.path
  local log = opts.log
  if log == true then
    log = stdout_log
  end
  local self = setmetatable({
    _hooks = opts.hooks,
    _max_body = opts.max_body or DEFAULTS.max_body,
    _timeout = opts.timeout or DEFAULTS.timeout,
    _log = log or nil,
    host = host,
    path = path,
    served = 0,
  }, Receiver)
  self._loop = select_loop.new{ log = function(msg)
    io.stderr:write("[", utc_stamp(), "] linqwebhooks receiver: ", msg, "\n")
  end }
  local server, err = http_server.listen(self._loop, {
    host = host,
    port = port,
    keep_alive = false,
    timeout = self._timeout,
    max_body = self._max_body,
    max_clients = opts.max_connections or DEFAULTS.max_connections,
    on_head = function(req) return on_head(self, req) end,
    handler = function(req) return handle(self, req) end,
    log = function(req, status, note) return log_line(self, req, status, note) end,
  })
  if not server then
    return nil, "receiver: cannot listen on " .. host .. ":" .. port .. ": " .. tostring(err)
  end
  self._server = server
  self.port = server.port
  local shown = host:find(":", 1, true) and ("[" .. host .. "]") or host
  self.url = "http://" .. shown .. ":" .. tostring(server.port) .. path
  return self
end

--- r:set_hooks(hooks): the dispatcher to answer with (until then: 503).
function Receiver:set_hooks(hooks)
  local ok, msg = check_hooks(hooks)
  if not ok then
    error("receiver:set_hooks: argument 'hooks' " .. msg, 2)
  end
  self._hooks = hooks
  return self
end

--- r:step(wait) -> true if at least one request was answered within `wait`
-- seconds (default 0: just poll), false if none was. Every open connection
-- makes progress in each step; none waits for another.
function Receiver:step(wait)
  if not self._server then
    error("receiver:step: receiver is closed", 2)
  end
  local l = self._server
  local before = l.served
  local deadline = socket.gettime() + (wait or 0)
  repeat
    self._loop:step(math.max(deadline - socket.gettime(), 0))
  until l.served ~= before or socket.gettime() >= deadline
  self.served = l.served
  return l.served ~= before
end

--- r:close(): stops listening (idempotent).
function Receiver:close()
  if self._server then
    self._server:close()
    self._loop:close_all()
    self._server = nil
  end
end

-- The signal primitives: linqwebhooks.process when built, else the core.
--- receiver.serve{ hooks, host, port = 0, path = "/webhooks", max_body, timeout, log = true }
-- Listens, prints "linqwebhooks receiver listening on <url>" and serves
-- until SIGTERM or SIGINT; then closes and returns true.
-- Returns nil, err when the address cannot be bound.
function M.serve(opts)
  if type(opts) ~= "table" then
    error("receiver.serve: options table expected, got " .. type(opts), 2)
  end
  local o = {}
  for k, v in pairs(opts) do
    o[k] = v
  end
  if o.log == nil then
    o.log = true
  end
  local r, err = M.new(o, 2)
  if not r then
    return nil, err
  end
  local sig = require "linqwebhooks.process"
  sig.signal_watch()
  io.stdout:write("linqwebhooks receiver listening on ", r.url, "\n")
  io.stdout:flush()
  local ok, err2 = pcall(function()
    while not sig.signal_pending() do
      r:step(0.25)
    end
  end)
  -- Put the previous handlers back and clear the flag: a later serve() works,
  -- a later SIGTERM ends the process as it did before.
  sig.signal_unwatch()
  r:close()
  if not ok then
    error(err2, 0)
  end
  io.stdout:write("linqwebhooks receiver stopped\n")
  io.stdout:flush()
  return true
end

return M
