-- The official Node SDK (@linqapp/sdk 0.28.2) accepts what the emulator
-- delivers: every catalogued type, in every payload version it is delivered
-- in, is captured raw by a loopback receiver (body bytes and headers as
-- received) and handed to `client.webhooks.unwrap(body, { headers })` in ONE
-- node process (spec/support/sdk_unwrap.js), once with the client's
-- `webhookSecret` and once with the per-call `key`. In 0.28.2 unwrap is
-- `new (require("standardwebhooks").Webhook)(key).verify(body, headers)`
-- followed by `JSON.parse(body)`: it checks the Standard Webhooks headers
-- (webhook-id, webhook-timestamp within 5 minutes, webhook-signature
-- "v1,<base64 HMAC-SHA256 of id.timestamp.body>" under the base64 key after
-- "whsec_"); it does not look at the legacy X-Webhook-* pair nor validate
-- the payload's shape. Negative controls: a tampered body, a wrong secret, a
-- missing webhook-signature and a stale timestamp are rejected.
--
-- Needs Node and the SDK in build/node (`make prism`, which .ci/run does).
-- Where they are missing the spec is pending, unless LINQWH_REQUIRE_PRISM=1
-- (CI): then it fails.
local emulator = require "linqwebhooks.emulator"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local support = require "support.receiver"
local util = require "support.util"

local KEY = "test_key_30u"
local SDK = "build/node/node_modules/@linqapp/sdk"
local SCRIPT = "spec/support/sdk_unwrap.js"
local http = support.http

local sutil = require "support.util"
local have, exists = sutil.have, sutil.exists

local available = have("node") and exists(SDK .. "/package.json")
  and exists("build/node/node_modules/standardwebhooks/package.json")
local required = os.getenv("LINQWH_REQUIRE_PRISM") == "1"

if not available and not required then
  describe("official Node SDK webhooks.unwrap", function()
    pending("needs node and @linqapp/sdk in build/node (make prism); set LINQWH_REQUIRE_PRISM=1 to make this fail")
  end)
  return
end

-- Runs the SDK on records { body, headers, secret } -> array of results.
local function sdk_unwrap(records)
  local path = os.tmpname()
  util.write_file(path, assert(json.encode(records)))
  local p = assert(io.popen("env -u LD_PRELOAD timeout 120 node " .. SCRIPT .. " " .. util.sh_quote(SDK)
    .. " " .. util.sh_quote(path) .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local results = json.decode(out)
  assert(type(results) == "table" and #results == #records, "sdk_unwrap.js failed: " .. tostring(out))
  return results
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

describe("official Node SDK webhooks.unwrap", function()
  it("is installed at the pinned version", function()
    assert(available, "the SDK is required (LINQWH_REQUIRE_PRISM=1) but node or " .. SDK
      .. " is missing: run `make prism`")
    local pkg = assert(json.decode(assert(util.read_file(SDK .. "/package.json"))))
    assert.are.equal("0.28.2", pkg.version)
  end)

  it("accepts the emulator's deliveries of every type in every payload version, and rejects tampering", function()
    assert(available, "the SDK is required (LINQWH_REQUIRE_PRISM=1) but node or " .. SDK
      .. " is missing: run `make prism`")
    local emu = emulator.spawn{ api_key = KEY,
                                delivery = { base_delay = 0.05, max_delay = 0.2, timeout = 5 } }
    local rs = {}
    local ok, err = pcall(function()
      local auth = { Authorization = "Bearer " .. KEY, ["Content-Type"] = "application/json" }
      local versions = linq.events.PAYLOAD_VERSIONS
      assert.is_true(#versions >= 2)
      local secrets = {}
      for _, v in ipairs(versions) do
        local r = support.spawn()
        rs[v] = r
        local res = assert(http("POST", emu.api_url .. "/v3/webhook-subscriptions", auth, json.encode({
          target_url = r.url .. "/hook?version=" .. v, subscribed_events = linq.EVENT_TYPES })))
        assert.are.equal(201, res.status, res.body)
        secrets[v] = res.json.signing_secret
      end
      for _, t in ipairs(linq.EVENT_TYPES) do
        local res = assert(http("POST", emu.url .. "/_emulator/events", nil, json.encode({ event_type = t })))
        assert.are.equal(202, res.status, res.body)
      end

      -- Every delivery, raw, with what we expect of it.
      local records, expect = {}, {}
      local types_seen = {}
      for _, v in ipairs(versions) do
        local want = {}
        local n = 0
        for _, t in ipairs(linq.EVENT_TYPES) do
          if linq.events.delivered_in(t, v) then
            want[t] = true
            n = n + 1
          end
        end
        local reqs = rs[v].wait(n, 60)
        assert.are.equal(n, #reqs, v)
        for _, q in ipairs(reqs) do
          assert.is_string(q.headers["webhook-signature"])
          local env = assert(json.decode(q.body))
          assert.is_true(want[env.event_type], v .. ": unexpected " .. tostring(env.event_type))
          want[env.event_type] = nil
          types_seen[env.event_type] = true
          records[#records + 1] = { body = q.body, headers = q.headers, secret = secrets[v] }
          expect[#expect + 1] = { type = env.event_type, id = env.event_id, version = v, bytes = #q.body }
        end
        assert.are.same({}, want) -- each type exactly once
      end
      local ntypes = 0
      for _ in pairs(types_seen) do
        ntypes = ntypes + 1
      end
      assert.are.equal(#linq.EVENT_TYPES, ntypes)

      -- Negative controls, built from the first delivery.
      local base = records[1]
      local tampered = copy(base)
      tampered.body = base.body:gsub('"event_id":"', '"event_id":"x', 1)
      assert.are_not.equal(base.body, tampered.body)
      local wrong_secret = copy(base)
      wrong_secret.secret = secrets[versions[2]]
      assert.are_not.equal(base.secret, wrong_secret.secret)
      local unsigned = copy(base)
      unsigned.headers = copy(base.headers)
      unsigned.headers["webhook-signature"] = nil
      local stale = copy(base)
      stale.headers = copy(base.headers)
      stale.headers["webhook-timestamp"] = tostring(tonumber(base.headers["webhook-timestamp"]) - 3600)
      local negatives = { tampered = tampered, wrong_secret = wrong_secret, unsigned = unsigned, stale = stale }
      local names = { "tampered", "wrong_secret", "unsigned", "stale" }
      local n = #records
      for _, name in ipairs(names) do
        records[#records + 1] = negatives[name]
      end

      local results = sdk_unwrap(records)
      local accepted = 0
      for i = 1, n do
        local r, e = results[i], expect[i]
        local label = e.type .. " " .. e.version
        assert.is_true(r.ok, label .. ": " .. tostring(r.error))
        assert.are.equal(e.type, r.event_type, label)
        assert.are.equal(e.id, r.event_id, label)
        assert.are.equal(e.version, r.webhook_version, label)
        assert.are.equal(e.bytes, r.bytes, label) -- node saw the body byte for byte
        accepted = accepted + 1
      end
      for i, name in ipairs(names) do
        local r = results[n + i]
        assert.is_false(r.ok, name .. " was accepted")
        assert.is_truthy(tostring(r.error):find("WebhookVerificationError", 1, true), name .. ": " .. tostring(r.error))
      end
      -- 75 types x 2 versions, minus message.edited in 2025-01-01
      local want_total = 0
      for _, v in ipairs(versions) do
        for _, t in ipairs(linq.EVENT_TYPES) do
          if linq.events.delivered_in(t, v) then
            want_total = want_total + 1
          end
        end
      end
      assert.are.equal(want_total, accepted)
      assert.are.equal(2 * #linq.EVENT_TYPES - 1, accepted)
    end)
    for _, r in pairs(rs) do
      r.stop()
    end
    emu.stop()
    assert(ok, err)
  end)
end)
