-- #nginx: examples/nginx/nginx.conf + handler.lua, run as shipped (only the
-- port changes) against the emulator: a delivery signed by the emulator is
-- answered 200, the example's client endpoint talks to the emulator through
-- cosockets, forgeries get 401.
local nginx = require "support.nginx"
local socket = require "socket"
local linq = require "linqwebhooks"

-- busted's functions, for nginx.suite (one nginx per describe block)
local BUSTED = { setup = setup, teardown = teardown, it = it, pending = pending }

describe("examples/nginx #nginx", function()
  local emu, emu_port, client, sub

  local site = nginx.suite(BUSTED, function()
    emu = require("linqwebhooks.emulator").spawn{ api_key = "k_example" }
    emu_port = tonumber(emu.url:match(":(%d+)$"))
    client = linq.client{ api_key = "k_example", base_url = emu.api_url, allow_http_targets = true,
                          transport = require("linqwebhooks.transport.curl") }
    -- the secret exists once the subscription does; nginx needs it at start,
    -- and the subscription then points at nginx's port
    sub = assert(client.webhook_subscriptions:create{ target_url = "http://127.0.0.1:9/placeholder",
                                                      subscribed_events = { "message.received" } })
    return { example = true, env = {
      LINQ_WEBHOOK_SECRET = sub.signing_secret,
      LINQ_API_V3_API_KEY = "k_example",
      LINQ_API_V3_BASE_URL = emu.api_url,
    } }
  end)
  local nginx_it = site.it

  setup(function()
    if site.srv then
      assert(sub:update{ target_url = site.srv.url .. "/linq/webhooks" })
    end
  end)

  teardown(function()
    if client then
      client:close()
    end
    if emu then
      emu.stop()
    end
  end)

  nginx_it("answers its health check", function()
    local res = assert(site.srv:request("GET", "/healthz"))
    assert.are.equal(200, res.status)
    assert.are.equal("ok\n", res.body)
  end)

  nginx_it("answers 200 to a delivery signed by the emulator", function()
    local res = assert(nginx.http(emu_port, "POST", "/_emulator/events",
      { ["Content-Type"] = "application/json" }, '{"event_type":"message.received"}'))
    assert.are.equal(202, res.status, res.body)
    local event_id = assert(res.body:match('"event_id":"([^"]+)"'))
    local log
    for _ = 1, 250 do
      log = assert(nginx.http(emu_port, "GET", "/_emulator/deliveries")).body
      if log:find(event_id, 1, true) then
        break
      end
      socket.sleep(0.02)
    end
    -- one attempt for this event, delivered with status 200
    local entry = log:match('{[^{}]*"event_id":"' .. event_id:gsub("%-", "%%-") .. '"[^{}]*}')
    assert.truthy(entry, log)
    assert.matches('"status":200', entry)
    assert.matches('"outcome":"delivered"', entry)
  end)

  nginx_it("lists the subscriptions through the cosocket client in a content handler", function()
    local res = assert(site.srv:request("GET", "/linq/subscriptions"))
    assert.are.equal(200, res.status, res.body)
    assert.are.equal(sub.id .. " " .. site.srv.url .. "/linq/webhooks active\n", res.body)
  end)

  nginx_it("answers 401 to a forgery and 200 to a body signed with the secret", function()
    local body = '{"event_type":"message.received","event_id":"evt-example-1","data":{}}'
    local h = linq.sign{ secret = sub.signing_secret, body = body }
    assert.are.equal(401, assert(site.srv:request("POST", "/linq/webhooks", h, body .. "\n")).status)
    local wrong = linq.sign{ secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body = body }
    assert.are.equal(401, assert(site.srv:request("POST", "/linq/webhooks", wrong, body)).status)
    local ok = assert(site.srv:request("POST", "/linq/webhooks", h, body))
    assert.are.equal(200, ok.status)
    assert.are.equal("ok", ok.body)
    -- the same delivery again: a duplicate, not dispatched again
    assert.are.equal("duplicate", assert(site.srv:request("POST", "/linq/webhooks", h, body)).body)
  end)

  nginx_it("leaves no [error] lines in the error log", function()
    assert.are.same({}, site.srv:errors())
  end)
end)
