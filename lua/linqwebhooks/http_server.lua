--- HTTP/1.1 server wire: request-head parsing with limits, reason phrases,
-- response writing, keep-alive and lingering close, with every client
-- connection an actor of a linqwebhooks.select_loop. A slow or stalled client
-- only ever holds its own connection. Used by linqwebhooks.receiver and the
-- emulator.
--
--   local lp = require("linqwebhooks.select_loop").new()
--   local l = assert(http_server.listen(lp, { host = "127.0.0.1", port = 0,
--                                             handler = function(req) return 200, nil, "hi" end }))
--   while true do lp:step(0.25) end
--
-- handler(req) -> status, headers (table name -> value, or nil), body, note
--   req = { method, target, path, query, version ("1.0"|"1.1"),
--           headers (lower-cased names; repeats joined with ", "),
--           raw_headers (names as first sent; repeats become arrays),
--           body, peer }
--   `note` is passed on to opts.log.
-- on_head(req) -> nil | status, headers, body: called with the parsed head
--   before the body is read; a status refuses the request (the connection
--   closes after the answer, lingering so the client reads it).
local socket = require "socket"

local M = {}

M.MAX_HEAD = 16 * 1024     -- whole header block
M.MAX_LINE = 8 * 1024      -- request line and each header line
M.MAX_HEADERS = 100
M.MAX_BODY = 1024 * 1024
M.MAX_CLIENTS = 512
M.LINGER = 2               -- seconds a closing connection drains the client

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [503] = "Service Unavailable", [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

--- Serialises a response; `headers` is a table name -> value.
function M.response(status, headers, body, keep_alive)
  local lines = { "HTTP/1.1 " .. status .. " " .. (REASONS[status] or "Status") }
  local names = {}
  for k in pairs(headers or {}) do
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    lines[#lines + 1] = k .. ": " .. tostring(headers[k])
  end
  body = body or ""
  if status ~= 204 and status ~= 304 and status >= 200 then
    lines[#lines + 1] = "Content-Length: " .. #body
  else
    body = ""
  end
  lines[#lines + 1] = "Connection: " .. (keep_alive and "keep-alive" or "close")
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
local SINGLE = { ["content-length"] = true, host = true, authorization = true }

--- Parses a header block (without the final blank line).
-- Returns req (without body) or nil, status, message.
function M.parse_head(head)
  local line, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  if not line then
    line, rest = head, ""
  end
  if #line > M.MAX_LINE then
    return nil, 414, "request line longer than " .. M.MAX_LINE .. " bytes"
  end
  local method, target, version = line:match("^(%S+) (%S+) HTTP/(%d%.%d)$")
  if not method or not method:match(TOKEN) then
    return nil, 400, "malformed request line"
  end
  if version ~= "1.1" and version ~= "1.0" then
    return nil, 505, "only HTTP/1.0 and HTTP/1.1 are supported"
  end
  if target:sub(1, 1) ~= "/" then
    return nil, 400, "request target must be an absolute path"
  end
  local headers, raw, spelling, n = {}, {}, {}, 0
  if rest ~= "" then
    for hl in (rest .. "\r\n"):gmatch("(.-)\r\n") do
      if #hl > M.MAX_LINE then
        return nil, 431, "header line longer than " .. M.MAX_LINE .. " bytes"
      end
      n = n + 1
      if n > M.MAX_HEADERS then
        return nil, 431, "more than " .. M.MAX_HEADERS .. " header lines"
      end
      local name, value = hl:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
      if not name or not name:match(TOKEN) or value:find("[%z\1-\8\10-\31\127]") then
        return nil, 400, "malformed header line"
      end
      local lower = name:lower()
      local key = spelling[lower]
      if key then
        if SINGLE[lower] then
          if headers[lower] ~= value then
            return nil, 400, "conflicting " .. lower .. " headers"
          end
        else
          headers[lower] = headers[lower] .. ", " .. value
        end
        local cur = raw[key]
        if type(cur) == "table" then
          cur[#cur + 1] = value
        else
          raw[key] = { cur, value }
        end
      else
        spelling[lower] = name
        headers[lower] = value
        raw[name] = value
      end
    end
  end
  local path, query = target:match("^([^?#]*)%??([^#]*)")
  return {
    method = method,
    target = target,
    path = path,
    query = query ~= "" and query or nil,
    version = version,
    headers = headers,
    raw_headers = raw,
  }
end

-------------------------------------------------------------------------------
-- Client connection actor

local Conn = {}
Conn.__index = Conn

local function conn_close(c, lp)
  if c.closed then
    return
  end
  c.closed = true
  lp:remove(c)
  c.server.conns[c] = nil
  c.server.clients = c.server.clients - 1
  c.sock:close()
end

function Conn:want()
  if self.out then
    return "w"
  end
  return "r"
end

-- Queues a response; `close` forces Connection: close.
local function respond(c, lp, status, headers, body, close, req, note)
  local keep = not close and c.keep_alive and c.server.keep_alive and not c.peer_closed
  c.out = M.response(status, headers, body, keep)
  c.outpos = 0
  c.after_write = keep and "next" or "close"
  c.deadline = socket.gettime() + c.server.timeout
  local log = c.server.log
  if log then
    lp:safe(log, req, status, note)
  end
  c:on_write(lp)
end

local function error_response(c, lp, status, message, req)
  local h, b = c.server.on_error(status, message)
  respond(c, lp, status, h, b, true, req, message)
end

local function start_request(c, lp, req)
  local h = req.headers
  local conn = (h["connection"] or ""):lower()
  if req.version == "1.1" then
    c.keep_alive = not conn:find("close", 1, true)
  else
    c.keep_alive = conn:find("keep-alive", 1, true) ~= nil
  end
  req.peer = c.peer
  local on_head = c.server.on_head
  if on_head then
    local ok, status, headers, body = pcall(on_head, req)
    if not ok then
      c.server.lp.log("on_head error: " .. tostring(status))
      return error_response(c, lp, 500, "internal error", req)
    end
    if status then
      return respond(c, lp, status, headers, body, true, req, body)
    end
  end
  if h["transfer-encoding"] then
    return error_response(c, lp, 501, "Transfer-Encoding is not supported; send Content-Length", req)
  end
  local len = 0
  if h["content-length"] then
    if not h["content-length"]:match("^%d+$") or #h["content-length"] > 15 then
      return error_response(c, lp, 400, "invalid Content-Length", req)
    end
    len = tonumber(h["content-length"])
  end
  if len > c.server.max_body then
    return error_response(c, lp, 413, "request body larger than "
      .. c.server.max_body .. " bytes", req)
  end
  req.length = len
  c.req = req
  if len > #c.inbuf and (h["expect"] or ""):lower() == "100-continue" then
    c.continue = "HTTP/1.1 100 Continue\r\n\r\n"
  end
end

-- Tries to complete the request(s) in the input buffer.
local function process(c, lp)
  while not c.out and not c.closed and not c.lingering do
    if not c.req then
      -- Tolerate empty lines before a request line (RFC 9112 2.2).
      local lead = c.inbuf:match("^[\r\n]+")
      if lead then
        c.inbuf = c.inbuf:sub(#lead + 1)
      end
      if c.inbuf == "" then
        if c.peer_closed then
          conn_close(c, lp)
        end
        return
      end
      local e = c.inbuf:find("\r\n\r\n", 1, true)
      if not e then
        if #c.inbuf > M.MAX_HEAD then
          return error_response(c, lp, 431, "request header block larger than 16 KiB")
        end
        if not c.inbuf:find("\n", 1, true) and #c.inbuf > M.MAX_LINE then
          return error_response(c, lp, 414, "request line longer than " .. M.MAX_LINE .. " bytes")
        end
        if c.peer_closed then
          return error_response(c, lp, 400, "incomplete request")
        end
        if c.idle then
          c.idle = false
          c.deadline = socket.gettime() + c.server.timeout
        end
        return
      end
      if e - 1 > M.MAX_HEAD then
        return error_response(c, lp, 431, "request header block larger than 16 KiB")
      end
      local req, status, msg = M.parse_head(c.inbuf:sub(1, e - 1))
      c.inbuf = c.inbuf:sub(e + 4)
      c.idle = false
      if not req then
        return error_response(c, lp, status, msg)
      end
      start_request(c, lp, req)
      if not c.req then
        return -- answered (refused) at the head
      end
    end
    local req = c.req
    if #c.inbuf < req.length then
      if c.peer_closed then
        return error_response(c, lp, 400, "incomplete request body", req)
      end
      if c.continue then
        local s = c.continue
        c.continue = nil
        c.sock:send(s) -- best effort, 25 bytes on a fresh connection
      end
      return
    end
    c.continue = nil
    req.body = c.inbuf:sub(1, req.length)
    c.inbuf = c.inbuf:sub(req.length + 1)
    c.req = nil
    local ok, status, headers, body, note = pcall(c.server.handler, req)
    if not ok then
      c.server.lp.log("handler error: " .. tostring(status))
      local h, b = c.server.on_error(500, "internal error")
      respond(c, lp, 500, h, b, true, req, "internal error")
    else
      respond(c, lp, status, headers, body, false, req, note)
    end
  end
end

function Conn:on_read(lp)
  local data, err, partial = self.sock:receive(65536)
  local chunk = data or partial
  if self.lingering then
    self.drained = self.drained + #(chunk or "")
    if (err and err ~= "timeout") or self.drained > 4 * M.MAX_BODY then
      conn_close(self, lp)
    end
    return
  end
  if chunk and #chunk > 0 then
    self.last_active = socket.gettime()
    self.inbuf = self.inbuf .. chunk
  end
  if err and err ~= "timeout" then
    self.peer_closed = true
    if err ~= "closed" then
      return conn_close(self, lp)
    end
  end
  process(self, lp)
end

function Conn:on_write(lp)
  if not self.out then
    return
  end
  local last, err, partial = self.sock:send(self.out, self.outpos + 1)
  local sent = last or partial or self.outpos
  if sent > self.outpos then
    self.last_active = socket.gettime()
  end
  self.outpos = sent
  if err and err ~= "timeout" then
    return conn_close(self, lp)
  end
  if self.outpos < #self.out then
    return
  end
  self.out = nil
  self.server.served = self.server.served + 1
  if self.after_write == "close" or self.server.stopping then
    -- Lingering close: stop sending, discard what the client still sends for
    -- a moment, so it reads our response instead of a reset.
    self.sock:shutdown("send")
    self.lingering = true
    self.drained = 0
    self.deadline = socket.gettime() + M.LINGER
    return
  end
  self.idle = true
  self.deadline = socket.gettime() + self.server.timeout
  process(self, lp)
end

function Conn:on_timeout(lp)
  if self.lingering or self.out then
    return conn_close(self, lp)
  end
  if not self.idle and (self.req or self.inbuf ~= "") then
    self.keep_alive = false
    return error_response(self, lp, 408, "request not received in time", self.req)
  end
  conn_close(self, lp)
end

-------------------------------------------------------------------------------
-- Listening socket actor

local Listener = {}
Listener.__index = Listener

function Listener:want()
  if self.stopping then
    return nil
  end
  return "r"
end

-- At the connection cap: close the connection that has been quiet longest
-- (an idle keep-alive client, a slowloris), so a new client is served.
local function evict(self, lp)
  local oldest
  for c in pairs(self.conns) do
    if not oldest or c.last_active < oldest.last_active then
      oldest = c
    end
  end
  if oldest then
    self.evicted = self.evicted + 1
    conn_close(oldest, lp)
  end
end

function Listener:on_read(lp)
  for _ = 1, 64 do
    local s = self.sock:accept()
    if not s then
      return
    end
    if self.clients >= self.max_clients then
      evict(self, lp)
    end
    s:settimeout(0)
    s:setoption("tcp-nodelay", true)
    local now = socket.gettime()
    local c = setmetatable({
      sock = s, server = self, inbuf = "", peer = s:getpeername(), idle = true, keep_alive = true,
      deadline = now + self.timeout, last_active = now,
    }, Conn)
    if not lp:add(c) then
      s:close() -- its descriptor does not fit select()
    else
      self.clients = self.clients + 1
      self.conns[c] = true
      c:on_read(lp) -- the request often arrived with the connection
    end
  end
end

--- Opens the listening socket. opts: host, port, handler, on_head,
-- on_error(status, msg) -> headers, body (default: text/plain),
-- log(req|nil, status, note), timeout (seconds a client has for a request,
-- and may stay idle; default 30), max_body, max_clients (default 512; at
-- the cap the quietest connection is evicted), keep_alive (default true).
-- Returns the listener actor (fields: host, port, served, clients, evicted)
-- or nil, message.
function M.listen(lp, opts)
  local host = opts.host
  local sock, err
  if host:find(":", 1, true) then
    sock, err = socket.tcp6()
  else
    sock, err = socket.tcp()
  end
  if not sock then
    return nil, err
  end
  sock:setoption("reuseaddr", true)
  local ok
  ok, err = sock:bind(host, opts.port)
  if not ok then
    sock:close()
    return nil, "cannot bind " .. host .. ":" .. opts.port .. ": " .. tostring(err)
  end
  ok, err = sock:listen(128)
  if not ok then
    sock:close()
    return nil, "cannot listen: " .. tostring(err)
  end
  sock:settimeout(0)
  local _, port = sock:getsockname()
  local l = setmetatable({
    sock = sock, host = host, port = tonumber(port), clients = 0, conns = {}, served = 0,
    evicted = 0, lp = lp,
    handler = opts.handler, on_head = opts.on_head, log = opts.log,
    on_error = opts.on_error or function(_, msg)
      return { ["Content-Type"] = "text/plain; charset=utf-8" }, msg
    end,
    timeout = opts.timeout or 30, max_body = opts.max_body or M.MAX_BODY,
    max_clients = opts.max_clients or M.MAX_CLIENTS, keep_alive = opts.keep_alive ~= false,
  }, Listener)
  lp:add(l)
  return l
end

--- Stops accepting and closes every connection (idempotent).
function Listener:close(lp)
  lp = lp or self.lp
  if self.stopping then
    return
  end
  self.stopping = true
  lp:remove(self)
  self.sock:close()
  for c in pairs(self.conns) do
    conn_close(c, lp)
  end
end

return M
