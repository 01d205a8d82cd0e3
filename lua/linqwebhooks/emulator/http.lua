--- HTTP/1.1 server side over non-blocking LuaSocket sockets: request parsing
-- (request line, headers, Content-Length bodies, Expect: 100-continue,
-- keep-alive, pipelining) and response writing, as actors of the emulator's
-- select loop. A slow or stalled client only ever holds its own connection.
--
-- handler(req) -> status, headers (table or nil), body (string or nil)
--   req = { method, target, path, query, version ("1.0"|"1.1"), headers
--           (lower-cased names; repeated headers joined with ", "), body, peer }
local socket = require "socket"

local M = {}

M.MAX_HEAD = 16 * 1024
M.MAX_BODY = 1024 * 1024
M.MAX_CLIENTS = 512

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Content Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests",
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

--- Parses a header block (without the final blank line).
-- Returns req (without body) or nil, status, message.
local function parse_head(head)
  local line, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  if not line then
    line, rest = head, ""
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
  local headers = {}
  if rest ~= "" then
    for hl in (rest .. "\r\n"):gmatch("(.-)\r\n") do
      local name, value = hl:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
      if not name or not name:match(TOKEN) or value:find("[%z\1-\8\10-\31\127]") then
        return nil, 400, "malformed header line"
      end
      name = name:lower()
      if headers[name] then
        if name == "content-length" or name == "host" or name == "authorization" then
          if headers[name] ~= value then
            return nil, 400, "conflicting " .. name .. " headers"
          end
        else
          headers[name] = headers[name] .. ", " .. value
        end
      else
        headers[name] = value
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
  }
end
M.parse_head = parse_head

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
local function respond(c, lp, status, headers, body, close)
  local keep = not close and c.keep_alive and not c.peer_closed
  c.out = M.response(status, headers, body, keep)
  c.outpos = 0
  c.after_write = keep and "next" or "close"
  c.deadline = socket.gettime() + c.server.timeout
  c:on_write(lp)
end

local function error_response(c, lp, status, message)
  local h, b = c.server.on_error(status, message)
  respond(c, lp, status, h, b, true)
end

-- Tries to complete the request(s) in the input buffer.
local function process(c, lp)
  while not c.out and not c.closed do
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
        if c.peer_closed then
          return error_response(c, lp, 400, "incomplete request")
        end
        if not c.deadline or c.idle then
          c.idle = false
          c.deadline = socket.gettime() + c.server.timeout
        end
        return
      end
      if e - 1 > M.MAX_HEAD then
        return error_response(c, lp, 431, "request header block larger than 16 KiB")
      end
      local req, status, msg = parse_head(c.inbuf:sub(1, e - 1))
      c.inbuf = c.inbuf:sub(e + 4)
      if not req then
        return error_response(c, lp, status, msg)
      end
      local h = req.headers
      local conn = (h["connection"] or ""):lower()
      if req.version == "1.1" then
        c.keep_alive = not conn:find("close", 1, true)
      else
        c.keep_alive = conn:find("keep-alive", 1, true) ~= nil
      end
      if h["transfer-encoding"] then
        return error_response(c, lp, 501, "Transfer-Encoding is not supported; send Content-Length")
      end
      local len = 0
      if h["content-length"] then
        if not h["content-length"]:match("^%d+$") or #h["content-length"] > 15 then
          return error_response(c, lp, 400, "invalid Content-Length")
        end
        len = tonumber(h["content-length"])
      end
      if len > c.server.max_body then
        return error_response(c, lp, 413, "request body larger than "
          .. c.server.max_body .. " bytes")
      end
      req.length = len
      req.peer = c.peer
      c.req = req
      if len > #c.inbuf and (h["expect"] or ""):lower() == "100-continue" then
        c.continue = "HTTP/1.1 100 Continue\r\n\r\n"
      end
    end
    local req = c.req
    if #c.inbuf < req.length then
      if c.peer_closed then
        return error_response(c, lp, 400, "incomplete request body")
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
    local ok, status, headers, body = pcall(c.server.handler, req)
    if not ok then
      io.stderr:write("linqwebhooks emulator: handler error: ", tostring(status), "\n")
      local h, b = c.server.on_error(500, "internal error")
      respond(c, lp, 500, h, b, true)
    else
      if c.server.log then
        c.server.log(req.method .. " " .. req.path .. " -> " .. tostring(status))
      end
      respond(c, lp, status, headers, body, false)
    end
  end
end

function Conn:on_read(lp)
  if self.lingering then
    local data, err, partial = self.sock:receive(65536)
    self.drained = self.drained + #(data or partial or "")
    if (err and err ~= "timeout") or self.drained > 4 * M.MAX_BODY then
      conn_close(self, lp)
    end
    return
  end
  local data, err, partial = self.sock:receive(65536)
  local chunk = data or partial
  if chunk and #chunk > 0 then
    self.inbuf = self.inbuf .. chunk
    if self.idle then
      self.idle = false
      self.deadline = socket.gettime() + self.server.timeout
    end
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
  self.outpos = sent
  if err and err ~= "timeout" then
    return conn_close(self, lp)
  end
  if self.outpos < #self.out then
    return
  end
  self.out = nil
  if self.after_write == "close" or self.server.stopping then
    -- Lingering close: stop sending, discard what the client still sends for
    -- a moment, so it reads our response instead of a reset.
    self.sock:shutdown("send")
    self.lingering = true
    self.drained = 0
    self.deadline = socket.gettime() + 2
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
    return error_response(self, lp, 408, "request not received in time")
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

function Listener:on_read(lp)
  for _ = 1, 64 do
    local s = self.sock:accept()
    if not s then
      return
    end
    if self.clients >= M.MAX_CLIENTS then
      s:close()
    else
      s:settimeout(0)
      s:setoption("tcp-nodelay", true)
      local ip = s:getpeername()
      local c = setmetatable({
        sock = s, server = self, inbuf = "", peer = ip, idle = true, keep_alive = true,
        deadline = socket.gettime() + self.timeout,
      }, Conn)
      self.clients = self.clients + 1
      lp:add(c)
    end
  end
end

--- Opens the listening socket. opts: host, port, handler, on_error(status, msg)
-- -> headers, body, timeout (seconds), max_body. Returns the listener actor
-- (fields: port, host) or nil, message.
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
    sock = sock, host = host, port = tonumber(port), clients = 0,
    handler = opts.handler, on_error = opts.on_error, log = opts.log,
    timeout = opts.timeout or 30, max_body = opts.max_body or M.MAX_BODY,
  }, Listener)
  lp:add(l)
  return l
end

--- Stops accepting; open connections finish their current response.
function Listener:close(lp)
  self.stopping = true
  lp:remove(self)
  self.sock:close()
  for a in pairs(lp.actors) do
    if getmetatable(a) == Conn then
      conn_close(a, lp)
    end
  end
end

return M
