-- Secret rotation against the real emulator: a rotation while deliveries
-- flow (no event lost, no genuine delivery answered 401, twins' copies
-- de-duplicated by event_id), and a rotation stopped at every step resumes
-- to exactly one subscription per endpoint.
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local socket = require "socket"
local emulator = require "linqwebhooks.emulator"
local process = require "linqwebhooks.emulator.process"
local sfile = require "linqwebhooks.secrets_file"
local desired_mod = require "linqwebhooks.subscriptions.desired"
local rotation = require "linqwebhooks.subscriptions.rotation"
local util = require "support.util"
local http = require("support.receiver").http
local rsupport = require "support.rotation"
local tmpfile = rsupport.tmpfile
local endpoint_subs = rsupport.endpoint_subs

local function deliveries(emu, query)
  local res = assert(http("GET", emu.url .. "/_emulator/deliveries" .. (query or ""), {}, ""))
  assert.equal(200, res.status)
  return res.json
end

local function trigger(emu, event_type, phone)
  local res = assert(http("POST", emu.url .. "/_emulator/events", { ["Content-Type"] = "application/json" },
    json.encode({ event_type = event_type, phone_number = phone })))
  assert.equal(202, res.status)
  return res.json
end

local function lines(path)
  local out = {}
  for l in (util.read_file(path) or ""):gmatch("[^\n]+") do
    out[#out + 1] = l
  end
  return out
end

describe("subscriptions:rotate", function()
  local emu, client

  setup(function()
    emu = emulator.spawn{ delivery = { attempts = 5, base_delay = 0.2, max_delay = 0.5, timeout = 5 } }
    client = linq.client{ api_key = emu.api_key, base_url = emu.api_url, allow_http_targets = true }
  end)

  teardown(function()
    client:close()
    emu.stop()
  end)

  it("rotates while deliveries flow: no event lost, no 401, twins' copies handled once", function()
    local path = tmpfile()
    local port = util.free_port()
    local url = "http://127.0.0.1:" .. port .. "/webhooks"
    assert(client.webhook_subscriptions:apply({ { target_url = url,
      subscribed_events = { "message.received" } } }, { secrets_file = path }))
    local old = endpoint_subs(client, url)[1]

    -- the receiver: linq.webhooks{ secrets_file } behind the plain-Lua receiver
    local handled = tmpfile()
    local recv = assert(process.spawn({ ready = "ready (http://%S+)\n", code = ([[
      local linq = require "linqwebhooks"
      local alive = require("linqwebhooks.emulator.process").alive
      local hooks = linq.webhooks{ secrets_file = %q, endpoint = %q }
      hooks:on("*", function(ev)
        local f = assert(io.open(%q, "ab")) f:write(ev.id, "\n") f:close()
      end)
      local r = assert(require("linqwebhooks.receiver").new{ hooks = hooks, port = %d })
      io.stdout:write("ready ", r.url, "\n") io.stdout:flush()
      while alive(%d) do r:step(0.05) end
    ]]):format(path, url, handled, port, require("linqwebhooks.process").getpid()) }))

    -- events triggered continuously by another process until told to stop
    local stopfile, triggered = tmpfile(), tmpfile()
    local pump = assert(process.spawn({ ready = "(pumping)\n", code = ([[
      local http = require("support.receiver").http
local rsupport = require "support.rotation"
local tmpfile = rsupport.tmpfile
local endpoint_subs = rsupport.endpoint_subs
      local json = require "linqwebhooks.json"
      local socket = require "socket"
      io.stdout:write("pumping\n") io.stdout:flush()
      local deadline = socket.gettime() + 60
      while not io.open(%q, "rb") and socket.gettime() < deadline do
        local res = http("POST", %q, { ["Content-Type"] = "application/json" },
          '{"event_type":"message.received"}')
        if res and res.status == 202 then
          local f = assert(io.open(%q, "ab")) f:write(res.json.event_id, "\n") f:close()
        end
        socket.sleep(0.03)
      end
    ]]):format(stopfile, emu.url .. "/_emulator/events", triggered) }))

    -- confirm: a probe delivery through the emulator. The parked twin only
    -- gets events of its parking line; done when one reached it with 2xx.
    local steps = {}
    local new_sub, err = client.webhook_subscriptions:rotate(old, {
      secrets_file = path, poll = 0.2, timeout = 30,
      confirm = function(twin)
        -- first the receiver must have loaded the new key (a signed probe
        -- straight to it answers 400 "not an event" instead of 401), so that
        -- the probe delivery through Linq/the emulator is not refused
        local secret = assert(sfile.read(path)).endpoints[url].secrets[1].secret
        if rotation.probe(client.webhook_subscriptions, twin.target_url, secret) ~= 400 then
          return false
        end
        trigger(emu, "message.received", rotation.PARKING_NUMBER)
        for _, d in ipairs(deliveries(emu, "?subscription_id=" .. twin.id)) do
          if d.outcome == "delivered" then
            return true
          end
        end
        return false
      end,
      on_step = function(step)
        steps[#steps + 1] = step
        if step == "confirmed" then
          socket.sleep(0.6) -- an overlap with both twins delivering every event
        end
      end,
    })
    assert.is_nil(err)
    assert.same({ "creating", "created", "handed_over", "confirmed", "deactivated", "done" }, steps)
    socket.sleep(0.3) -- a few more events to the new subscription alone
    util.write_file(stopfile, "stop")
    local deadline = socket.gettime() + 10
    while process.alive(pump.pid) and socket.gettime() < deadline do
      socket.sleep(0.05)
    end
    pump.stop()

    -- every triggered event ends up handled, exactly once
    local ids = lines(triggered)
    assert.is_true(#ids >= 20, "only " .. #ids .. " events triggered")
    local want = {}
    for _, id in ipairs(ids) do
      want[id] = true
    end
    local got
    deadline = socket.gettime() + 20
    repeat
      socket.sleep(0.1)
      got = {}
      local missing = 0
      for _, id in ipairs(lines(handled)) do
        got[id] = (got[id] or 0) + 1
      end
      for id in pairs(want) do
        if not got[id] then
          missing = missing + 1
        end
      end
    until missing == 0 or socket.gettime() > deadline
    for id in pairs(want) do
      assert.equal(1, got[id], "event " .. id .. " handled " .. tostring(got[id]) .. " times")
    end
    for id, n in pairs(got) do
      assert.equal(1, n, "event " .. id .. " handled twice")
    end

    -- end to end in the emulator's log: no genuine delivery answered 401;
    -- during the overlap both twins delivered the same event_id
    local log = deliveries(emu)
    local subs_of = {}
    for _, d in ipairs(log) do
      assert.not_equal(401, d.status, "a genuine delivery was answered 401: " .. json.encode(d) .. " old " .. old.id)
      if want[d.event_id] and d.outcome == "delivered" then
        subs_of[d.event_id] = subs_of[d.event_id] or {}
        subs_of[d.event_id][d.subscription_id] = true
      end
    end
    local both = 0
    for _, set in pairs(subs_of) do
      if set[old.id] and set[new_sub.id] then
        both = both + 1
      end
    end
    assert.is_true(both >= 1, "no event was delivered by both twins")

    -- afterwards exactly one subscription serves the endpoint
    local left = endpoint_subs(client, url)
    assert.equal(1, #left)
    assert.equal(new_sub.id, left[1].id)
    assert.equal(url .. "?linqwh_rotation=1", left[1].target_url)
    assert.is_true(left[1].is_active)
    assert.is_nil(left[1].phone_numbers) -- unparked: the old one had no line filter
    local doc = assert(sfile.read(path))
    assert.is_nil(doc.endpoints[url].rotation)
    assert.equal(2, #doc.endpoints[url].secrets)
    assert.equal(new_sub.id, doc.endpoints[url].secrets[1].subscription_id)
    assert.is_number(doc.endpoints[url].secrets[2].expires_at)
    recv.stop()
    os.remove(path)
    os.remove(handled)
    os.remove(triggered)
    os.remove(stopfile)
  end)

  describe("stopped at a step, resumes to completion", function()
    local function fresh(events)
      return rsupport.fresh(client, "crash", events)
    end

    local function check_done(base, path, old, new_sub)
      rsupport.check_done(client, base, path, old, new_sub)
    end

    for _, at in ipairs({ "creating", "created", "handed_over", "confirmed", "deactivated" }) do
      it("after '" .. at .. "' (a raising on_step)", function()
        local base, path, old = fresh()
        local ok, e = pcall(client.webhook_subscriptions.rotate, client.webhook_subscriptions, old, {
          secrets_file = path, confirm = function() return true end,
          on_step = function(step) if step == at then error("crash at " .. step) end end })
        assert.is_false(ok)
        assert.matches("crash at " .. at, tostring(e))
        assert.equal(at, assert(sfile.read(path)).endpoints[base].rotation.step)
        -- resume with the old id (the same call again)
        local new_sub, err = client.webhook_subscriptions:rotate(old.id, {
          secrets_file = path, confirm = function() return true end })
        assert.is_nil(err)
        check_done(base, path, old, new_sub)
      end)
    end

    it("after a raising on_secret, and a raising confirm; resumed by the new id", function()
      local base, path, old = fresh()
      local secrets = {}
      local ok = pcall(client.webhook_subscriptions.rotate, client.webhook_subscriptions, old, {
        secrets_file = path, confirm = function() return true end,
        on_secret = function(_, s) secrets[#secrets + 1] = s error("deploy failed") end })
      assert.is_false(ok)
      local rot = assert(sfile.read(path)).endpoints[base].rotation
      assert.equal("created", rot.step)
      ok = pcall(client.webhook_subscriptions.rotate, client.webhook_subscriptions, rot.new_id, {
        secrets_file = path, confirm = function() error("receiver unreachable") end,
        on_secret = function(_, s) secrets[#secrets + 1] = s end })
      assert.is_false(ok)
      assert.equal("handed_over", assert(sfile.read(path)).endpoints[base].rotation.step)
      -- on_secret got the same secret twice (it must be idempotent)
      assert.equal(2, #secrets)
      assert.equal(secrets[1], secrets[2])
      local new_sub = assert(client.webhook_subscriptions:rotate(rot.new_id, {
        secrets_file = path, confirm = function() return true end }))
      check_done(base, path, old, new_sub)
    end)

    it("after a crash between creating the twin and recording its secret", function()
      local base, path, old = fresh()
      -- the state a crash right after the create call leaves: step
      -- "creating" recorded, a twin exists whose secret nobody kept
      local twin_url = desired_mod.with_marker(base, 1)
      local orphan = assert(client.webhook_subscriptions:create{ target_url = twin_url,
        subscribed_events = { "message.sent" } })
      assert(sfile.update(path, function(doc)
        sfile.endpoint(doc, base).rotation = { step = "creating", old_id = old.id, target_url = twin_url,
          subscribed_events = json.array({ "message.sent", "message.received" }),
          phone_numbers = json.array({ "+12025550123" }), is_active = true }
      end))
      local new_sub = assert(client.webhook_subscriptions:rotate(old, {
        secrets_file = path, confirm = function() return true end }))
      assert.not_equal(orphan.id, new_sub.id)
      check_done(base, path, old, new_sub)
    end)

    it("after the rotating process was killed while waiting for confirm", function()
      local base, path, old = fresh()
      local child = process.spawn({ ready = "(waiting)\n", code = ([[
        local linq = require "linqwebhooks"
        local c = linq.client{ api_key = %q, base_url = %q }
        c.webhook_subscriptions:rotate(%q, { secrets_file = %q, confirm = function()
          io.stdout:write("waiting\n") io.stdout:flush()
          require("socket").sleep(30)
        end })
      ]]):format(emu.api_key, emu.api_url, old.id, path) })
      assert.truthy(child)
      child.stop(0.1) -- SIGTERM: Lua has no handler, the process dies mid-wait
      assert.equal("handed_over", assert(sfile.read(path)).endpoints[base].rotation.step)
      local new_sub = assert(client.webhook_subscriptions:rotate(old.id, {
        secrets_file = path, confirm = function() return true end }))
      check_done(base, path, old, new_sub)
    end)

    it("apply during an unfinished rotation leaves the parked twin parked", function()
      local base, path, old = fresh()
      assert.is_nil((client.webhook_subscriptions:rotate(old, {
        secrets_file = path, timeout = 0.2, poll = 0.1, confirm = function() return false end })))
      local d = { { target_url = base, phone_numbers = { "+12025550123" },
                    subscribed_events = { "message.sent", "message.received" } } }
      local plan = assert(client.webhook_subscriptions:plan(d))
      assert.equal(0, #plan.update)
      assert.equal(old.id, plan.unchanged[1].id) -- the old one still serves the endpoint
      assert.equal(1, #plan.rotating)
      assert(client.webhook_subscriptions:apply(d, { prune = true }))
      for _, s in ipairs(endpoint_subs(client, base)) do
        if s.id ~= old.id then
          assert.same({ rotation.PARKING_NUMBER }, s.phone_numbers)
        end
      end
      local new_sub = assert(client.webhook_subscriptions:rotate(old, {
        secrets_file = path, confirm = function() return true end }))
      check_done(base, path, old, new_sub)
    end)

    it("times out with the old subscription still serving, then finishes", function()
      local base, path, old = fresh()
      local new_sub, err = client.webhook_subscriptions:rotate(old, {
        secrets_file = path, timeout = 0.5, poll = 0.1, confirm = function() return false end })
      assert.is_nil(new_sub)
      assert.equal("timeout", err.reason)
      local subs = endpoint_subs(client, base)
      assert.equal(2, #subs)
      for _, s in ipairs(subs) do
        if s.id == old.id then
          assert.is_true(s.is_active)
        else
          assert.same({ rotation.PARKING_NUMBER }, s.phone_numbers) -- still parked
        end
      end
      new_sub = assert(client.webhook_subscriptions:rotate(old, {
        secrets_file = path, confirm = function() return true end }))
      check_done(base, path, old, new_sub)
    end)
  end)

  it("without a secrets file: on_secret deploys, the default confirm is a signed probe", function()
    local port = util.free_port()
    local url = "http://127.0.0.1:" .. port .. "/hook"
    local sub = assert(client.webhook_subscriptions:create{ target_url = url,
      subscribed_events = { "message.sent" } })
    -- the application's own secret store, which its receiver reads
    local deployed = tmpfile()
    local function deploy(secret, id)
      assert(sfile.update(deployed, function(doc) sfile.add_secret(doc, url, secret, id) end))
    end
    deploy(sub.signing_secret, sub.id)
    local recv = assert(process.spawn({ ready = "ready (http://%S+)\n", code = ([[
      local linq = require "linqwebhooks"
      local alive = require("linqwebhooks.emulator.process").alive
      local hooks = linq.webhooks{ secrets_file = %q }
      local r = assert(require("linqwebhooks.receiver").new{ hooks = hooks, port = %d, path = "/hook" })
      io.stdout:write("ready ", r.url, "\n") io.stdout:flush()
      while alive(%d) do r:step(0.05) end
    ]]):format(deployed, port, require("linqwebhooks.process").getpid()) }))
    -- before the new secret is deployed, the probe is refused with 401
    local handed = {}
    local new_sub, err = client.webhook_subscriptions:rotate(sub.id, {
      on_secret = function(twin, secret)
        handed[#handed + 1] = twin.id
        assert.equal(401, rotation.probe(client.webhook_subscriptions, twin.target_url, secret))
        deploy(secret, twin.id)
      end,
      timeout = 10, poll = 0.2,
    })
    assert.is_nil(err)
    assert.same({ new_sub.id }, handed)
    local left = endpoint_subs(client, url)
    assert.equal(1, #left)
    assert.equal(new_sub.id, left[1].id)
    recv.stop()
    os.remove(deployed)
  end)

  it("commands.rotate (for linqwh): default probe confirm, one progress line per step", function()
    local cmd = require "linqwebhooks.subscriptions.commands"
    local path = tmpfile()
    local port = util.free_port()
    local url = "http://127.0.0.1:" .. port .. "/webhooks"
    assert(client.webhook_subscriptions:apply({ { target_url = url,
      subscribed_events = { "message.received" } } }, { secrets_file = path }))
    local old = endpoint_subs(client, url)[1]
    local recv = assert(process.spawn({ ready = "ready (http://%S+)\n", code = ([[
      local linq = require "linqwebhooks"
      local alive = require("linqwebhooks.emulator.process").alive
      local hooks = linq.webhooks{ secrets_file = %q }
      local r = assert(require("linqwebhooks.receiver").new{ hooks = hooks, port = %d })
      io.stdout:write("ready ", r.url, "\n") io.stdout:flush()
      while alive(%d) do r:step(0.05) end
    ]]):format(path, port, require("linqwebhooks.process").getpid()) }))
    local progress = {}
    local text, err, st = cmd.rotate(client, old.id, { secrets_file = path, timeout = 20, poll = 0.2,
      progress = function(line) progress[#progress + 1] = line end })
    assert.is_nil(err, tostring(err) .. " " .. tostring(st))
    assert.matches("^rotated: linqwebhooks%.subscription ", text)
    assert.equal(6, #progress)
    assert.matches("^rotate: creating +creating the twin " .. url:gsub("%p", "%%%0")
      .. "%?linqwh_rotation=1 %(parked on line %+12025550199%)$", progress[1])
    assert.matches("^rotate: done ", progress[6])
    for _, l in ipairs(progress) do
      assert.not_matches("whsec_", l)
    end
    assert.equal(1, #endpoint_subs(client, url))
    recv.stop()
    os.remove(path)
  end)
end)
