-- API client: options, client-side validation (nothing is sent), secrets kept
-- out of strings, transport selection, the retry policy's pure parts and the
-- C http_client object's argument checks and life cycle.
local flaky = require "support.flaky_server"
local linq = require "linqwebhooks"
local http = require "linqwebhooks.http"
local process = require "linqwebhooks.process"
local retry = require "linqwebhooks.retry"
local client_mod = require "linqwebhooks.client"

local KEY = "lk_options_secret_key_9f8e7d"
local SUB = '{"id":"s1","target_url":"https://example.com/h","subscribed_events":["message.sent"],'
  .. '"is_active":true,"created_at":"x","updated_at":"x","phone_numbers":null}'
local CREATED = SUB:gsub("}$", ',"signing_secret":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}')

describe("linq.client options", function()
  it("builds with defaults and shows no secret in tostring", function()
    local c = linq.client{ api_key = KEY }
    assert.equal("https://api.linqapp.com/api/partner", c.base_url)
    assert.equal(2, c.max_retries)
    assert.is_nil(tostring(c):find(KEY, 1, true))
    for k, v in pairs(c) do
      assert.is_nil(tostring(k):find(KEY, 1, true))
      assert.is_nil(tostring(v):find(KEY, 1, true))
    end
    c:close()
    c:close() -- idempotent
    assert.matches("closed", tostring(c))
  end)

  it("raises on unknown options and wrong types, naming them", function()
    assert.has_error(function() linq.client{ api_key = KEY, timeuot = 5 } end,
      "linq.client: unknown option 'timeuot'")
    assert.has_error(function() linq.client{ api_key = KEY, timeout = "5" } end)
    assert.has_error(function() linq.client{ api_key = KEY, max_retries = -1 } end)
    assert.has_error(function() linq.client{ api_key = KEY, max_retries = 1.5 } end)
    assert.has_error(function() linq.client{ api_key = KEY, timeout = 0 } end)
    assert.has_error(function() linq.client{ api_key = KEY, headers = { Authorization = "Bearer x" } } end)
    assert.has_error(function() linq.client{ api_key = KEY, headers = { ["X-N"] = 1 } } end)
    assert.has_error(function() linq.client{ api_key = KEY, transport = {} } end)
    assert.has_error(function() linq.client(5) end)
  end)

  it("raises a clear error without an API key", function()
    if os.getenv("LINQ_API_V3_API_KEY") then
      pending("LINQ_API_V3_API_KEY is set in this environment")
      return
    end
    local ok, err = pcall(linq.client, {})
    assert.is_false(ok)
    assert.matches("LINQ_API_V3_API_KEY", err)
    ok, err = pcall(linq.client, { api_key = "" })
    assert.is_false(ok)
    assert.matches("no API key", err)
  end)

  it("refuses an http:// base URL that is not loopback, without echoing the key", function()
    local ok, err = pcall(linq.client, { api_key = KEY, base_url = "http://api.linqapp.com/api/partner" })
    assert.is_false(ok)
    assert.matches("loopback", err)
    assert.is_nil(err:find(KEY, 1, true))
    assert.has_error(function() linq.client{ api_key = KEY, base_url = "http://10.0.0.1/api" } end)
    assert.has_error(function() linq.client{ api_key = KEY, base_url = "http://127.0.0.1.evil.com/api" } end)
    assert.has_error(function() linq.client{ api_key = KEY, base_url = "ftp://127.0.0.1/api" } end)
    assert.has_error(function() linq.client{ api_key = KEY, base_url = "not a url" } end)
    for _, u in ipairs({ "http://127.0.0.1:8787/api/partner", "http://localhost/api/partner",
                         "http://[::1]:9/api", "https://api.example.com/api/partner/" }) do
      local c = linq.client{ api_key = KEY, base_url = u }
      assert.is_nil(c.base_url:find("/$"))
      c:close()
    end
  end)

  it("refuses an api_key over 8 KB or with control characters, naming api_key, never echoing it", function()
    local long = "lk_" .. string.rep("s", client_mod.MAX_API_KEY_BYTES - 2)
    local bad = { long, "lk_a\r\nX-Injected: 1", "lk_a\nb", "lk_a\0b", "lk_a\tb", "lk_a b", "lk_\127x" }
    for _, key in ipairs(bad) do
      local ok, err = pcall(linq.client, { api_key = key })
      assert.is_false(ok)
      assert.matches("linq.client: option 'api_key' ", err)
      assert.is_nil(err:find(key, 1, true))
      assert.is_nil(err:find("sss", 1, true))
    end
    local _, err = pcall(linq.client, { api_key = long })
    assert.matches("is 8193 bytes long; at most 8192 are accepted", err)
  end)

  it("sends an api_key of exactly 8 KB (anything accepted works on the first call)", function()
    local key = string.rep("k", client_mod.MAX_API_KEY_BYTES)
    local srv = flaky.start({ { status = 200, headers = { ["Content-Type"] = "application/json" },
                                body = '{"subscriptions":[]}' } })
    local c = linq.client{ api_key = key, base_url = srv.url, max_retries = 0 }
    local subs, err = c.webhook_subscriptions:list()
    c:close()
    local reqs = srv:requests()
    srv:stop()
    assert.is_nil(err)
    assert.same({}, subs)
    assert.equal("Bearer " .. key, reqs[1].headers.authorization)
  end)

  it("refuses header values over 8 KB and user agents over 1 KB at construction", function()
    assert.has_error(function()
      linq.client{ api_key = KEY, headers = { ["X-Big"] = string.rep("v", 8193) } }
    end, "linq.client: option 'headers' value of 'X-Big' is longer than 8192 bytes")
    assert.has_error(function() linq.client{ api_key = KEY, user_agent = string.rep("u", 1025) } end,
      "linq.client: option 'user_agent' is longer than 1024 bytes")
  end)

  it("raises when a closed client is used", function()
    local c = linq.client{ api_key = KEY, base_url = "http://127.0.0.1:9/api" }
    c:close()
    assert.has_error(function() c.webhook_subscriptions:list() end, "linq.client: the client is closed")
  end)

  it("refuses to block inside nginx phases without cosockets", function()
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", { get_phase = function() return "log" end })
    local ok, err = pcall(linq.client, { api_key = KEY })
    rawset(_G, "ngx", saved)
    assert.is_false(ok)
    assert.matches("ngx%.timer%.at", err)
    assert.matches("'log'", err)
  end)

  it("uses a transport given in opts.transport", function()
    local calls = {}
    local fake = {
      name = "fake",
      new = function(o)
        calls.opts = o
        return {
          request = function(_, method, url, headers, body)
            calls[#calls + 1] = { method = method, url = url, headers = headers, body = body }
            return { status = 200, headers = {}, body = SUB }
          end,
          close = function() calls.closed = true end,
        }
      end,
    }
    local c = linq.client{ api_key = KEY, transport = fake, timeout = 7, connect_timeout = 3 }
    assert.equal(7, calls.opts.timeout)
    assert.equal(3, calls.opts.connect_timeout)
    local sub = assert(c.webhook_subscriptions:retrieve("s1"))
    assert.equal("s1", sub.id)
    assert.equal("GET", calls[1].method)
    assert.equal("https://api.linqapp.com/api/partner/v3/webhook-subscriptions/s1", calls[1].url)
    assert.equal("Bearer " .. KEY, calls[1].headers.Authorization)
    assert.matches("^linqwebhooks/", calls[1].headers["User-Agent"])
    c:close()
    assert.is_true(calls.closed)
  end)
end)

describe("client-side validation", function()
  local srv, c

  setup(function()
    srv = flaky.start({ { status = 201, headers = { ["Content-Type"] = "application/json" }, body = CREATED } })
    c = linq.client{ api_key = KEY, base_url = srv.url .. "/api/partner", max_retries = 0,
                     headers = { ["X-Extra"] = "1" }, user_agent = "myapp/2.0" }
  end)

  teardown(function()
    c:close()
    srv:stop()
  end)

  local subs = function()
    return c.webhook_subscriptions
  end

  local function invalid(pattern, sub, err)
    assert.is_nil(sub)
    assert.equal("invalid_request", err.kind)
    assert.matches(pattern, err.message)
  end

  it("rejects bad values before sending anything", function()
    invalid("https", subs():create{ target_url = "http://example.com/h", subscribed_events = { "message.sent" } })
    invalid("https", subs():create{ target_url = "ftp://example.com/h", subscribed_events = { "message.sent" } })
    invalid("host", subs():create{ target_url = "https:///nohost", subscribed_events = { "message.sent" } })
    invalid("spaces", subs():create{ target_url = "https://exa mple.com/", subscribed_events = { "message.sent" } })
    invalid("non%-empty", subs():create{ target_url = "https://example.com/h", subscribed_events = {} })
    invalid("dotted", subs():create{ target_url = "https://example.com/h", subscribed_events = { "message" } })
    invalid("dotted", subs():create{ target_url = "https://example.com/h", subscribed_events = { "Message.Sent" } })
    invalid("dotted", subs():create{ target_url = "https://example.com/h", subscribed_events = { "message.sent", 3 } })
    invalid("array", subs():create{ target_url = "https://example.com/h", subscribed_events = { a = "message.sent" } })
    invalid("E%.164", subs():create{ target_url = "https://example.com/h", subscribed_events = { "message.sent" },
                           phone_numbers = { "2025550123" } })
    invalid("E%.164", subs():create{ target_url = "https://example.com/h", subscribed_events = { "message.sent" },
                           phone_numbers = { "+0123456" } })
    invalid("E%.164", subs():create{ target_url = "https://example.com/h", subscribed_events = { "message.sent" },
                           phone_numbers = { "+1234567890123456" } })
    invalid("target_url is required", subs():create{ subscribed_events = { "message.sent" } })
    invalid("subscribed_events is required", subs():create{ target_url = "https://example.com/h" })
    invalid("non%-empty", subs():retrieve(""))
    invalid("non%-empty", subs():update("", { is_active = true }))
    invalid("non%-empty", subs():delete(""))
    invalid("https", subs():update("s1", { target_url = "http://example.com/" }))
    assert.equal(0, #srv:requests())
  end)

  it("raises on unknown parameter keys and wrong types", function()
    assert.has_error(function()
      subs():create{ target_url = "https://example.com/h", subscribed_events = { "message.sent" }, events = {} }
    end, "webhook_subscriptions:create: unknown parameter 'events'")
    assert.has_error(function() subs():update("s1", { active = true }) end,
      "webhook_subscriptions:update: unknown parameter 'active'")
    assert.has_error(function() subs():update("s1", { is_active = "yes" }) end)
    assert.has_error(function() subs():create{ target_url = 5, subscribed_events = { "message.sent" } } end)
    assert.has_error(function() subs():retrieve(42) end, "webhook_subscriptions:retrieve: argument 'id' must be a string, got number")
    assert.has_error(function() subs():create("x") end)
    assert.has_error(function() subs():update("s1", { phone_numbers = process.now_ns }) end)
    assert.has_error(function() subs().create({ target_url = "https://e.com/x" }) end)
    assert.equal(0, #srv:requests())
  end)

  it("sends a valid create with headers, user agent and JSON body; secret only there", function()
    local sub, err = subs():create{ target_url = "https://example.com/h?version=2026-02-03",
                                    subscribed_events = { "message.sent" }, phone_numbers = {} }
    assert.is_nil(err)
    assert.equal("whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", sub.signing_secret)
    assert.is_nil(tostring(sub):find("whsec_", 1, true))
    local r = srv:requests()[1]
    assert.equal("POST", r.method)
    assert.equal("/api/partner/v3/webhook-subscriptions", r.path)
    assert.equal("1", r.headers["x-extra"])
    assert.matches("^myapp/2%.0 linqwebhooks/%S+ libcurl/%S+ ", r.headers["user-agent"])
    assert.equal("application/json", r.headers["content-type"])
    local doc = require("linqwebhooks.json").decode(r.body)
    assert.equal("https://example.com/h?version=2026-02-03", doc.target_url)
    assert.same({ "message.sent" }, { (table.unpack or unpack)(doc.subscribed_events) })
    assert.truthy(r.body:find('"phone_numbers":[]', 1, true))
  end)

  it("encodes phone_numbers = linq.null as JSON null and escapes ids", function()
    c.webhook_subscriptions:update("a/b c", { phone_numbers = linq.null })
    local reqs = srv:requests()
    local r = reqs[#reqs]
    assert.equal("PUT", r.method)
    assert.equal("/api/partner/v3/webhook-subscriptions/a%2Fb%20c", r.path)
    assert.equal('{"phone_numbers":null}', r.body)
  end)
end)

describe("retry policy", function()
  it("parses HTTP dates", function()
    assert.equal(784111777, retry.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equal(951782400, retry.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
    assert.is_nil(retry.parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
  end)

  it("reads retry-after-ms, then Retry-After seconds or date, capped at 60 s", function()
    assert.equal(0.25, retry.server_wait({ ["retry-after-ms"] = "250", ["retry-after"] = "9" }))
    assert.equal(1.5, retry.server_wait({ ["retry-after"] = "1.5" }))
    assert.equal(60, retry.server_wait({ ["retry-after"] = "3600" }))
    assert.equal(60, retry.server_wait({ ["retry-after-ms"] = "600000" }))
    assert.equal(10, retry.server_wait({ ["retry-after"] = "Sun, 06 Nov 1994 08:49:47 GMT" }, 784111777))
    assert.equal(0, retry.server_wait({ ["retry-after"] = "Sun, 06 Nov 1994 08:49:37 GMT" }, 784111800))
    assert.is_nil(retry.server_wait({ ["retry-after"] = "soon" }))
    assert.is_nil(retry.server_wait({ ["retry-after-ms"] = "-5" }))
    assert.is_nil(retry.server_wait({}))
  end)

  it("backs off min(0.5 * 2^n, 8) with up to 25 % jitter", function()
    local function r0() return 0 end
    local function r1() return 0.999999 end
    assert.equal(0.5, retry.backoff(0, r0))
    assert.equal(1, retry.backoff(1, r0))
    assert.equal(4, retry.backoff(3, r0))
    assert.equal(8, retry.backoff(4, r0))
    assert.equal(8, retry.backoff(10, r0))
    assert.is_true(math.abs(retry.backoff(0, r1) - 0.375) < 1e-3)
    for n = 0, 6 do
      local d = retry.backoff(n)
      local top = math.min(0.5 * 2 ^ n, 8)
      assert.is_true(d <= top and d >= top * 0.75)
    end
  end)

  it("decides like the SDKs, but never re-sends a create that may have arrived", function()
    for _, s in ipairs({ 408, 409, 429, 500, 502, 503 }) do
      assert.is_true(retry.should_retry_status(s, {}, true))
    end
    for _, s in ipairs({ 400, 401, 403, 404, 422 }) do
      assert.is_false(retry.should_retry_status(s, {}, true))
    end
    assert.is_false(retry.should_retry_status(409, {}, false))
    assert.is_false(retry.should_retry_status(409, { ["x-should-retry"] = "true" }, false))
    for _, s in ipairs({ 500, 502, 503, 504, 599 }) do
      assert.is_false(retry.should_retry_status(s, {}, false))
      assert.is_false(retry.should_retry_status(s, { ["x-should-retry"] = "true" }, false))
    end
    for _, s in ipairs({ 408, 429 }) do
      assert.is_true(retry.should_retry_status(s, {}, false))
    end
    assert.is_false(retry.should_retry_status(500, { ["x-should-retry"] = "false" }, true))
    assert.is_true(retry.should_retry_status(400, { ["x-should-retry"] = "true" }, true))
    assert.is_true(retry.should_retry_failure("timeout", nil, true))
    assert.is_false(retry.should_retry_failure("timeout", nil, false))
    assert.is_false(retry.should_retry_failure("connection", nil, false))
    assert.is_true(retry.should_retry_failure("connection", "not_sent", false))
    assert.is_false(retry.should_retry_failure("connection", "tls", true))
    assert.is_false(retry.should_retry_failure("connection", "too_large", true))
  end)

  it("maps statuses to the SDK error names", function()
    local want = { [400] = "BadRequestError", [401] = "AuthenticationError", [403] = "PermissionDeniedError",
                   [404] = "NotFoundError", [409] = "ConflictError", [422] = "UnprocessableEntityError",
                   [429] = "RateLimitError", [500] = "InternalServerError", [503] = "InternalServerError",
                   [418] = "APIError", [302] = "APIError" }
    for status, name in pairs(want) do
      assert.equal(name, client_mod.status_name(status))
    end
  end)
end)

describe("http.http_client", function()
  it("checks its arguments before touching libcurl and closes idempotently", function()
    local h = http.http_client{ timeout_ms = 1000 }
    assert.has_error(function() h:request("BREW", "http://127.0.0.1:9/") end)
    assert.has_error(function() h:request("GET", "http://127.0.0.1:9/", { ["X-A"] = 1 }) end)
    assert.has_error(function() h:request("GET", "http://127.0.0.1:9/", { ["X-A"] = "a\r\nX-B: b" }) end)
    assert.has_error(function() h:request("GET", "http://127.0.0.1:9/", { ["X:A"] = "a" }) end)
    assert.has_error(function() h:request("GET", "http://127.0.0.1:9/", "x") end)
    assert.has_error(function() http.http_client{ timeout_ms = "x" } end)
    assert.has_error(function() http.http_client{ ca_file = 5 } end)
    local ok, kind, msg = h:request("GET", "gopher://127.0.0.1:9/")
    assert.is_nil(ok)
    assert.equal("connection", kind)
    assert.is_string(msg)
    assert.matches("HttpClient", tostring(h))
    h:close()
    h:close()
    assert.matches("closed", tostring(h))
    assert.has_error(function() h:request("GET", "http://127.0.0.1:9/") end)
  end)

  it("sleeps", function()
    local t0 = process.now_ns()
    http.sleep(0.05)
    assert.is_true(process.now_ns() - t0 >= 0.04e9)
  end)
end)

describe("client ids", function()
  it("raises on a non-string id before any request, even on a fresh client", function()
    local c = linq.client{ api_key = KEY, base_url = "http://127.0.0.1:9/api", max_retries = 0 }
    for _, f in ipairs({ "retrieve", "delete" }) do
      assert.has_error(function() c.webhook_subscriptions[f](c.webhook_subscriptions, nil) end,
        "webhook_subscriptions:" .. f .. ": argument 'id' must be a string, got nil")
    end
    assert.has_error(function() c.webhook_subscriptions:update(nil, {}) end)
    c:close()
  end)
end)

describe("http.http_client on one handle", function()
  it("switches methods, bodies, urls and headers between requests", function()
    local srv = flaky.start({ { status = 200, body = "ok" } })
    local ok, err = pcall(function()
      local h = http.http_client{ timeout_ms = 5000 }
      local u = srv.url
      local plan = {
        { "POST", u .. "/a", { ["X-N"] = "1" }, '{"x":1}' },
        { "GET", u .. "/a", { ["X-N"] = "1" } },
        { "GET", u .. "/b", { ["X-N"] = "2" } },
        { "PUT", u .. "/b", { ["X-N"] = "2" }, "put-body" },
        { "DELETE", u .. "/c", {} },
        { "GET", u .. "/c", {} },
        { "PATCH", u .. "/d", { ["X-Empty"] = "" }, "" },
      }
      for _, p in ipairs(plan) do
        local status = h:request(p[1], p[2], p[3], p[4])
        assert.equal(200, status)
      end
      h:close()
      local reqs = srv:requests()
      assert.equal(#plan, #reqs)
      for i, p in ipairs(plan) do
        local r = reqs[i]
        assert.equal(p[1], r.method)
        assert.equal(p[2]:sub(#u + 1), r.path)
        assert.equal(p[4] or "", r.body)
        assert.equal(p[3]["X-N"], r.headers["x-n"])
      end
      assert.equal("", reqs[7].headers["x-empty"])
      assert.is_nil(reqs[6].headers["content-length"])
    end)
    srv:stop()
    assert(ok, err)
  end)
end)

describe("review and audit fixes", function()
  it("rejects header injection and bad header names at construction", function()
    local base = { api_key = "k", base_url = "http://127.0.0.1:9" }
    local function with(k, v)
      local o = {}
      for a, b in pairs(base) do o[a] = b end
      o[k] = v
      return o
    end
    local ok, err = pcall(linq.client, with("headers", { ["X-A"] = "v\r\nX-Evil: 1" }))
    assert.is_false(ok)
    assert.matches("linq.client: option 'headers'", err, 1, true)
    ok, err = pcall(linq.client, with("headers", { ["Bad Name"] = "v" }))
    assert.is_false(ok)
    assert.matches("invalid header name", err, 1, true)
    ok, err = pcall(linq.client, with("user_agent", "me/1\r\nX: 2"))
    assert.is_false(ok)
    assert.matches("option 'user_agent'", err, 1, true)
    assert.truthy(linq.client(with("headers", { ["X-Ok"] = "a b\tc" }))):close()
  end)

  it("a sub-millisecond timeout still times out (0 ms would mean never)", function()
    local socket = require "socket"
    local silent = assert(socket.bind("127.0.0.1", 0)) -- never accepts, never answers
    local _, port = silent:getsockname()
    local t = require("linqwebhooks.transport.curl").new { timeout = 0.0004, connect_timeout = 1 }
    local t0 = socket.gettime()
    local res, kind = t:request("GET", "http://127.0.0.1:" .. port .. "/", {}, nil)
    t:close()
    silent:close()
    assert.is_nil(res)
    assert.are.equal("timeout", kind)
    assert.is_true(socket.gettime() - t0 < 5)
  end)
end)

describe("retry jitter", function()
  it("comes from the CSPRNG and stays within 25 % below the backoff", function()
    local seen = {}
    for _ = 1, 50 do
      local d = retry.backoff(0)
      assert.is_true(d > 0.375 - 1e-9 and d <= 0.5)
      seen[d] = true
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.is_true(n > 40)
    assert.are.equal(8, retry.backoff(10, function() return 0 end))   -- capped at 8 s
  end)
end)
