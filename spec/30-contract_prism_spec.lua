-- Contract test: every webhook-subscription operation and GET
-- /v3/webhook-events of the emulator, driven through Prism's validation proxy
-- (`prism proxy SPEC UPSTREAM --errors`) against the Feb-2026 Linq OpenAPI spec
-- patched by tools/patch-openapi.js (today's event list, the seed's
-- phone_numbers, the moved doc_url). Prism answers 500 with an `sl-violations`
-- header when a request or a response breaks the spec: every case checks the
-- status and that no violation was reported.
--
-- Needs Node and Prism in build/node (`make prism`, which .ci/run does). Where
-- they are missing the spec is pending, unless LINQWH_REQUIRE_PRISM=1 (CI):
-- then it fails.
local emulator = require "linqwebhooks.emulator"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local socket = require "socket"
local support = require "support.receiver"
local util = require "support.util"

local KEY = "test_key_30c"
local PRISM = "build/node/node_modules/.bin/prism"
local PATCH = "tools/patch-openapi.js"
local CONTRACT = "build/openapi-contract.json"

local sutil = require "support.util"
local have, exists, sh = sutil.have, sutil.exists, sutil.sh

local available = have("node") and exists(PRISM)
local required = os.getenv("LINQWH_REQUIRE_PRISM") == "1"

if not available and not required then
  describe("Prism contract", function()
    pending("needs node and Prism in build/node (make prism); set LINQWH_REQUIRE_PRISM=1 to make this fail")
  end)
  return
end

describe("Prism contract (patched Feb-2026 spec)", function()
  local emu, prism_pid, base, log_path

  setup(function()
    assert(available, "Prism is required (LINQWH_REQUIRE_PRISM=1) but node or " .. PRISM
      .. " is missing: run `make prism`")
    assert(sh("env -u LD_PRELOAD node " .. PATCH .. " data/linq-openapi-2026-02.yaml data/linq-events.json "
      .. CONTRACT .. " 2>/dev/null"), "tools/patch-openapi.js failed")
    emu = emulator.spawn{ api_key = KEY }
    local port = util.free_port()
    log_path = os.tmpname()
    -- `timeout` bounds Prism's life even if this run dies before teardown.
    local p = io.popen("env -u LD_PRELOAD timeout 600 " .. PRISM .. " proxy " .. CONTRACT .. " "
      .. util.sh_quote(emu.api_url) .. " --errors -h 127.0.0.1 -p " .. port
      .. " >" .. log_path .. " 2>&1 & echo $!")
    prism_pid = tonumber(p:read("*l"))
    p:close()
    base = "http://127.0.0.1:" .. port .. "/v3"
    local deadline = socket.gettime() + 90
    while socket.gettime() < deadline do
      local c = socket.connect("127.0.0.1", port)
      if c then
        c:close()
        return
      end
      socket.sleep(0.2)
    end
    error("Prism did not start: " .. tostring(util.read_file(log_path)))
  end)

  teardown(function()
    if prism_pid then
      os.execute("kill " .. prism_pid .. " 2>/dev/null")
    end
    if emu then
      emu.stop()
    end
    if log_path then
      os.remove(log_path)
    end
  end)

  local cases = 0
  local function call(method, path, body, token)
    local headers = { Authorization = "Bearer " .. (token or KEY) }
    if body then
      headers["Content-Type"] = "application/json"
    end
    local res = assert(support.http(method, base .. path, headers, body and assert(json.encode(body))))
    return res
  end
  -- One contract case: the status Linq's spec allows, and no violation.
  local function expect(status, method, path, body, token)
    local res = call(method, path, body, token)
    cases = cases + 1
    assert.is_nil(res.headers["sl-violations"], method .. " " .. path .. ": " .. tostring(res.headers["sl-violations"]))
    assert.are.equal(status, res.status, method .. " " .. path .. ": " .. tostring(res.body))
    return res.json
  end

  it("GET /v3/webhook-events lists today's catalogue within the spec", function()
    local r = expect(200, "GET", "/webhook-events")
    assert.are.same(linq.EVENT_TYPES, r.events)
    expect(401, "GET", "/webhook-events", nil, "wrong-token")
  end)

  it("create, list, retrieve, update and delete stay within the spec", function()
    local a = expect(201, "POST", "/webhook-subscriptions",
      { target_url = "https://hooks.example.com/contract/a", subscribed_events = { "message.sent" } })
    assert.is_string(a.signing_secret)
    local b = expect(201, "POST", "/webhook-subscriptions",
      { target_url = "https://hooks.example.com/contract/b?version=2025-01-01",
        subscribed_events = { "poll.vote.added", "payment.succeeded" }, phone_numbers = { "+12025551234" } })
    assert.are.same({ "+12025551234" }, b.phone_numbers)
    local c = expect(201, "POST", "/webhook-subscriptions",
      { target_url = "https://hooks.example.com/contract/c?version=2026-02-03",
        subscribed_events = linq.EVENT_TYPES, phone_numbers = json.null })
    -- refusals the spec declares for create: 400 with a Linq error body
    expect(400, "POST", "/webhook-subscriptions",
      { target_url = a.target_url, subscribed_events = { "message.read" } })
    expect(400, "POST", "/webhook-subscriptions",
      { target_url = "https://hooks.example.com/contract/v?version=2030-01-01",
        subscribed_events = { "message.read" } })
    expect(401, "POST", "/webhook-subscriptions",
      { target_url = "https://hooks.example.com/contract/z", subscribed_events = { "message.read" } }, "wrong-token")

    local list = expect(200, "GET", "/webhook-subscriptions")
    assert.are.equal(3, #list.subscriptions)
    expect(200, "GET", "/webhook-subscriptions/" .. b.id)
    expect(404, "GET", "/webhook-subscriptions/00000000-0000-4000-8000-000000000000")

    expect(200, "PUT", "/webhook-subscriptions/" .. a.id, { is_active = false })
    expect(200, "PUT", "/webhook-subscriptions/" .. a.id,
      { subscribed_events = { "location.sharing.started", "message.edited" }, phone_numbers = { "+12025550000" } })
    expect(200, "PUT", "/webhook-subscriptions/" .. b.id, { phone_numbers = json.null })
    expect(200, "PUT", "/webhook-subscriptions/" .. c.id,
      { target_url = "https://hooks.example.com/contract/c2?version=2025-01-01" })
    expect(400, "PUT", "/webhook-subscriptions/" .. c.id, { target_url = a.target_url })
    expect(400, "PUT", "/webhook-subscriptions/" .. c.id,
      { target_url = "https://hooks.example.com/contract/c3?version=nope" })
    expect(404, "PUT", "/webhook-subscriptions/00000000-0000-4000-8000-000000000000", { is_active = true })

    expect(204, "DELETE", "/webhook-subscriptions/" .. a.id)
    expect(404, "DELETE", "/webhook-subscriptions/" .. a.id)
    expect(204, "DELETE", "/webhook-subscriptions/" .. b.id)
    expect(204, "DELETE", "/webhook-subscriptions/" .. c.id)
    assert.are.equal(0, #expect(200, "GET", "/webhook-subscriptions").subscriptions)
  end)

  it("would catch a violation: the unpatched event list breaks the spec's enum", function()
    -- the proxy really validates: the same emulator answer checked against
    -- the Feb-2026 spec as published is refused
    local port = util.free_port()
    local log = os.tmpname()
    local p = io.popen("env -u LD_PRELOAD timeout 120 " .. PRISM .. " proxy data/linq-openapi-2026-02.yaml "
      .. util.sh_quote(emu.api_url) .. " --errors -h 127.0.0.1 -p " .. port .. " >" .. log .. " 2>&1 & echo $!")
    local pid = tonumber(p:read("*l"))
    p:close()
    local ok, err = pcall(function()
      local deadline = socket.gettime() + 90
      local res
      while socket.gettime() < deadline do
        res = support.http("GET", "http://127.0.0.1:" .. port .. "/v3/webhook-events",
                           { Authorization = "Bearer " .. KEY })
        if res then
          break
        end
        socket.sleep(0.2)
      end
      assert.is_table(res, "unpatched Prism did not start")
      assert.are.equal(500, res.status)
      assert.is_string(res.headers["sl-violations"])
    end)
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(log)
    assert(ok, err)
  end)

  it("ran every case", function()
    assert.are.equal(23, cases)
  end)
end)
