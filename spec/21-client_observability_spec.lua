-- Client observability: on_retry(info) before each retry wait, and the `log`
-- option (default: one stderr line per retry; false silences). Against the
-- misbehaving loopback server of spec/support/flaky_server.lua.
local flaky = require "support.flaky_server"
local util = require "support.util"
local linq = require "linqwebhooks"

local KEY = "lk_test_secret_key_0123456789abcdef"
local SUB = flaky.SUB
local JSON = flaky.JSON
local ERR429 = '{"success":false,"error":{"status":429,"code":1001,"message":"slow down"}}'

-- (the `log` option is left at its default unless a case sets it)
local with_server = flaky.with_client{ api_key = KEY }

-- Captures what is written to io.stderr while fn runs.
local function capture_stderr(fn)
  local real = io.stderr
  local buf = {}
  io.stderr = { write = function(self, ...) -- luacheck: ignore 122
    for _, s in ipairs({ ... }) do buf[#buf + 1] = tostring(s) end
    return self
  end }
  local ok, err = pcall(fn)
  io.stderr = real -- luacheck: ignore 122
  if not ok then
    error(err, 0)
  end
  return table.concat(buf)
end

local function dump(v, out)
  out = out or {}
  if type(v) == "table" then
    for k, x in pairs(v) do
      out[#out + 1] = tostring(k)
      dump(x, out)
    end
  else
    out[#out + 1] = tostring(v)
  end
  return table.concat(out, " ")
end

describe("client on_retry and log", function()
  it("on_retry gets attempt, wait, status, method and path before the wait (429 Retry-After)",
    function()
      local calls, lines = {}, {}
      local srv_ref
      with_server({ { status = 429, headers = { ["Retry-After"] = "1" }, body = ERR429 },
                    { status = 200, headers = JSON, body = SUB } },
        { on_retry = function(info)
            info.requests_seen = #srv_ref:requests() -- the retry is not sent yet
            calls[#calls + 1] = info
          end,
          log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end },
        function(client, srv)
          srv_ref = srv
          local sub = assert(client.webhook_subscriptions:retrieve("sub_1"))
          assert.equal("sub_1", sub.id)
          assert.equal(2, #srv:requests())
        end)
      assert.equal(1, #calls)
      local info = calls[1]
      assert.equal(1, info.attempt)
      assert.equal(3, info.max_attempts)
      assert.equal(1, info.wait)
      assert.equal(429, info.status)
      assert.equal("api", info.kind)
      assert.equal("RateLimitError", info.name)
      assert.equal("GET", info.method)
      assert.equal("/v3/webhook-subscriptions/sub_1", info.path)
      assert.equal(1, info.requests_seen)
      assert.same({ "warn retrying GET /v3/webhook-subscriptions/sub_1 in 1 s after 429 (attempt 2 of 3)" },
        lines)
      assert.is_nil(dump(calls):find(KEY, 1, true))
      assert.is_nil(table.concat(lines):find(KEY, 1, true))
    end)

  it("the default log writes one stderr line per retry with its wait; log = false is silent",
    function()
      local steps = { { status = 503, headers = { ["Retry-After"] = "0" }, body = "{}" },
                      { status = 200, headers = JSON, body = '{"subscriptions":[]}' } }
      local out = capture_stderr(function()
        with_server(steps, nil, function(client)
          assert(client.webhook_subscriptions:list())
        end)
      end)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ linqwebhooks: warn: retrying GET "
        .. "/v3/webhook%-subscriptions in 0 s after 503 %(attempt 2 of 3%)\n$", out)
      assert.is_nil(out:find(KEY, 1, true))
      local quiet = capture_stderr(function()
        with_server(steps, { log = false }, function(client)
          assert(client.webhook_subscriptions:list())
        end)
      end)
      assert.equal("", quiet)
    end)

  it("reports a connection failure with its kind and message, and on_retry = false gives up",
    function()
      local port = util.free_port() -- nothing listens there
      local seen, lines = {}, {}
      local client = linq.client { api_key = KEY, base_url = "http://127.0.0.1:" .. port,
        max_retries = 3,
        on_retry = function(info) seen[#seen + 1] = info; return false end,
        log = function(_, msg) lines[#lines + 1] = msg end }
      local res, err = client.webhook_subscriptions:list()
      client:close()
      assert.is_nil(res)
      assert.equal("APIConnectionError", err.name)
      assert.equal(1, err.attempts) -- gave up at the first retry
      assert.equal(1, #seen)
      assert.equal("connection", seen[1].kind)
      assert.is_nil(seen[1].status)
      assert.is_number(seen[1].wait)
      assert.matches("^retrying GET /v3/webhook%-subscriptions in [%d.]+ s after a connection error %(",
        lines[1])
    end)

  it("no on_retry call when nothing is retried", function()
    local n = 0
    with_server({ { status = 200, headers = JSON, body = SUB } },
      { on_retry = function() n = n + 1 end, log = false }, function(client)
        assert(client.webhook_subscriptions:retrieve("sub_1"))
      end)
    assert.equal(0, n)
  end)

  it("checks the options", function()
    assert.has_error(function() linq.client { api_key = KEY, on_retry = 5 } end)
    local ok, err = pcall(linq.client, { api_key = KEY, log = true })
    assert.is_false(ok)
    assert.matches("option 'log' must be a function%(level, message%), or false", err)
  end)
end)
