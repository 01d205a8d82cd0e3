--- Benchmark: the durable inbox (SQLite backend), same run:
--   accept/memory      hooks:handle with the memory dedupe store and one
--                      trivial handler (the direct-dispatch baseline)
--   accept/sqlite      hooks:handle with linq.inbox.sqlite (WAL,
--                      synchronous=NORMAL): verify, decode, INSERT, commit
--   accept/sqlite-full the same with synchronous=FULL (fsync per commit)
--   end-to-end         accept -> handler start latency, p50/p99, with two
--                      worker processes (hooks:work{ poll = POLL }) while one
--                      receiver accepts RATE deliveries per second
-- Figures only (no pass/fail): rates vary with the disk and the machine.
--
-- Run: eval "$(make -s env)" && lua5.4 bench/inbox.lua [accept_n] [e2e_n]
local linq = require "linqwebhooks"
local socket = require "socket"

local N = tonumber(arg and arg[1]) or 3000
local E2E = tonumber(arg and arg[2]) or 400
local POLL = 0.01
local RATE = 200
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local now = socket.gettime

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local util = dofile(here .. "/util.lua")
local sample = assert(util.read_file(here .. "/message_received.json"))
local ID = "2915e81c-5068-4796-ace2-21d2c94ad298"
assert(sample:find(ID, 1, true))

local function deliveries(prefix, n)
  local bodies, heads = {}, {}
  for i = 1, n do
    local b = sample:gsub((ID:gsub("%-", "%%-")), string.format("%s-%08d", prefix, i), 1)
    bodies[i] = b
    heads[i] = linq.sign{ secret = SECRET, body = b }
  end
  return bodies, heads
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

local function rate(hooks, bodies, heads)
  local t0 = now()
  for i = 1, #bodies do
    local res = hooks:handle(bodies[i], heads[i])
    if res.status ~= 200 or res.duplicate then
      error("unexpected answer " .. res.status .. " " .. tostring(res.body))
    end
  end
  return #bodies / (now() - t0)
end

-- 1. accept rates
local bodies, heads = deliveries("acc", N)
local mem = linq.webhooks{ secret = SECRET }
mem:on("message.received", function() end)
local r_mem = rate(mem, bodies, heads)

local results = { { "accept/memory", r_mem } }
for _, sync in ipairs({ "NORMAL", "FULL" }) do
  local inbox = assert(linq.inbox.sqlite{ path = dir .. "/accept-" .. sync .. ".db", synchronous = sync })
  local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
  results[#results + 1] = { "accept/sqlite" .. (sync == "FULL" and "-full" or ""), rate(hooks, bodies, heads) }
  inbox:close()
end
print(string.format("%-22s %10s %8s", "case", "per s", "vs mem"))
for _, r in ipairs(results) do
  print(string.format("%-22s %10.0f %7.2fx", r[1], r[2], r[2] / r_mem))
end

-- 2. end-to-end latency with two worker processes
local db = dir .. "/e2e.db"
local lat = dir .. "/lat"
local script = dir .. "/worker.lua"
local f = assert(io.open(script, "wb"))
f:write(string.format([[
local linq = require "linqwebhooks"
local socket = require "socket"
local inbox = assert(linq.inbox.sqlite{ path = %q })
local hooks = linq.webhooks{ secret = %q, inbox = inbox }
local out = assert(io.open(%q .. "." .. require("linqwebhooks.process").getpid(), "wb"))
local want = %d
hooks:on("*", function(ev)
  out:write(string.format("%%.6f\n", socket.gettime() - tonumber(ev.data.sent)))
  out:flush()
end)
hooks:work{ poll = %g, until_idle = false, max_jobs = want }
]], db, SECRET, lat, E2E, POLL))
f:close()
-- create the schema before the workers start
assert(linq.inbox.sqlite{ path = db }):close()
local interp = arg[-1] or "lua5.4"
local env = "LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath .. "' "
local pids = {}
for i = 1, 2 do
  local p = assert(io.popen(env .. "sh -c 'echo $$; exec " .. interp .. " " .. script .. "'"))
  pids[i] = { p = p, pid = tonumber(p:read("*l")) }
end
socket.sleep(0.3)
local inbox = assert(linq.inbox.sqlite{ path = db })
local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
local t0 = now()
for i = 1, E2E do
  local body = string.format('{"api_version":"v3","event_type":"message.received",'
    .. '"event_id":"e2e-%d","created_at":"2026-02-03T10:00:00Z","data":{"sent":"%.6f"}}', i, now())
  local res = hooks:handle(body, linq.sign{ secret = SECRET, body = body })
  assert(res.status == 200)
  local due = t0 + i / RATE
  local wait = due - now()
  if wait > 0 then
    socket.sleep(wait)
  end
end
local deadline = now() + 60
while now() < deadline do
  local s = inbox:stats()
  if s.done >= E2E then
    break
  end
  socket.sleep(0.05)
end
for _, w in ipairs(pids) do
  os.execute("kill -TERM " .. w.pid .. " 2>/dev/null")
  w.p:read("*a")
  w.p:close()
end
local all = {}
for _, w in ipairs(pids) do
  local lf = io.open(lat .. "." .. w.pid, "rb")
  if lf then
    for l in lf:lines() do
      all[#all + 1] = tonumber(l)
    end
    lf:close()
  end
end
table.sort(all)
local function pct(p)
  return all[math.max(1, math.ceil(#all * p))] * 1000
end
print(string.format("end-to-end (2 workers, poll %gs, %d/s, %d deliveries): p50 %.1f ms  p99 %.1f ms"
  .. "  (%d handled)", POLL, RATE, E2E, pct(0.5), pct(0.99), #all))
inbox:close()
os.execute("rm -rf '" .. dir .. "'")
