--- Scale-out in one command: the emulator delivers to two receivers that
-- share one durable inbox; two workers run the handlers.
--
--   eval "$(make -s env)"
--   lua5.4 examples/scale-out/run.lua [EVENTS]          # default 20 events, SQLite inbox
--   LINQ_INBOX=redis LINQ_REDIS_URL=redis://127.0.0.1:6379/0 lua5.4 examples/scale-out/run.lua
--
-- 1. the emulator (a local Linq) in a child process, retrying fast
-- 2. two subscriptions, one per receiver: every event is delivered to BOTH
--    receivers (as two hosts behind a load balancer see Linq's retries)
-- 3. two receivers (receiver.lua) and two workers (worker.lua), child processes
-- 4. EVENTS events triggered; the run waits until the inbox has every event
--    done, exactly once, then stops everything (SIGTERM) and prints the stats.
-- Exits 0 when every event was handled once, 1 otherwise.
local linq = require "linqwebhooks"
local emulator = require "linqwebhooks.emulator"
local json = require "linqwebhooks.json"
local socket = require "socket"

local N = tonumber(arg and arg[1] or "") or 20
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local interp = arg[-1] or "lua5.4"
local TYPES = { "message.received", "message.sent", "reaction.added", "chat.typing_indicator.started" }

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- the SQLite file lives in a temporary directory unless LINQ_INBOX_PATH is set
local tmp
if (os.getenv("LINQ_INBOX") or "sqlite") == "sqlite" and not os.getenv("LINQ_INBOX_PATH") then
  tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p " .. q(tmp)))
end
local inbox_path = os.getenv("LINQ_INBOX_PATH") or (tmp and tmp .. "/inbox.db")
local prefix = os.getenv("LINQ_REDIS_PREFIX") or ("linqwh-example:" .. os.time() .. ":")

local children, emu, client, subs = {}, nil, nil, {}

-- children print to our stderr (their stdout is redirected there), so
-- their lines interleave live; the pipe only carries the pid
local function spawn(name, script, args, secrets)
  local env = "LINQ_WEBHOOK_SECRETS=" .. q(table.concat(secrets, " "))
    .. (inbox_path and (" LINQ_INBOX_PATH=" .. q(inbox_path)) or "")
    .. " LINQ_REDIS_PREFIX=" .. q(prefix)
  local cmd = env .. " sh -c " .. q("echo $$; exec " .. interp .. " " .. q(here .. "/" .. script)
    .. " " .. args .. " 1>&2")
  local p = assert(io.popen(cmd))
  local c = { name = name, p = p, pid = tonumber(p:read("*l")) }
  children[#children + 1] = c
  return c
end

local function stop_all()
  for _, c in ipairs(children) do
    os.execute("kill -TERM " .. c.pid .. " 2>/dev/null")
  end
  for _, c in ipairs(children) do
    c.p:read("*a")
    c.p:close()
  end
  children = {}
  for _, s in ipairs(subs) do
    s:delete()
  end
  subs = {}
  if client then client:close() end
  if emu then emu.stop() end
  if tmp then os.execute("rm -rf " .. q(tmp)) end
end

local function run()
  emu = emulator.spawn{ api_key = "scale_key",
                        delivery = { attempts = 10, base_delay = 0.5, max_delay = 4, timeout = 10 } }
  say("emulator     %s", emu.url)
  client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  local ports, secrets = { free_port(), free_port() }, {}
  for i, port in ipairs(ports) do
    local sub = assert(client.webhook_subscriptions:create{
      target_url = "http://127.0.0.1:" .. port .. "/webhooks?version=2026-02-03",
      subscribed_events = TYPES,
    })
    subs[i] = sub
    secrets[i] = sub.signing_secret
    say("subscription %s -> receiver-%d (port %d)", sub.id:sub(1, 8), i, port)
  end
  say("inbox        %s", os.getenv("LINQ_INBOX") == "redis"
    and ("redis " .. (os.getenv("LINQ_REDIS_URL") or "redis://127.0.0.1:6379/0") .. " prefix " .. prefix)
    or ("sqlite " .. inbox_path))
  -- the schema exists before the children race to create it
  local inbox = (function()
    if os.getenv("LINQ_INBOX") == "redis" then
      return assert(linq.inbox.redis{ url = os.getenv("LINQ_REDIS_URL") or "redis://127.0.0.1:6379/0",
                                      prefix = prefix })
    end
    return assert(linq.inbox.sqlite{ path = inbox_path })
  end)()
  for i, port in ipairs(ports) do
    spawn("receiver-" .. i, "receiver.lua", "receiver-" .. i .. " " .. port, secrets)
  end
  for i = 1, 2 do
    spawn("worker-" .. i, "worker.lua", "worker-" .. i, secrets)
  end
  -- wait until both receivers listen
  for _, port in ipairs(ports) do
    local deadline = socket.gettime() + 15
    while true do
      local c = socket.connect("127.0.0.1", port)
      if c then c:close() break end
      assert(socket.gettime() < deadline, "a receiver did not start")
      socket.sleep(0.05)
    end
  end
  say("2 receivers, 2 workers started; triggering %d events", N)
  local admin = require("linqwebhooks.transport.curl").new{ timeout = 10, connect_timeout = 5 }
  local ids = {}
  for i = 1, N do
    local res = admin:request("POST", emu.url .. "/_emulator/events",
      { ["Content-Type"] = "application/json" }, json.encode({ event_type = TYPES[(i - 1) % #TYPES + 1] }))
    assert(res and res.status == 202, "trigger failed")
    ids[#ids + 1] = json.decode(res.body).event_id
  end
  local deadline = socket.gettime() + 60
  local s
  repeat
    socket.sleep(0.2)
    s = assert(inbox:stats())
  until (s.done >= N and s.pending == 0 and s.in_flight == 0) or socket.gettime() > deadline
  -- let the emulator finish its second delivery of each event (duplicates)
  socket.sleep(1)
  s = assert(inbox:stats())
  inbox:close()
  local delivered = 0
  local res = admin:request("GET", emu.url .. "/_emulator/deliveries")
  for _, d in ipairs(res and res.status == 200 and json.decode(res.body) or {}) do
    if d.outcome == "delivered" then
      delivered = delivered + 1
    end
  end
  admin:close()
  stop_all()
  say("emulator: %d deliveries answered 200 by the receivers", delivered)
  say("inbox stats: pending=%d in_flight=%d done=%d dead=%d", s.pending, s.in_flight, s.done, s.dead)
  if s.done ~= N or s.dead ~= 0 then
    say("scale-out FAILED: expected %d done", N)
    return false
  end
  say("scale-out OK: %d events delivered twice each (2 subscriptions), stored once, handled once", N)
  return true
end

local ok, res = xpcall(run, debug.traceback)
if not ok then
  say("scale-out FAILED: %s", tostring(res))
  pcall(stop_all)
  os.exit(1)
end
os.exit(res and 0 or 1)
