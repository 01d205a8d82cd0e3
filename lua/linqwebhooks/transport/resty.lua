--- Cosocket transport for OpenResty / nginx: HTTP/1.1 over `ngx.socket.tcp`,
-- never blocking the worker. Same interface as transport/curl.lua:
--
--   local t = require("linqwebhooks.transport.resty").new{ timeout = 60, connect_timeout = 10,
--                                                           max_body = 8 * 2^20 }
--   local res, kind, msg, detail = t:request(method, url, headers, body)
--   -- res = { status = n, headers = { [lowercase name] = value }, body = s, http_version = 1.1 }
--   -- failure: nil, "timeout" | "connection", message (no secrets), detail ("too_large" or nil)
--   t:close()  -- idempotent
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
  }, Transport)
end

--- Splits an http(s) URL: scheme, host (brackets removed), port, path?query.
local function parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return nil, "not an absolute URL"
  end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported scheme '" .. scheme .. "'"
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  path = path:gsub("#.*$", "")
  if path == "" then
    path = "/"
  elseif path:sub(1, 1) == "?" then
    path = "/" .. path
  end
  if authority:find("@", 1, true) then
    return nil, "credentials in URLs are not supported"
  end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  if not host or host == "" then
    return nil, "bad host in URL"
  end
  local default = scheme == "https" and 443 or 80
  local nport = port ~= "" and tonumber(port) or default
  if not nport or nport < 1 or nport > 65535 then
    return nil, "bad port in URL"
  end
  local host_header = host
  if authority:sub(1, 1) == "[" then
    host_header = "[" .. host .. "]"
  end
  if nport ~= default then
    host_header = host_header .. ":" .. nport
  end
  return scheme, host, nport, path, host_header
end
M._parse_url = parse_url

local function fail(sock, kind, msg, detail)
  if sock then
    sock:close()
  end
  return nil, kind, msg, detail
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

local function header_value_ok(s)
  return not s:find("[\r\n%z]")
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
  local scheme, host, port, path, host_header = parse_url(url)
  if not scheme then
    return nil, "connection", "bad URL: " .. host
  end

  -- request head
  local out = { method, " ", path, " HTTP/1.1\r\n" }
  local has = {}
  if headers then
    for k, v in pairs(headers) do
      if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+.^_`|~-]+$") then
        error("transport.resty: bad header name " .. tostring(k), 2)
      end
      if type(v) ~= "string" and type(v) ~= "number" then
        error("transport.resty: header '" .. k .. "' must have a string value, got " .. type(v), 2)
      end
      v = tostring(v)
      if not header_value_ok(v) then
        error("transport.resty: header '" .. k .. "' has a line break or NUL in its value", 2)
      end
      has[k:lower()] = true
      out[#out + 1] = k
      out[#out + 1] = ": "
      out[#out + 1] = v
      out[#out + 1] = "\r\n"
    end
  end
  if not has["host"] then
    out[#out + 1] = "Host: " .. host_header .. "\r\n"
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

  local ngx = rawget(_G, "ngx")
  local now = ngx.now
  ngx.update_time()
  local deadline = now() + self._timeout
  local function remaining_ms()
    ngx.update_time()
    local r = (deadline - now()) * 1000
    if r < 1 then
      r = 1
    end
    return math.floor(r)
  end

  local sock, serr = ngx.socket.tcp()
  if not sock then
    return nil, "connection", "cannot create a cosocket: " .. tostring(serr)
  end
  local cto = math.floor(self._connect_timeout * 1000)
  local rem = remaining_ms()
  sock:settimeouts(cto < rem and cto or rem, rem, rem)
  local pool = scheme .. "://" .. host .. ":" .. port .. (scheme == "https" and "#verify" or "")
  local ok, err = sock:connect(host, port, { pool = pool, pool_size = self._ka_pool })
  if not ok then
    local kind, msg = io_error("connect to " .. host .. ":" .. port, err)
    return fail(sock, kind, msg, "not_sent") -- nothing of the request left
  end
  local fresh = sock:getreusedtimes() == 0
  if scheme == "https" and fresh then
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

  sock:settimeouts(remaining_ms(), remaining_ms(), remaining_ms())
  local sent, werr = sock:send(out)
  if not sent then
    if werr == "closed" and scheme == "https" and fresh then
      -- nginx-lua can report a handshake as done on a connection it closed
      -- for a failed certificate verification (asynchronous handshakes)
      return fail(sock, "connection", "TLS connection to " .. host .. " closed right after the"
        .. " handshake (certificate not trusted? see lua_ssl_trusted_certificate)", "tls")
    end
    local kind, msg = io_error("sending the request", werr)
    return fail(sock, kind, msg)
  end

  -- status line (skipping interim 1xx responses)
  local status, version, line, rerr, resp_headers
  repeat
    sock:settimeouts(remaining_ms(), remaining_ms(), remaining_ms())
    line, rerr = sock:receive("*l")
    if not line then
      local kind, msg = io_error("reading the response", rerr)
      return fail(sock, kind, msg)
    end
    local v, s = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not s then
      return fail(sock, "connection", "malformed HTTP status line from " .. host)
    end
    version, status = tonumber(v), tonumber(s)
    local interim = status >= 100 and status < 200 and status ~= 101
    -- headers of this response (interim ones are discarded)
    local rh = {}
    local nheaders = 0
    while true do
      local h, herr = sock:receive("*l")
      if not h then
        local kind, msg = io_error("reading the response headers", herr)
        return fail(sock, kind, msg)
      end
      if h == "" then
        break
      end
      nheaders = nheaders + 1
      if nheaders > 200 then
        return fail(sock, "connection", "too many response headers from " .. host)
      end
      local k, val = h:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if not k then
        return fail(sock, "connection", "malformed response header from " .. host)
      end
      k = k:lower()
      if rh[k] then
        rh[k] = rh[k] .. ", " .. val
      else
        rh[k] = val
      end
    end
    if not interim then
      resp_headers = rh
    end
  until not interim

  -- body
  local max = self._max_body
  local te = resp_headers["transfer-encoding"]
  local cl = resp_headers["content-length"]
  local keepalive = version >= 1.1
  local conn = resp_headers["connection"]
  if conn and conn:lower():find("close", 1, true) then
    keepalive = false
  elseif version < 1.1 and conn and conn:lower():find("keep-alive", 1, true) then
    keepalive = true
  end
  local rbody
  if method == "HEAD" or status == 204 or status == 304 then
    rbody = ""
  elseif te and te:lower():find("chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      sock:settimeouts(remaining_ms(), remaining_ms(), remaining_ms())
      local sz, cerr = sock:receive("*l")
      if not sz then
        local kind, msg = io_error("reading the response body", cerr)
        return fail(sock, kind, msg)
      end
      local n = tonumber(sz:match("^%s*(%x+)"), 16)
      if not n then
        return fail(sock, "connection", "malformed chunked encoding from " .. host)
      end
      if n == 0 then
        -- trailers, up to the empty line
        repeat
          local t, terr = sock:receive("*l")
          if not t then
            local kind, msg = io_error("reading the response trailers", terr)
            return fail(sock, kind, msg)
          end
        until t == ""
        break
      end
      total = total + n
      if total > max then
        return fail(sock, "connection", "response body larger than max_body (" .. max
          .. " bytes)", "too_large")
      end
      local data, derr = sock:receive(n)
      if not data then
        local kind, msg = io_error("reading the response body", derr)
        return fail(sock, kind, msg)
      end
      parts[#parts + 1] = data
      local crlf, lerr = sock:receive("*l")
      if crlf ~= "" then
        if not crlf then
          local kind, msg = io_error("reading the response body", lerr)
          return fail(sock, kind, msg)
        end
        return fail(sock, "connection", "malformed chunked encoding from " .. host)
      end
    end
    rbody = table.concat(parts)
  elseif cl then
    local n = tonumber(cl)
    if not n or n < 0 or n % 1 ~= 0 then
      return fail(sock, "connection", "bad Content-Length from " .. host)
    end
    if n > max then
      return fail(sock, "connection", "response body larger than max_body (" .. max
        .. " bytes)", "too_large")
    end
    if n == 0 then
      rbody = ""
    else
      sock:settimeouts(remaining_ms(), remaining_ms(), remaining_ms())
      local data, derr = sock:receive(n)
      if not data then
        local kind, msg = io_error("reading the response body", derr)
        return fail(sock, kind, msg)
      end
      rbody = data
    end
  else
    -- delimited by the end of the connection
    keepalive = false
    local parts, total = {}, 0
    while true do
      sock:settimeouts(remaining_ms(), remaining_ms(), remaining_ms())
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
          local kind, msg = io_error("reading the response body", derr)
          return fail(sock, kind, msg)
        end
        break
      end
    end
    rbody = table.concat(parts)
  end

  if keepalive then
    local kok = sock:setkeepalive(self._ka_timeout, self._ka_pool)
    if not kok then
      sock:close()
    end
  else
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
