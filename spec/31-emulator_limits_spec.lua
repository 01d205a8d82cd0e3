-- The emulator under descriptor pressure (issue 9, defect 3): capped inbound
-- connections with eviction of the quietest, capped in-flight deliveries with
-- a queue, and a select loop that survives select() errors.
local emulator = require "linqwebhooks.emulator"
local json = require "linqwebhooks.json"
local socket = require "socket"
local process = require "linqwebhooks.emulator.process"
local support = require "support.receiver"

local KEY = "test_key_31l"
local http = support.http

local function auth()
  return { Authorization = "Bearer " .. KEY, ["Content-Type"] = "application/json" }
end

-- A child process that accepts every connection and never answers (holds them).
local function spawn_sink()
  local count = os.tmpname()
  local code = "local COUNT_FILE = " .. string.format("%q", count) .. "\n" .. [[
    local socket = require "socket"
    local alive = require("linqwebhooks.emulator.process").alive
    local parent = ]] .. require("linqwebhooks.process").getpid() .. [[
    local server = assert(socket.bind("127.0.0.1", 0, 2048))
    server:settimeout(0.2)
    local _, port = server:getsockname()
    io.stdout:write("sink listening on http://127.0.0.1:", port, "\n")
    io.stdout:flush()
    local held, n = {}, 0
    while alive(parent) do
      local c = server:accept()
      if c then
        n = n + 1
        held[n] = c
        local f = assert(io.open(COUNT_FILE, "w"))
        f:write(n)
        f:close()
      end
    end
  ]]
  local child, out = process.spawn({ code = code, ready = "sink listening on (http://%S+)\n" })
  assert(child, out)
  return {
    url = child.match,
    accepted = function()
      return tonumber(require("support.util").read_file(count) or "") or 0
    end,
    stop = function()
      child.stop()
      os.remove(count)
    end,
  }
end

local function subscribe(emu, url)
  local res = assert(http("POST", emu.api_url .. "/v3/webhook-subscriptions", auth(),
    json.encode({ target_url = url, subscribed_events = { "message.sent" } })))
  assert.are.equal(201, res.status, res.body)
  return res.json
end

local function trigger(emu)
  local res = assert(http("POST", emu.url .. "/_emulator/events", nil,
    json.encode({ event_type = "message.sent" })))
  assert.are.equal(202, res.status, res.body)
  return res.json
end

local function deliveries(emu)
  local res = assert(http("GET", emu.url .. "/_emulator/deliveries"))
  assert.are.equal(200, res.status)
  return res.json
end

describe("emulator limits", function()
  it("stays up with ~1100 deliveries pending to a receiver that never answers", function()
    local sink = spawn_sink()
    local emu = emulator.spawn{ api_key = KEY, delivery = { attempts = 2, base_delay = 0.1, timeout = 20 } }
    local ok, err = pcall(function()
      for i = 1, 50 do
        subscribe(emu, sink.url .. "/h" .. i)
      end
      local matched = 0
      for _ = 1, 22 do
        matched = matched + trigger(emu).matched
      end
      assert.are.equal(1100, matched)
      -- the sink holds what the emulator sends (capped: 128 by default)
      local deadline = socket.gettime() + 10
      while sink.accepted() < 128 and socket.gettime() < deadline do
        socket.sleep(0.05)
      end
      socket.sleep(0.5)
      assert.are.equal(128, sink.accepted())
      assert.is_true(process.alive(emu.pid))
      assert.are.same({}, deliveries(emu)) -- nothing finished yet, but it answers
      local res = assert(http("GET", emu.api_url .. "/v3/webhook-subscriptions", auth()))
      assert.are.equal(200, res.status)
      assert.are.equal(50, #res.json.subscriptions)
    end)
    emu.stop()
    sink.stop()
    assert(ok, err)
  end)

  it("queues deliveries beyond max_in_flight and attempts them later", function()
    local sink = spawn_sink()
    local emu = emulator.spawn{ api_key = KEY,
      delivery = { attempts = 1, timeout = 0.5, max_in_flight = 2 } }
    local ok, err = pcall(function()
      for i = 1, 3 do
        subscribe(emu, sink.url .. "/q" .. i)
      end
      trigger(emu)
      trigger(emu) -- 6 deliveries, 2 at a time
      socket.sleep(0.2)
      assert.are.equal(2, sink.accepted())
      local deadline = socket.gettime() + 10
      local log = deliveries(emu)
      while #log < 6 and socket.gettime() < deadline do
        socket.sleep(0.1)
        log = deliveries(emu)
      end
      assert.are.equal(6, #log)
      for _, e in ipairs(log) do
        assert.are.equal("timeout", e.error)
        assert.are.equal("exhausted", e.outcome)
      end
      assert.are.equal(6, sink.accepted())
    end)
    emu.stop()
    sink.stop()
    assert(ok, err)
  end)

  local function hold(emu, n)
    local port = tonumber(emu.url:match(":(%d+)$"))
    local held = {}
    for i = 1, n do
      local c = socket.tcp()
      c:settimeout(5)
      assert(c:connect("127.0.0.1", port))
      held[i] = c
    end
    return held
  end

  it("serves a new client when max_connections idle connections are open", function()
    local emu = emulator.spawn{ api_key = KEY, max_connections = 4 }
    local ok, err = pcall(function()
      local held = hold(emu, 4)
      socket.sleep(0.2)
      local t0 = socket.gettime()
      assert.are.same({}, deliveries(emu))
      assert.is_true(socket.gettime() - t0 < 5)
      -- the quietest (first) idle connection was closed for it
      held[1]:settimeout(2)
      local _, e = held[1]:receive("*a")
      assert.are_not.equal("timeout", e)
      for _, c in ipairs(held) do
        c:close()
      end
    end)
    emu.stop()
    assert(ok, err)
  end)

  it("serves a new client while 600 idle connections are open (default cap)", function()
    local emu = emulator.spawn{ api_key = KEY }
    local ok, err = pcall(function()
      local held = hold(emu, 600)
      local t0 = socket.gettime()
      assert.are.same({}, deliveries(emu))
      assert.is_true(socket.gettime() - t0 < 5)
      for _, c in ipairs(held) do
        c:close()
      end
    end)
    emu.stop()
    assert(ok, err)
  end)
end)

describe("select_loop", function()
  local select_loop = require "linqwebhooks.select_loop"

  it("refuses sockets whose descriptor does not fit select()", function()
    local lp = select_loop.new{ log = function() end }
    local fake = { sock = { getfd = function() return 5000 end, close = function() end } }
    local added, err = lp:add(fake)
    assert.is_nil(added)
    assert.matches("descriptor too large", err)
  end)

  it("logs a select() error, drops the offending actor and keeps serving the others", function()
    local logged = {}
    local lp = select_loop.new{ log = function(m) logged[#logged + 1] = m end }
    local timed_out = false
    -- an actor that slipped past add()'s check (e.g. its descriptor changed)
    local bad = { sock = { getfd = function() return 5000 end, close = function() end },
                  want = function() return "r" end,
                  on_timeout = function(a, l) timed_out = true; l:remove(a) end }
    lp.actors[bad] = true
    lp.count = lp.count + 1
    local server = assert(socket.bind("127.0.0.1", 0))
    server:settimeout(0)
    local _, port = server:getsockname()
    local accepted = 0
    lp:add({ sock = server, want = function() return "r" end,
             on_read = function(a) local c = a.sock:accept() if c then accepted = accepted + 1 c:close() end end })
    local ok = pcall(lp.step, lp, 0)
    assert.is_true(ok)
    assert.is_true(timed_out)
    assert.matches("select%(%) failed", logged[1])
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", tonumber(port)))
    for _ = 1, 20 do
      lp:step(0.1)
      if accepted > 0 then
        break
      end
    end
    c:close()
    server:close()
    assert.are.equal(1, accepted)
  end)
end)
