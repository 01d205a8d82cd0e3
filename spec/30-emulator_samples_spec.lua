-- Every emulator-generated delivery, for every catalogued type and both payload
-- versions, validated against the reference JSON schema kept in the repo
-- (data/linq-events.json): the envelope and its `data`. A real emulator and
-- real receivers on loopback.
local emulator = require "linqwebhooks.emulator"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local samples = require "linqwebhooks.emulator.samples"
local support = require "support.receiver"
local check = require("support.jsonschema").check

local KEY = "test_key_30s"
local http = support.http
local VERSIONS = { "2025-01-01", "2026-02-03" }

local function read_catalogue()
  local doc = assert(json.decode(assert(require("support.util").read_file("data/linq-events.json"))))
  local by_name = {}
  for _, e in ipairs(doc.events) do
    by_name[e.name] = e
  end
  return doc, by_name
end

local doc, BY_NAME = read_catalogue()

-- The schema of `data` for a type in a payload version (nil: none published).
local function data_schema(name, version)
  local e = BY_NAME[name]
  if e.data == json.null then
    return nil
  end
  if e.versions_differ == true then
    return e.data[version]
  end
  return e.data
end

-- Fields the emulator adds beyond the newest schema, on purpose (documented
-- in docs/events.md): the deprecated health pair of phone_number.status_updated,
-- still required by the official Node SDK 0.28.2.
local COMPAT = {
  ["phone_number.status_updated"] = { ["$.previous_health_status"] = true, ["$.new_health_status"] = true },
}

local function validate(name, version, data)
  local schema = data_schema(name, version)
  if not schema then
    return false, { "no schema" }
  end
  return check(schema, data, { no_extra = true, allow_extra = COMPAT[name] })
end

describe("catalogue data file", function()
  it("matches the reference copy: every type, group and schema flag", function()
    assert.are.equal(#doc.events, #linq.EVENT_TYPES)
    for i, e in ipairs(doc.events) do
      assert.are.equal(e.name, linq.EVENT_TYPES[i])
      assert.are.equal(e.group, linq.events.group(e.name))
      assert.are.equal(e.schema_found == true, linq.events.has_schema(e.name))
    end
  end)
end)

describe("emulator samples", function()
  it("validate against the reference schema for every type and both payload versions", function()
    local validated = 0
    for _, t in ipairs(linq.EVENT_TYPES) do
      for _, v in ipairs(VERSIONS) do
        if linq.events.delivered_in(t, v) and linq.events.has_schema(t) then
          local d = samples.data(t, v, "+14155550123")
          local ok, problems = validate(t, v, assert(json.decode(assert(json.encode(d)))))
          assert.is_true(ok, t .. " " .. v .. ": " .. table.concat(problems, "; "))
          validated = validated + 1
        end
      end
    end
    assert.are.equal(135, validated) -- 68 types with a schema, x2, minus message.edited in 2025-01-01
  end)

  it("the checker catches what the fidelity rules forbid", function()
    -- a null effect in a 2025-01-01 message payload (non-nullable object)
    local d = samples.data("message.sent", "2025-01-01")
    d.message.effect = json.null
    assert.is_false((validate("message.sent", "2025-01-01", d)))
    -- message.edited without chat.health_status
    d = samples.data("message.edited", "2026-02-03")
    d.chat.health_status = nil
    assert.is_false((validate("message.edited", "2026-02-03", d)))
    -- an invented field
    d = samples.data("poll.vote.added", "2026-02-03")
    d.service_flavour = "FaceTime"
    assert.is_false((validate("poll.vote.added", "2026-02-03", d)))
    -- a wrong enum value
    d = samples.data("phone_number.status_updated", "2026-02-03")
    d.new_reputation = "GREAT"
    assert.is_false((validate("phone_number.status_updated", "2026-02-03", d)))
  end)

  it("carry the fields the official SDK requires", function()
    local d = samples.data("message.edited", "2026-02-03")
    assert.is_table(d.chat.health_status)
    assert.is_string(d.chat.health_status.status)
    d = samples.data("phone_number.status_updated", "2025-01-01")
    for _, k in ipairs({ "previous_health_status", "new_health_status", "previous_reputation", "new_reputation" }) do
      assert.is_string(d[k], k)
    end
    assert.are.equal(d.previous_reputation, d.previous_health_status)
    assert.are.equal(d.new_reputation, d.new_health_status)
  end)

  it("omit absent effect / reply_to in 2025-01-01 message payloads", function()
    for _, t in ipairs({ "message.sent", "message.received", "message.read", "message.delivered" }) do
      local text = assert(json.encode(samples.data(t, "2025-01-01")))
      assert.is_nil(text:find('"effect":null', 1, true), t)
      assert.is_nil(text:find('"reply_to":null', 1, true), t)
    end
  end)

  it("invent nothing for types without a public schema (call.*)", function()
    for _, t in ipairs(linq.EVENT_TYPES) do
      if not linq.events.has_schema(t) then
        assert.are.equal("call", linq.events.group(t))
        assert.are.equal("{}", json.encode(samples.data(t, "2026-02-03")))
      end
    end
  end)

  it("are fresh: new ids every time, the line substituted, timestamps near now", function()
    local a = samples.data("message.received", "2026-02-03", "+14155550123")
    local b = samples.data("message.received", "2026-02-03", "+14155550123")
    assert.are_not.equal(a.id, b.id)
    assert.are.equal("+14155550123", a.chat.owner_handle.handle)
    local year = tonumber(os.date("!%Y"))
    assert.are.equal(year, tonumber(a.sent_at:sub(1, 4)))
  end)
end)

describe("emulator deliveries", function()
  it("of every catalogued type validate for both payload versions, envelope included", function()
    local emu = emulator.spawn{ api_key = KEY,
                                delivery = { base_delay = 0.05, max_delay = 0.2, timeout = 5 } }
    local rs = {}
    local ok, err = pcall(function()
      local auth = { Authorization = "Bearer " .. KEY, ["Content-Type"] = "application/json" }
      local secrets = {}
      for _, v in ipairs(VERSIONS) do
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
      local n = #linq.EVENT_TYPES
      local validated, empty = 0, 0
      for _, v in ipairs(VERSIONS) do
        local want = v == "2025-01-01" and n - 1 or n -- message.edited is 2026-02-03 only
        local reqs = rs[v].wait(want, 30)
        assert.are.equal(want, #reqs, v)
        local verifier = linq.verifier{ secret = secrets[v] }
        for _, q in ipairs(reqs) do
          local ev = assert(verifier:unwrap(q.body, q.headers))
          local env = assert(json.decode(q.body))
          assert.are.equal(v, env.webhook_version)
          local eok, eproblems = check(doc.envelope, env, { no_extra = true, allow_extra = { ["$.data"] = true } })
          assert.is_true(eok, ev.type .. ": " .. table.concat(eproblems, "; "))
          if linq.events.has_schema(ev.type) then
            local dok, problems = validate(ev.type, v, env.data)
            assert.is_true(dok, ev.type .. " " .. v .. ": " .. table.concat(problems, "; "))
            validated = validated + 1
          else
            assert.are.same({}, env.data)
            empty = empty + 1
          end
        end
      end
      assert.are.equal(135, validated)
      assert.are.equal(14, empty)
    end)
    for _, r in pairs(rs) do
      r.stop()
    end
    emu.stop()
    assert(ok, err)
  end)
end)
