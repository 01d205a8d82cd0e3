--- Scale-out in one command: the emulator delivers every event to two
-- receivers that share one durable inbox; two workers run the handlers.
--
--   make scale-out                                   # or, after eval "$(make -s env)":
--   lua5.4 examples/scale-out/run.lua [EVENTS]       # default 20 events, Redis inbox
--   LINQ_REDIS_URL=redis://127.0.0.1:6379/0 lua5.4 examples/scale-out/run.lua   # your Redis
--   LINQ_INBOX=sqlite lua5.4 examples/scale-out/run.lua                         # one host
--
-- 1. the inbox: with LINQ_INBOX=redis (the default) a redis-server of its own
--    on a free loopback port, in a temporary directory (--save "" --appendonly
--    yes), unless LINQ_REDIS_URL names one; with LINQ_INBOX=sqlite a database
--    file in the temporary directory (or LINQ_INBOX_PATH)
-- 2. the emulator (a local Linq) in a child process, retrying fast, and two
--    subscriptions, one per receiver: every event is delivered to BOTH
--    receivers (as two hosts behind a load balancer see Linq's retries)
-- 3. the receivers, which verify, store in the inbox and answer 200:
--    Redis inbox and nginx with the Lua module installed (and `make luajit`
--    built): receiver-1 in plain Lua (receiver.lua), receiver-2 in nginx
--    (nginx.conf + nginx_receiver.lua: openresty.serve, Redis through
--    cosockets, 2 nginx workers); otherwise two plain-Lua receivers. The run
--    says which it chose and why.
-- 4. two workers (worker.lua) on the same inbox, which run the handlers
-- 5. EVENTS events triggered; the run waits until the inbox has every event
--    done and the emulator has both copies of each answered 200, then stops
--    every process (SIGTERM; SIGKILL after 10 s), checks that none is left
--    and that every event was handled exactly once, prints the stats and
--    removes the temporary directory.
-- The children's output (one file, appended) is relayed live, each line
-- tagged by its process. Exits 0 when all checks pass, 1 otherwise.
-- Loopback only; bounded: about 60 s at most.
local linq = require "linqwebhooks"
local emulator = require "linqwebhooks.emulator"
local json = require "linqwebhooks.json"
local sys = require "linqwebhooks.process"
local alive = require("linqwebhooks.emulator.process").alive
local socket = require "socket"

local N = tonumber(arg and arg[1] or "") or 20
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local interp = arg[-1] or "lua5.4"
local TYPES = { "message.received", "message.sent", "reaction.added", "chat.typing_indicator.started" }
local BACKEND = os.getenv("LINQ_INBOX") or "redis"
local NGINX = os.getenv("LINQWH_NGINX") or "/usr/sbin/nginx"
local NGINX_MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so",
                        "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- true when the command exits 0 (os.execute differs between 5.1 and 5.4)
local function run(cmd)
  local a, _, c = os.execute(cmd)
  return a == true and (c == nil or c == 0) or a == 0
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function listening(port)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

if BACKEND ~= "redis" and BACKEND ~= "sqlite" then
  say("scale-out FAILED: LINQ_INBOX must be redis or sqlite, got %s", BACKEND)
  os.exit(1)
end

-- the checkout (absolute): nginx's prefix links to it
local root = capture("cd " .. q(here .. "/../..") .. " && pwd")
local tmp = capture("mktemp -d /tmp/linqwh-scale-out.XXXXXX")
assert(tmp ~= "" and exists(tmp), "mktemp failed")
-- nginx workers may run as another user than a root master: let them in
assert(run("chmod 755 " .. q(tmp)))
local log_path = tmp .. "/children.log"   -- every child appends its output here
local inbox_path = os.getenv("LINQ_INBOX_PATH") or (tmp .. "/inbox.db")
local redis_url = os.getenv("LINQ_REDIS_URL")
local prefix = os.getenv("LINQ_REDIS_PREFIX")
  or (redis_url and ("linqwh-example:" .. os.time() .. ":" .. sys.getpid() .. ":") or "linqwh-example:")

local children, emu, client, subs = {}, nil, nil, {}
local extra_procs = {} -- processes we do not reap ourselves (nginx workers)
local log_offset = 0

-- Relays the children's new output lines to our stdout.
local function relay()
  local f = io.open(log_path, "rb")
  if not f then
    return
  end
  f:seek("set", log_offset)
  local s = f:read("*a") or ""
  f:close()
  local upto = s:match("^.*\n()") -- complete lines only
  if upto then
    io.stdout:write(s:sub(1, upto - 1))
    io.stdout:flush()
    log_offset = log_offset + upto - 1
  end
end

local function sleep(s)
  local deadline = socket.gettime() + s
  repeat
    relay()
    socket.sleep(math.min(0.1, math.max(0, deadline - socket.gettime())))
  until socket.gettime() >= deadline
end

-- The environment of the Lua children and nginx, in a 0600 file they
-- source: the signing secrets never appear on a command line.
local function write_env(secrets)
  local vars = {
    LINQ_INBOX = BACKEND,
    LINQ_WEBHOOK_SECRETS = table.concat(secrets, " "),
    LINQ_INBOX_PATH = inbox_path,
    LINQ_REDIS_URL = redis_url,
    LINQ_REDIS_PREFIX = prefix,
  }
  local path = tmp .. "/env.sh"
  local f = assert(io.open(path, "wb"))
  f:close()
  assert(sys.chmod(path, 384)) -- 0600 before the secrets go in
  f = assert(io.open(path, "wb"))
  for _, k in ipairs({ "LINQ_INBOX", "LINQ_WEBHOOK_SECRETS", "LINQ_INBOX_PATH", "LINQ_REDIS_URL",
                       "LINQ_REDIS_PREFIX" }) do
    if vars[k] then
      f:write("export ", k, "=", q(vars[k]), "\n")
    end
  end
  f:close()
  return path
end

-- Starts `cmd` as a child (the shell prints its pid, then execs it, so the
-- pid is the command's); its output is appended to the shared log.
local function spawn(name, cmd, env_file, what)
  local script = (env_file and (". " .. q(env_file) .. "; ") or "") .. "echo $$; exec " .. cmd
    .. " >>" .. q(log_path) .. " 2>&1 </dev/null"
  local p = assert(io.popen("sh -c " .. q(script)))
  local c = { name = name, p = p, pid = tonumber(p:read("*l")), what = what }
  assert(c.pid, "could not start " .. name)
  children[#children + 1] = c
  say("process      %-10s pid %-7d %s", name, c.pid, what)
  return c
end

-- SIGTERM, then waits (SIGKILL after 10 s) and reaps; returns false when
-- something had to be killed.
local function stop(list)
  for _, c in ipairs(list) do
    sys.kill(c.pid, "TERM")
  end
  local clean = true
  local deadline = socket.gettime() + 10
  for _, c in ipairs(list) do
    while alive(c.pid) and socket.gettime() < deadline do
      sleep(0.05)
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

local function teardown()
  local clean = true
  local servers, redis = {}, {}
  for _, c in ipairs(children) do
    if not c.stopped then
      table.insert(c.name == "redis" and redis or servers, c)
    end
  end
  -- receivers, workers and nginx first: the workers hand back in Redis
  clean = stop(servers) and clean
  clean = stop(redis) and clean
  relay()
  for _, s in ipairs(subs) do
    s:delete()
  end
  subs = {}
  if client then
    client:close()
    client = nil
  end
  if emu then
    emu.stop()
    emu = nil
  end
  return clean
end

local function remove_tmp()
  if tmp and not os.getenv("LINQWH_KEEP_SCALE_OUT") then
    run("rm -rf " .. q(tmp))
  end
  tmp = nil
end

-- Why two plain-Lua receivers, or nil when nginx can be the second one.
local function nginx_unavailable()
  if BACKEND ~= "redis" then
    return "the SQLite inbox would block nginx workers"
  end
  if not exists(NGINX) then
    return NGINX .. " not found"
  end
  for _, m in ipairs(NGINX_MODULES) do
    if not exists(m) then
      return m .. " not found (libnginx-mod-http-lua)"
    end
  end
  for _, m in ipairs({ "core", "hiredis" }) do
    local so = root .. "/build/jit/linqwebhooks/" .. m .. ".so"
    if not exists(so) then
      return so .. " not built (make luajit)"
    end
  end
  return nil
end

-- A redis-server of our own: loopback, free port, AOF in the temp dir.
local function start_redis()
  local bin = capture("command -v redis-server 2>/dev/null")
  if bin == "" then
    error("redis-server not found: install it, set LINQ_REDIS_URL, or run with LINQ_INBOX=sqlite", 0)
  end
  local dir = tmp .. "/redis"
  assert(run("mkdir -p " .. q(dir)))
  for _ = 1, 3 do
    local port = free_port()
    local c = spawn("redis", q(bin) .. " --port " .. port .. " --bind 127.0.0.1 --protected-mode no"
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
      sleep(0.02)
    end
    stop({ c })
    local rlog = read_file(dir .. "/redis.log") or ""
    if not rlog:find("in use", 1, true) then
      error("redis-server did not start:\n" .. rlog, 0)
    end
  end
  error("redis-server did not start (no free port)", 0)
end

-- nginx (master + 2 workers, daemon off: the master is our child) with
-- examples/scale-out/nginx.conf in a prefix that links to the checkout.
local function start_nginx(port, env_file)
  local p = tmp .. "/nginx"
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
  local c = spawn("receiver-2", q(NGINX) .. " -p " .. q(p .. "/") .. " -c conf/nginx.conf -g "
    .. q("daemon off;" .. user), env_file, "nginx master, 2 workers (openresty.serve, Redis"
    .. " inbox through cosockets), port " .. port)
  c.error_log = p .. "/build/scale-out/error.log"
  return c
end

local function nginx_errors(c)
  local found = {}
  for line in (read_file(c.error_log) or ""):gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
      or line:find("%[emerg%]") then
      found[#found + 1] = line
    end
  end
  return found
end

local function open_inbox()
  if BACKEND == "redis" then
    return assert(linq.inbox.redis{ url = redis_url, prefix = prefix })
  end
  return assert(linq.inbox.sqlite{ path = inbox_path })
end

local function main()
  -- 1. the inbox
  if BACKEND == "redis" then
    if redis_url then
      say("redis        LINQ_REDIS_URL (yours), prefix %s", prefix)
    else
      redis_url = start_redis()
    end
  end
  local inbox = open_inbox() -- creates the schema before the children race to
  say("inbox        %s", BACKEND == "redis" and tostring(inbox) or ("sqlite " .. inbox_path))
  local s = assert(inbox:stats())
  assert(s.pending + s.in_flight + s.done + s.dead == 0,
    "the inbox is not empty (" .. json.encode(s) .. "): choose another LINQ_REDIS_PREFIX / LINQ_INBOX_PATH")

  -- 2. the emulator and one subscription per receiver
  emu = emulator.spawn{ api_key = "scale_key",
                        delivery = { attempts = 10, base_delay = 0.5, max_delay = 4, timeout = 10 } }
  say("process      %-10s pid %-7d %s", "emulator", emu.pid, emu.url)
  client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  local ports, secrets, sub_ids = { free_port(), free_port() }, {}, {}
  for i, port in ipairs(ports) do
    local sub = assert(client.webhook_subscriptions:create{
      target_url = "http://127.0.0.1:" .. port .. "/webhooks?version=2026-02-03",
      subscribed_events = TYPES,
    })
    subs[i] = sub
    secrets[i] = sub.signing_secret
    sub_ids[sub.id] = i
    say("subscription %s -> receiver-%d (port %d)", sub.id:sub(1, 8), i, port)
  end
  local env_file = write_env(secrets)

  -- 3. the receivers
  local why_not = nginx_unavailable()
  local kinds = { "plain Lua", why_not and "plain Lua" or "nginx" }
  if why_not then
    say("receivers    2 plain-Lua receivers (no nginx receiver: %s)", why_not)
  else
    say("receivers    receiver-1 plain Lua + receiver-2 nginx (nginx with the Lua module found)")
  end
  local ngx_child
  local rcv = {}
  for i, port in ipairs(ports) do
    if kinds[i] == "nginx" then
      ngx_child = start_nginx(port, env_file)
      rcv[i] = ngx_child
    else
      rcv[i] = spawn("receiver-" .. i, interp .. " " .. q(here .. "/receiver.lua") .. " receiver-" .. i .. " " .. port,
        env_file, "plain-Lua receiver (" .. interp .. "), port " .. port)
    end
  end
  -- 4. the workers
  for i = 1, 2 do
    spawn("worker-" .. i, interp .. " " .. q(here .. "/worker.lua") .. " worker-" .. i, env_file,
      "worker (" .. interp .. ")")
  end
  for i, port in ipairs(ports) do
    local deadline = socket.gettime() + 15
    while not listening(port) do
      if socket.gettime() > deadline or not alive(rcv[i].pid) then
        relay()
        error("receiver-" .. i .. " did not start" .. (kinds[i] == "nginx" and ngx_child
          and (":\n" .. (read_file(ngx_child.error_log) or "")) or ""), 0)
      end
      sleep(0.05)
    end
  end
  for _, c in ipairs(children) do
    if not alive(c.pid) then
      relay()
      error(c.name .. " exited at startup", 0)
    end
  end
  if ngx_child then
    -- the nginx workers (children of the master): checked after the stop too
    local pids = {}
    for pid in capture("pgrep -P " .. ngx_child.pid .. " 2>/dev/null"):gmatch("%d+") do
      pids[#pids + 1] = pid
      extra_procs[#extra_procs + 1] = { name = "nginx worker", pid = tonumber(pid) }
    end
    say("process      %-10s pids %s (nginx workers)", "receiver-2", table.concat(pids, " "))
  end
  say("2 receivers (%s + %s), 2 workers started; triggering %d events", kinds[1], kinds[2], N)

  -- 5. the events
  local admin = require("linqwebhooks.transport.curl").new{ timeout = 10, connect_timeout = 5 }
  for i = 1, N do
    local res = admin:request("POST", emu.url .. "/_emulator/events",
      { ["Content-Type"] = "application/json" }, json.encode({ event_type = TYPES[(i - 1) % #TYPES + 1] }))
    assert(res and res.status == 202, "trigger failed")
  end
  local delivered, per = 0, { 0, 0 }
  local deadline = socket.gettime() + 40
  repeat
    sleep(0.2)
    s = assert(inbox:stats())
    delivered, per = 0, { 0, 0 }
    local res = admin:request("GET", emu.url .. "/_emulator/deliveries")
    for _, d in ipairs(res and res.status == 200 and json.decode(res.body) or {}) do
      if d.outcome == "delivered" and sub_ids[d.subscription_id] then
        delivered = delivered + 1
        per[sub_ids[d.subscription_id]] = per[sub_ids[d.subscription_id]] + 1
      end
    end
  until (s.done >= N and s.pending == 0 and s.in_flight == 0 and delivered >= 2 * N)
    or socket.gettime() > deadline
  s = assert(inbox:stats())
  inbox:close()
  admin:close()

  -- 6. stop everything, then check
  local procs = {}
  for _, c in ipairs(children) do
    procs[#procs + 1] = c
  end
  for _, c in ipairs(extra_procs) do
    procs[#procs + 1] = c
  end
  procs[#procs + 1] = { name = "emulator", pid = emu.pid }
  local clean = teardown()
  local ngx_errs = ngx_child and nginx_errors(ngx_child)
  local left, names = {}, {}
  for _, c in ipairs(procs) do
    names[#names + 1] = c.name
    if alive(c.pid) then
      left[#left + 1] = c.name .. " (pid " .. c.pid .. ")"
    end
  end
  for i, port in ipairs(ports) do
    if listening(port) then
      left[#left + 1] = "something on receiver-" .. i .. "'s port " .. port
    end
  end
  -- every handler line of the workers, by event id
  local handled, by_worker, twice = {}, {}, 0
  local distinct, stored_by = 0, { 0, 0 }
  for w, id, k in (read_file(log_path) or ""):gmatch("(worker%-%d) +handled +%S+ +(%S+) secret #(%S+)\n") do
    by_worker[w] = (by_worker[w] or 0) + 1
    k = tonumber(k)
    if stored_by[k] then
      stored_by[k] = stored_by[k] + 1
    end
    handled[id] = (handled[id] or 0) + 1
    if handled[id] == 1 then
      distinct = distinct + 1
    else
      twice = twice + 1
    end
  end

  say("emulator: %d deliveries answered 200 by the receivers", delivered)
  say("  receiver-1 (%s): %d, receiver-2 (%s): %d", kinds[1], per[1], kinds[2], per[2])
  say("inbox stats: pending=%d in_flight=%d done=%d dead=%d", s.pending, s.in_flight, s.done, s.dead)
  say("  stored first by receiver-1 (%s): %d, receiver-2 (%s): %d (the other copy: a duplicate)",
    kinds[1], stored_by[1], kinds[2], stored_by[2])
  say("handled: %d events, %d handled more than once (worker-1 %d, worker-2 %d)", distinct, twice,
    by_worker["worker-1"] or 0, by_worker["worker-2"] or 0)
  if ngx_errs then
    say("nginx error log: %d error lines", #ngx_errs)
    for _, line in ipairs(ngx_errs) do
      say("  %s", line)
    end
  end
  if #left == 0 then
    say("stopped: %s (%s); none left running", table.concat(names, ", "),
      clean and "all on SIGTERM" or "some needed SIGKILL")
  else
    say("NOT stopped: %s", table.concat(left, ", "))
  end

  local failed = {}
  if s.done ~= N or s.dead ~= 0 or s.pending ~= 0 or s.in_flight ~= 0 then
    failed[#failed + 1] = "expected " .. N .. " done in the inbox"
  end
  if delivered ~= 2 * N or per[1] ~= N or per[2] ~= N then
    failed[#failed + 1] = "expected " .. 2 * N .. " deliveries answered 200, " .. N .. " per receiver"
  end
  if distinct ~= N or twice ~= 0 then
    failed[#failed + 1] = "expected each of " .. N .. " events handled exactly once"
  end
  if ngx_errs and #ngx_errs > 0 then
    failed[#failed + 1] = "errors in the nginx error log"
  end
  if #left > 0 or not clean then
    failed[#failed + 1] = "not every process stopped on SIGTERM"
  end
  if #failed > 0 then
    say("scale-out FAILED: %s", table.concat(failed, "; "))
    return false
  end
  say("scale-out OK (%s inbox, receivers: %s + %s): %d events delivered twice each (2 subscriptions),"
    .. " stored once, handled once", BACKEND == "redis" and "Redis" or "SQLite", kinds[1], kinds[2], N)
  return true
end

local ok, res = xpcall(main, debug.traceback)
if not ok then
  pcall(teardown)
  say("scale-out FAILED: %s", tostring(res))
end
remove_tmp()
os.exit(ok and res and 0 or 1)
