-- The demo's flow with real processes: the emulator in a child process
-- delivers signed events over HTTP to a receiver serving linq.webhooks; the
-- subscription is created and deleted with the client.
local linq = require "linqwebhooks"
local receiver = require "linqwebhooks.receiver"
local emulator = require "linqwebhooks.emulator"
local json = require "linqwebhooks.json"
local socket = require "socket"

local LUA = jit and "luajit" or "lua5.4"

describe("end to end: emulator -> receiver -> linq.webhooks", function()
  local emu, admin, client
  local cleanup = {}

  setup(function()
    emu = emulator.spawn{ api_key = "e2e_key",
                          delivery = { attempts = 4, base_delay = 0.2, max_delay = 1, timeout = 3 } }
    admin = require("linqwebhooks.transport.curl").new{ timeout = 10, connect_timeout = 5 }
    client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  end)

  teardown(function()
    if client then client:close() end
    if admin then admin:close() end
    if emu then emu.stop() end
  end)

  after_each(function()
    for i = #cleanup, 1, -1 do
      pcall(cleanup[i])
    end
    cleanup = {}
  end)

  local function new_receiver(opts)
    local r = assert(receiver.new(opts or { port = 0 }))
    cleanup[#cleanup + 1] = function() r:close() end
    return r
  end

  local function subscribe(url, events)
    local sub, err = client.webhook_subscriptions:create{ target_url = url, subscribed_events = events }
    assert(sub, tostring(err))
    cleanup[#cleanup + 1] = function() sub:delete() end
    return sub
  end

  local function trigger(etype, data)
    local res = assert(admin:request("POST", emu.url .. "/_emulator/events",
      { ["Content-Type"] = "application/json" }, json.encode({ event_type = etype, data = data })))
    assert.equal(202, res.status)
    return json.decode(res.body)
  end

  local function deliveries(event_id)
    local res = assert(admin:request("GET", emu.url .. "/_emulator/deliveries"))
    assert.equal(200, res.status)
    local out = {}
    for _, d in ipairs(json.decode(res.body)) do
      if d.event_id == event_id then
        out[#out + 1] = d
      end
    end
    return out
  end

  -- Serves deliveries (r may be nil for an out-of-process receiver) until
  -- `n` attempts of the event are logged as final (bounded).
  local function wait_final(r, event_id, n)
    local deadline = socket.gettime() + 20
    while true do
      local log = deliveries(event_id)
      local final = 0
      for _, d in ipairs(log) do
        if d.outcome ~= "retrying" then
          final = final + 1
        end
      end
      if final >= n then
        return log
      end
      assert(socket.gettime() < deadline, "deliveries of " .. event_id .. " not final in time")
      if r then
        r:step(0.05)
      else
        socket.sleep(0.05)
      end
    end
  end

  it("retries a delivery whose handler failed, and the retry succeeds", function()
    local r = new_receiver()
    local sub = subscribe(r.url .. "?version=2026-02-03",
      { "message.received", "reaction.added", "chat.typing_indicator.started" })
    assert.is_string(sub.signing_secret)
    local hooks = linq.webhooks{ secret = sub.signing_secret }
    local got, calls, errs, msg = {}, 0, {}, nil
    hooks:on("message.received", function(ev)
      calls = calls + 1
      if calls == 1 then
        error("first attempt fails", 0)
      end
      msg = ev
    end)
    hooks:on("*", function(ev) got[#got + 1] = ev end)
    hooks:on_error(function(err, ev) errs[#errs + 1] = ev.type .. ": " .. tostring(err.cause) end)
    r:set_hooks(hooks)

    local m = trigger("message.received")
    local t = trigger("chat.typing_indicator.started")
    assert.equal(1, m.matched)

    local log = wait_final(r, m.event_id, 1)
    assert.equal(2, #log)
    assert.equal(500, log[1].status)
    assert.equal("retrying", log[1].outcome)
    assert.equal(200, log[2].status)
    assert.equal("delivered", log[2].outcome)
    assert.equal(sub.id, log[2].subscription_id)
    assert.same({ "message.received: first attempt fails" }, errs)
    assert.equal(2, calls)

    local tlog = wait_final(r, t.event_id, 1)
    assert.equal(1, #tlog)
    assert.equal(200, tlog[1].status)

    local by_type = {}
    for _, ev in ipairs(got) do
      by_type[ev.type] = (by_type[ev.type] or 0) + 1
    end
    -- "*" ran on both attempts of message.received (isolated from the failing one),
    -- the exact handler succeeded once
    assert.same({ ["message.received"] = 2, ["chat.typing_indicator.started"] = 1 }, by_type)
    assert.equal(m.event_id, msg.id)
    assert.equal("2026-02-03", msg.webhook_version)
    assert.equal("Hello!", msg:text())
    assert.equal("+12025559876", msg:sender())
    assert.is_true(msg:is_inbound())
    assert.is_string(msg:chat_id())

    -- after the subscription is deleted nothing is delivered
    assert.is_true(sub:delete())
    assert.equal(0, trigger("message.received").matched)
  end)

  it("dispatches an event delivered to two subscriptions once", function()
    local lines = {}
    local r = new_receiver({ port = 0, log = function(l) lines[#lines + 1] = l end })
    local s1 = subscribe(r.url .. "?line=1", { "message.sent" })
    local s2 = subscribe(r.url .. "?line=2", { "message.sent" })
    local hooks = linq.webhooks{ secrets = { s1.signing_secret, s2.signing_secret } }
    local n = 0
    hooks:on("message.sent", function(ev)
      n = n + 1
      assert.is_false(ev:is_inbound())
    end)
    r:set_hooks(hooks)
    local ev = trigger("message.sent")
    assert.equal(2, ev.matched)
    local log = wait_final(r, ev.event_id, 2)
    assert.equal(2, #log)
    for _, d in ipairs(log) do
      assert.equal(200, d.status)
    end
    assert.equal(1, n)
    local dup = 0
    for _, l in ipairs(lines) do
      if l:find("(duplicate)", 1, true) then
        dup = dup + 1
      end
    end
    assert.equal(1, dup)
  end)

  it("gives the same helper values for the 2025-01-01 payload version", function()
    local r = new_receiver()
    local sub = subscribe(r.url .. "?version=2025-01-01", { "message.received" })
    local hooks = linq.webhooks{ secret = sub.signing_secret }
    local got
    hooks:on("message.received", function(ev) got = ev end)
    r:set_hooks(hooks)
    local ev = trigger("message.received")
    wait_final(r, ev.event_id, 1)
    assert.equal("2025-01-01", got.webhook_version)
    assert.is_table(got.data.message)
    assert.equal("Hello!", got:text())
    assert.equal("+12025559876", got:sender())
    assert.is_true(got:is_inbound())
    assert.equal(got.data.chat_id, got:chat_id())
    assert.equal(got.data.message.id, got:message_id())
  end)

  it("answers 401 to a subscription whose secret the receiver does not know", function()
    local r = new_receiver()
    local sub = subscribe(r.url, { "reaction.added" })
    local other = subscribe(r.url .. "?other=1", { "participant.added" })
    r:set_hooks(linq.webhooks{ secret = other.signing_secret })
    assert.is_string(sub.id)
    local ev = trigger("reaction.added")
    local log = wait_final(r, ev.event_id, 1)
    assert.equal(1, #log)
    assert.equal(401, log[1].status)
    assert.equal("failed", log[1].outcome) -- 4xx: Linq does not retry
  end)

  it("works with examples/receiver.lua running as its own process", function()
    -- reserve a free port for the receiver child
    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    local sub = subscribe("http://127.0.0.1:" .. port .. "/webhooks", { "message.received" })
    local p = assert(io.popen("LINQ_WEBHOOK_SECRET='" .. sub.signing_secret .. "' LUA_PATH='"
      .. package.path .. "' LUA_CPATH='" .. package.cpath .. "' sh -c 'echo $$; exec " .. LUA
      .. " examples/receiver.lua " .. port .. "' 2>&1"))
    local pid = tonumber(p:read("*l"))
    local stopped = false
    local function stop()
      if not stopped then
        stopped = true
        os.execute("kill -TERM " .. pid .. " 2>/dev/null")
        local rest = p:read("*a")
        p:close()
        return rest
      end
    end
    cleanup[#cleanup + 1] = stop
    local line = p:read("*l") or ""
    assert.equal("linqwebhooks receiver listening on http://127.0.0.1:" .. port .. "/webhooks", line)
    local ev = trigger("message.received")
    local log = wait_final(nil, ev.event_id, 1)
    assert.equal(200, log[#log].status)
    local out = stop()
    assert.matches('message from %+12025559876 in chat [%w%-]+: "Hello!"', out)
    assert.matches("event message.received " .. ev.event_id:gsub("%-", "%%-"), out)
    assert.matches("linqwebhooks receiver stopped", out)
  end)
end)
