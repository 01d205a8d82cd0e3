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
-- One connection at a time, one request per connection (`Connection: close`),
-- each bounded by `timeout` seconds: meant for local development, tests and
-- demos, not for the open internet (put nginx + linqwebhooks there).
-- The raw body is read exactly (Content-Length, at most `max_body` bytes,
-- 413 beyond; no chunked bodies: 411), header names keep their case,
-- repeated headers become arrays, and the answer is `hooks:handle`'s status
-- and body.
local socket = require "socket"
local options = require "linqwebhooks.options"

local M = {}

M.MAX_HEAD = 16 * 1024
M.MAX_HEADERS = 100

local Receiver = {}
Receiver.__index = Receiver
Receiver.__tostring = function(r)
  return "linqwebhooks.receiver " .. (r._server and r.url or "(closed)")
end
M.Receiver = Receiver

local REASONS = {
  [100] = "Continue", [200] = "OK", [202] = "Accepted", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [411] = "Length Required",
  [413] = "Content Too Large", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [503] = "Service Unavailable",
  [505] = "HTTP Version Not Supported",
}

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
  log = { types = { "function", "boolean" } },
}

local DEFAULTS = { host = "127.0.0.1", port = 0, path = "/webhooks", max_body = 1024 * 1024,
                   timeout = 10 }

local function stdout_log(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

--- receiver.new{ hooks, host = "127.0.0.1", port = 0, path = "/webhooks",
--                max_body = 1 MiB, timeout = 10, log = false | fn(line) }
-- Binds and listens; raises on bad options, returns nil, err when the
-- address cannot be bound. `hooks` may be given later with r:set_hooks.
function M.new(opts, level)
  level = (level or 1) + 1
  if type(opts) ~= "table" then
    error("linqwebhooks.receiver: options table expected, got " .. type(opts), level)
  end
  options.check("linqwebhooks.receiver", opts, M.SCHEMA, level)
  local host = opts.host or DEFAULTS.host
  local port = opts.port or DEFAULTS.port
  local server, err = socket.bind(host, port)
  if not server then
    return nil, "receiver: cannot listen on " .. host .. ":" .. port .. ": " .. tostring(err)
  end
  server:settimeout(0)
  local _, bound = server:getsockname()
  local path = opts.path or DEFAULTS.path
  local shown = host:find(":", 1, true) and ("[" .. host .. "]") or host
  local log = opts.log
  if log == true then
    log = stdout_log
  end
  return setmetatable({
    _server = server,
    _hooks = opts.hooks,
    _max_body = opts.max_body or DEFAULTS.max_body,
    _timeout = opts.timeout or DEFAULTS.timeout,
    _log = log or nil,
    host = host,
    port = tonumber(bound),
    path = path,
    url = "http://" .. shown .. ":" .. tostring(bound) .. path,
    served = 0,
  }, Receiver)
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

local function response(status, body, extra)
  body = body or ""
  local lines = { "HTTP/1.1 " .. status .. " " .. (REASONS[status] or "Status"),
                  "Content-Type: text/plain; charset=utf-8",
                  "Content-Length: " .. #body,
                  "Connection: close" }
  if extra then
    lines[#lines + 1] = extra
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

--- Reads from a non-blocking socket until `done(buf)` says stop, the peer
-- closes, `limit` bytes are buffered, or the deadline passes.
-- Returns buf, nil | buf, "closed" | "timeout" | "too_large".
local function read_until(sock, buf, deadline, limit, done)
  while not done(buf) do
    if #buf > limit then
      return buf, "too_large"
    end
    local data, err, partial = sock:receive(8192)
    local chunk = data or partial
    if chunk and chunk ~= "" then
      buf = buf .. chunk
    elseif err == "closed" then
      return buf, "closed"
    elseif err == "timeout" then
      local left = deadline - socket.gettime()
      if left <= 0 then
        return buf, "timeout"
      end
      socket.select({ sock }, nil, math.min(left, 0.5))
    elseif err then
      return buf, "closed"
    end
  end
  return buf, nil
end

--- Parses the head into method, target, headers (names as received;
-- repeated names, in any case, become arrays under the first spelling).
local function parse_head(head)
  local line, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  if not line then
    line, rest = head, ""
  end
  local method, target, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then
    return nil, 400, "malformed request line"
  end
  if version ~= "1.1" and version ~= "1.0" then
    return nil, 505, "HTTP/1.x only"
  end
  local headers, spelling, n = {}, {}, 0
  if rest ~= "" then
    for hl in (rest .. "\r\n"):gmatch("(.-)\r\n") do
      local name, value = hl:match("^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
      if not name or value:find("[%z\1-\8\10-\31\127]") then
        return nil, 400, "malformed header line"
      end
      n = n + 1
      if n > M.MAX_HEADERS then
        return nil, 431, "too many headers"
      end
      local lower = name:lower()
      local key = spelling[lower]
      if not key then
        spelling[lower] = name
        headers[name] = value
      else
        local cur = headers[key]
        if type(cur) == "table" then
          cur[#cur + 1] = value
        else
          headers[key] = { cur, value }
        end
      end
    end
  end
  return { method = method, target = target, version = version, headers = headers,
           lower = spelling }
end

local function header(req, lname)
  local key = req.lower[lname]
  return key and req.headers[key] or nil
end

--- Serves one accepted connection; returns status, request (or nil), result.
local function serve_conn(self, sock)
  local deadline = socket.gettime() + self._timeout
  sock:settimeout(0)
  local buf, err = read_until(sock, "", deadline, M.MAX_HEAD, function(b)
    return b:find("\r\n\r\n", 1, true) ~= nil
  end)
  local e = buf:find("\r\n\r\n", 1, true)
  if not e then
    if err == "too_large" then
      return 431, nil, nil, "request header block larger than 16 KiB"
    elseif err == "timeout" then
      return 408, nil, nil, "request head not received in time"
    end
    return nil -- peer went away
  end
  if e - 1 > M.MAX_HEAD then
    return 431, nil, nil, "request header block larger than 16 KiB"
  end
  local req, status, msg = parse_head(buf:sub(1, e - 1))
  if not req then
    return status, nil, nil, msg
  end
  local rest = buf:sub(e + 4)
  local path = req.target:match("^([^?#]*)")
  if path ~= self.path then
    return 404, req, nil, "not found"
  end
  if req.method ~= "POST" then
    return 405, req, nil, "use POST", "Allow: POST"
  end
  if header(req, "transfer-encoding") then
    return 411, req, nil, "send the body with Content-Length (no Transfer-Encoding)"
  end
  local cl = header(req, "content-length")
  if cl == nil then
    return 411, req, nil, "Content-Length required"
  end
  if type(cl) == "table" or not cl:match("^%d+$") or #cl > 15 then
    return 400, req, nil, "invalid Content-Length"
  end
  local len = tonumber(cl)
  if len > self._max_body then
    return 413, req, nil, "body larger than " .. self._max_body .. " bytes"
  end
  if #rest < len then
    local expect = header(req, "expect")
    if type(expect) == "string" and expect:lower() == "100-continue" then
      sock:settimeout(math.max(deadline - socket.gettime(), 0.001))
      sock:send("HTTP/1.1 100 Continue\r\n\r\n")
      sock:settimeout(0)
    end
    rest, err = read_until(sock, rest, deadline, len, function(b) return #b >= len end)
    if #rest < len then
      if err == "timeout" then
        return 408, req, nil, "body not received in time"
      end
      return nil
    end
  end
  local body = rest:sub(1, len) -- extra bytes after the body are ignored
  req.body_read = true
  local hooks = self._hooks
  if not hooks then
    return 503, req, nil, "receiver not ready (no hooks yet)"
  end
  local ok, res = pcall(hooks.handle, hooks, body, req.headers)
  if not ok then
    io.stderr:write("linqwebhooks receiver: hooks:handle raised: ", tostring(res), "\n")
    return 500, req, nil, "internal error"
  end
  return res.status, req, res, res.body
end

--- Closes after the answer without resetting the connection: stop sending,
-- then drain (bounded) whatever the client still sends, e.g. the unread body
-- of a 413, so the client reads the answer instead of a reset.
local function linger_close(sock)
  sock:shutdown("send")
  sock:settimeout(0)
  -- at most 1 s and 4 MiB; stop after 50 ms without data
  local deadline = socket.gettime() + 1
  local drained = 0
  while drained < 4 * 1024 * 1024 do
    local data, err, partial = sock:receive(65536)
    local chunk = data or partial
    if chunk and chunk ~= "" then
      drained = drained + #chunk
    elseif err == "timeout" then
      local left = deadline - socket.gettime()
      if left <= 0 then
        break
      end
      local ready = socket.select({ sock }, nil, math.min(left, 0.05))
      if not ready or #ready == 0 then
        break
      end
    else
      break
    end
  end
  sock:close()
end

--- r:step(wait) -> true if a connection was served, false if none came
-- within `wait` seconds (default 0: just poll).
function Receiver:step(wait)
  local server = self._server
  if not server then
    error("receiver:step: receiver is closed", 2)
  end
  if wait and wait > 0 then
    socket.select({ server }, nil, wait)
  end
  local sock = server:accept()
  if not sock then
    return false
  end
  local status, req, res, body, extra = serve_conn(self, sock)
  if status then
    sock:settimeout(self._timeout)
    sock:send(response(status, body, extra))
    self.served = self.served + 1
    if self._log then
      local ev = res and res.event
      self._log(string.format("%s %s -> %d%s%s", req and req.method or "-",
        req and req.target or "-", status,
        ev and (" " .. ev.type .. " " .. ev.id) or "",
        res and res.duplicate and " (duplicate)" or
          (res and res.err and (" (" .. tostring(res.err.reason or res.err.kind) .. ")") or "")))
    end
    if req and req.body_read then
      sock:close()
    else
      linger_close(sock)
    end
  else
    sock:close()
  end
  return true
end

--- r:close(): stops listening (idempotent).
function Receiver:close()
  if self._server then
    self._server:close()
    self._server = nil
  end
end

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
  local process = require "linqwebhooks.process"
  local watch = process.signal_watch and process.signal_pending
  if watch then
    process.signal_watch()
  end
  io.stdout:write("linqwebhooks receiver listening on ", r.url, "\n")
  io.stdout:flush()
  while not (watch and process.signal_pending()) do
    r:step(0.25)
  end
  r:close()
  io.stdout:write("linqwebhooks receiver stopped\n")
  io.stdout:flush()
  return true
end

return M
