--- Test support: a real redis-server on a free loopback port, with its own
-- temporary directory (AOF on, no RDB snapshots).
--
--   local rs = require "support.redis"
--   local srv = rs.start{ password = "s3cret",   -- requirepass (optional)
--                         tls = true,            -- also a TLS port (srv.tls_port, srv.ca)
--                         unix = true }          -- also a unix socket (srv.socket)
--   srv.port, srv.url   -- "redis://:s3cret@127.0.0.1:PORT/0"
--   srv:url_for{ db = 1, user = "u", password = "p", scheme = "rediss" }
--   srv:client()        -- a linqwebhooks.redis client with admin rights (default user)
--   srv:stop()          -- SIGTERM (AOF flushed), waits; srv:kill() -- SIGKILL
--   srv:restart()       -- same port, same directory (the AOF is replayed)
--   srv:destroy()       -- stop and remove the directory (idempotent; call in teardown)
-- Ready when the server answers PING. Works under lua5.4 and luajit.
local socket = require "socket"
local util = require "support.util"

local M = {}

local SERVER = os.getenv("LINQWH_REDIS_SERVER") or "redis-server"

local function run(cmd)
  local a, _, c = os.execute(cmd)
  if a == true or a == 0 then
    return true
  end
  return false, c
end

function M.available()
  local p = io.popen("command -v " .. SERVER .. " 2>/dev/null")
  local path = p:read("*l")
  p:close()
  if not path or path == "" then
    return false, SERVER .. " not found (apt-get install redis-server)"
  end
  return true
end

local function mktemp_dir()
  local p = io.popen("mktemp -d /tmp/linqwh-redis.XXXXXX")
  local dir = p:read("*l")
  p:close()
  assert(dir and dir ~= "", "support.redis: mktemp failed")
  return dir
end

local Server = {}
Server.__index = Server

-- One TLS key pair for the whole run (self-signed, CN and SAN 127.0.0.1 / localhost).
local function make_cert(dir)
  local ok = run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
    .. " -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost'"
    .. " -keyout " .. util.sh_quote(dir .. "/key.pem") .. " -out " .. util.sh_quote(dir .. "/cert.pem")
    .. " >/dev/null 2>&1")
  assert(ok, "support.redis: openssl could not make a certificate")
  return dir .. "/cert.pem", dir .. "/key.pem"
end

-- true when something answers on the port; with `ready`, only when the
-- server answers PING with PONG (not "-LOADING": the AOF is still replayed)
local function ping(port, password, ready)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  if not ok then
    c:close()
    return false
  end
  if ready and password then
    c:send("AUTH " .. password .. "\r\n") -- inline commands (test passwords have no spaces)
    c:receive("*l")
  end
  c:send("PING\r\n")
  local line = c:receive("*l")
  c:close()
  if ready then
    return line == "+PONG"
  end
  return line ~= nil
end

function Server:_launch()
  local d = self.dir
  local args = {
    SERVER, "--port", tostring(self.port), "--bind", "127.0.0.1", "--save", "''",
    "--appendonly", "yes", "--appendfsync", "everysec", "--dir", util.sh_quote(d),
    "--daemonize", "yes", "--pidfile", util.sh_quote(d .. "/redis.pid"),
    "--logfile", util.sh_quote(d .. "/redis.log"), "--protected-mode", "no",
  }
  local function add(...)
    for _, v in ipairs({ ... }) do
      args[#args + 1] = v
    end
  end
  if self.password then
    add("--requirepass", util.sh_quote(self.password))
  end
  if self.socket then
    add("--unixsocket", util.sh_quote(self.socket), "--unixsocketperm", "700")
  end
  if self.tls_port then
    add("--tls-port", tostring(self.tls_port), "--tls-cert-file", util.sh_quote(self.ca),
      "--tls-key-file", util.sh_quote(self.key), "--tls-ca-cert-file", util.sh_quote(self.ca),
      "--tls-auth-clients", "no")
  end
  for _, a in ipairs(self.extra or {}) do
    add(util.sh_quote(a))
  end
  -- keep sanitizer runtimes (make asan) out of the server
  local ok = run("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS " .. table.concat(args, " ")
    .. " >/dev/null 2>&1")
  if not ok then
    return false
  end
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    if ping(self.port, self.password, true) then
      local pid = util.read_file(d .. "/redis.pid")
      self.pid = pid and tonumber(pid:match("%d+"))
      if self.pid then
        self.running = true
        return true
      end
    end
    socket.sleep(0.02)
  end
  return false
end

--- Starts a server; raises with its log on failure.
-- opts: password, tls, unix, extra (list of further redis-server arguments)
function M.start(opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then
    error("support.redis: " .. why, 2)
  end
  local last
  for _ = 1, 5 do
    local dir = mktemp_dir()
    local srv = setmetatable({
      dir = dir,
      port = util.free_port(),
      password = opts.password,
      extra = opts.extra,
      socket = opts.unix and (dir .. "/redis.sock") or nil,
    }, Server)
    if opts.tls then
      srv.tls_port = util.free_port()
      srv.ca, srv.key = make_cert(dir)
    end
    srv.url = srv:url_for()
    if srv:_launch() then
      return srv
    end
    last = util.read_file(dir .. "/redis.log") or ""
    srv:destroy()
    if not last:find("in use", 1, true) then
      break
    end
  end
  error("support.redis: redis-server did not start:\n" .. tostring(last), 2)
end

--- A URL for this server. o: scheme ("redis" | "rediss" | "unix"), db,
-- user, password (default: the server's requirepass, as the default user).
function Server:url_for(o)
  o = o or {}
  local scheme = o.scheme or "redis"
  local pw = o.password
  if pw == nil then
    pw = self.password
  end
  local auth = ""
  if o.user then
    auth = o.user .. ":" .. (pw or "") .. "@"
  elseif pw then
    auth = ":" .. pw .. "@"
  end
  if scheme == "unix" then
    return "unix://" .. auth .. self.socket .. (o.db and ("?db=" .. o.db) or "")
  end
  local port = scheme == "rediss" and self.tls_port or self.port
  return scheme .. "://" .. auth .. "127.0.0.1:" .. port .. "/" .. (o.db or 0)
end

--- An admin client (default user, the server's password).
function Server:client(o)
  return require("linqwebhooks.redis").new({ url = self:url_for(o), timeout = 5 })
end

local function alive(pid)
  return pid and run("kill -0 " .. pid .. " 2>/dev/null")
end

-- Gone when its pid file is removed (clean exit) or the pid is gone (a
-- zombie may linger where nothing reaps daemons).
local function wait_gone(pid, pidfile)
  local deadline = socket.gettime() + 10
  while alive(pid) and util.read_file(pidfile) and socket.gettime() < deadline do
    socket.sleep(0.02)
  end
  if alive(pid) then
    run("kill -KILL " .. pid .. " 2>/dev/null")
    socket.sleep(0.05)
  end
end

--- SIGTERM (the AOF is flushed), then waits for the process to exit.
function Server:stop()
  if self.running and self.pid then
    run("kill -TERM " .. self.pid .. " 2>/dev/null")
    wait_gone(self.pid, self.dir .. "/redis.pid")
    -- the listening socket closes with the process
    local deadline = socket.gettime() + 5
    while ping(self.port) and socket.gettime() < deadline do
      socket.sleep(0.01)
    end
  end
  self.running = false
end

--- SIGKILL: an abrupt crash (appendfsync everysec may lose the last second).
function Server:kill()
  if self.running and self.pid then
    run("kill -KILL " .. self.pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 5
    while ping(self.port) and socket.gettime() < deadline do
      socket.sleep(0.01)
    end
    os.remove(self.dir .. "/redis.pid")
  end
  self.running = false
end

--- Starts the server again on the same port and directory.
function Server:restart()
  self:stop()
  for _ = 1, 50 do
    if self:_launch() then
      return true
    end
    socket.sleep(0.1)
  end
  error("support.redis: restart failed:\n" .. (util.read_file(self.dir .. "/redis.log") or ""), 2)
end

--- Stops the server and removes its directory (idempotent).
function Server:destroy()
  self:stop()
  if self.dir and not os.getenv("LINQWH_KEEP_REDIS") then
    run("rm -rf " .. util.sh_quote(self.dir))
  end
  self.dir = nil
end

return M
