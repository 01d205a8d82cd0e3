--- The processes of the scale-out run (run.lua): a redis-server of its own,
-- nginx, the Lua receivers and workers, all children of run.lua in one
-- temporary directory, their output appended to one file and relayed live.
--
--   local services = dofile(here .. "/services.lua")
--   local sv = services.new(root)            -- root: the checkout (absolute)
--   sv.tmp, sv:spawn(name, cmd, env_file, what), sv:stop_all() -> clean, sv:remove()
-- Loopback only. Lua 5.4 and LuaJIT.
local sys = require "linqwebhooks.process"
local alive = require("linqwebhooks.emulator.process").alive
local socket = require "socket"

local M = {}

M.alive = alive

local NGINX = os.getenv("LINQWH_NGINX") or "/usr/sbin/nginx"
-- keep a sanitizer runtime preloaded into the interpreter (make asan) out
-- of the servers (env execs them: the pid stays the server's)
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "
local NGINX_MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so",
                        "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

function M.say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end
local say = M.say

function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = M.q

--- true when the command exits 0 (os.execute differs between 5.1 and 5.4)
function M.run(cmd)
  local a, _, c = os.execute(cmd)
  return a == true and (c == nil or c == 0) or a == 0
end
local run = M.run

function M.capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end
local capture = M.capture

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end
local read_file = M.read_file

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

function M.listening(port)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

local S = {}
S.__index = S

--- A temporary directory (mode 755: nginx workers may run as another user
-- than a root master) holding the children's log.
function M.new(root)
  local tmp = capture("mktemp -d /tmp/linqwh-scale-out.XXXXXX")
  assert(tmp ~= "" and exists(tmp), "mktemp failed")
  assert(run("chmod 755 " .. q(tmp)))
  return setmetatable({ root = root, tmp = tmp, log_path = tmp .. "/children.log", offset = 0,
                        children = {}, others = {} }, S)
end

--- Relays the children's new output lines to our stdout.
function S:relay()
  local f = io.open(self.log_path, "rb")
  if not f then
    return
  end
  f:seek("set", self.offset)
  local s = f:read("*a") or ""
  f:close()
  local upto = s:match("^.*\n()") -- complete lines only
  if upto then
    io.stdout:write(s:sub(1, upto - 1))
    io.stdout:flush()
    self.offset = self.offset + upto - 1
  end
end

--- Sleeps, relaying the output meanwhile.
function S:sleep(s)
  local deadline = socket.gettime() + s
  repeat
    self:relay()
    socket.sleep(math.min(0.1, math.max(0, deadline - socket.gettime())))
  until socket.gettime() >= deadline
end

--- The children's whole output so far.
function S:output()
  return read_file(self.log_path) or ""
end

--- Writes `vars` ({ NAME = value }, `order` lists the names) as a 0600
-- shell file the children source: signing secrets never appear on a
-- command line. Returns its path.
function S:write_env(vars, order)
  local path = self.tmp .. "/env.sh"
  local f = assert(io.open(path, "wb"))
  f:close()
  assert(sys.chmod(path, 384)) -- 0600 before the secrets go in
  f = assert(io.open(path, "wb"))
  for _, k in ipairs(order) do
    if vars[k] then
      f:write("export ", k, "=", q(vars[k]), "\n")
    end
  end
  f:close()
  return path
end

--- Starts `cmd` (a shell command line) as a child: the shell prints its
-- pid, then execs the command, so the pid is the command's; its output is
-- appended to the shared log.
function S:spawn(name, cmd, env_file, what)
  local script = (env_file and (". " .. q(env_file) .. "; ") or "") .. "echo $$; exec " .. cmd
    .. " >>" .. q(self.log_path) .. " 2>&1 </dev/null"
  local p = assert(io.popen("sh -c " .. q(script)))
  local c = { name = name, p = p, pid = tonumber(p:read("*l")), what = what }
  assert(c.pid, "could not start " .. name)
  self.children[#self.children + 1] = c
  say("process      %-10s pid %-7d %s", name, c.pid, what)
  return c
end

--- SIGTERM, then waits (SIGKILL after 10 s) and reaps. Returns false when
-- something had to be killed.
function S:stop(list)
  for _, c in ipairs(list) do
    sys.kill(c.pid, "TERM")
  end
  local clean = true
  local deadline = socket.gettime() + 10
  for _, c in ipairs(list) do
    while alive(c.pid) and socket.gettime() < deadline do
      self:sleep(0.05)
    end
    if alive(c.pid) then
      say("%s (pid %d) did not stop on SIGTERM: SIGKILL", c.name, c.pid)
      sys.kill(c.pid, "KILL")
      clean = false
    end
    c.p:close() -- reaps it (returns at once: it has exited)
    c.stopped = true
  end
  return clean
end

--- Stops every child still running: receivers, workers and nginx first,
-- Redis last (the workers hand back deliveries there).
function S:stop_all()
  local first, last = {}, {}
  for _, c in ipairs(self.children) do
    if not c.stopped then
      table.insert(c.name == "redis" and last or first, c)
    end
  end
  local clean = self:stop(first)
  clean = self:stop(last) and clean
  self:relay()
  return clean
end

--- Every process started, with the ones not reaped here (nginx workers).
function S:processes()
  local all = {}
  for _, c in ipairs(self.children) do
    all[#all + 1] = c
  end
  for _, c in ipairs(self.others) do
    all[#all + 1] = c
  end
  return all
end

--- Removes the temporary directory (kept with LINQWH_KEEP_SCALE_OUT=1).
function S:remove()
  if self.tmp and not os.getenv("LINQWH_KEEP_SCALE_OUT") then
    run("rm -rf " .. q(self.tmp))
  end
  self.tmp = nil
end

--- A redis-server of our own: loopback, a free port, AOF on and no RDB
-- snapshots, in the temporary directory. Returns its URL.
function S:start_redis()
  local bin = capture("command -v redis-server 2>/dev/null")
  if bin == "" then
    error("redis-server not found: install it, set LINQ_REDIS_URL, or run with LINQ_INBOX=sqlite", 0)
  end
  local dir = self.tmp .. "/redis"
  assert(run("mkdir -p " .. q(dir)))
  for _ = 1, 3 do
    local port = M.free_port()
    local c = self:spawn("redis", CLEAN_ENV .. q(bin) .. " --port " .. port .. " --bind 127.0.0.1 --protected-mode no"
      .. " --save '' --appendonly yes --appendfsync everysec --dir " .. q(dir)
      .. " --logfile " .. q(dir .. "/redis.log"), nil, "redis-server 127.0.0.1:" .. port
      .. " (--save \"\" --appendonly yes, " .. dir .. ")")
    local deadline = socket.gettime() + 10
    while alive(c.pid) and socket.gettime() < deadline do
      local s = socket.tcp()
      s:settimeout(0.5)
      if s:connect("127.0.0.1", port) then
        s:send("PING\r\n")
        local line = s:receive("*l")
        s:close()
        if line == "+PONG" then
          return "redis://127.0.0.1:" .. port .. "/0"
        end
      else
        s:close()
      end
      self:sleep(0.02)
    end
    self:stop({ c })
    local rlog = read_file(dir .. "/redis.log") or ""
    if not rlog:find("in use", 1, true) then
      error("redis-server did not start:\n" .. rlog, 0)
    end
  end
  error("redis-server did not start (no free port)", 0)
end

--- Why nginx cannot be a receiver here, or nil when it can.
function S:nginx_unavailable()
  if not exists(NGINX) then
    return NGINX .. " not found"
  end
  for _, m in ipairs(NGINX_MODULES) do
    if not exists(m) then
      return m .. " not found (libnginx-mod-http-lua)"
    end
  end
  for _, m in ipairs({ "core", "hiredis" }) do
    local so = self.root .. "/build/jit/linqwebhooks/" .. m .. ".so"
    if not exists(so) then
      return so .. " not built (make luajit)"
    end
  end
  return nil
end

--- nginx (master + 2 workers, daemon off: the master is our child) with
-- examples/scale-out/nginx.conf, its port replaced, in a prefix that links
-- to the checkout.
function S:start_nginx(name, port, env_file)
  local p, root = self.tmp .. "/nginx", self.root
  assert(run("mkdir -p " .. q(p .. "/build/scale-out") .. " " .. q(p .. "/conf")))
  for _, d in ipairs({ "lua", "examples" }) do
    assert(run("ln -s " .. q(root .. "/" .. d) .. " " .. q(p .. "/" .. d)))
  end
  assert(run("ln -s " .. q(root .. "/build/jit") .. " " .. q(p .. "/build/jit")))
  local conf, n = assert(read_file(root .. "/examples/scale-out/nginx.conf"))
    :gsub("listen 127%.0%.0%.1:8789;", "listen 127.0.0.1:" .. port .. ";")
  assert(n == 1, "examples/scale-out/nginx.conf has no 'listen 127.0.0.1:8789;'")
  local f = assert(io.open(p .. "/conf/nginx.conf", "wb"))
  f:write(conf)
  f:close()
  -- a root master would run its workers as nobody: keep the checkout's user
  local user = capture("id -u") == "0" and " user root root;" or ""
  local c = self:spawn(name, CLEAN_ENV .. q(NGINX) .. " -p " .. q(p .. "/") .. " -c conf/nginx.conf -g "
    .. q("daemon off;" .. user), env_file, "nginx master, 2 workers (openresty.serve, Redis"
    .. " inbox through cosockets), port " .. port)
  c.error_log = p .. "/build/scale-out/error.log"
  return c
end

--- The nginx workers (children of the master `c`), recorded so that the
-- final check covers them too. Returns their pids.
function S:nginx_workers(c)
  local pids = {}
  for pid in capture("pgrep -P " .. c.pid .. " 2>/dev/null"):gmatch("%d+") do
    pids[#pids + 1] = pid
    self.others[#self.others + 1] = { name = "nginx worker", pid = tonumber(pid) }
  end
  return pids
end

--- The [error] (or worse) lines of nginx's error log.
function M.nginx_errors(c)
  local found = {}
  for line in (read_file(c.error_log) or ""):gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
      or line:find("%[emerg%]") then
      found[#found + 1] = line
    end
  end
  return found
end

return M
