-- API client against the local Linq API emulator (a real server on loopback):
-- every operation, the error mappings it can produce, the full subscription
-- life cycle, and a created subscription's secret verifying a real delivery.
local socket = require "socket"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local emulator = require "linqwebhooks.emulator"
local curl = require "linqwebhooks.transport.curl"

local KEY = "lk_emulator_test_key_42"

-- Reads one HTTP request from a connected LuaSocket client.
local function read_request(c)
  local line, headers, body = require("support.util").read_request(c)
  if not line then
    return nil
  end
  return { line = line, headers = headers, body = body }
end

describe("client against the emulator", function()
  local emu, client

  setup(function()
    emu = emulator.spawn{ api_key = KEY }
    client = linq.client{ api_key = KEY, base_url = emu.api_url, allow_http_targets = true,
                          timeout = 10 }
  end)

  teardown(function()
    if client then
      client:close()
    end
    if emu then
      emu.stop()
    end
  end)

  it("lists the subscribable event types", function()
    local res, err = client.webhook_events:list()
    assert.is_nil(err)
    assert.is_string(res.doc_url)
    local found = false
    for _, e in ipairs(res.events) do
      if e == "message.received" then
        found = true
      end
    end
    assert.is_true(found)
  end)

  it("runs the full create -> list -> retrieve -> update -> deactivate -> activate -> delete cycle", function()
    local subs = client.webhook_subscriptions
    local sub, err = subs:create{ target_url = "https://example.com/cycle?version=2026-02-03",
                                  subscribed_events = { "message.received", "message.sent" },
                                  phone_numbers = { "+12025550123" } }
    assert.is_nil(err)
    assert.is_string(sub.id)
    assert.matches("^whsec_", sub.signing_secret)
    assert.is_true(sub.is_active)
    assert.same({ "+12025550123" }, { (table.unpack or unpack)(sub.phone_numbers) })
    assert.is_nil(tostring(sub):find(sub.signing_secret, 1, true))
    assert.is_true(sub:subscribes_to("message.sent"))
    assert.is_false(sub:subscribes_to("message.read"))
    local secret = sub.signing_secret

    -- list
    local all = assert(subs:list())
    local seen
    for _, s in ipairs(all) do
      assert.is_nil(s.signing_secret)
      if s.id == sub.id then
        seen = s
      end
    end
    assert.is_not_nil(seen)
    assert.equal(sub.target_url, seen.target_url)

    -- retrieve
    local got = assert(subs:retrieve(sub.id))
    assert.equal(sub.id, got.id)
    assert.is_nil(got.signing_secret)
    assert.same({ "message.received", "message.sent" }, { (table.unpack or unpack)(got.subscribed_events) })

    -- update each field through the resource and through the object
    local u = assert(subs:update(sub.id, { target_url = "https://example.com/cycle2" }))
    assert.equal("https://example.com/cycle2", u.target_url)
    assert.equal(sub.id, u.id)
    assert.is_nil(u.signing_secret)

    assert.equal(sub, sub:update{ subscribed_events = { "message.read" } })
    assert.equal("https://example.com/cycle2", sub.target_url)
    assert.is_true(sub:subscribes_to("message.read"))
    assert.is_false(sub:subscribes_to("message.sent"))
    assert.equal(secret, sub.signing_secret) -- the object keeps what create returned

    assert(sub:update{ phone_numbers = { "+12025550123", "+447700900123" } })
    assert.equal(2, #sub.phone_numbers)
    assert(sub:update{ phone_numbers = linq.null })
    assert.is_nil(sub.phone_numbers)
    assert.is_nil(assert(subs:retrieve(sub.id)).phone_numbers)

    assert.equal(sub, sub:deactivate())
    assert.is_false(sub.is_active)
    assert.is_false(assert(subs:retrieve(sub.id)).is_active)
    assert.equal(sub, sub:activate())
    assert.is_true(sub.is_active)
    assert(sub:update{ is_active = false })
    assert.is_false(sub.is_active)

    -- refresh picks up a change made through another object
    assert(subs:update(sub.id, { is_active = true, subscribed_events = { "chat.created" } }))
    assert.equal(sub, sub:refresh())
    assert.is_true(sub.is_active)
    assert.is_true(sub:subscribes_to("chat.created"))

    -- delete
    assert.is_true(sub:delete())
    local gone, gerr = subs:retrieve(sub.id)
    assert.is_nil(gone)
    assert.equal("NotFoundError", gerr.name)
    local again, derr = subs:delete(sub.id)
    assert.is_nil(again)
    assert.equal(404, derr.status)
    local r, rerr = sub:refresh()
    assert.is_nil(r)
    assert.equal("NotFoundError", rerr.name)
  end)

  it("maps a bad API key to AuthenticationError with Linq's envelope", function()
    local bad = linq.client{ api_key = "wrong_key", base_url = emu.api_url }
    local subs, err = bad.webhook_subscriptions:list()
    bad:close()
    assert.is_nil(subs)
    assert.equal("api", err.kind)
    assert.equal("AuthenticationError", err.name)
    assert.equal(401, err.status)
    assert.equal(2004, err.code)
    assert.is_string(err.message)
    assert.is_string(err.trace_id)
    assert.matches("^https://docs%.linqapp%.com/error/", err.doc_url)
    assert.is_nil(tostring(err):find("wrong_key", 1, true))
    assert.matches("^linqwebhooks: AuthenticationError: ", tostring(err))
  end)

  it("maps an unknown id to NotFoundError and escapes ids", function()
    local sub, err = client.webhook_subscriptions:retrieve("no/such id?x=1")
    assert.is_nil(sub)
    assert.equal("NotFoundError", err.name)
    assert.equal(404, err.status)
    assert.equal(2001, err.code)
    local ok, uerr = client.webhook_subscriptions:update("missing", { is_active = false })
    assert.is_nil(ok)
    assert.equal("NotFoundError", uerr.name)
  end)

  it("maps a duplicate target_url to BadRequestError (400, as the spec declares) and does not create twice", function()
    local url = "https://example.com/dup-" .. tostring(os.time())
    local a = assert(client.webhook_subscriptions:create{ target_url = url, subscribed_events = { "message.sent" } })
    local b, err = client.webhook_subscriptions:create{ target_url = url, subscribed_events = { "message.sent" } }
    assert.is_nil(b)
    assert.equal("BadRequestError", err.name)
    assert.equal(400, err.status)
    assert.is_number(err.code)
    local n = 0
    for _, s in ipairs(assert(client.webhook_subscriptions:list())) do
      if s.target_url == url then
        n = n + 1
      end
    end
    assert.equal(1, n)
    assert.is_true(a:delete())
  end)

  it("percent-encodes dot-segment ids so they stay ids", function()
    for _, id in ipairs { ".", ".." } do
      local sub, err = client.webhook_subscriptions:retrieve(id)
      assert.is_nil(sub)
      assert.equal("NotFoundError", err.name)
    end
  end)

  it("maps server-side validation failures to BadRequestError", function()
    -- an unknown (but well-formed) event type passes client-side checks
    local sub, err = client.webhook_subscriptions:create{ target_url = "https://example.com/bad-ev",
                                                          subscribed_events = { "nosuch.event" } }
    assert.is_nil(sub)
    assert.equal("BadRequestError", err.name)
    assert.equal(400, err.status)
    assert.equal(1005, err.code)
    -- the client and the emulator share one E.164 rule (linqwebhooks.e164):
    -- a number the API would refuse (1002) is refused before sending
    local before = #assert(client.webhook_subscriptions:list())
    sub, err = client.webhook_subscriptions:create{ target_url = "https://example.com/bad-phone",
                                                    subscribed_events = { "message.sent" },
                                                    phone_numbers = { "+1234" } }
    assert.is_nil(sub)
    assert.equal("InvalidRequestError", err.name)
    assert.equal(before, #assert(client.webhook_subscriptions:list()))
  end)

  it("returns a signing secret that verifies a delivery the emulator sends", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local t = curl.new{ timeout = 10 }
    local sub
    local ok, perr = pcall(function()
      local err
      sub, err = client.webhook_subscriptions:create{
        target_url = "http://127.0.0.1:" .. port .. "/hook?version=2026-02-03",
        subscribed_events = { "message.received" } }
      assert.is_nil(err)
      local res = assert(t:request("POST", emu.url .. "/_emulator/events", { ["Content-Type"] = "application/json" },
        json.encode{ event_type = "message.received" }))
      assert.equal(202, res.status)
      assert.equal(1, json.decode(res.body).matched)

      server:settimeout(10)
      local c = assert(server:accept())
      c:settimeout(10)
      local req = assert(read_request(c))
      c:send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      c:close()

      assert.matches("^POST /hook", req.line)
      local info, verr = linq.verify(sub.signing_secret, req.body, req.headers)
      assert.is_nil(verr)
      assert.equal("standard", info.scheme)
      local legacy = assert(linq.verifier{ secret = sub.signing_secret, scheme = "legacy" }:verify(req.body, req.headers))
      assert.equal("legacy", legacy.scheme)
      local doc = json.decode(req.body)
      assert.equal("message.received", doc.event_type)
      -- another secret does not verify it
      local _, bad = linq.verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=", req.body, req.headers)
      assert.equal("no_matching_signature", bad.reason)
    end)
    server:close()
    t:close()
    if sub then
      sub:delete()
    end
    assert(ok, perr)
  end)
end)
