-- Signed event delivery by the emulator (real child processes on loopback):
-- signatures for both schemes, Linq's retry policy, subscription matching.
local emulator = require "linqwebhooks.emulator"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local socket = require "socket"
local support = require "support.receiver"

local KEY = "test_key_31"
local http = support.http

local function auth()
  return { Authorization = "Bearer " .. KEY, ["Content-Type"] = "application/json" }
end

local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local RFC3339 = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.%d]*Z$"

-- Runs fn(emu) with a fresh emulator and receivers; everything is stopped after.
local function with(opts, fn)
  local emu = emulator.spawn{ api_key = KEY, partner_id = "partner-31",
                              delivery = opts.delivery or { base_delay = 0.05, max_delay = 0.2, timeout = 5 } }
  local receivers = {}
  local ok, err = pcall(fn, emu, function(ropts)
    local r = support.spawn(ropts)
    receivers[#receivers + 1] = r
    return r
  end)
  for _, r in ipairs(receivers) do
    r.stop()
  end
  emu.stop()
  assert(ok, err)
end

local function subscribe(emu, fields)
  local res = assert(http("POST", emu.api_url .. "/v3/webhook-subscriptions", auth(), json.encode(fields)))
  assert.are.equal(201, res.status, res.body)
  return res.json
end

local function trigger(emu, fields)
  local res = assert(http("POST", emu.url .. "/_emulator/events", nil, json.encode(fields)))
  assert.are.equal(202, res.status, res.body)
  return res.json
end

local function deliveries(emu)
  local res = assert(http("GET", emu.url .. "/_emulator/deliveries"))
  assert.are.equal(200, res.status)
  return res.json
end

-- Polls the attempts log until pred(log) holds (bounded).
local function wait_log(emu, pred, secs)
  local deadline = socket.gettime() + (secs or 10)
  local log = deliveries(emu)
  while not pred(log) and socket.gettime() < deadline do
    socket.sleep(0.02)
    log = deliveries(emu)
  end
  return log
end

local function final(log, event_id)
  for _, e in ipairs(log) do
    if e.event_id == event_id and e.outcome ~= "retrying" then
      return e
    end
  end
end

describe("emulator delivery", function()
  it("POSTs a v3 envelope signed for both schemes", function()
    with({}, function(emu, receiver)
      local r = receiver()
      local sub = subscribe(emu, { target_url = r.url .. "/hook?x=1", subscribed_events = { "message.received" } })
      local res = trigger(emu, { event_type = "message.received" })
      assert.matches(UUID4, res.event_id)
      assert.are.equal(1, res.matched)
      assert.are.same({ sub.id }, res.subscription_ids)

      local req = r.wait(1)[1]
      assert.is_table(req)
      assert.are.equal("POST", req.method)
      assert.are.equal("/hook?x=1", req.target)
      local h = req.headers
      assert.are.equal("application/json", h["content-type"])
      assert.are.equal(res.event_id, h["webhook-id"])
      assert.are.equal("message.received", h["x-webhook-event"])
      assert.are.equal(sub.id, h["x-webhook-subscription-id"])
      assert.are.equal(h["webhook-timestamp"], h["x-webhook-timestamp"])
      assert.is_true(math.abs(tonumber(h["webhook-timestamp"]) - os.time()) < 60)
      assert.matches("^v1,", h["webhook-signature"])
      assert.matches("^%x+$", h["x-webhook-signature"])

      local std = linq.verifier{ secret = sub.signing_secret, scheme = "standard" }
      local info, err = std:verify(req.body, h)
      assert.is_table(info, tostring(err))
      assert.are.equal("standard", info.scheme)
      assert.are.equal(res.event_id, info.id)
      local legacy = linq.verifier{ secret = sub.signing_secret, scheme = "legacy" }
      info, err = legacy:verify(req.body, h)
      assert.is_table(info, tostring(err))
      assert.are.equal("legacy", info.scheme)
      -- and not with another secret
      local other = linq.verifier{ secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=" }
      local bad
      bad, err = other:verify(req.body, h)
      assert.is_nil(bad)
      assert.are.equal("no_matching_signature", err.reason)

      local env = json.decode(req.body)
      assert.are.equal("v3", env.api_version)
      assert.are.equal("2026-02-03", env.webhook_version)
      assert.are.equal("message.received", env.event_type)
      assert.are.equal(res.event_id, env.event_id)
      assert.matches(RFC3339, env.created_at)
      assert.matches("^%x+$", env.trace_id)
      assert.are.equal(32, #env.trace_id)
      assert.are.equal("partner-31", env.partner_id)
      assert.are.equal("inbound", env.data.direction)
      assert.are.equal("+12025551234", env.data.chat.owner_handle.handle)
      assert.are.equal("text", env.data.parts[1].type)

      local ev = assert(std:unwrap(req.body, h))
      assert.are.equal("message.received", ev.type)
      assert.are.equal(res.event_id, ev.id)

      local log = wait_log(emu, function(l) return final(l, res.event_id) ~= nil end)
      local e = final(log, res.event_id)
      assert.are.equal(200, e.status)
      assert.are.equal("delivered", e.outcome)
      assert.are.equal(1, e.attempt)
      assert.are.equal(sub.id, e.subscription_id)
      assert.are.equal(sub.target_url, e.target_url)
      assert.matches(RFC3339, e.at)
    end)
  end)

  it("passes given data through and follows ?version= in the target URL", function()
    with({}, function(emu, receiver)
      local r1, r2 = receiver(), receiver()
      subscribe(emu, { target_url = r1.url .. "/?version=2025-01-01", subscribed_events = { "message.sent" } })
      subscribe(emu, { target_url = r2.url .. "/", subscribed_events = { "message.sent" } })
      local res = trigger(emu, { event_type = "message.sent",
                                 data = { id = "m1", parts = { { type = "text", value = "hi" } }, n = 3 } })
      assert.are.equal(2, res.matched)
      local a, b = json.decode(r1.wait(1)[1].body), json.decode(r2.wait(1)[1].body)
      assert.are.equal("2025-01-01", a.webhook_version)
      assert.are.equal("2026-02-03", b.webhook_version)
      assert.are.equal(a.event_id, b.event_id)
      assert.are.same({ id = "m1", parts = { { type = "text", value = "hi" } }, n = 3 }, a.data)
      assert.are.same(a.data, b.data)
      -- samples follow the version too
      res = trigger(emu, { event_type = "message.sent" })
      assert.are.equal(2, res.matched)
      local list1 = r1.wait(2)
      local list2 = r2.wait(2)
      local old, new = json.decode(list1[2].body).data, json.decode(list2[2].body).data
      assert.are.equal(true, old.is_from_me)
      assert.is_table(old.message)
      assert.are.equal("outbound", new.direction)
      assert.is_table(new.chat)
    end)
  end)

  it("retries 5xx with the same event id and a fresh signature each time", function()
    with({}, function(emu, receiver)
      local r = receiver({ statuses = { 500, 500, 200 } })
      local sub = subscribe(emu, { target_url = r.url .. "/retry", subscribed_events = { "chat.created" } })
      local res = trigger(emu, { event_type = "chat.created" })
      local reqs = r.wait(3)
      assert.are.equal(3, #reqs)
      local std = linq.verifier{ secret = sub.signing_secret, scheme = "standard" }
      local legacy = linq.verifier{ secret = sub.signing_secret, scheme = "legacy" }
      for _, q in ipairs(reqs) do
        assert.are.equal(res.event_id, q.headers["webhook-id"])
        assert.are.equal(reqs[1].body, q.body)
        assert.is_table(std:verify(q.body, q.headers))
        assert.is_table(legacy:verify(q.body, q.headers))
      end
      local log = wait_log(emu, function(l) return final(l, res.event_id) ~= nil end)
      assert.are.equal(3, #log)
      assert.are.same({ 1, 2, 3 }, { log[1].attempt, log[2].attempt, log[3].attempt })
      assert.are.same({ 500, 500, 200 }, { log[1].status, log[2].status, log[3].status })
      assert.are.same({ "retrying", "retrying", "delivered" }, { log[1].outcome, log[2].outcome, log[3].outcome })
      assert.are.equal(0.05, log[1].next_attempt_in)
      assert.are.equal(0.1, log[2].next_attempt_in)
      -- the log can be filtered
      trigger(emu, { event_type = "message.sent" }) -- matches nothing
      local only = http("GET", emu.url .. "/_emulator/deliveries?event_id=" .. res.event_id
        .. "&subscription_id=" .. sub.id).json
      assert.are.equal(3, #only)
      assert.are.same({}, http("GET", emu.url .. "/_emulator/deliveries?event_id=nope").json)
    end)
  end)

  it("does not retry other 4xx responses", function()
    with({}, function(emu, receiver)
      local r = receiver({ statuses = { 400, 200 } })
      subscribe(emu, { target_url = r.url .. "/", subscribed_events = { "reaction.added" } })
      local res = trigger(emu, { event_type = "reaction.added" })
      local log = wait_log(emu, function(l) return final(l, res.event_id) ~= nil end)
      local e = final(log, res.event_id)
      assert.are.equal(400, e.status)
      assert.are.equal("failed", e.outcome)
      socket.sleep(0.5) -- ten times the retry delay: a retry would have happened
      assert.are.equal(1, #r.requests())
      assert.are.equal(1, #deliveries(emu))
    end)
  end)

  it("retries 429 and gives up after the attempt limit", function()
    with({ delivery = { attempts = 3, base_delay = 0.05, max_delay = 0.05 } }, function(emu, receiver)
      local r = receiver({ statuses = { 429, 503 } })
      subscribe(emu, { target_url = r.url .. "/", subscribed_events = { "chat.typing_indicator.started" } })
      local res = trigger(emu, { event_type = "chat.typing_indicator.started" })
      local log = wait_log(emu, function(l) return final(l, res.event_id) ~= nil end)
      assert.are.same({ 429, 503, 503 }, { log[1].status, log[2].status, log[3].status })
      assert.are.equal("exhausted", log[3].outcome)
      assert.are.equal(3, #r.wait(3))
      socket.sleep(0.3)
      assert.are.equal(3, #r.requests())
    end)
  end)

  it("retries connection errors and timeouts, and the API keeps answering meanwhile", function()
    with({ delivery = { attempts = 2, base_delay = 0.05, timeout = 0.3 } }, function(emu, receiver)
      -- a port nobody listens on
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, dead_port = s:getsockname()
      s:close()
      subscribe(emu, { target_url = "http://127.0.0.1:" .. dead_port .. "/", subscribed_events = { "call.ringing" } })
      local slow = receiver({ delay = 3 })
      subscribe(emu, { target_url = slow.url .. "/slow", subscribed_events = { "call.ended" } })

      local refused = trigger(emu, { event_type = "call.ringing" })
      local timed = trigger(emu, { event_type = "call.ended" })
      -- while the slow receiver holds the delivery, API requests are served
      for _ = 1, 3 do
        assert.are.equal(200, http("GET", emu.api_url .. "/v3/webhook-events", auth()).status)
      end
      local log = wait_log(emu, function(l)
        return final(l, refused.event_id) ~= nil and final(l, timed.event_id) ~= nil
      end, 20)
      local a, b = final(log, refused.event_id), final(log, timed.event_id)
      assert.matches("^connection: ", a.error)
      assert.are.equal(2, a.attempt)
      assert.are.equal("exhausted", a.outcome)
      assert.are.equal("timeout", b.error)
      assert.are.equal(2, b.attempt)
      assert.is_nil(b.status)
    end)
  end)

  describe("to https:// targets (LuaSec)", function()
    local util = require "support.util"
    local dir

    -- A self-signed certificate for 127.0.0.1 (IP SAN) and an unrelated one.
    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
      for _, name in ipairs({ "good", "other" }) do
        local cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
          .. " -addext subjectAltName=IP:127.0.0.1 -keyout " .. dir .. "/" .. name .. "-key.pem"
          .. " -out " .. dir .. "/" .. name .. ".pem >/dev/null 2>&1"
        assert(os.execute(cmd))
      end
    end)
    teardown(function()
      os.execute("rm -rf " .. util.sh_quote(dir))
    end)

    -- An in-process TLS receiver: poll(pred, secs) serves connections until pred().
    local function tls_receiver()
      local ssl = require "ssl"
      local server = assert(socket.bind("127.0.0.1", 0))
      server:settimeout(0.05)
      local _, port = server:getsockname()
      local ctx = assert(ssl.newcontext{ mode = "server", protocol = "any",
        key = dir .. "/good-key.pem", certificate = dir .. "/good.pem" })
      local t = { url = "https://127.0.0.1:" .. port, requests = {}, failures = {} }
      function t.poll(pred, secs)
        local deadline = socket.gettime() + (secs or 10)
        while not pred() and socket.gettime() < deadline do
          local c = server:accept()
          if c then
            c:settimeout(5)
            local conn = assert(ssl.wrap(c, ctx))
            local ok, err = conn:dohandshake()
            if ok then
              local line, headers, body = util.read_request(conn)
              if line then
                t.requests[#t.requests + 1] = { line = line, headers = headers, body = body }
                conn:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
              else
                t.failures[#t.failures + 1] = "closed without a request"
              end
            else
              t.failures[#t.failures + 1] = tostring(err)
            end
            conn:close()
          end
        end
      end
      function t.close()
        server:close()
      end
      return t
    end

    local function deliver(delivery_opts, check, host)
      with({ delivery = delivery_opts }, function(emu)
        local t = tls_receiver()
        local ok, err = pcall(function()
          local url = host and t.url:gsub("127%.0%.0%.1", host) or t.url
          local sub = subscribe(emu, { target_url = url .. "/hook", subscribed_events = { "message.received" } })
          local res = trigger(emu, { event_type = "message.received" })
          t.poll(function() return #t.requests > 0 or #t.failures > 0 end, 15)
          local log = wait_log(emu, function(l) return final(l, res.event_id) ~= nil end, 15)
          check(t, sub, res, final(log, res.event_id))
        end)
        t.close()
        assert(ok, err)
      end)
    end

    it("deliver signed events end to end with insecure = true (self-signed certificate)", function()
      deliver({ insecure = true, attempts = 1, timeout = 5 }, function(t, sub, res, e)
        assert.are.equal(1, #t.requests)
        local req = t.requests[1]
        assert.are.equal("POST /hook HTTP/1.1", req.line)
        local info, err = linq.verifier{ secret = sub.signing_secret }:verify(req.body, req.headers)
        assert.is_table(info, tostring(err))
        assert.are.equal(res.event_id, info.id)
        assert.are.equal("delivered", e.outcome)
        assert.are.equal(200, e.status)
      end)
    end)

    it("verify the certificate and host name against ca_file", function()
      deliver({ ca_file = dir .. "/good.pem", attempts = 1, timeout = 5 }, function(t, _, _, e)
        assert.are.equal(1, #t.requests)
        assert.are.equal("delivered", e.outcome)
      end)
    end)

    it("fail when the certificate does not name the target host", function()
      deliver({ ca_file = dir .. "/good.pem", attempts = 1, timeout = 5 }, function(t, _, _, e)
        assert.are.equal(0, #t.requests)
        assert.are.equal("tls: certificate does not name localhost", e.error)
      end, "localhost")
    end)

    it("fail with a TLS error in the attempts log when the CA does not match", function()
      deliver({ ca_file = dir .. "/other.pem", attempts = 1, timeout = 5 }, function(t, _, _, e)
        assert.are.equal(0, #t.requests)
        assert.is_nil(e.status)
        assert.matches("^tls: .*certificate", e.error)
        assert.are_not.equal("delivered", e.outcome)
      end)
    end)
  end)

  it("delivers nothing to inactive, unsubscribed or phone-filtered subscriptions", function()
    with({}, function(emu, receiver)
      local r_inactive, r_other_type, r_other_line, r_line, r_all = receiver(), receiver(), receiver(), receiver(), receiver()
      local inactive = subscribe(emu, { target_url = r_inactive.url .. "/", subscribed_events = { "message.read" } })
      assert.are.equal(200, http("PUT", emu.api_url .. "/v3/webhook-subscriptions/" .. inactive.id, auth(),
        '{"is_active":false}').status)
      subscribe(emu, { target_url = r_other_type.url .. "/", subscribed_events = { "message.sent" } })
      subscribe(emu, { target_url = r_other_line.url .. "/", subscribed_events = { "message.read" },
                       phone_numbers = { "+12025550000" } })
      local line = subscribe(emu, { target_url = r_line.url .. "/", subscribed_events = { "message.read" },
                                    phone_numbers = { "+12025550000", "+12025551234" } })
      local all = subscribe(emu, { target_url = r_all.url .. "/", subscribed_events = { "message.read" } })

      local res = trigger(emu, { event_type = "message.read", phone_number = "+12025551234" })
      assert.are.equal(2, res.matched)
      table.sort(res.subscription_ids)
      local want = { line.id, all.id }
      table.sort(want)
      assert.are.same(want, res.subscription_ids)
      assert.are.equal(1, #r_line.wait(1))
      assert.are.equal(1, #r_all.wait(1))
      -- the event concerns the triggering line
      assert.are.equal("+12025551234", json.decode(r_line.requests()[1].body).data.chat.owner_handle.handle)

      -- without a phone_number, filtered subscriptions get nothing
      res = trigger(emu, { event_type = "message.read" })
      assert.are.same({ all.id }, res.subscription_ids)
      assert.are.equal(2, #r_all.wait(2))
      wait_log(emu, function(l) return #l >= 3 end)
      socket.sleep(0.2)
      assert.are.equal(0, #r_inactive.requests())
      assert.are.equal(0, #r_other_type.requests())
      assert.are.equal(0, #r_other_line.requests())
      assert.are.equal(1, #r_line.requests())
      assert.are.equal(3, #deliveries(emu))
    end)
  end)

  it("has a realistic sample for each catalogued event type", function()
    with({}, function(emu, receiver)
      local r = receiver()
      local sub = subscribe(emu, { target_url = r.url .. "/", subscribed_events = linq.EVENT_TYPES })
      for _, t in ipairs(linq.EVENT_TYPES) do
        assert.are.equal(1, trigger(emu, { event_type = t }).matched)
      end
      local reqs = r.wait(#linq.EVENT_TYPES, 20)
      assert.are.equal(#linq.EVENT_TYPES, #reqs)
      local v = linq.verifier{ secret = sub.signing_secret }
      local seen = {}
      for _, q in ipairs(reqs) do
        local ev = assert(v:unwrap(q.body, q.headers))
        seen[ev.type] = true
        assert.are.equal(q.headers["x-webhook-event"], ev.type)
        assert.is_table(ev.data)
        -- (types with no public schema, call.*, get an empty object)
        assert.is_true(next(ev.data) ~= nil or not linq.events.has_schema(ev.type), ev.type .. " has sample data")
      end
      for _, t in ipairs(linq.EVENT_TYPES) do
        assert.is_true(seen[t], t)
      end
    end)
  end)

  it("stops retrying when the subscription is deleted", function()
    with({ delivery = { base_delay = 1, attempts = 5 } }, function(emu, receiver)
      local r = receiver({ statuses = { 500 } })
      local sub = subscribe(emu, { target_url = r.url .. "/", subscribed_events = { "message.failed" } })
      trigger(emu, { event_type = "message.failed" })
      assert.are.equal(1, #r.wait(1))
      assert.are.equal(204, http("DELETE", emu.api_url .. "/v3/webhook-subscriptions/" .. sub.id, auth()).status)
      socket.sleep(1.5)
      assert.are.equal(1, #r.requests())
    end)
  end)

  describe("admin endpoints", function()
    it("validate the trigger request", function()
      with({}, function(emu)
        local post = function(body)
          return http("POST", emu.url .. "/_emulator/events", nil, body)
        end
        local function check(res, status, code)
          assert.are.equal(status, res.status)
          assert.are.equal(code, res.json.error.code)
          assert.are.equal(false, res.json.success)
        end
        check(post("{}"), 400, 1001)
        check(post('{"event_type":"message.nope"}'), 400, 1005)
        check(post('{"event_type":"message.sent","data":[1]}'), 400, 1005)
        check(post('{"event_type":"message.sent","data":"x"}'), 400, 1005)
        check(post('{"event_type":"message.sent","phone_number":"555"}'), 400, 1002)
        check(post('{"event_type":'), 400, 1003)
        check(http("GET", emu.url .. "/_emulator/events"), 405, 1005)
        check(http("GET", emu.url .. "/_emulator/nothing"), 404, 2001)
        local ok = trigger(emu, { event_type = "message.sent", data = {} })
        assert.are.equal(0, ok.matched)
        assert.are.same({}, ok.subscription_ids)
      end)
    end)

    it("clear the attempts log with DELETE", function()
      with({ delivery = { attempts = 1, timeout = 5 } }, function(emu)
        subscribe(emu, { target_url = "https://127.0.0.1:1/x", subscribed_events = { "message.sent" } })
        trigger(emu, { event_type = "message.sent" })
        wait_log(emu, function(l) return #l == 1 end)
        assert.are.equal(1, #deliveries(emu))
        assert.are.equal(204, http("DELETE", emu.url .. "/_emulator/deliveries").status)
        assert.are.equal(0, #deliveries(emu))
        assert.are.equal("[]", http("GET", emu.url .. "/_emulator/deliveries").body)
      end)
    end)

    it("are refused to non-loopback peers", function()
      local api = require "linqwebhooks.emulator.api"
      local handler = api.handler({ api_key = "k", state = { list = {} } })
      local status, _, body = handler({ method = "GET", path = "/_emulator/deliveries", headers = {},
                                        body = "", peer = "192.0.2.7" })
      assert.are.equal(403, status)
      assert.are.equal(2005, json.decode(body).error.code)
    end)
  end)
end)
