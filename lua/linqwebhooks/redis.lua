--- A small Redis client for the scale-out stores (Redis 6.2+, RESP2).
--
--   local redis = require "linqwebhooks.redis"
--   local r = redis.new{ url = "redis://user:pass@127.0.0.1:6379/0", timeout = 5 }  -- lazy
--   local r, err = redis.connect{ url = ... }     -- connects now (AUTH, SELECT)
--   r:call("SET", "k", "v", "NX", "PX", 60000)    -- reply | nil, err, kind
--   r:eval(script, keys, args)                    -- EVALSHA, EVAL-free after the first load
--   r:close()
--
-- URL forms: redis://[[user]:password@]host[:port][/db]   (port 6379, db 0)
--            rediss://...                                 (TLS)
--            unix://[[user]:password@]/path/redis.sock[?db=N]
-- user and password may be percent-encoded. AUTH (password, or ACL user and
-- password) and SELECT run on every new connection. The password is never
-- part of an error message or of tostring(client).
--
-- Replies: bulk string -> string, integer -> integer, array -> table,
-- status -> { ok = "OK" }, nil -> false, a nested error -> { err = "..." }.
-- A top-level error reply -> nil, "ERR ...", "redis"; a transport failure
-- -> nil, "redis: ...", "io" (the connection is dropped; the next call
-- opens a new one, a failed command is never resent).
--
-- Transports (chosen per call):
--   * inside nginx (ngx.get_phase() in a cosocket phase): ngx.socket.tcp with
--     the connection pool (sslhandshake for rediss://); no blocking call.
--     In phases without cosockets (init, init_worker, log, ...) calls return
--     nil, err: use a timer (ngx.timer.at(0, ...)).
--   * plain Lua, redis:// and unix://: hiredis's blocking connection (C module
--     linqwebhooks.hiredis).
--   * plain Lua, rediss://: LuaSocket + LuaSec.
-- The socket transports carry bytes only: commands are formatted and replies
-- parsed by hiredis (linqwebhooks.hiredis format / reader).
local options = require "linqwebhooks.options"
local tls_name = require "linqwebhooks.tls_name"
local transport = require "linqwebhooks.transport"

local M = {}

local unpack = table.unpack or unpack -- luacheck: ignore

-- The C module linqwebhooks.hiredis (RESP formatter/reader and hiredis's
-- blocking connection), loaded on first use.
local C
local function cmod()
  if not C then
    C = require "linqwebhooks.hiredis"
  end
  return C
end
M.c_module = cmod

local Client = {}
Client.__index = Client
M.Client = Client

local DEFAULT_PORT = 6379

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- Parses a Redis URL -> cfg table | nil, err (the error never echoes the URL).
function M.parse_url(url)
  if type(url) ~= "string" then
    return nil, "url must be a string"
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return nil, "url must look like redis://host:port/db, rediss://... or unix:///path"
  end
  scheme = scheme:lower()
  if scheme ~= "redis" and scheme ~= "rediss" and scheme ~= "unix" then
    return nil, "url scheme must be redis, rediss or unix, got '" .. scheme .. "'"
  end
  local cfg = { scheme = scheme, tls = scheme == "rediss", db = 0 }
  local query
  rest, query = rest:match("^([^?#]*)%??([^#]*)")
  local userinfo, hostpart = rest:match("^(.*)@(.*)$")
  if not userinfo then
    hostpart = rest
  end
  if userinfo then
    local user, pass = userinfo:match("^([^:]*):(.*)$")
    if user then
      cfg.user = user ~= "" and unescape(user) or nil
      cfg.password = unescape(pass)
    else
      -- redis://secret@host: a password alone (the common legacy form)
      cfg.password = unescape(userinfo)
    end
    if cfg.password == "" then
      cfg.password = nil
    end
  end
  if scheme == "unix" then
    if hostpart:sub(1, 1) ~= "/" then
      return nil, "unix url must be unix:///absolute/path"
    end
    cfg.path = hostpart
  else
    local host, port, db
    if hostpart:sub(1, 1) == "[" then
      host, port, db = hostpart:match("^%[([%x:.]+)%]:?(%d*)/?(%d*)$")
    else
      host, port, db = hostpart:match("^([%w.-]+):?(%d*)/?(%d*)$")
    end
    if not host or host == "" then
      return nil, "url has no valid host (redis://host:port/db)"
    end
    cfg.host = host
    cfg.port = port ~= "" and tonumber(port) or DEFAULT_PORT
    if cfg.port < 1 or cfg.port > 65535 then
      return nil, "url port must be between 1 and 65535"
    end
    if db ~= "" then
      cfg.db = tonumber(db)
    end
  end
  for k, v in (query or ""):gmatch("([^&=]+)=([^&]*)") do
    if k == "db" and v:match("^%d+$") then
      cfg.db = tonumber(v)
    end
  end
  return cfg
end

local function redacted(cfg)
  local auth = ""
  if cfg.user then
    auth = cfg.user .. (cfg.password and ":***" or "") .. "@"
  elseif cfg.password then
    auth = ":***@"
  end
  if cfg.scheme == "unix" then
    return "unix://" .. auth .. cfg.path .. (cfg.db ~= 0 and ("?db=" .. cfg.db) or "")
  end
  local host = cfg.host:find(":", 1, true) and ("[" .. cfg.host .. "]") or cfg.host
  return cfg.scheme .. "://" .. auth .. host .. ":" .. cfg.port .. "/" .. cfg.db
end
M.redacted = function(url)
  local cfg = M.parse_url(url)
  return cfg and redacted(cfg) or "(invalid redis url)"
end

local function positive(v)
  if v ~= v or v <= 0 or v >= 2147483 then
    return false, "must be a positive number of seconds"
  end
  return true
end

M.SCHEMA = {
  url = "string",
  timeout = { types = { "number" }, check = positive },
  connect_timeout = { types = { "number" }, check = positive },
  cafile = "string",
  verify = "boolean",
  server_name = "string",
  pool_size = { types = { "number" }, check = positive },
}

--- redis.new{ url, timeout = 5, connect_timeout = timeout, cafile, verify = true,
--   server_name, pool_size = 32 } -> client (no connection yet)
-- cafile: CA bundle for rediss:// (default: the system store); verify = false
-- turns certificate checks off (tests only). Inside nginx the trusted CAs
-- are nginx's `lua_ssl_trusted_certificate`.
function M.new(opts, level)
  level = (level or 1) + 1
  options.check("linqwebhooks.redis", opts, M.SCHEMA, level)
  if opts == nil or opts.url == nil then
    error("linqwebhooks.redis: option 'url' is required (redis://host:port/db)", level)
  end
  local cfg, err = M.parse_url(opts.url)
  if not cfg then
    error("linqwebhooks.redis: option 'url': " .. err, level)
  end
  cfg.timeout = opts.timeout or 5
  cfg.connect_timeout = opts.connect_timeout or cfg.timeout
  cfg.cafile = opts.cafile
  cfg.verify = opts.verify ~= false
  cfg.server_name = opts.server_name or cfg.host
  cfg.pool_size = math.floor(opts.pool_size or 32)
  cfg.where = cfg.scheme == "unix" and cfg.path or (cfg.host .. ":" .. cfg.port)
  cfg.display = redacted(cfg)
  -- round_trips: exchanges with the server so far (a call or a pipeline is
  -- one; the AUTH/SELECT of a new connection are not counted)
  return setmetatable({ _cfg = cfg, _conn = nil, _closed = false, round_trips = 0 }, Client)
end

--- redis.connect(opts) -> client | nil, err: new() and open the connection now
-- (in nginx: a PING through the pool).
function M.connect(opts)
  local client = M.new(opts, 2)
  local ok, err = client:call("PING")
  if not ok then
    return nil, err
  end
  return client
end

Client.__tostring = function(self)
  return "linqwebhooks.redis (" .. self._cfg.display .. ")"
end

-- ---- nginx detection ---------------------------------------------------

local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

--- "cosocket" | nil, err (in nginx without cosockets) | false (plain Lua)
local function ngx_mode()
  local phase = transport.phase()
  if phase == nil then
    return false
  end
  if COSOCKET_PHASES[phase] then
    return "cosocket"
  end
  return nil, "redis: no cosockets in nginx's '" .. tostring(phase) .. "' phase (a blocking"
    .. " call would stall the worker): call from a timer, ngx.timer.at(0, fn), or a"
    .. " rewrite/access/content handler"
end
M.ngx_mode = ngx_mode

-- ---- reading replies over a byte transport --------------------------------

-- recv(max) -> bytes | nil, err. Feeds the reader until `n` replies are out.
local function read_replies(reader, recv, n)
  local out = {}
  local count = 0
  while count < n do
    local v, err, kind = reader:get()
    if kind == "protocol" then
      return nil, err -- the byte stream is unusable
    end
    if v ~= nil or err then
      count = count + 1
      out[count] = { v, err, kind }
    else
      local data, rerr = recv()
      if not data then
        return nil, rerr
      end
      local ok, ferr = reader:feed(data)
      if not ok then
        return nil, ferr
      end
    end
  end
  return out
end

-- { {cmd, args...}, ... } -> the commands formatted (RESP), one string.
local function format_cmds(cmds)
  local C_ = cmod()
  local parts = {}
  for i = 1, #cmds do
    local args = cmds[i]
    parts[i] = C_.format(unpack(args, 1, args.n or #args))
  end
  return table.concat(parts)
end

-- AUTH / SELECT for a new connection: { {cmd, args...}, ... } (maybe empty).
local function handshake_cmds(cfg)
  local cmds = {}
  if cfg.password then
    cmds[#cmds + 1] = cfg.user and { "AUTH", cfg.user, cfg.password } or { "AUTH", cfg.password }
  end
  if cfg.db ~= 0 then
    cmds[#cmds + 1] = { "SELECT", cfg.db }
  end
  return cmds
end

-- The error of the first refused handshake command, or nil.
local function handshake_failure(cfg, cmds, replies)
  for i = 1, #cmds do
    if replies[i][1] == nil then
      return "redis: " .. cmds[i][1] .. " failed on " .. cfg.where .. ": " .. tostring(replies[i][2])
    end
  end
end

-- ---- the nginx cosocket transport ---------------------------------------

local function pool_name(cfg)
  local ngx = rawget(_G, "ngx")
  local secret = (cfg.user or "") .. "\0" .. (cfg.password or "")
  return "linqwh-redis:" .. cfg.scheme .. ":" .. cfg.where .. "/" .. cfg.db
    .. "#" .. tostring(ngx.crc32_long(secret))
end

local function ngx_io_err(cfg, what, err)
  if err == "timeout" then
    return "redis: " .. cfg.where .. ": timeout while " .. what
  end
  return "redis: " .. cfg.where .. ": " .. what .. " failed: " .. tostring(err)
end

-- Sends `payload` on sock and reads its n replies; closes sock on failure.
local function ngx_roundtrip(sock, cfg, reader, payload, n)
  local sent, werr = sock:send(payload)
  if not sent then
    sock:close()
    return nil, ngx_io_err(cfg, "sending", werr)
  end
  local replies, rerr = read_replies(reader, function()
    return sock:receiveany(65536)
  end, n)
  if not replies then
    sock:close()
    return nil, ngx_io_err(cfg, "reading the reply", rerr)
  end
  return replies
end

-- Runs `payload` (formatted commands, n replies expected) on a pooled cosocket.
local function ngx_exchange(cfg, payload, n)
  local ngx = rawget(_G, "ngx")
  local sock, serr = ngx.socket.tcp()
  if not sock then
    return nil, "redis: cannot create a cosocket: " .. tostring(serr)
  end
  local cto = math.floor(cfg.connect_timeout * 1000)
  local to = math.floor(cfg.timeout * 1000)
  sock:settimeouts(cto, to, to)
  local ok, err
  local popts = { pool = pool_name(cfg), pool_size = cfg.pool_size }
  if cfg.path then
    ok, err = sock:connect("unix:" .. cfg.path, popts)
  else
    ok, err = sock:connect(cfg.host, cfg.port, popts)
  end
  if not ok then
    return nil, "redis: cannot connect to " .. cfg.where .. ": " .. tostring(err)
  end
  local fresh = sock:getreusedtimes() == 0
  local reader = cmod().reader()
  if fresh then
    if cfg.tls then
      local hs, herr = sock:sslhandshake(false, cfg.server_name, cfg.verify)
      if not hs then
        sock:close()
        return nil, "redis: TLS handshake with " .. cfg.where .. " failed: " .. tostring(herr)
      end
    end
    -- AUTH / SELECT answered before any command is sent: a command must
    -- never run unauthenticated or in the wrong database
    local cmds = handshake_cmds(cfg)
    if #cmds > 0 then
      local replies, herr = ngx_roundtrip(sock, cfg, reader, format_cmds(cmds), #cmds)
      if replies then
        herr = handshake_failure(cfg, cmds, replies)
        if herr then
          sock:close()
        end
      end
      if herr then
        return nil, herr
      end
    end
  end
  local replies, rerr = ngx_roundtrip(sock, cfg, reader, payload, n)
  reader:close()
  if not replies then
    return nil, rerr
  end
  sock:setkeepalive(60000, cfg.pool_size)
  return replies
end

-- ---- plain Lua transports --------------------------------------------------


-- A LuaSocket (+LuaSec) connection with the C formatter and reader.
local SockConn = {}
SockConn.__index = SockConn

local function sock_open(cfg)
  local socket = require "socket"
  local s = socket.tcp()
  s:settimeout(cfg.connect_timeout)
  local ok, err = s:connect(cfg.host, cfg.port)
  if not ok then
    s:close()
    return nil, "redis: cannot connect to " .. cfg.where .. ": " .. tostring(err)
  end
  if cfg.tls then
    local ssl = require "ssl"
    local params = {
      mode = "client", protocol = "any", options = { "all", "no_sslv2", "no_sslv3" },
      verify = cfg.verify and { "peer", "fail_if_no_peer_cert" } or "none",
    }
    if cfg.cafile then
      params.cafile = cfg.cafile
    elseif cfg.verify then
      params.capath = "/etc/ssl/certs"
    end
    local t, werr = ssl.wrap(s, params)
    if not t then
      s:close()
      return nil, "redis: TLS setup for " .. cfg.where .. " failed: " .. tostring(werr)
    end
    s = t
    if cfg.server_name and not cfg.server_name:match("^[%d.]+$") and not cfg.server_name:find(":") then
      s:sni(cfg.server_name)
    end
    s:settimeout(cfg.connect_timeout)
    local hs, herr = s:dohandshake()
    if not hs then
      s:close()
      return nil, "redis: TLS handshake with " .. cfg.where .. " failed: " .. tostring(herr)
    end
    if cfg.verify then
      local cert = s:getpeercertificate()
      if not cert or not tls_name.matches(cert, cfg.server_name) then
        s:close()
        return nil, "redis: TLS handshake with " .. cfg.where .. " failed: the certificate does"
          .. " not match '" .. cfg.server_name .. "'"
      end
    end
  end
  s:settimeout(0)
  return setmetatable({ s = s, cfg = cfg, reader = cmod().reader() }, SockConn)
end

function SockConn:exchange(payload, n)
  local socket = require "socket"
  local s, cfg = self.s, self.cfg
  local deadline = socket.gettime() + cfg.timeout
  local i = 1
  while i <= #payload do
    local sent, err, last = s:send(payload, i)
    if sent then
      i = sent + 1
    elseif err == "timeout" or err == "wantwrite" or err == "wantread" then
      i = (last or i - 1) + 1
      local left = deadline - socket.gettime()
      if left <= 0 then
        return nil, "redis: " .. cfg.where .. ": timeout while sending"
      end
      socket.select(err == "wantread" and { s } or nil, err ~= "wantread" and { s } or nil, left)
    else
      return nil, "redis: " .. cfg.where .. ": sending failed: " .. tostring(err)
    end
  end
  return read_replies(self.reader, function()
    while true do
      local data, err, partial = s:receive(65536)
      data = data or partial
      if data and #data > 0 then
        return data
      end
      if err ~= "timeout" and err ~= "wantread" and err ~= "wantwrite" then
        if err == "closed" then
          return nil, "redis: " .. cfg.where .. ": connection closed by the server"
        end
        return nil, "redis: " .. cfg.where .. ": reading failed: " .. tostring(err)
      end
      local left = deadline - socket.gettime()
      if left <= 0 then
        return nil, "redis: " .. cfg.where .. ": timeout while reading the reply"
      end
      if not (s.dirty and s:dirty()) then
        socket.select(err ~= "wantwrite" and { s } or nil, err == "wantwrite" and { s } or nil, left)
      end
    end
  end, n)
end

function SockConn:close()
  if self.s then
    self.s:close()
    self.s = nil
    self.reader:close()
  end
end

-- The hiredis blocking connection, same exchange() shape.
local HiConn = {}
HiConn.__index = HiConn

local function hiredis_open(cfg)
  local C_ = cmod()
  local c, err
  if cfg.path then
    c, err = C_.connect_unix(cfg.path, cfg.connect_timeout, cfg.timeout)
  else
    c, err = C_.connect(cfg.host, cfg.port, cfg.connect_timeout, cfg.timeout)
  end
  if not c then
    return nil, err
  end
  return setmetatable({ c = c }, HiConn)
end

function HiConn:exchange_cmds(cmds)
  local out = {}
  local c = self.c
  for i = 1, #cmds do
    local args = cmds[i]
    local v, err, kind = c:command(unpack(args, 1, args.n or #args))
    if v == nil and kind == "io" then
      return nil, err
    end
    out[i] = { v, err, kind }
  end
  return out
end

function HiConn:close()
  self.c:close()
end

-- ---- the client ----------------------------------------------------------

-- Opens a plain-Lua connection with AUTH and SELECT done.
local function open(cfg)
  local conn, err
  if cfg.tls then
    conn, err = sock_open(cfg)
  else
    conn, err = hiredis_open(cfg)
  end
  if not conn then
    return nil, err
  end
  local cmds = handshake_cmds(cfg)
  if #cmds > 0 then
    local res, herr = conn:exchange_cmds(cmds)
    herr = res and handshake_failure(cfg, cmds, res) or herr
    if herr then
      conn:close()
      return nil, herr
    end
  end
  return conn
end

function SockConn:exchange_cmds(cmds)
  return self:exchange(format_cmds(cmds), #cmds)
end

local function is_stale(err)
  err = tostring(err):lower()
  return err:find("closed", 1, true) or err:find("reset", 1, true) or err:find("broken pipe", 1, true)
end

--- client:pipeline({ {cmd, args...}, ... }) -> { {reply, err, kind}, ... } | nil, err
-- Sends every command in one write (one round trip on the socket transports;
-- hiredis's blocking connection sends them one by one).
function Client:pipeline(cmds)
  if self._closed then
    return nil, "redis: client closed"
  end
  local mode, merr = ngx_mode()
  if mode == nil then
    return nil, merr
  end
  self.round_trips = self.round_trips + 1
  if mode == "cosocket" then
    return ngx_exchange(self._cfg, format_cmds(cmds), #cmds)
  end
  local conn = self._conn
  local reused = conn ~= nil
  if not conn then
    local err
    conn, err = open(self._cfg)
    if not conn then
      return nil, err
    end
    self._conn = conn
  end
  local res, err = conn:exchange_cmds(cmds)
  if not res then
    -- the stream position is unknown: drop the connection
    conn:close()
    self._conn = nil
    -- A kept connection the server closed meanwhile (restart, idle
    -- timeout, failover): a new connection and one more try. (If the server
    -- died after running the command, it runs twice: the stores' scripts
    -- are safe to repeat.)
    if reused and is_stale(err) then
      return self:pipeline_fresh(cmds)
    end
    return nil, err
  end
  return res
end

function Client:pipeline_fresh(cmds)
  local conn, err = open(self._cfg)
  if not conn then
    return nil, err
  end
  self._conn = conn
  local res
  res, err = conn:exchange_cmds(cmds)
  if not res then
    conn:close()
    self._conn = nil
    return nil, err
  end
  return res
end

--- client:call(cmd, args...) -> reply | nil, err, kind ("redis" | "io")
function Client:call(...)
  local res, err = self:pipeline({ { n = select("#", ...), ... } })
  if not res then
    return nil, err, "io"
  end
  local r = res[1]
  return r[1], r[2], r[3]
end

-- Script SHA1s by source, learnt from SCRIPT LOAD (shared by all clients).
local SHAS = {}

--- client:eval(src, keys, args) -> reply | nil, err, kind: EVALSHA, loading
-- the script on NOSCRIPT (once per server), so the usual case is one round trip.
function Client:eval(src, keys, args)
  local argv = { "EVALSHA", false, #keys }
  for i = 1, #keys do
    argv[#argv + 1] = keys[i]
  end
  for i = 1, #(args or {}) do
    argv[#argv + 1] = args[i]
  end
  argv.n = #argv
  for _ = 1, 2 do
    local sha = SHAS[src]
    if not sha then
      local loaded, err, kind = self:call("SCRIPT", "LOAD", src)
      if not loaded then
        return nil, err, kind
      end
      sha = loaded
      SHAS[src] = sha
    end
    argv[2] = sha
    local res, perr = self:pipeline({ argv })
    if not res then
      return nil, perr, "io"
    end
    local v, err, kind = res[1][1], res[1][2], res[1][3]
    if v == nil and kind == "redis" and tostring(err):find("^NOSCRIPT") then
      SHAS[src] = nil
    else
      return v, err, kind
    end
  end
  return nil, "redis: script could not be loaded", "redis"
end

function Client:close()
  self._closed = true
  if self._conn then
    self._conn:close()
    self._conn = nil
  end
  return true
end

Client.__gc = Client.close
Client.__close = Client.close

return M
