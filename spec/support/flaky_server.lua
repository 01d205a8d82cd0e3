--- Test support: a small misbehaving HTTP/1.1 server (LuaSocket) run as a
-- child process on 127.0.0.1, answering requests from a script of steps.
--
--   local flaky = require "support.flaky_server"
--   local srv = flaky.start{
--     { status = 500, body = '{"error":{...}}' },
--     { status = 200, headers = { ["Content-Type"] = "application/json" }, body = "{}" },
--   }
--   srv.url            -- "http://127.0.0.1:<port>"
--   srv:requests()     -- array of { method, path, headers = {[lower] = v}, body, time }
--   srv:stop()         -- idempotent; always call it (finally)
--
-- A linq.client against a fresh server, for each case of a spec file:
--   local with_server = flaky.with_client{ api_key = KEY, log = false }
--   with_server(steps, { max_retries = 0 }, function(client, srv) ... end)
--
-- Step fields (one step per request, in order; the last step repeats):
--   status, headers, body   the response (Content-Length added unless `raw`)
--   delay = s               sleep before answering (the request is logged first)
--   reset = true            send the headers and half the body, then reset the connection
--   close = true            close the connection after the response
--   raw = "..."             send these bytes verbatim instead of a built response
--   flood = { prefix = "...", fill = "a", bytes = n, hold = s }
--                           send `prefix`, then `fill` repeated for about `bytes` bytes
--                           (stops early when the peer goes away), then keep the
--                           connection open for `hold` seconds (a hostile peer)
-- `time` in the log is socket.gettime() when the request line arrived.
local socket = require "socket"

-- support.util; when this file runs as a script in a child process (where
-- spec/ is not on the path), loaded from next to this file.
local util
do
  local ok, u = pcall(require, "support.util")
  if not ok then
    local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
    u = dofile(dir .. "/util.lua")
  end
  util = u
end
local read_file, sh_quote = util.read_file, util.sh_quote

local M = {}

local function serialize(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif t == "number" or t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    out[#out + 1] = "{"
    for k, x in pairs(v) do
      out[#out + 1] = "["
      serialize(k, out)
      out[#out + 1] = "]="
      serialize(x, out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  else
    error("flaky_server: cannot serialize " .. t)
  end
  return out
end
M.serialize = function(v)
  return table.concat(serialize(v, {}))
end

local function load_chunk(s, env)
  if setfenv then -- LuaJIT / 5.1
    local f = assert(loadstring(s))
    setfenv(f, env)
    return f
  end
  return assert(load(s, "=flaky", "t", env))
end

local function this_file()
  local src = debug.getinfo(1, "S").source
  return src:sub(1, 1) == "@" and src:sub(2) or src
end

------------------------------------------------------------------------------
-- server side (child process)

local function send_all(c, s)
  local i = 1
  while i <= #s do
    local last, err, partial = c:send(s, i)
    if not last then
      if partial and partial >= i then
        i = partial + 1
      end
      if err ~= "timeout" then
        return nil, err
      end
    else
      i = last + 1
    end
  end
  return true
end

local REASONS = { [200] = "OK", [201] = "Created", [204] = "No Content", [400] = "Bad Request",
                  [401] = "Unauthorized", [404] = "Not Found", [408] = "Request Timeout",
                  [409] = "Conflict", [429] = "Too Many Requests", [500] = "Internal Server Error",
                  [503] = "Service Unavailable" }

local function build_response(step, keep)
  local body = step.body or ""
  local lines = { string.format("HTTP/1.1 %d %s", step.status or 200, REASONS[step.status or 200] or "X") }
  local has_len = false
  for k, v in pairs(step.headers or {}) do
    lines[#lines + 1] = k .. ": " .. v
    if k:lower() == "content-length" then
      has_len = true
    end
  end
  if not has_len and step.status ~= 204 then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  lines[#lines + 1] = keep and "Connection: keep-alive" or "Connection: close"
  return table.concat(lines, "\r\n") .. "\r\n\r\n", body
end

local function log_request(logpath, req)
  local f = assert(io.open(logpath, "ab"))
  f:write("R", M.serialize(req), "\n")
  f:close()
end

-- Reads one request from c; returns it or nil (connection closed / garbage).
local function read_request(c)
  c:settimeout(5)
  local line, err = c:receive("*l")
  if not line then
    return nil, err
  end
  local t = socket.gettime()
  local method, path = line:match("^(%u+) (%S+) HTTP/1%.[01]$")
  if not method then
    return nil, "bad request line"
  end
  local headers = {}
  while true do
    local h = c:receive("*l")
    if not h then
      return nil, "eof in headers"
    end
    if h == "" then
      break
    end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then
      headers[k:lower()] = v
    end
  end
  local body = ""
  local n = tonumber(headers["content-length"] or "0") or 0
  if n > 0 then
    body = c:receive(n)
    if not body then
      return nil, "eof in body"
    end
  end
  return { method = method, path = path, headers = headers, body = body, time = t }
end

local function serve(stepsfile, portfile, logpath)
  local env = {}
  local steps = load_chunk("return " .. assert(read_file(stepsfile)), env)()
  local server = assert(socket.bind("127.0.0.1", 0))
  server:settimeout(0)
  local _, port = server:getsockname()
  local f = assert(io.open(portfile .. ".tmp", "wb"))
  f:write(tostring(port))
  f:close()
  assert(os.rename(portfile .. ".tmp", portfile))
  local clients = {}
  local n = 0
  local deadline = socket.gettime() + 120 -- never outlive a test run
  while socket.gettime() < deadline do
    local rset = { server }
    for _, c in ipairs(clients) do
      rset[#rset + 1] = c
    end
    local ready = socket.select(rset, nil, 1)
    for _, s in ipairs(ready) do
      if s == server then
        local c = server:accept()
        if c then
          c:setoption("tcp-nodelay", true)
          clients[#clients + 1] = c
        end
      else
        local req = read_request(s)
        local drop = true
        if req then
          n = n + 1
          log_request(logpath, req)
          local step = steps[n] or steps[#steps] or { status = 200 }
          if step.delay then
            socket.sleep(step.delay)
          end
          s:settimeout(5)
          if step.raw then
            send_all(s, step.raw)
          elseif step.flood then
            local fl = step.flood
            local fill = fl.fill or "a"
            local piece = string.rep(fill, math.ceil(65536 / #fill))
            local ok = send_all(s, fl.prefix or "")
            local sent = 0
            while ok and sent < (fl.bytes or 0) do
              ok = send_all(s, piece)
              sent = sent + #piece
            end
            if ok and fl.hold then
              socket.sleep(fl.hold)
            end
          elseif step.reset then
            local head, body = build_response(step, true)
            send_all(s, head .. body:sub(1, math.floor(#body / 2)))
            socket.sleep(0.05)
            s:setoption("linger", { on = true, timeout = 0 })
          else
            local head, body = build_response(step, not step.close)
            send_all(s, head .. body)
            drop = step.close
          end
        end
        if drop then
          s:close()
          for i, c in ipairs(clients) do
            if c == s then
              table.remove(clients, i)
              break
            end
          end
        end
      end
    end
  end
end

if select(1, ...) == "--serve" then
  serve(select(2, ...))
  return
end

------------------------------------------------------------------------------
-- test side

local Server = {}
Server.__index = Server

--- Starts the server with `steps`; returns a handle (raises if it does not start within 10 s).
function M.start(steps)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. sh_quote(dir)))
  local stepsfile, portfile, logpath = dir .. "/steps", dir .. "/port", dir .. "/log"
  local f = assert(io.open(stepsfile, "wb"))
  f:write(M.serialize(steps))
  f:close()
  assert(io.open(logpath, "wb")):close()
  local interp = os.getenv("LINQWH_TEST_SERVER_LUA") or "lua5.4"
  -- env -u LD_PRELOAD: the sanitizer runs preload ASan into the test runner only
  local cmd = string.format("env -u LD_PRELOAD %s %s --serve %s %s %s >%s 2>&1 & echo $!", interp,
    sh_quote(this_file()), sh_quote(stepsfile), sh_quote(portfile), sh_quote(logpath),
    sh_quote(dir .. "/out"))
  local p = assert(io.popen(cmd))
  local pid = p:read("*l")
  p:close()
  local self = setmetatable({ pid = pid, dir = dir, logpath = logpath }, Server)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local port = read_file(portfile)
    if port and port ~= "" then
      self.port = tonumber(port)
      self.url = "http://127.0.0.1:" .. port
      return self
    end
    socket.sleep(0.02)
  end
  self:stop()
  error("flaky_server did not start: " .. tostring(read_file(dir .. "/out")))
end

--- The requests the server has seen so far, in order.
function Server:requests()
  local list = {}
  local env = { R = function(r) list[#list + 1] = r end }
  load_chunk(read_file(self.logpath) or "", env)()
  return list
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
    os.execute("rm -rf " .. sh_quote(self.dir))
  end
end

--- Fixtures for steps: a webhook subscription as the API returns it, and
-- the JSON Content-Type header.
M.SUB = '{"id":"sub_1","target_url":"https://example.com/hook","subscribed_events":["message.sent"],'
  .. '"is_active":true,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",'
  .. '"phone_numbers":null}'
M.JSON = { ["Content-Type"] = "application/json" }

--- A runner for cases that each need a linq.client on a fresh server:
-- with_client(defaults) returns with_server(steps, client_opts, fn), which
-- starts the server with `steps`, makes a client with the options
-- { base_url = srv.url .. "/api/partner", timeout = 5 }, then `defaults`,
-- then `client_opts` (later ones win), calls fn(client, srv), and always
-- closes the client and stops the server, re-raising fn's error.
function M.with_client(defaults)
  return function(steps, client_opts, fn)
    local srv = M.start(steps)
    local opts = { base_url = srv.url .. "/api/partner", timeout = 5 }
    for _, t in ipairs({ defaults or {}, client_opts or {} }) do
      for k, v in pairs(t) do
        opts[k] = v
      end
    end
    local client
    local ok, err = pcall(function()
      client = require("linqwebhooks").client(opts)
      fn(client, srv)
    end)
    if client then
      client:close()
    end
    srv:stop()
    if not ok then
      error(err, 0)
    end
  end
end

return M
