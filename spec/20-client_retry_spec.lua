-- API client against a misbehaving loopback server (spec/support/flaky_server.lua):
-- retries, waits, timeouts, broken responses, and create never re-sent.
local flaky = require "support.flaky_server"
local linq = require "linqwebhooks"

local KEY = "lk_test_0123456789abcdef"
local SUB = flaky.SUB
local CREATED = SUB:gsub("}$", ',"signing_secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="}')
local JSON = flaky.JSON

local function envelope(status, code, message, extra)
  return string.format('{"success":false,"error":{"status":%d,"code":%d,"message":"%s"%s},'
    .. '"trace_id":"trace_%d"}', status, code, message, extra or "", status)
end

-- (log = false: the retry lines are spec/21-client_observability_spec.lua's subject)
local with_server = flaky.with_client{ api_key = KEY, log = false }

local VALID = { target_url = "https://example.com/hook", subscribed_events = { "message.sent" } }

describe("client retries", function()
  it("retries a 500 and returns the one good result", function()
    with_server({ { status = 500, body = envelope(500, 3006, "internal") },
                  { status = 200, headers = JSON, body = SUB } }, nil, function(client, srv)
      local sub, err = client.webhook_subscriptions:retrieve("sub_1")
      assert.is_nil(err)
      assert.equal("sub_1", sub.id)
      local reqs = srv:requests()
      assert.equal(2, #reqs)
      -- backoff 0.5 s minus up to 25 % jitter
      assert.is_true(reqs[2].time - reqs[1].time >= 0.3)
      assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
      assert.equal("Bearer " .. KEY, reqs[2].headers.authorization)
    end)
  end)

  it("gives up after max_retries with the last error", function()
    with_server({ { status = 503, body = envelope(503, 4004, "unavailable") } }, { max_retries = 1 },
      function(client, srv)
        local sub, err = client.webhook_subscriptions:list()
        assert.is_nil(sub)
        assert.equal("InternalServerError", err.name)
        assert.equal(503, err.status)
        assert.equal(4004, err.code)
        assert.equal(2, err.attempts)
        assert.equal(2, #srv:requests())
      end)
  end)

  it("max_retries = 0 disables retries", function()
    with_server({ { status = 500, body = envelope(500, 3006, "internal") },
                  { status = 200, headers = JSON, body = SUB } }, { max_retries = 0 }, function(client, srv)
      local sub, err = client.webhook_subscriptions:retrieve("sub_1")
      assert.is_nil(sub)
      assert.equal("InternalServerError", err.name)
      assert.equal(1, #srv:requests())
    end)
  end)

  it("honours Retry-After in seconds on a 429", function()
    with_server({ { status = 429, headers = { ["Retry-After"] = "1" },
                    body = envelope(429, 1007, "slow down", ',"retry_after":1') },
                  { status = 200, headers = JSON, body = SUB } }, nil, function(client, srv)
      local sub, err = client.webhook_subscriptions:retrieve("sub_1")
      assert.is_nil(err)
      assert.equal("sub_1", sub.id)
      local reqs = srv:requests()
      assert.equal(2, #reqs)
      local gap = reqs[2].time - reqs[1].time
      assert.is_true(gap >= 0.95, "waited only " .. gap)
      assert.is_true(gap < 10, "waited " .. gap)
    end)
  end)

  it("honours retry-after-ms before Retry-After", function()
    with_server({ { status = 429, headers = { ["retry-after-ms"] = "700", ["Retry-After"] = "30" },
                    body = envelope(429, 1007, "slow down") },
                  { status = 200, headers = JSON, body = SUB } }, nil, function(client, srv)
      local sub, err = client.webhook_subscriptions:retrieve("sub_1")
      assert.is_nil(err)
      assert.equal("sub_1", sub.id)
      local reqs = srv:requests()
      local gap = reqs[2].time - reqs[1].time
      assert.is_true(gap >= 0.65, "waited only " .. gap)
      assert.is_true(gap < 10, "waited " .. gap)
    end)
  end)

  it("reports a 429 with its retry_after when retries run out", function()
    with_server({ { status = 429, headers = { ["retry-after-ms"] = "10" },
                    body = envelope(429, 1007, "slow down", ',"retry_after":30') } }, { max_retries = 0 },
      function(client)
        local _, err = client.webhook_subscriptions:list()
        assert.equal("RateLimitError", err.name)
        assert.equal("api", err.kind)
        assert.equal(30, err.retry_after)
        assert.equal(1007, err.code)
        assert.equal("trace_429", err.trace_id)
      end)
  end)

  it("times out a slow response with APITimeoutError", function()
    with_server({ { status = 200, headers = JSON, body = SUB, delay = 3 } }, { timeout = 0.5, max_retries = 0 },
      function(client, srv)
        local t0 = os.time()
        local sub, err = client.webhook_subscriptions:retrieve("sub_1")
        assert.is_nil(sub)
        assert.equal("timeout", err.kind)
        assert.equal("APITimeoutError", err.name)
        assert.is_true(os.time() - t0 <= 3)
        assert.equal(1, #srv:requests())
      end)
  end)

  it("returns an error for invalid JSON in a 200", function()
    with_server({ { status = 200, headers = JSON, body = "{not json" } }, nil, function(client, srv)
      local sub, err = client.webhook_subscriptions:retrieve("sub_1")
      assert.is_nil(sub)
      assert.equal("api", err.kind)
      assert.equal("APIResponseValidationError", err.name)
      assert.equal(1, #srv:requests())
    end)
  end)

  it("keeps the raw body when an error response is not JSON", function()
    with_server({ { status = 502, body = "<html>bad gateway</html>" } }, { max_retries = 0 }, function(client)
      local _, err = client.webhook_subscriptions:list()
      assert.equal("InternalServerError", err.name)
      assert.equal(502, err.status)
      assert.is_nil(err.code)
      assert.equal("<html>bad gateway</html>", err.message)
    end)
  end)

  it("accepts an empty 204 for delete, with Accept */* and no body", function()
    with_server({ { status = 204 } }, nil, function(client, srv)
      local ok, err = client.webhook_subscriptions:delete("sub_1")
      assert.is_nil(err)
      assert.is_true(ok)
      local r = srv:requests()[1]
      assert.equal("DELETE", r.method)
      assert.equal("/api/partner/v3/webhook-subscriptions/sub_1", r.path)
      assert.equal("*/*", r.headers.accept)
      assert.equal("", r.body)
    end)
  end)

  it("refuses an oversized body without retrying", function()
    with_server({ { status = 200, headers = JSON, body = '{"subscriptions":[' .. string.rep(" ", 5000) .. "]}" } },
      { max_body = 1024 }, function(client, srv)
        local subs, err = client.webhook_subscriptions:list()
        assert.is_nil(subs)
        assert.equal("connection", err.kind)
        assert.matches("exceeds", err.message)
        assert.equal(1, #srv:requests())
      end)
  end)

  it("maps every error status to its SDK name, with Linq's envelope fields", function()
    local cases = {
      { 400, 1002, "BadRequestError" }, { 401, 2004, "AuthenticationError" },
      { 403, 2005, "PermissionDeniedError" }, { 404, 2001, "NotFoundError" },
      { 409, 1006, "ConflictError" }, { 422, 1005, "UnprocessableEntityError" },
      { 429, 1007, "RateLimitError" }, { 500, 3006, "InternalServerError" },
      { 504, 3005, "InternalServerError" }, { 418, 1005, "APIError" },
    }
    local steps = {}
    for i, c in ipairs(cases) do
      steps[i] = { status = c[1], body = envelope(c[1], c[2], "failure " .. c[1],
        ',"doc_url":"https://docs.linqapp.com/error/codes/x/' .. c[2] .. '/"') }
    end
    with_server(steps, { max_retries = 0 }, function(client, srv)
      for _, c in ipairs(cases) do
        local sub, err = client.webhook_subscriptions:retrieve("sub_1")
        assert.is_nil(sub)
        assert.equal("api", err.kind)
        assert.equal(c[3], err.name)
        assert.equal(c[1], err.status)
        assert.equal(c[2], err.code)
        assert.equal("failure " .. c[1], err.message)
        assert.equal("trace_" .. c[1], err.trace_id)
        assert.equal("https://docs.linqapp.com/error/codes/x/" .. c[2] .. "/", err.doc_url)
        assert.equal("linqwebhooks: " .. c[3] .. ": failure " .. c[1], tostring(err))
      end
      assert.equal(#cases, #srv:requests())
    end)
  end)

  it("reports a refused connection as APIConnectionError", function()
    local srv = flaky.start({ { status = 200 } })
    local url = srv.url
    srv:stop()
    require("socket").sleep(0.1)
    local client = linq.client{ api_key = KEY, base_url = url, max_retries = 0 }
    local sub, err = client.webhook_subscriptions:list()
    client:close()
    assert.is_nil(sub)
    assert.equal("APIConnectionError", err.name)
    assert.equal("connection", err.kind)
  end)
end)

-- Which answers are retried, per method: one row per case,
-- { method, server behaviour (steps; "ok" = the method's success answer),
--   expected attempts, expected error name (nil: success), client options }.
-- create is retried only when the request cannot have been processed
-- (408, 429, a 4xx with x-should-retry: true, a connection refused before
-- sending); never after a 409, any 5xx, a timeout or a dropped connection.
local function answer(status, headers, extra)
  local h = { ["retry-after-ms"] = "10" }
  for k, v in pairs(headers or {}) do
    h[k] = v
  end
  return { status = status, headers = h, body = envelope(status, 3000 + status % 100, "failure", extra) }
end

local OK = {
  create = { status = 201, headers = JSON, body = CREATED },
  list = { status = 200, headers = JSON, body = '{"subscriptions":[' .. SUB .. ']}' },
  retrieve = { status = 200, headers = JSON, body = SUB },
  update = { status = 200, headers = JSON, body = SUB },
  delete = { status = 204 },
  events = { status = 200, headers = JSON, body = '{"events":["message.sent"],"doc_url":"x"}' },
}

local CALL = {
  create = function(c) return c.webhook_subscriptions:create(VALID) end,
  list = function(c) return c.webhook_subscriptions:list() end,
  retrieve = function(c) return c.webhook_subscriptions:retrieve("sub_1") end,
  update = function(c) return c.webhook_subscriptions:update("sub_1", { is_active = true }) end,
  delete = function(c) return c.webhook_subscriptions:delete("sub_1") end,
  events = function(c) return c.webhook_events:list() end,
}

local RETRY_TRUE = { ["x-should-retry"] = "true" }
local RETRY_FALSE = { ["x-should-retry"] = "false" }
local RESET = { status = 200, headers = JSON, body = SUB, reset = true }
local SLOW = { status = 200, headers = JSON, body = SUB, delay = 0.7 } -- (the server is free again before the retry)
local ENDLESS = { flood = { prefix = "HTTP/1.1 200 OK\r\nX-Long: ", bytes = 2 * 1024 * 1024 } }
local ONE = { max_retries = 1 }
local FAST = { timeout = 0.4, max_retries = 1 }

local RETRY_TABLE = {
  -- create: never re-sent once it may have reached the server
  { "create", "500", { answer(500), "ok" }, 1, "InternalServerError" },
  { "create", "502 from a gateway", { answer(502), "ok" }, 1, "InternalServerError" },
  { "create", "503 from a gateway", { answer(503), "ok" }, 1, "InternalServerError" },
  { "create", "504 from a gateway", { answer(504), "ok" }, 1, "InternalServerError" },
  { "create", "503 with x-should-retry: true", { answer(503, RETRY_TRUE), "ok" }, 1, "InternalServerError" },
  { "create", "409", { answer(409), "ok" }, 1, "ConflictError" },
  { "create", "409 with x-should-retry: true", { answer(409, RETRY_TRUE), "ok" }, 1, "ConflictError" },
  { "create", "a timeout", { SLOW, "ok" }, 1, "APITimeoutError", FAST },
  { "create", "a connection reset mid-response", { RESET, "ok" }, 1, "APIConnectionError" },
  { "create", "400", { answer(400), "ok" }, 1, "BadRequestError" },
  -- create: retried when the server did not process it
  { "create", "429", { answer(429), "ok" }, 2, nil },
  { "create", "408", { answer(408), "ok" }, 2, nil },
  { "create", "400 with x-should-retry: true", { answer(400, RETRY_TRUE), "ok" }, 2, nil },
  { "create", "429 with x-should-retry: false", { answer(429, RETRY_FALSE), "ok" }, 1, "RateLimitError" },
  -- every other method: the SDK policy
  { "retrieve", "500", { answer(500), "ok" }, 2, nil },
  { "list", "502", { answer(502), "ok" }, 2, nil },
  { "delete", "503", { answer(503), "ok" }, 2, nil },
  { "update", "504", { answer(504), "ok" }, 2, nil },
  { "events", "500", { answer(500), "ok" }, 2, nil },
  { "list", "503 every time", { answer(503) }, 2, "InternalServerError", ONE },
  { "update", "409", { answer(409), "ok" }, 2, nil },
  { "update", "408", { answer(408), "ok" }, 2, nil },
  { "delete", "429", { answer(429), "ok" }, 2, nil },
  { "retrieve", "500 with x-should-retry: false", { answer(500, RETRY_FALSE), "ok" }, 1, "InternalServerError" },
  { "retrieve", "400 with x-should-retry: true", { answer(400, RETRY_TRUE), "ok" }, 2, nil },
  { "retrieve", "404", { answer(404), "ok" }, 1, "NotFoundError" },
  { "delete", "422", { answer(422), "ok" }, 1, "UnprocessableEntityError" },
  { "retrieve", "a connection reset mid-response", { RESET, "ok" }, 2, nil },
  { "retrieve", "a timeout", { SLOW, "ok" }, 2, nil, FAST },
  -- limits of a hostile peer are not retried (libcurl's 100 KB header line)
  { "retrieve", "an endless header line", { ENDLESS }, 1, "APIConnectionError" },
  { "create", "an endless header line", { ENDLESS }, 1, "APIConnectionError" },
  { "retrieve", "a 500 with max_retries = 0", { answer(500), "ok" }, 1, "InternalServerError", { max_retries = 0 } },
}

describe("client retry table", function()
  for _, row in ipairs(RETRY_TABLE) do
    local method, what, steps, attempts, want, opts = row[1], row[2], row[3], row[4], row[5], row[6]
    local name = method .. " answered " .. what .. ": " .. attempts .. " attempt(s), "
      .. (want or "success")
    it(name, function()
      local script = {}
      for i, st in ipairs(steps) do
        script[i] = st == "ok" and OK[method] or st
      end
      with_server(script, opts, function(client, srv)
        local res, err = CALL[method](client)
        if want then
          assert.is_nil(res)
          assert.equal(want, err.name)
          assert.equal(attempts, err.attempts)
        else
          assert.is_nil(err)
          assert.truthy(res)
        end
        local reqs = srv:requests()
        assert.equal(attempts, #reqs)
        for i = 2, #reqs do -- a retry is the same request
          assert.equal(reqs[1].method, reqs[i].method)
          assert.equal(reqs[1].path, reqs[i].path)
          assert.equal(reqs[1].body, reqs[i].body)
        end
      end)
    end)
  end
end)
