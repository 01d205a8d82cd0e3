-- Failure tests of the Redis dedupe store with real processes: two receiver
-- processes (linqwebhooks.receiver) share one redis-server on loopback.
--   * 50 concurrent copies of one delivery spread over both receivers: the
--     handler runs exactly once; every copy gets 200 or 503.
--   * Redis stopped while deliveries arrive: no copy gets 200 and no handler
--     runs; after the restart every delivery is handled exactly once.
local linq = require "linqwebhooks"
local rs = require "support.redis"
local util = require "support.util"
local child = require "support.child"
local core = require "linqwebhooks.process"
local process = require "linqwebhooks.emulator.process"
local socket = require "socket"

local SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="

-- `receiver.lua REDIS_URL LOG PARENT_PID`: a receiver with the Redis store;
-- the handler logs "start <id> <pid>", takes 0.5 s, logs "done <id> <pid>".
local RECEIVER = [[
local url, log, parent = arg[1], arg[2], tonumber(arg[3])
local linq = require "linqwebhooks"
local core = require "linqwebhooks.process"
local socket = require "socket"
local alive = require("linqwebhooks.emulator.process").alive
local pid = core.getpid()
local function append(line)
  local f = assert(io.open(log, "ab"))
  f:write(line, "\n")
  f:close()
end
local store = linq.store.redis{ url = url, timeout = 2 }
local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET"), dedupe = store }
hooks:on("*", function(ev)
  append("start " .. ev.id .. " " .. pid)
  socket.sleep(0.5)
  append("done " .. ev.id .. " " .. pid)
end)
local r = assert(require("linqwebhooks.receiver").new{ hooks = hooks, port = 0 })
io.stdout:write(r.url, "\n")
io.stdout:flush()
core.signal_watch()
while alive(parent) and not core.signal_pending() do
  r:step(0.1)
end
r:close()
]]

describe("linq.store.redis shared by two receiver processes", function()
  local srv, dir, receivers

  local function spawn(script, ...)
    local args = {}
    for i, a in ipairs({ ... }) do
      args[i] = util.sh_quote(a)
    end
    local p = assert(io.popen("LWH_TEST_SECRET=" .. util.sh_quote(SECRET) .. " sh -c "
      .. util.sh_quote("echo $$; exec " .. child.lua() .. " " .. util.sh_quote(script) .. " "
        .. table.concat(args, " ")) .. " 2>&1"))
    local pid = tonumber(p:read("*l"))
    local url = p:read("*l")
    assert(url and url:match("^http://127%.0%.0%.1:%d+"), "receiver did not start: " .. tostring(url))
    return { p = p, pid = pid, port = tonumber(url:match(":(%d+)/")), path = url:match("^http://[^/]+(/.*)$") }
  end

  local function log_lines(pattern)
    local out = {}
    local s = util.read_file(dir .. "/handler.log") or ""
    for line in s:gmatch("[^\n]+") do
      if line:match(pattern) then
        out[#out + 1] = line
      end
    end
    return out
  end

  -- Sends every request at once (one connection each), then reads them all.
  local function burst(reqs)
    local socks = {}
    for i, rq in ipairs(reqs) do
      local c = socket.tcp()
      c:settimeout(20)
      assert(c:connect("127.0.0.1", rq.r.port))
      local head = { "POST " .. rq.r.path .. " HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
        "Content-Type: application/json", "Content-Length: " .. #rq.body }
      for k, v in pairs(rq.headers) do
        head[#head + 1] = k .. ": " .. v
      end
      assert(c:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. rq.body))
      socks[i] = c
    end
    local statuses = {}
    for i, c in ipairs(socks) do
      local resp = c:receive("*a") or ""
      c:close()
      statuses[i] = tonumber(resp:match("^HTTP/1%.1 (%d%d%d)"))
    end
    return statuses
  end

  local function delivery(id)
    local body = '{"api_version":"v3","event_id":"' .. id .. '","event_type":"message.received",'
      .. '"created_at":"2026-02-03T10:00:00Z","data":{}}'
    return body, linq.sign{ secret = SECRET, body = body, id = "msg_" .. id }
  end

  setup(function()
    srv = rs.start()
    local p = io.popen("mktemp -d /tmp/linqwh-redisfail.XXXXXX")
    dir = p:read("*l")
    p:close()
    local script = dir .. "/receiver.lua"
    util.write_file(script, RECEIVER)
    receivers = {}
    for i = 1, 2 do
      receivers[i] = spawn(script, srv.url, dir .. "/handler.log", tostring(core.getpid()))
    end
  end)

  teardown(function()
    for _, r in ipairs(receivers or {}) do
      core.kill(r.pid, "TERM")
      local deadline = socket.gettime() + 10
      while process.alive(r.pid) and socket.gettime() < deadline do
        socket.sleep(0.05)
      end
      if process.alive(r.pid) then
        core.kill(r.pid, "KILL")
      end
      r.p:close()
    end
    if srv then
      srv:destroy()
    end
    if dir then
      os.execute("rm -rf " .. util.sh_quote(dir))
    end
  end)

  it("runs the handler once for 50 concurrent copies; each copy gets 200 or 503", function()
    local body, headers = delivery("evt_burst")
    local reqs = {}
    for i = 1, 50 do
      reqs[i] = { r = receivers[i % 2 + 1], body = body, headers = headers }
    end
    local statuses = burst(reqs)
    local n200 = 0
    for i, st in ipairs(statuses) do
      assert.is_true(st == 200 or st == 503, "copy " .. i .. ": " .. tostring(st))
      if st == 200 then
        n200 = n200 + 1
      end
    end
    assert.is_true(n200 >= 1)
    assert.equal(1, #log_lines("^start evt_burst "))
    assert.equal(1, #log_lines("^done evt_burst "))
    -- a late retry is a duplicate on either receiver
    for i = 1, 2 do
      assert.same({ 200 }, burst({ { r = receivers[i], body = body, headers = headers } }))
    end
    assert.equal(1, #log_lines("^start evt_burst "))
  end)

  it("never answers 200 while Redis is down; handles every delivery once after the restart", function()
    srv:stop()
    local reqs = {}
    for i = 1, 6 do
      local body, headers = delivery("evt_down" .. i)
      reqs[i] = { r = receivers[i % 2 + 1], body = body, headers = headers }
    end
    for i, st in ipairs(burst(reqs)) do
      assert.is_true(st == 500 or st == 503, "delivery " .. i .. ": " .. tostring(st))
    end
    assert.same({}, log_lines("^start evt_down"))
    srv:restart()
    -- Linq retries: now every delivery is handled, once
    for i, st in ipairs(burst(reqs)) do
      assert.equal(200, st, "delivery " .. i)
    end
    for i = 1, 6 do
      assert.equal(1, #log_lines("^done evt_down" .. i .. " "))
    end
    for i, st in ipairs(burst(reqs)) do
      assert.equal(200, st, "duplicate " .. i)
    end
    assert.equal(6, #log_lines("^start evt_down"))
  end)
end)
