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
local socket = require "socket"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local services = dofile(here .. "/services.lua")
local say, q, alive, listening = services.say, services.q, services.alive, services.listening

local N = tonumber(arg and arg[1] or "") or 20
local interp = arg[-1] or "lua5.4"
local TYPES = { "message.received", "message.sent", "reaction.added", "chat.typing_indicator.started" }
local BACKEND = os.getenv("LINQ_INBOX") or "redis"
if BACKEND ~= "redis" and BACKEND ~= "sqlite" then
  say("scale-out FAILED: LINQ_INBOX must be redis or sqlite, got %s", BACKEND)
  os.exit(1)
end

-- the checkout (absolute): nginx's prefix links to it
local sv = services.new(services.capture("cd " .. q(here .. "/../..") .. " && pwd"))
local inbox_path = os.getenv("LINQ_INBOX_PATH") or (sv.tmp .. "/inbox.db")
local redis_url = os.getenv("LINQ_REDIS_URL")
local prefix = os.getenv("LINQ_REDIS_PREFIX")
  or (redis_url and ("linqwh-example:" .. os.time() .. ":" .. sys.getpid() .. ":") or "linqwh-example:")

local emu, client, subs = nil, nil, {}

-- Stops every process, deletes the subscriptions. -> true when all
-- stopped on SIGTERM.
local function teardown()
  local clean = sv:stop_all()
  for _, sub in ipairs(subs) do
    sub:delete()
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

-- 1. the inbox (and its Redis); the schema exists before the children race
-- to create it
local function open_inbox()
  local inbox
  if BACKEND == "redis" then
    if redis_url then
      say("redis        LINQ_REDIS_URL (yours), prefix %s", prefix)
    else
      redis_url = sv:start_redis()
    end
    inbox = assert(linq.inbox.redis{ url = redis_url, prefix = prefix })
  else
    inbox = assert(linq.inbox.sqlite{ path = inbox_path })
  end
  say("inbox        %s", BACKEND == "redis" and tostring(inbox) or ("sqlite " .. inbox_path))
  local s = assert(inbox:stats())
  assert(s.pending + s.in_flight + s.done + s.dead == 0,
    "the inbox is not empty (" .. json.encode(s) .. "): choose another LINQ_REDIS_PREFIX / LINQ_INBOX_PATH")
  return inbox
end

-- 2. the emulator and one subscription per receiver -> ports, secrets, sub_ids
local function start_emulator()
  emu = emulator.spawn{ api_key = "scale_key",
                        delivery = { attempts = 10, base_delay = 0.5, max_delay = 4, timeout = 10 } }
  say("process      %-10s pid %-7d %s", "emulator", emu.pid, emu.url)
  client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  local ports, secrets, sub_ids = { services.free_port(), services.free_port() }, {}, {}
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
  return ports, secrets, sub_ids
end

-- 3. the receivers and 4. the workers -> kinds ({ "plain Lua", "nginx" |
-- "plain Lua" }), the nginx child or nil
local function start_apps(ports, secrets)
  local env_file = sv:write_env({ LINQ_INBOX = BACKEND, LINQ_WEBHOOK_SECRETS = table.concat(secrets, " "),
                                  LINQ_INBOX_PATH = inbox_path, LINQ_REDIS_URL = redis_url,
                                  LINQ_REDIS_PREFIX = prefix },
    { "LINQ_INBOX", "LINQ_WEBHOOK_SECRETS", "LINQ_INBOX_PATH", "LINQ_REDIS_URL", "LINQ_REDIS_PREFIX" })
  local why_not = BACKEND ~= "redis" and "the SQLite inbox would block nginx workers"
    or sv:nginx_unavailable()
  local kinds = { "plain Lua", why_not and "plain Lua" or "nginx" }
  if why_not then
    say("receivers    2 plain-Lua receivers (no nginx receiver: %s)", why_not)
  else
    say("receivers    receiver-1 plain Lua + receiver-2 nginx (nginx with the Lua module found)")
  end
  local ngx_child, rcv = nil, {}
  for i, port in ipairs(ports) do
    if kinds[i] == "nginx" then
      ngx_child = sv:start_nginx("receiver-" .. i, port, env_file)
      rcv[i] = ngx_child
    else
      rcv[i] = sv:spawn("receiver-" .. i, interp .. " " .. q(here .. "/receiver.lua") .. " receiver-" .. i
        .. " " .. port, env_file, "plain-Lua receiver (" .. interp .. "), port " .. port)
    end
  end
  for i = 1, 2 do
    sv:spawn("worker-" .. i, interp .. " " .. q(here .. "/worker.lua") .. " worker-" .. i, env_file,
      "worker (" .. interp .. ")")
  end
  for i, port in ipairs(ports) do
    local deadline = socket.gettime() + 15
    while not listening(port) do
      if socket.gettime() > deadline or not alive(rcv[i].pid) then
        sv:relay()
        error("receiver-" .. i .. " did not start" .. (rcv[i] == ngx_child
          and (":\n" .. (services.read_file(ngx_child.error_log) or "")) or ""), 0)
      end
      sv:sleep(0.05)
    end
  end
  for _, c in ipairs(sv.children) do
    if not alive(c.pid) then
      sv:relay()
      error(c.name .. " exited at startup", 0)
    end
  end
  if ngx_child then
    say("process      %-10s pids %s (nginx workers)", ngx_child.name,
      table.concat(sv:nginx_workers(ngx_child), " "))
  end
  say("2 receivers (%s + %s), 2 workers started; triggering %d events", kinds[1], kinds[2], N)
  return kinds, ngx_child
end

-- 5. triggers N events; waits (40 s at most) until the inbox has them all
-- done and the emulator has both copies of each answered 200.
-- -> inbox stats, deliveries answered 200, per receiver { n1, n2 }
local function deliver(inbox, sub_ids)
  local admin = require("linqwebhooks.transport.curl").new{ timeout = 10, connect_timeout = 5 }
  for i = 1, N do
    local res = admin:request("POST", emu.url .. "/_emulator/events",
      { ["Content-Type"] = "application/json" }, json.encode({ event_type = TYPES[(i - 1) % #TYPES + 1] }))
    assert(res and res.status == 202, "trigger failed")
  end
  local s, delivered, per
  local deadline = socket.gettime() + 40
  repeat
    sv:sleep(0.2)
    s = assert(inbox:stats())
    delivered, per = 0, { 0, 0 }
    local res = admin:request("GET", emu.url .. "/_emulator/deliveries")
    for _, d in ipairs(res and res.status == 200 and json.decode(res.body) or {}) do
      local i = sub_ids[d.subscription_id]
      if d.outcome == "delivered" and i then
        delivered = delivered + 1
        per[i] = per[i] + 1
      end
    end
  until (s.done >= N and s.pending == 0 and s.in_flight == 0 and delivered >= 2 * N)
    or socket.gettime() > deadline
  s = assert(inbox:stats())
  admin:close()
  return s, delivered, per
end

-- The workers' handler lines: distinct events, events handled more than
-- once, lines per worker, events per receiver that stored them first.
local function count_handled()
  local handled, by_worker, twice, distinct, stored_by = {}, {}, 0, 0, { 0, 0 }
  for w, id, k in sv:output():gmatch("(worker%-%d) +handled +%S+ +(%S+) secret #(%S+)\n") do
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
  return distinct, twice, by_worker, stored_by
end

local function main()
  local inbox = open_inbox()
  local ports, secrets, sub_ids = start_emulator()
  local kinds, ngx_child = start_apps(ports, secrets)
  local s, delivered, per = deliver(inbox, sub_ids)
  inbox:close()

  -- 6. stop everything, then check
  local procs = sv:processes()
  procs[#procs + 1] = { name = "emulator", pid = emu.pid }
  local clean = teardown()
  local ngx_errs = ngx_child and services.nginx_errors(ngx_child)
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
  local distinct, twice, by_worker, stored_by = count_handled()

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
sv:remove()
os.exit(ok and res and 0 or 1)
