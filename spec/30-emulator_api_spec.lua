-- The emulator's Linq API (the six v3 operations), started as a real child
-- process on loopback and driven with a raw LuaSocket client and curl.
local emulator = require "linqwebhooks.emulator"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local sys = require "linqwebhooks.process"
local socket = require "socket"
local support = require "support.receiver"

local KEY = "test_key_30"
local http = support.http

local function auth(extra)
  local h = { Authorization = "Bearer " .. KEY, ["Content-Type"] = "application/json" }
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end

local function assert_error(res, status, code)
  assert.is_table(res)
  assert.are.equal(status, res.status)
  assert.is_table(res.json, "error body is JSON: " .. tostring(res.body))
  assert.are.equal(false, res.json.success)
  assert.are.equal(status, res.json.error.status)
  assert.are.equal(code, res.json.error.code)
  assert.is_string(res.json.error.message)
  assert.matches("^https://docs%.linqapp%.com/error/", res.json.error.doc_url)
  assert.matches("^%x+$", res.json.trace_id)
  assert.are.equal(32, #res.json.trace_id)
  assert.are.equal(res.json.trace_id, res.headers["x-trace-id"])
end

local function read_until_closed(c, secs)
  c:settimeout(0.2)
  local deadline = socket.gettime() + secs
  local got = ""
  while socket.gettime() < deadline do
    local data, err, partial = c:receive(8192)
    got = got .. (data or partial or "")
    if err == "closed" then
      return got, true
    end
  end
  return got, false
end

local function curl(args)
  -- (env -u: curl hangs with the sanitizer runtime preloaded by `make asan`)
  local p = io.popen("env -u LD_PRELOAD curl -sS --max-time 20 -o /dev/stdout -w '\\n%{http_code}' "
    .. args .. " 2>&1")
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local RFC3339 = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[.%d]*Z$"

describe("emulator API", function()
  local emu, base

  setup(function()
    emu = emulator.spawn{ api_key = KEY }
    base = emu.api_url .. "/v3"
  end)

  teardown(function()
    if emu then
      emu.stop()
    end
  end)

  local n = 0
  local function new_url()
    n = n + 1
    return "https://hooks.example.com/linq/" .. n .. "?version=2026-02-03"
  end

  local function create(fields)
    return http("POST", base .. "/webhook-subscriptions", auth(), json.encode(fields))
  end

  it("prints its URL and serves under /api/partner", function()
    assert.matches("^http://127%.0%.0%.1:%d+$", emu.url)
    assert.are.equal(emu.url .. "/api/partner", emu.api_url)
    assert.is_number(emu.pid)
  end)

  it("lists every catalogued event type with a doc_url", function()
    local res = assert(http("GET", base .. "/webhook-events", auth()))
    assert.are.equal(200, res.status)
    assert.are.same(linq.EVENT_TYPES, res.json.events)
    assert.is_string(res.json.doc_url)
    assert.matches("^%x+$", res.headers["x-trace-id"])
  end)

  describe("bearer auth", function()
    it("rejects a missing token with 401 / 2004", function()
      local res = http("GET", base .. "/webhook-subscriptions")
      assert_error(res, 401, 2004)
      assert.are.equal("Bearer", res.headers["www-authenticate"])
    end)
    it("rejects a wrong token, a prefix of it and other schemes", function()
      assert_error(http("GET", base .. "/webhook-events", { Authorization = "Bearer nope" }), 401, 2004)
      assert_error(http("GET", base .. "/webhook-events", { Authorization = "Bearer " .. KEY:sub(1, -2) }),
        401, 2004)
      assert_error(http("GET", base .. "/webhook-events", { Authorization = "Basic " .. KEY }), 401, 2004)
      assert_error(http("POST", base .. "/webhook-subscriptions", { Authorization = "Bearer x" },
        json.encode({ target_url = new_url(), subscribed_events = { "message.sent" } })), 401, 2004)
    end)
    it("accepts the scheme name in any case", function()
      local res = http("GET", base .. "/webhook-events", { Authorization = "bearer " .. KEY })
      assert.are.equal(200, res.status)
    end)
  end)

  describe("create", function()
    it("returns 201 with a UUID, the signing secret and RFC 3339 timestamps", function()
      local url = new_url()
      local res = assert(create({ target_url = url, subscribed_events = { "message.sent", "message.received" },
                                  phone_numbers = { "+12025551234" } }))
      assert.are.equal(201, res.status)
      local s = res.json
      assert.matches(UUID4, s.id)
      assert.are.equal(url, s.target_url)
      assert.are.same({ "message.sent", "message.received" }, s.subscribed_events)
      assert.are.same({ "+12025551234" }, s.phone_numbers)
      assert.are.equal(true, s.is_active)
      assert.matches(RFC3339, s.created_at)
      assert.are.equal(s.created_at, s.updated_at)
      -- whsec_ + base64 of 32 bytes: 44 characters ending in one '='
      assert.matches("^whsec_[%w+/]+=$", s.signing_secret)
      assert.are.equal(6 + 44, #s.signing_secret)
      assert.has_no.errors(function() linq.verifier{ secret = s.signing_secret } end)
    end)

    it("gives every subscription a different id and secret", function()
      local a = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local b = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      assert.are_not.equal(a.id, b.id)
      assert.are_not.equal(a.signing_secret, b.signing_secret)
      assert.are.equal(json.null, a.phone_numbers)
    end)

    it("accepts http:// only for loopback targets", function()
      assert.are.equal(201, create({ target_url = "http://127.0.0.1:9/hook", subscribed_events = { "chat.created" } }).status)
      assert.are.equal(201, create({ target_url = "http://localhost:9/hook", subscribed_events = { "chat.created" } }).status)
      assert.are.equal(201, create({ target_url = "http://[::1]:9/hook", subscribed_events = { "chat.created" } }).status)
      assert_error(create({ target_url = "http://example.com/hook", subscribed_events = { "chat.created" } }), 400, 1005)
      assert_error(create({ target_url = "http://10.0.0.1/hook", subscribed_events = { "chat.created" } }), 400, 1005)
      assert_error(create({ target_url = "ftp://example.com/hook", subscribed_events = { "chat.created" } }), 400, 1005)
      assert_error(create({ target_url = "not a url", subscribed_events = { "chat.created" } }), 400, 1005)
      assert_error(create({ target_url = 42, subscribed_events = { "chat.created" } }), 400, 1005)
    end)

    it("validates fields with Linq's codes", function()
      local url = new_url()
      assert_error(create({ subscribed_events = { "message.sent" } }), 400, 1001)
      assert_error(create({ target_url = url }), 400, 1001)
      assert_error(create({ target_url = url, subscribed_events = json.null }), 400, 1001)
      assert_error(create({ target_url = url, subscribed_events = json.array() }), 400, 1005)
      assert_error(create({ target_url = url, subscribed_events = { "message.sent", "message.exploded" } }), 400, 1005)
      assert_error(create({ target_url = url, subscribed_events = "message.sent" }), 400, 1005)
      assert_error(create({ target_url = url, subscribed_events = { 1 } }), 400, 1005)
      assert_error(create({ target_url = url, subscribed_events = { "message.sent" },
                            phone_numbers = { "2025551234" } }), 400, 1002)
      assert_error(create({ target_url = url, subscribed_events = { "message.sent" },
                            phone_numbers = { "+1 202 555 1234" } }), 400, 1002)
      assert_error(create({ target_url = url, subscribed_events = { "message.sent" },
                            phone_numbers = "+12025551234" }), 400, 1005)
      -- nothing was created by the failed attempts
      assert.are.equal(201, create({ target_url = url, subscribed_events = { "message.sent" } }).status)
    end)

    it("answers malformed JSON and non-object bodies with 400 / 1003", function()
      local post = function(body)
        return http("POST", base .. "/webhook-subscriptions", auth(), body)
      end
      assert_error(post('{"target_url":'), 400, 1003)
      assert_error(post(""), 400, 1003)
      assert_error(post("[1,2]"), 400, 1003)
      assert_error(post('"text"'), 400, 1003)
      assert_error(post("null"), 400, 1003)
    end)

    it("refuses a target_url already used by another subscription with 400 / 1005 (declared by the spec)",
      function()
      local url = new_url()
      assert.are.equal(201, create({ target_url = url, subscribed_events = { "message.sent" } }).status)
      local res = create({ target_url = url, subscribed_events = { "message.read" } })
      assert_error(res, 400, 1005)
      assert.matches("already used", res.json.error.message)
      -- a different query string is a different URL (Linq's ?line=1 advice)
      assert.are.equal(201, create({ target_url = url .. "&line=2", subscribed_events = { "message.sent" } }).status)
    end)
  end)

  describe("catalogue", function()
    it("subscribes to every catalogued event type (75), new ones included", function()
      assert.is_true(#linq.EVENT_TYPES >= 75)
      local res = create({ target_url = new_url(), subscribed_events = linq.EVENT_TYPES })
      assert.are.equal(201, res.status)
      assert.are.same(linq.EVENT_TYPES, res.json.subscribed_events)
      for _, t in ipairs({ "poll.vote.added", "payment.succeeded", "webhook_subscription.created",
                           "location.sharing.started", "call.ended" }) do
        assert.are.equal(201, create({ target_url = new_url(), subscribed_events = { t } }).status, t)
      end
      -- still refused: a name that is in no catalogue
      assert_error(create({ target_url = new_url(), subscribed_events = { "poll.vote.addd" } }), 400, 1005)
    end)

    it("refuses an unknown ?version= at create and update with 400 / 1005", function()
      for _, v in ipairs({ "2027-01-01", "latest", "", "2026-02-03x" }) do
        local res = create({ target_url = "https://hooks.example.com/ver?version=" .. v,
                             subscribed_events = { "message.sent" } })
        assert_error(res, 400, 1005)
        assert.matches("version", res.json.error.message)
      end
      for _, v in ipairs({ "2025-01-01", "2026-02-03" }) do
        local url = "https://hooks.example.com/ok-" .. v .. "?version=" .. v
        assert.are.equal(201, create({ target_url = url, subscribed_events = { "message.sent" } }).status)
      end
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local res = http("PUT", base .. "/webhook-subscriptions/" .. s.id, auth(),
        json.encode({ target_url = "https://hooks.example.com/upd?version=2099-12-31" }))
      assert_error(res, 400, 1005)
      local now = http("GET", base .. "/webhook-subscriptions/" .. s.id, auth()).json
      assert.are.equal(s.target_url, now.target_url)
    end)
  end)

  describe("list / retrieve", function()
    it("lists every subscription, inactive included, never with the secret", function()
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local upd = http("PUT", base .. "/webhook-subscriptions/" .. s.id, auth(), '{"is_active":false}')
      assert.are.equal(200, upd.status)
      local res = http("GET", base .. "/webhook-subscriptions", auth())
      assert.are.equal(200, res.status)
      assert.is_table(res.json.subscriptions)
      local found
      for _, x in ipairs(res.json.subscriptions) do
        assert.is_nil(x.signing_secret)
        if x.id == s.id then
          found = x
        end
      end
      assert.is_table(found)
      assert.are.equal(false, found.is_active)
    end)

    it("retrieves one subscription without the secret", function()
      local s = create({ target_url = new_url(), subscribed_events = { "reaction.added" } }).json
      local res = http("GET", base .. "/webhook-subscriptions/" .. s.id, auth())
      assert.are.equal(200, res.status)
      assert.are.equal(s.id, res.json.id)
      assert.are.equal(s.target_url, res.json.target_url)
      assert.are.same({ "reaction.added" }, res.json.subscribed_events)
      assert.is_nil(res.json.signing_secret)
    end)

    it("answers unknown ids with 404 / 2001", function()
      assert_error(http("GET", base .. "/webhook-subscriptions/00000000-0000-4000-8000-000000000000", auth()),
        404, 2001)
      assert_error(http("PUT", base .. "/webhook-subscriptions/nope", auth(), '{"is_active":true}'), 404, 2001)
      assert_error(http("DELETE", base .. "/webhook-subscriptions/nope", auth()), 404, 2001)
    end)
  end)

  describe("update", function()
    local function put(id, body)
      return http("PUT", base .. "/webhook-subscriptions/" .. id, auth(),
        type(body) == "string" and body or json.encode(body))
    end

    it("changes only the given fields and moves updated_at", function()
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" },
                         phone_numbers = { "+12025551234" } }).json
      local res = put(s.id, { is_active = false })
      assert.are.equal(200, res.status)
      local u = res.json
      assert.are.equal(false, u.is_active)
      assert.are.equal(s.target_url, u.target_url)
      assert.are.same(s.subscribed_events, u.subscribed_events)
      assert.are.same({ "+12025551234" }, u.phone_numbers)
      assert.are.equal(s.created_at, u.created_at)
      assert.is_true(u.updated_at > s.updated_at)
      assert.is_nil(u.signing_secret)

      local url2 = new_url()
      u = put(s.id, { target_url = url2, subscribed_events = { "message.read", "message.failed" } }).json
      assert.are.equal(url2, u.target_url)
      assert.are.same({ "message.read", "message.failed" }, u.subscribed_events)
      assert.are.equal(false, u.is_active)
      assert.are.same({ "+12025551234" }, u.phone_numbers)

      -- an empty object changes nothing but the timestamp
      local before = u.updated_at
      u = put(s.id, "{}").json
      assert.are.equal(url2, u.target_url)
      assert.is_true(u.updated_at > before)
    end)

    it("removes the phone filter with null or []", function()
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local u = put(s.id, { phone_numbers = { "+12025551234", "+447700900123" } }).json
      assert.are.same({ "+12025551234", "+447700900123" }, u.phone_numbers)
      u = put(s.id, '{"phone_numbers":null}').json
      assert.are.equal(json.null, u.phone_numbers)
      u = put(s.id, { phone_numbers = { "+12025551234" } }).json
      assert.are.same({ "+12025551234" }, u.phone_numbers)
      u = put(s.id, '{"phone_numbers":[]}').json
      assert.are.equal(json.null, u.phone_numbers)
      assert.are.equal(json.null, http("GET", base .. "/webhook-subscriptions/" .. s.id, auth()).json.phone_numbers)
    end)

    it("validates like create and leaves the subscription unchanged on error", function()
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local other = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      assert_error(put(s.id, { subscribed_events = json.array() }), 400, 1005)
      assert_error(put(s.id, { subscribed_events = { "nope.nope" } }), 400, 1005)
      assert_error(put(s.id, { target_url = "http://example.com/x" }), 400, 1005)
      assert_error(put(s.id, { is_active = "yes" }), 400, 1005)
      assert_error(put(s.id, { phone_numbers = { "12" } }), 400, 1002)
      assert_error(put(s.id, '{"is_active":'), 400, 1003)
      assert_error(put(s.id, { target_url = other.target_url, is_active = false }), 400, 1005)
      assert_error(put(s.id, { target_url = "https://hooks.example.com/v?version=2027-01-01" }), 400, 1005)
      -- keeping its own URL is not a conflict
      assert.are.equal(200, put(s.id, { target_url = s.target_url }).status)
      local now = http("GET", base .. "/webhook-subscriptions/" .. s.id, auth()).json
      assert.are.equal(s.target_url, now.target_url)
      assert.are.equal(true, now.is_active)
      assert.are.same({ "message.sent" }, now.subscribed_events)
    end)
  end)

  describe("delete", function()
    it("answers 204 with no body, then 404", function()
      local s = create({ target_url = new_url(), subscribed_events = { "message.sent" } }).json
      local res = http("DELETE", base .. "/webhook-subscriptions/" .. s.id, auth())
      assert.are.equal(204, res.status)
      assert.are.equal("", res.body)
      assert_error(http("GET", base .. "/webhook-subscriptions/" .. s.id, auth()), 404, 2001)
      assert_error(http("DELETE", base .. "/webhook-subscriptions/" .. s.id, auth()), 404, 2001)
      -- its URL is free again
      assert.are.equal(201, create({ target_url = s.target_url, subscribed_events = { "message.sent" } }).status)
    end)
  end)

  describe("routing", function()
    it("answers unknown paths with 404 and wrong methods with 405", function()
      assert_error(http("GET", base .. "/chats", auth()), 404, 2001)
      assert_error(http("GET", emu.url .. "/", auth()), 404, 2001)
      local res = http("PATCH", base .. "/webhook-subscriptions", auth(), "{}")
      assert_error(res, 405, 1005)
      assert.are.equal("GET, POST", res.headers["allow"])
      assert_error(http("POST", base .. "/webhook-events", auth(), "{}"), 405, 1005)
    end)
  end)

  describe("with curl", function()
    it("creates, lists and deletes", function()
      local url = new_url()
      local body = json.encode({ target_url = url, subscribed_events = { "message.sent" } })
      local code, out = curl("-X POST -H 'Authorization: Bearer " .. KEY .. "' -H 'Content-Type: application/json' "
        .. "--data-binary '" .. body .. "' " .. base .. "/webhook-subscriptions")
      assert.are.equal(201, code)
      local s = json.decode(out)
      assert.are.equal(url, s.target_url)
      code, out = curl("-H 'Authorization: Bearer " .. KEY .. "' " .. base .. "/webhook-subscriptions")
      assert.are.equal(200, code)
      assert.is_table(json.decode(out).subscriptions)
      code = curl("-X DELETE -H 'Authorization: Bearer " .. KEY .. "' " .. base .. "/webhook-subscriptions/" .. s.id)
      assert.are.equal(204, code)
      code, out = curl(base .. "/webhook-events")
      assert.are.equal(401, code)
      assert.are.equal(2004, json.decode(out).error.code)
    end)

    it("gets 413 for a body over 1 MB and the emulator keeps serving", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write('{"target_url":"', string.rep("a", 1024 * 1024 + 10), '"}')
      f:close()
      local code, out = curl("-X POST -H 'Authorization: Bearer " .. KEY .. "' -H 'Content-Type: application/json' "
        .. "--data-binary @" .. path .. " " .. base .. "/webhook-subscriptions")
      os.remove(path)
      assert.are.equal(413, code)
      assert.are.equal(413, json.decode(out).error.status)
      assert.are.equal(200, http("GET", base .. "/webhook-events", auth()).status)
    end)
  end)

  describe("HTTP layer", function()
    local function raw(text, secs)
      local host, port = emu.url:match("^http://([^:]+):(%d+)$")
      local c = assert(socket.connect(host, tonumber(port)))
      c:send(text)
      local got = read_until_closed(c, secs or 10)
      c:close()
      return got
    end

    it("answers malformed requests with 400 and keeps serving", function()
      assert.matches("^HTTP/1%.1 400 ", raw("GARBAGE\r\n\r\n"))
      assert.matches("^HTTP/1%.1 400 ", raw("GET /x HTTP/1.1\r\nNo colon here\r\n\r\n"))
      assert.matches("^HTTP/1%.1 400 ", raw("GET /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n"))
      assert.matches("^HTTP/1%.1 400 ", raw("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.matches("^HTTP/1%.1 505 ", raw("GET / HTTP/2.0\r\n\r\n"))
      assert.matches("^HTTP/1%.1 431 ", raw("GET / HTTP/1.1\r\nX: " .. string.rep("a", 20000) .. "\r\n\r\n"))
      assert.matches("^HTTP/1%.1 400 ", raw("\0\1\2\3\r\n\r\n"))
      assert.are.equal(200, http("GET", base .. "/webhook-events", auth()).status)
    end)

    it("answers an oversized Content-Length with 413 without reading the body", function()
      local got = raw("POST /api/partner/v3/webhook-subscriptions HTTP/1.1\r\nHost: x\r\n"
        .. "Authorization: Bearer " .. KEY .. "\r\nContent-Length: 5000000\r\n\r\n{\"target_url\":")
      assert.matches("^HTTP/1%.1 413 ", got)
      assert.matches('"status":413', got)
      assert.are.equal(200, http("GET", base .. "/webhook-events", auth()).status)
    end)

    it("answers Expect: 100-continue before the body is sent", function()
      local host, port = emu.url:match("^http://([^:]+):(%d+)$")
      local c = assert(socket.connect(host, tonumber(port)))
      c:settimeout(10)
      local body = json.encode({ target_url = new_url(), subscribed_events = { "message.sent" } })
      c:send("POST /api/partner/v3/webhook-subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. KEY
        .. "\r\nExpect: 100-continue\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n")
      assert.are.equal("HTTP/1.1 100 Continue", c:receive("*l"))
      assert.are.equal("", c:receive("*l"))
      c:send(body)
      local got = read_until_closed(c, 10)
      c:close()
      assert.matches("^HTTP/1%.1 201 ", got)
    end)

    it("keeps a connection alive for several requests", function()
      local host, port = emu.url:match("^http://([^:]+):(%d+)$")
      local c = assert(socket.connect(host, tonumber(port)))
      c:settimeout(10)
      local req = "GET /api/partner/v3/webhook-events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        .. KEY .. "\r\n\r\n"
      -- two pipelined requests, then a third after reading
      c:send(req .. req)
      for _ = 1, 3 do
        local status = c:receive("*l")
        assert.matches("^HTTP/1%.1 200 ", status)
        local len
        while true do
          local h = assert(c:receive("*l"))
          if h == "" then
            break
          end
          len = len or tonumber(h:match("^Content%-Length: (%d+)"))
        end
        assert.is_table(json.decode(assert(c:receive(len))).events)
        if _ == 2 then
          c:send(req)
        end
      end
      c:close()
    end)

    it("serves other clients while one client is stalled mid-request", function()
      local host, port = emu.url:match("^http://([^:]+):(%d+)$")
      local stalled = assert(socket.connect(host, tonumber(port)))
      stalled:send("POST /api/partner/v3/webhook-subscriptions HTTP/1.1\r\nHost: x\r\nContent-Le")
      local idle = assert(socket.connect(host, tonumber(port)))
      local started = socket.gettime()
      for _ = 1, 5 do
        local res = assert(http("GET", base .. "/webhook-events", auth()))
        assert.are.equal(200, res.status)
      end
      assert.is_true(socket.gettime() - started < 8, "served while another client stalls")
      -- the stalled client can still finish its request afterwards
      local body = json.encode({ target_url = new_url(), subscribed_events = { "message.sent" } })
      stalled:send("ngth: " .. #body .. "\r\nAuthorization: Bearer " .. KEY .. "\r\nConnection: close\r\n\r\n" .. body)
      local got = read_until_closed(stalled, 10)
      assert.matches("^HTTP/1%.1 201 ", got)
      stalled:close()
      idle:close()
    end)

    it("times out slow clients with 408", function()
      local slow = emulator.spawn{ api_key = KEY, client_timeout = 0.3 }
      local ok, err = pcall(function()
        local host, port = slow.url:match("^http://([^:]+):(%d+)$")
        local c = assert(socket.connect(host, tonumber(port)))
        c:send("GET /api/partner/v3/webhook-events HTTP/1.1\r\nHost: x\r\n")
        local got, closed = read_until_closed(c, 10)
        c:close()
        assert.matches("^HTTP/1%.1 408 ", got)
        assert.is_true(closed)
        -- an idle connection is closed without a response
        c = assert(socket.connect(host, tonumber(port)))
        got, closed = read_until_closed(c, 10)
        c:close()
        assert.are.equal("", got)
        assert.is_true(closed)
        assert.are.equal(200, http("GET", slow.api_url .. "/v3/webhook-events", auth()).status)
      end)
      slow.stop()
      assert(ok, err)
    end)
  end)
end)

describe("emulator process", function()
  it("persists subscriptions in state_file across a restart", function()
    local path = os.tmpname()
    os.remove(path)
    local emu = emulator.spawn{ api_key = KEY, state_file = path }
    local created, s2
    local ok, err = pcall(function()
      local base = emu.api_url .. "/v3"
      created = http("POST", base .. "/webhook-subscriptions", auth(), json.encode({
        target_url = "https://example.com/persist", subscribed_events = { "message.sent" },
        phone_numbers = { "+12025551234" } })).json
      s2 = http("POST", base .. "/webhook-subscriptions", auth(), json.encode({
        target_url = "https://example.com/persist2", subscribed_events = { "chat.created" } })).json
      assert.are.equal(200, http("PUT", base .. "/webhook-subscriptions/" .. s2.id, auth(),
        '{"is_active":false}').status)
    end)
    assert.is_true(emu.stop())
    assert(ok, err)
    local doc = json.decode(assert(require("support.util").read_file(path)))
    assert.are.equal(2, #doc.subscriptions)
    assert.is_nil(io.open(path .. ".tmp", "rb"))
    local st = io.popen("stat -c %a '" .. path .. "'")
    assert.are.equal("600", st:read("*l")) -- it holds signing secrets
    st:close()

    local again = emulator.spawn{ api_key = KEY, state_file = path }
    ok, err = pcall(function()
      local list = http("GET", again.api_url .. "/v3/webhook-subscriptions", auth()).json.subscriptions
      assert.are.equal(2, #list)
      local a = http("GET", again.api_url .. "/v3/webhook-subscriptions/" .. created.id, auth()).json
      assert.are.equal("https://example.com/persist", a.target_url)
      assert.are.same({ "+12025551234" }, a.phone_numbers)
      assert.are.equal(created.created_at, a.created_at)
      local b = http("GET", again.api_url .. "/v3/webhook-subscriptions/" .. s2.id, auth()).json
      assert.are.equal(false, b.is_active)
      -- the duplicate-URL rule still applies to restored subscriptions
      assert.are.equal(400, http("POST", again.api_url .. "/v3/webhook-subscriptions", auth(), json.encode({
        target_url = "https://example.com/persist", subscribed_events = { "message.sent" } })).status)
    end)
    again.stop()
    os.remove(path)
    assert(ok, err)
  end)

  it("refuses to start on a corrupt state_file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("{not json")
    f:close()
    local ok, err = pcall(emulator.spawn, { state_file = path, startup_timeout = 10 })
    os.remove(path)
    assert.is_false(ok)
    assert.matches("not a valid state file", tostring(err))
  end)

  it("serve returns nil, err (no raise) when the port is taken or the state is corrupt", function()
    local taken = assert(socket.bind("127.0.0.1", 0))
    local _, port = taken:getsockname()
    local ok, err = emulator.serve{ api_key = "k", port = tonumber(port), quiet = true }
    taken:close()
    assert.is_nil(ok)
    assert.matches("^linqwebhooks.emulator.serve: ", err)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("{not json")
    f:close()
    ok, err = emulator.serve{ api_key = "k", port = 0, state_file = path, quiet = true }
    os.remove(path)
    assert.is_nil(ok)
    assert.matches("not a valid state file", err)
  end)

  it("stops cleanly on SIGTERM and on SIGINT", function()
    for _, sig in ipairs({ "TERM", "INT" }) do
      local log = os.tmpname()
      local emu = emulator.spawn{ quiet = false, log_file = log }
      assert.is_true(sys.kill(emu.pid, sig))
      local deadline = socket.gettime() + 10
      while socket.gettime() < deadline and not emu.output():find("stopped", 1, true) do
        socket.sleep(0.02)
      end
      assert.matches("stopped %(SIG" .. sig .. "%)", emu.output())
      assert.is_true(emu.stop())
      os.remove(log)
    end
  end)

  it("exits when the process that spawned it is gone (no orphans)", function()
    local process = require "linqwebhooks.emulator.process"
    local parent = assert(process.spawn({
      code = "local e = require('linqwebhooks.emulator').spawn{} print('emulator pid ' .. e.pid) "
        .. "io.stdout:flush() while true do require('socket').sleep(1) end",
      ready = "emulator pid (%d+)\n",
    }))
    local pid = tonumber(parent.match)
    assert.is_true(process.alive(pid))
    sys.kill(parent.pid, "KILL")
    local deadline = socket.gettime() + 10
    while process.alive(pid) and socket.gettime() < deadline do
      socket.sleep(0.05)
    end
    local left = process.alive(pid)
    if left then
      sys.kill(pid, "KILL")
    end
    parent.stop()
    assert.is_false(left)
  end)

  it("rejects unknown and mistyped options", function()
    assert.has_error(function() emulator.serve{ api_key = "k", prot = 1 } end,
      "linqwebhooks.emulator.serve: unknown option 'prot'")
    assert.has_error(function() emulator.serve{ api_key = "k", delivery = { attemps = 3 } } end,
      "linqwebhooks.emulator.serve delivery: unknown option 'attemps'")
    assert.has_error(function() emulator.serve{ port = 1 } end,
      "linqwebhooks.emulator.serve: option 'api_key' is required")
    assert.has_error(function() emulator.spawn{ api_key = 5 } end)
    assert.has_error(function() emulator.spawn{ startup_timout = 5 } end,
      "linqwebhooks.emulator.spawn: unknown option 'startup_timout'")
    assert.has_error(function() emulator.serve("k") end)
  end)

  it("raises when the port is taken", function()
    local emu = emulator.spawn{}
    local port = tonumber(emu.url:match(":(%d+)$"))
    local ok, err = pcall(emulator.spawn, { port = port, startup_timeout = 10 })
    emu.stop()
    assert.is_false(ok)
    assert.matches("cannot bind", tostring(err))
  end)
end)
