--- Test support: start and stop a real nginx (Debian nginx-light +
-- libnginx-mod-http-lua) on a free loopback port, with a temporary prefix.
--
--   local nginx = require "support.nginx"
--   if not nginx.available() then pending(...) end
--   local srv = nginx.start{
--     http   = "lua_shared_dict seen 1m;",           -- extra http{} directives
--     server = "location /t { content_by_lua_block { ngx.say('ok') } }",
--     main   = "",                                    -- extra main-level directives
--     worker_processes = 2,                           -- default 2
--     files = { ["lua/site.lua"] = "return {}" },     -- written under the prefix
--   }
--   local res = srv:request("POST", "/t", { ["x-a"] = "1" }, "body")
--   -- res = { status = n, headers = { [lowercase] = value }, body = s } or nil, msg
--   srv:errors()       -- [error]/[crit]/[alert]/[emerg] lines of the error log
--   srv:wait_log(pat)  -- the error log once it matches pat (waits up to 2 s)
--   srv:stop()         -- idempotent; always call it (finally / teardown)
--
-- One nginx for all the cases of a describe block (started in setup, stopped
-- in teardown, cases pending with the reason where nginx is missing):
--   local site = nginx.suite({ setup = setup, teardown = teardown, it = it,
--                              pending = pending }, { server = "..." })
--   site.it("answers", function() assert(site.srv:request("GET", "/t")) end)
--   (the options may be a function returning them, run in setup)
--
-- The nginx Lua module runs OpenResty's LuaJIT, so the C module loaded in
-- nginx is the `make luajit` build (build/jit). start() runs `make -s luajit`
-- once per process so that build is never missing or stale.
-- Works under lua5.4 and luajit (LuaSocket for the client side).
--   nginx.start{ example = true, env = { LINQ_WEBHOOK_SECRET = s } } runs
-- examples/nginx/nginx.conf itself (port replaced) -- the bench uses it too.
local socket = require "socket"

local M = {}

local NGINX = os.getenv("LINQWH_NGINX") or "/usr/sbin/nginx"
local MODULE_DIR = "/usr/lib/nginx/modules"
-- Debian's /etc/nginx/modules-enabled order: NDK (10-) before the Lua module (50-).
local MODULES = { "ndk_http_module.so", "ngx_http_lua_module.so" }

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end

local read_file = require("support.util").read_file

local write_file = require("support.util").write_file

local sh_quote = require("support.util").sh_quote

-- os.execute returns true/0 depending on the Lua version.
local function run(cmd)
  local a, _, c = os.execute(cmd)
  if a == true then
    return true
  end
  if type(a) == "number" then
    return a == 0
  end
  return a == true and c == 0
end

local function sleep(s)
  socket.sleep(s)
end

--- Absolute path of the checkout root (two levels above this file).
local function find_root()
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or src
  local dir = path:match("^(.*)/spec/support/[^/]+$")
  if not dir or dir == "" or dir == "." then
    dir = "."
  end
  if dir:sub(1, 1) ~= "/" then
    local p = io.popen("cd " .. sh_quote(dir) .. " && pwd")
    dir = p:read("*l")
    p:close()
  end
  return dir
end

M.ROOT = find_root()

local function is_root_user()
  local p = io.popen("id -u")
  local uid = p and p:read("*l")
  if p then
    p:close()
  end
  return uid == "0"
end

--- True when nginx and the Lua module are installed.
local function find_nginx()
  if not file_exists(NGINX) then
    return false, NGINX .. " not found"
  end
  for _, m in ipairs(MODULES) do
    if not file_exists(MODULE_DIR .. "/" .. m) then
      return false, MODULE_DIR .. "/" .. m .. " not found"
    end
  end
  return true
end

-- With LINQWH_REQUIRE_NGINX=1 (set by .ci/run) a missing nginx is an error,
-- so that no nginx case can turn pending where CI runs.
function M.available()
  local ok, why = find_nginx()
  if not ok and os.getenv("LINQWH_REQUIRE_NGINX") == "1" then
    error("support.nginx: nginx is required (LINQWH_REQUIRE_NGINX=1): " .. why, 2)
  end
  return ok, why
end

local built = false
local function ensure_jit_build()
  if built then
    return
  end
  if not run("env -u LD_PRELOAD make -s -C " .. sh_quote(M.ROOT) .. " luajit >/dev/null") then
    error("support.nginx: `make luajit` failed (nginx loads build/jit/linqwebhooks/core.so)", 3)
  end
  built = true
end

--- A free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
M.free_port = require("support.util").free_port

local function mktemp_dir()
  local p = io.popen("mktemp -d /tmp/linqwh-nginx.XXXXXX")
  local dir = p:read("*l")
  p:close()
  assert(dir and dir ~= "", "support.nginx: mktemp failed")
  return dir
end

--- The conf text: a complete nginx.conf for the given options and port.
function M.render(opts, port, prefix)
  local root = M.ROOT
  local lines = {}
  local function add(s)
    lines[#lines + 1] = s
  end
  for _, m in ipairs(MODULES) do
    add("load_module " .. MODULE_DIR .. "/" .. m .. ";")
  end
  if is_root_user() then
    add("user root root;")
  end
  add("worker_processes " .. (opts.worker_processes or 2) .. ";")
  add("daemon on;")
  add("master_process on;")
  add("pid " .. prefix .. "/logs/nginx.pid;")
  add("error_log " .. prefix .. "/logs/error.log " .. (opts.log_level or "warn") .. ";")
  add("events { worker_connections 256; }")
  if opts.main then
    add(opts.main)
  end
  add("http {")
  add("  access_log off;")
  add("  client_body_temp_path " .. prefix .. "/client_body;")
  add("  proxy_temp_path " .. prefix .. "/proxy;")
  add("  fastcgi_temp_path " .. prefix .. "/fastcgi;")
  add("  uwsgi_temp_path " .. prefix .. "/uwsgi;")
  add("  scgi_temp_path " .. prefix .. "/scgi;")
  -- LINQWH_NGINX_LUA_PATH: extra path entries searched first (to try a patch)
  add("  lua_package_path '" .. (os.getenv("LINQWH_NGINX_LUA_PATH") or "") .. prefix .. "/lua/?.lua;"
    .. root .. "/lua/?.lua;"
    .. root .. "/lua/?/init.lua;" .. root .. "/spec/?.lua;;';")
  add("  lua_package_cpath '" .. root .. "/build/jit/?.so;;';")
  if opts.http then
    add(opts.http)
  end
  add("  server {")
  add("    listen 127.0.0.1:" .. port .. (opts.listen and (" " .. opts.listen) or "") .. ";")
  add("    server_name localhost;")
  if opts.server then
    add(opts.server)
  end
  add("  }")
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

local function wait_port(port, deadline)
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.5)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then
      return true
    end
    sleep(0.05)
  end
  return false
end

--- The example site config (examples/nginx/nginx.conf) adapted to a prefix:
-- $prefix-relative paths resolve through symlinks to this checkout, and the
-- listen port is replaced. Raises if the example changed shape.
local function example_conf(prefix, port)
  local root = M.ROOT
  local conf = assert(read_file(root .. "/examples/nginx/nginx.conf"))
  local n
  conf, n = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
  assert(n == 1, "support.nginx: examples/nginx/nginx.conf has no 'listen 127.0.0.1:8080;'")
  for _, d in ipairs({ "lua", "examples" }) do
    assert(run("ln -s " .. sh_quote(root .. "/" .. d) .. " " .. sh_quote(prefix .. "/" .. d)))
  end
  assert(run("mkdir -p " .. sh_quote(prefix .. "/build/nginx") .. " && ln -s "
    .. sh_quote(root .. "/build/jit") .. " " .. sh_quote(prefix .. "/build/jit")))
  -- workers may run as another user (master started as root): let them in
  assert(run("chmod 755 " .. sh_quote(prefix)))
  return conf, prefix .. "/build/nginx/error.log", prefix .. "/build/nginx/nginx.pid"
end

--- Starts nginx; raises with the error log on failure.
-- opts: http, server, main (strings), worker_processes (default 2),
-- log_level ("warn"), listen (extra parameters of the listen directive,
-- e.g. "reuseport"), files ({ ["lua/site.lua"] = text, ... } written under
-- the prefix; <prefix>/lua/?.lua is on lua_package_path), env ({ NAME =
-- value } for the nginx process; pass them on with `env NAME;` in main),
-- example = true (run examples/nginx/nginx.conf instead of a generated conf).
function M.start(opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then
    error("support.nginx: " .. why, 2)
  end
  ensure_jit_build()
  local last_err
  for _ = 1, 5 do
    local prefix = mktemp_dir()
    for _, d in ipairs({ "conf", "logs", "client_body", "proxy", "fastcgi", "uwsgi", "scgi" }) do
      assert(run("mkdir -p " .. sh_quote(prefix .. "/" .. d)))
    end
    local port = M.free_port()
    local conf, log_path, pid_path
    if opts.example then
      conf, log_path, pid_path = example_conf(prefix, port)
    else
      assert(run("mkdir -p " .. sh_quote(prefix .. "/lua")))
      for name, text in pairs(opts.files or {}) do
        local dir = (prefix .. "/" .. name):match("^(.*)/[^/]+$")
        assert(run("mkdir -p " .. sh_quote(dir)))
        write_file(prefix .. "/" .. name, text)
      end
      conf = M.render(opts, port, prefix)
      log_path, pid_path = prefix .. "/logs/error.log", prefix .. "/logs/nginx.pid"
    end
    local conf_path = prefix .. "/conf/nginx.conf"
    write_file(conf_path, conf)
    local out = prefix .. "/logs/start.out"
    local envs = {}
    for k, v in pairs(opts.env or {}) do
      envs[#envs + 1] = k .. "=" .. sh_quote(v) .. " "
    end
    -- `make asan` preloads the sanitizer runtime into the test interpreter:
    -- keep it out of nginx (not built for it)
    local started = run("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS " .. table.concat(envs)
      .. sh_quote(NGINX) .. " -p " .. sh_quote(prefix) .. " -c "
      .. sh_quote(conf_path) .. " >" .. sh_quote(out) .. " 2>&1")
    local srv = setmetatable({
      port = port,
      prefix = prefix,
      conf_path = conf_path,
      log_path = log_path,
      pid_path = pid_path,
      url = "http://127.0.0.1:" .. port,
      _stopped = false,
    }, Server)
    if started and wait_port(port, socket.gettime() + 10) then
      -- the listening socket exists before the daemonized master writes its
      -- pid file: wait for the pid too
      local deadline = socket.gettime() + 10
      repeat
        local pid = read_file(pid_path)
        srv.pid = pid and tonumber(pid:match("%d+"))
        if not srv.pid then
          sleep(0.02)
        end
      until srv.pid or socket.gettime() > deadline
      return srv
    end
    last_err = (read_file(out) or "") .. (read_file(log_path) or "")
    srv:stop()
    if not last_err:find("Address already in use", 1, true) then
      break
    end
  end
  error("support.nginx: nginx did not start:\n" .. tostring(last_err), 2)
end

local function process_alive(pid)
  return pid and run("kill -0 " .. pid .. " 2>/dev/null")
end

--- One nginx shared by the cases of a describe block. Call it in the
-- describe body with busted's functions (b = { setup, teardown, it,
-- pending }) and the options of M.start -- or a function returning them,
-- called in setup() just before the start (only where nginx is available),
-- for options that need work done first (files, ports, other servers).
-- Returns a table `site`:
--   site.srv        the running server (set in setup(), stopped in teardown())
--   site.it(name, fn)  b.it where nginx is available; where it is not,
--                   b.pending with the reason (nginx is then never started)
-- Work after the start, or clean-up of what the options function made: the
-- caller's own setup()/teardown() registered after this call (busted runs
-- both kinds in the order they were registered).
function M.suite(b, opts)
  local ok, why = M.available()
  local site = {}
  b.setup(function()
    if ok then
      local o = opts
      if type(o) == "function" then
        o = o()
      end
      site.srv = M.start(o)
    end
  end)
  b.teardown(function()
    if site.srv then
      site.srv:stop()
    end
  end)
  function site.it(name, fn)
    if ok then
      b.it(name, fn)
    else
      b.pending(name .. " (" .. tostring(why) .. ")")
    end
  end
  return site
end

--- Stops nginx (fast shutdown), waits for the master to exit, removes the prefix.
-- Keeps the prefix when LINQWH_KEEP_NGINX is set (for debugging).
function Server:stop()
  if self._stopped then
    return
  end
  self._stopped = true
  local pid = self.pid
  if not pid then
    local s = read_file(self.pid_path)
    pid = s and tonumber(s:match("%d+"))
  end
  if pid then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 10
    while process_alive(pid) and socket.gettime() < deadline do
      sleep(0.05)
    end
    if process_alive(pid) then
      run("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  self._log = read_file(self.log_path) or ""
  if not os.getenv("LINQWH_KEEP_NGINX") then
    run("rm -rf " .. sh_quote(self.prefix))
  end
end

--- The error log text so far (or at stop time).
function Server:log()
  if self._stopped then
    return self._log or ""
  end
  return read_file(self.log_path) or ""
end

--- The error log text once it contains `pattern` (a Lua pattern; plain
-- text with `plain` true), polling for up to 2 s; the text as it is then
-- when it never does (the caller's assertion reports it).
function Server:wait_log(pattern, plain)
  local text
  for _ = 1, 100 do
    text = self:log()
    if text:find(pattern, 1, plain) then
      return text
    end
    sleep(0.02)
  end
  return text
end

--- Lines of level error or worse, minus those matching any of the Lua
-- patterns in `expected` (a list).
function Server:errors(expected)
  local found = {}
  for line in self:log():gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
      or line:find("%[emerg%]") then
      local skip = false
      for _, pat in ipairs(expected or {}) do
        if line:find(pat) then
          skip = true
          break
        end
      end
      if not skip then
        found[#found + 1] = line
      end
    end
  end
  return found
end

-- Reads an HTTP/1.1 response (content-length, chunked or until close).
local function read_response(c)
  local line, err = c:receive("*l")
  if not line then
    return nil, "status line: " .. tostring(err)
  end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then
    return nil, "bad status line: " .. line
  end
  local headers = {}
  while true do
    local h, herr = c:receive("*l")
    if not h then
      return nil, "headers: " .. tostring(herr)
    end
    if h == "" then
      break
    end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      if headers[k] then
        headers[k] = headers[k] .. ", " .. v
      else
        headers[k] = v
      end
    end
  end
  local body
  if headers["transfer-encoding"] and headers["transfer-encoding"]:lower():find("chunked") then
    local parts = {}
    while true do
      local sz, serr = c:receive("*l")
      if not sz then
        return nil, "chunk size: " .. tostring(serr)
      end
      local n = tonumber(sz:match("^%x+"), 16)
      if not n then
        return nil, "bad chunk size: " .. sz
      end
      if n == 0 then
        repeat
          local t = c:receive("*l")
        until not t or t == ""
        break
      end
      local data, derr = c:receive(n)
      if not data then
        return nil, "chunk: " .. tostring(derr)
      end
      parts[#parts + 1] = data
      c:receive("*l")
    end
    body = table.concat(parts)
  elseif headers["content-length"] then
    local n = tonumber(headers["content-length"])
    if n > 0 then
      local data, derr = c:receive(n)
      if not data then
        return nil, "body: " .. tostring(derr)
      end
      body = data
    else
      body = ""
    end
  else
    local data, _, partial = c:receive("*a")
    body = data or partial or ""
  end
  return { status = status, headers = headers, body = body }
end

--- One request on a new connection (Connection: close).
-- headers: { name = value } or { name = { v1, v2 } } (repeated header), or
-- an array of { name, value } pairs to control order/repetition exactly.
function Server:request(method, path, headers, body, timeout)
  return M.http(self.port, method, path, headers, body, timeout)
end

--- The same against any loopback port: M.http(port, method, path, headers, body, timeout)
function M.http(port, method, path, headers, body, timeout)
  local c = socket.tcp()
  c:settimeout(timeout or 15)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then
    c:close()
    return nil, "connect: " .. tostring(err)
  end
  local out = { method .. " " .. path .. " HTTP/1.1", "Host: localhost", "Connection: close" }
  local function add(k, v)
    out[#out + 1] = k .. ": " .. v
  end
  if headers then
    if headers[1] then
      for _, kv in ipairs(headers) do
        add(kv[1], kv[2])
      end
    else
      for k, v in pairs(headers) do
        if type(v) == "table" then
          for _, x in ipairs(v) do
            add(k, x)
          end
        else
          add(k, tostring(v))
        end
      end
    end
  end
  if body then
    add("Content-Length", tostring(#body))
  end
  local req = table.concat(out, "\r\n") .. "\r\n\r\n" .. (body or "")
  local sent, serr = c:send(req)
  if not sent then
    c:close()
    return nil, "send: " .. tostring(serr)
  end
  local res, rerr = read_response(c)
  c:close()
  return res, rerr
end

return M
