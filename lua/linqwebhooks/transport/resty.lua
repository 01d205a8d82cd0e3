--- Cosocket transport for OpenResty / nginx: HTTP/1.1 over `ngx.socket.tcp`,
-- never blocking the worker. Same interface as transport/curl.lua:
--
--   local t = require("linqwebhooks.transport.resty").new{ timeout = 60, connect_timeout = 10,
--                                                           max_body = 8 * 2^20 }
--   local res, kind, msg, detail = t:request(method, url, headers, body)
--   -- res = { status = n, headers = { [lowercase name] = value }, body = s, http_version = 1.1 }
--   -- failure: nil, "timeout" | "connection", message (no secrets), detail:
--   --   "too_large" (body over max_body, or a header line over 100 KB, a header
--   --   block with trailers over 300 KB, a chunk-size line over 100 KB: the
--   --   message starts "protocol error:"), "tls", "not_sent" or nil
--   t:close()  -- idempotent
--
-- Proxies: none, ever (cosockets connect directly); option proxy = false is
-- accepted, a proxy URL is refused.
--
-- Only usable where cosockets are (rewrite, access, content, timer, ssl_cert...);
-- `require("linqwebhooks.transport").select` picks it there automatically.
--
-- TLS: `sslhandshake` with certificate verification always on and SNI set to
-- the URL's host. Trusted CAs come from nginx's `lua_ssl_trusted_certificate`
-- (cosockets take no per-connection CA file, so option `ca_file` is refused);
-- set `lua_ssl_verify_depth` (default 1) to at least the chain length, e.g. 3.
-- Host names are resolved by nginx: the config needs a `resolver` directive.
-- Timeouts: `timeout` bounds the whole exchange (connect, send, every read);
-- `connect_timeout` bounds the connect. Connections go back to nginx's
-- per-worker keepalive pool (named per scheme/host/port) when the response
-- allows it; responses may be content-length, chunked or close-delimited.
local options = require "linqwebhooks.options"
local urlmod = require "linqwebhooks.url"

local M = { name = "resty" }
M.user_agent = "ngx_lua-cosocket"

local Transport = {}
Transport.__index = Transport
Transport.__tostring = function(t)
  return "linqwebhooks.transport.resty (" .. (t._closed and "closed" or "open") .. ")"
end
M.Transport = Transport

local DEFAULTS = {
  timeout = 60,
  connect_timeout = 10,
  max_body = 8 * 1024 * 1024,
  keepalive_timeout = 60,   -- seconds an idle pooled connection is kept
  keepalive_pool = 16,      -- connections kept per pool (per worker)
}

local positive = options.positive_seconds

local schema = {
  timeout = { types = { "number" }, check = positive },
  connect_timeout = { types = { "number" }, check = positive },
  ca_file = { types = { "string" }, check = function()
    return false, "is not supported by the resty (cosocket) transport: set"
      .. " lua_ssl_trusted_certificate in nginx.conf instead"
  end },
  max_body = { types = { "number" }, check = options.body_bytes },
  -- cosockets connect directly: false (no proxy) is all they can do
  proxy = { types = { "boolean", "string" }, check = function(v)
    if v == false then
      return true
    end
    return false, "is not supported by the resty (cosocket) transport: it always connects"
      .. " directly (pass proxy = false or leave it out)"
  end },
  keepalive_timeout = { types = { "number" }, check = positive },
  keepalive_pool = { types = { "number" }, check = function(v)
    if v >= 1 and v % 1 == 0 and v < 65536 then
      return true
    end
    return false, "must be a whole number >= 1"
  end },
}

--- resty.new{ timeout, connect_timeout, max_body, keepalive_timeout, keepalive_pool }
function M.new(opts, level)
  level = (level or 1) + 1
  opts = options.check("transport.resty.new", opts, schema, level) or {}
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then
    error("transport.resty.new: needs OpenResty/nginx cosockets (ngx.socket.tcp)", level)
  end
  return setmetatable({
    _timeout = opts.timeout or DEFAULTS.timeout,
    _connect_timeout = opts.connect_timeout or DEFAULTS.connect_timeout,
    _max_body = math.floor(opts.max_body or DEFAULTS.max_body),
    _ka_timeout = math.floor((opts.keepalive_timeout or DEFAULTS.keepalive_timeout) * 1000),
    _ka_pool = opts.keepalive_pool or DEFAULTS.keepalive_pool,
    _closed = false,
    _ngx = ngx,
  }, Transport)
end

local function fail(sock, kind, msg, detail)
  if sock then
    sock:close()
  end
  return nil, kind, msg, detail
end

-- A response that breaks a limit: a connection error the client does not
-- retry (detail "too_large", like a body over max_body).
local function too_large(sock, what, limit, host)
  return fail(sock, "connection", "protocol error: " .. what .. " from " .. host
    .. " is longer than " .. limit .. " bytes", "too_large")
end

-- Maps a cosocket error string to (kind, message).
local function io_error(what, err)
  if err == "timeout" then
    return "timeout", what .. " timed out"
  end
  local msg = what .. " failed: " .. tostring(err)
  if type(err) == "string" and err:find("no resolver defined", 1, true) then
    msg = msg .. " (add a 'resolver' directive to nginx.conf)"
  end
  return "connection", msg
end

local function io_fail(sock, what, err)
  local kind, msg = io_error(what, err)
  return fail(sock, kind, msg)
end

-- Gives every socket operation what is left of the request's deadline.
local function arm(ngx, sock, deadline)
  ngx.update_time()
  local r = math.floor((deadline - ngx.now()) * 1000)
  if r < 1 then
    r = 1
  end
  sock:settimeouts(r, r, r)
  return r
end

------------------------------------------------------------------------------
-- bounded reads (libcurl's limits: one header line <= 100 KB, a header block
-- <= 300 KB; nothing a peer sends is buffered beyond them)

M.MAX_LINE = 100 * 1024
M.MAX_HEAD = 300 * 1024
local READ_PIECE = 16 * 1024

-- Reads up to `delim` (a receiveuntil iterator `reader`), at most `limit`
-- bytes before it. Returns the data, or nil, err ("too_long" or a cosocket
-- error).
local function read_until(reader, limit)
  local first, parts, n = nil, nil, 0
  while true do
    local data, err = reader(READ_PIECE)
    if not data then
      if err then
        return nil, err
      end
      break
    end
    n = n + #data
    if n > limit then
      return nil, "too_long"
    end
    if not first then
      first = data
    elseif parts then
      parts[#parts + 1] = data
    else
      parts = { first, data }
    end
  end
  if parts then
    return table.concat(parts)
  end
  return first or ""
end

------------------------------------------------------------------------------
-- the steps of a request (the seams of lua-resty-http)

-- The request head and body as a table for sock:send; raises (at the
-- caller of Transport:request) on bad header names or values.
local function build_request(method, u, headers, body)
  local out = { method, " ", u.target, " HTTP/1.1\r\n" }
  local has = {}
  if headers then
    for k, v in pairs(headers) do
      if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+.^_`|~-]+$") then
        error("transport.resty: bad header name " .. tostring(k), 3)
      end
      if type(v) ~= "string" and type(v) ~= "number" then
        error("transport.resty: header '" .. k .. "' must have a string value, got " .. type(v), 3)
      end
      v = tostring(v)
      if v:find("[\r\n%z]") then
        error("transport.resty: header '" .. k .. "' has a line break or NUL in its value", 3)
      end
      has[k:lower()] = true
      out[#out + 1] = k
      out[#out + 1] = ": "
      out[#out + 1] = v
      out[#out + 1] = "\r\n"
    end
  end
  if not has["host"] then
    out[#out + 1] = "Host: " .. u.host_header .. "\r\n"
  end
  if not has["user-agent"] then
    out[#out + 1] = "User-Agent: linqwebhooks (" .. M.user_agent .. ")\r\n"
  end
  if not has["content-length"] and (body or method == "POST" or method == "PUT"
      or method == "PATCH") then
    out[#out + 1] = "Content-Length: " .. (body and #body or 0) .. "\r\n"
  end
  out[#out + 1] = "\r\n"
  if body then
    out[#out + 1] = body
  end
  return out
end

-- Connects (or takes a pooled connection) and does the TLS handshake on a
-- fresh https connection. Returns sock, fresh | nil, kind, msg, detail.
function Transport:_connect(u, deadline)
  local ngx = self._ngx
  local sock, serr = ngx.socket.tcp()
  if not sock then
    return nil, "connection", "cannot create a cosocket: " .. tostring(serr)
  end
  local rem = arm(ngx, sock, deadline)
  local cto = math.floor(self._connect_timeout * 1000)
  sock:settimeouts(cto < rem and cto or rem, rem, rem)
  local host, port = u.host, u.port
  local pool = u.scheme .. "://" .. host .. ":" .. port .. (u.scheme == "https" and "#verify" or "")
  -- (nginx parses IPv6 literals only in brackets)
  local ok, err = sock:connect(u.ipv6 and ("[" .. host .. "]") or host, port,
    { pool = pool, pool_size = self._ka_pool })
  if not ok then
    local kind, msg = io_error("connect to " .. host .. ":" .. port, err)
    return fail(sock, kind, msg, "not_sent") -- nothing of the request left
  end
  local fresh = sock:getreusedtimes() == 0
  if u.scheme == "https" and fresh then
    -- the URL's host is the SNI name and the name checked against the
    -- certificate; verification is always on
    local ok2, herr = sock:sslhandshake(false, host, true)
    if not ok2 then
      local kind, msg = io_error("TLS handshake with " .. host, herr)
      local cert = type(herr) == "string" and (herr:find("certificate", 1, true)
        or herr:find("verif", 1, true))
      return fail(sock, kind, msg, cert and "tls" or "not_sent")
    end
  end
  return sock, fresh
end

-- Sends the request. Returns true | nil, kind, msg, detail.
local function send_request(sock, out, u, fresh)
  local sent, werr = sock:send(out)
  if sent then
    return true
  end
  if werr == "closed" and u.scheme == "https" and fresh then
    -- nginx-lua can report a handshake as done on a connection it closed
    -- for a failed certificate verification (asynchronous handshakes)
    return fail(sock, "connection", "TLS connection to " .. u.host .. " closed right after the"
      .. " handshake (certificate not trusted? see lua_ssl_trusted_certificate)", "tls")
  end
  return io_fail(sock, "sending the request", werr)
end

-- Parses one header block ("HTTP/x.y nnn ...\r\nName: value\r\n...") into
-- status, version, headers | nil, kind, msg, detail.
local function parse_head(sock, block, host)
  local status_line, rest = block:match("^([^\r\n]*)\r?\n?(.*)$")
  local v, s = status_line:match("^HTTP/(%d%.%d) (%d%d%d)")
  if not s then
    return fail(sock, "connection", "malformed HTTP status line from " .. host)
  end
  local rh, n = {}, 0
  for line in rest:gmatch("([^\n]*)\n?") do
    if #line > M.MAX_LINE then
      return too_large(sock, "a response header line", M.MAX_LINE, host)
    end
    line = line:gsub("\r$", "")
    if line ~= "" then
      n = n + 1
      if n > 200 then
        return fail(sock, "connection", "too many response headers from " .. host)
      end
      local k, val = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if not k then
        return fail(sock, "connection", "malformed response header from " .. host)
      end
      k = k:lower()
      rh[k] = rh[k] and (rh[k] .. ", " .. val) or val
    end
  end
  return tonumber(s), tonumber(v), rh
end

-- Reads the status line and headers, skipping interim 1xx responses; all
-- header blocks together are bounded by MAX_HEAD. Returns status, version,
-- headers, budget (header bytes still allowed, for trailers) | nil, ...
local function read_head(ngx, sock, host, deadline)
  local budget = M.MAX_HEAD
  local reader = sock:receiveuntil("\r\n\r\n")
  while true do
    arm(ngx, sock, deadline)
    local block, err = read_until(reader, budget)
    if not block then
      if err == "too_long" then
        return too_large(sock, "the response header block", M.MAX_HEAD, host)
      end
      return io_fail(sock, "reading the response", err)
    end
    budget = budget - #block
    local status, version, headers, detail = parse_head(sock, block, host)
    if not status then
      return nil, version, headers, detail -- (kind, msg, detail from fail)
    end
    if status >= 200 or status == 101 or status < 100 then
      return status, version, headers, budget
    end
  end
end

-- Chunked body (RFC 9112 7.1); chunk-size lines at most MAX_LINE bytes,
-- trailers within what is left of the header budget.
local function read_chunked(ngx, sock, host, deadline, max, budget)
  local lines = sock:receiveuntil("\r\n")
  local parts, total = {}, 0
  while true do
    arm(ngx, sock, deadline)
    local sz, cerr = read_until(lines, M.MAX_LINE)
    if not sz then
      if cerr == "too_long" then
        return too_large(sock, "a chunk-size line", M.MAX_LINE, host)
      end
      return io_fail(sock, "reading the response body", cerr)
    end
    local n = tonumber(sz:match("^%s*(%x+)"), 16)
    if not n then
      return fail(sock, "connection", "malformed chunked encoding from " .. host)
    end
    if n == 0 then
      break
    end
    total = total + n
    if total > max then
      return fail(sock, "connection", "response body larger than max_body (" .. max
        .. " bytes)", "too_large")
    end
    local data, derr = sock:receive(n)
    if not data then
      return io_fail(sock, "reading the response body", derr)
    end
    parts[#parts + 1] = data
    local crlf, lerr = sock:receive(2)
    if crlf ~= "\r\n" then
      if not crlf then
        return io_fail(sock, "reading the response body", lerr)
      end
      return fail(sock, "connection", "malformed chunked encoding from " .. host)
    end
  end
  -- trailers, up to the empty line
  while true do
    local limit = budget < M.MAX_LINE and budget or M.MAX_LINE
    local t, terr = read_until(lines, limit)
    if not t then
      if terr == "too_long" then
        return too_large(sock, limit == budget and "the response header block (with trailers)"
          or "a response trailer line", limit == budget and M.MAX_HEAD or M.MAX_LINE, host)
      end
      return io_fail(sock, "reading the response trailers", terr)
    end
    if t == "" then
      break
    end
    budget = budget - #t - 2
    if budget < 0 then
      return too_large(sock, "the response header block (with trailers)", M.MAX_HEAD, host)
    end
  end
  return table.concat(parts)
end

-- Body of `n` bytes (Content-Length).
local function read_length(ngx, sock, host, deadline, max, cl)
  local n = tonumber(cl)
  if not n or n < 0 or n % 1 ~= 0 then
    return fail(sock, "connection", "bad Content-Length from " .. host)
  end
  if n > max then
    return fail(sock, "connection", "response body larger than max_body (" .. max
      .. " bytes)", "too_large")
  end
  if n == 0 then
    return ""
  end
  arm(ngx, sock, deadline)
  local data, derr = sock:receive(n)
  if not data then
    return io_fail(sock, "reading the response body", derr)
  end
  return data
end

-- Body delimited by the end of the connection.
local function read_until_close(ngx, sock, deadline, max)
  local parts, total = {}, 0
  while true do
    arm(ngx, sock, deadline)
    local data, derr, partial = sock:receive(8192)
    local chunk = data or partial
    if chunk and #chunk > 0 then
      total = total + #chunk
      if total > max then
        return fail(sock, "connection", "response body larger than max_body (" .. max
          .. " bytes)", "too_large")
      end
      parts[#parts + 1] = chunk
    end
    if not data then
      if derr ~= "closed" then
        return io_fail(sock, "reading the response body", derr)
      end
      return table.concat(parts)
    end
  end
end

-- May the connection go back to the pool after this response?
local function keepalive_allowed(version, headers)
  local conn = headers["connection"]
  conn = conn and conn:lower()
  if conn and conn:find("close", 1, true) then
    return false
  end
  if version < 1.1 then
    return conn ~= nil and conn:find("keep-alive", 1, true) ~= nil
  end
  return true
end

--- t:request(method, url, headers, body) -> res | nil, kind, msg, detail
function Transport:request(method, url, headers, body)
  if self._closed then
    error("transport.resty: request() on a closed transport", 2)
  end
  if type(method) ~= "string" or not method:match("^%u+$") then
    error("transport.resty: argument 'method' must be an upper-case HTTP method", 2)
  end
  if type(url) ~= "string" then
    error("transport.resty: argument 'url' must be a string, got " .. type(url), 2)
  end
  if headers ~= nil and type(headers) ~= "table" then
    error("transport.resty: argument 'headers' must be a table, got " .. type(headers), 2)
  end
  if body ~= nil and type(body) ~= "string" then
    error("transport.resty: argument 'body' must be a string, got " .. type(body), 2)
  end
  local u, why = urlmod.parse(url)
  if not u or (u.scheme ~= "http" and u.scheme ~= "https") then
    return nil, "connection", "bad URL: " .. (why or ("unsupported scheme '" .. u.scheme .. "'"))
  end
  local out = build_request(method, u, headers, body)

  local ngx = self._ngx
  ngx.update_time()
  local deadline = ngx.now() + self._timeout
  local sock, fresh, cmsg, cdetail = self:_connect(u, deadline)
  if not sock then
    return nil, fresh, cmsg, cdetail -- (fresh is the error kind here)
  end
  arm(ngx, sock, deadline)
  local ok, k2, m2, d2 = send_request(sock, out, u, fresh)
  if not ok then
    return nil, k2, m2, d2
  end

  local status, version, resp_headers, budget = read_head(ngx, sock, u.host, deadline)
  if not status then
    return nil, version, resp_headers, budget
  end

  local max = self._max_body
  local te = resp_headers["transfer-encoding"]
  local cl = resp_headers["content-length"]
  local keepalive = keepalive_allowed(version, resp_headers)
  local rbody, bkind, bmsg, bdetail
  if method == "HEAD" or status == 204 or status == 304 then
    rbody = ""
  elseif te and te:lower():find("chunked", 1, true) then
    rbody, bkind, bmsg, bdetail = read_chunked(ngx, sock, u.host, deadline, max, budget)
  elseif cl then
    rbody, bkind, bmsg, bdetail = read_length(ngx, sock, u.host, deadline, max, cl)
  else
    keepalive = false
    rbody, bkind, bmsg, bdetail = read_until_close(ngx, sock, deadline, max)
  end
  if not rbody then
    return nil, bkind, bmsg, bdetail
  end

  if not keepalive or not sock:setkeepalive(self._ka_timeout, self._ka_pool) then
    sock:close()
  end
  return { status = status, headers = resp_headers, body = rbody, http_version = version }
end

--- t:close(): idempotent. Pooled connections belong to nginx's per-worker
-- pool and are closed by it when idle.
function Transport:close()
  self._closed = true
end

return M
