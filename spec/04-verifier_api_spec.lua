-- The Lua verification API: options, header handling, results, errors,
-- file and streaming forms, signing, one-shot helpers.
local linq = require "linqwebhooks"

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local OTHER = "whsec_MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="
local BODY = '{"test": 2432232314}'
local TS = 1614265330

local function fixed(t)
  return function() return t end
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

-- every block runs once per binding of the C core (classic; FFI under LuaJIT);
-- the blocks keep their indentation (a wrapper, not a rewrite)
require("support.backends").each({ describe = describe, setup = setup, teardown = teardown }, function()
describe("linq.verifier options", function()
  it("raises on unknown keys, naming them", function()
    assert.has_error(function() linq.verifier { secret = SECRET, tolerence = 300 } end,
      "linq.verifier: unknown option 'tolerence'")
  end)
  it("raises on wrong types with the option's name", function()
    assert.has_error(function() linq.verifier { secret = SECRET, tolerance = "300" } end)
    local ok, err = pcall(linq.verifier, { secret = SECRET, scheme = "both" })
    assert.is_false(ok)
    assert.matches("option 'scheme' must be one of auto, standard, legacy", err, 1, true)
    ok, err = pcall(linq.verifier, { secret = SECRET, tolerance = -1 })
    assert.is_false(ok)
    assert.matches("option 'tolerance'", err, 1, true)
    ok, err = pcall(linq.verifier, { secret = 42 })
    assert.is_false(ok)
    assert.matches("option 'secret' must be string", err, 1, true)
    ok, err = pcall(linq.verifier, "whsec_x")
    assert.is_false(ok)
    assert.matches("options table expected", err, 1, true)
  end)
  it("requires exactly one of secret / secrets", function()
    assert.has_error(function() linq.verifier {} end,
      "linq.verifier: option 'secret' (or 'secrets') is required")
    assert.has_error(function() linq.verifier { secret = SECRET, secrets = { OTHER } } end,
      "linq.verifier: give 'secret' or 'secrets', not both")
    assert.has_error(function() linq.verifier { secrets = {} } end)
    assert.has_error(function() linq.verifier { secrets = { SECRET, 7 } } end)
  end)
  it("reports the bad secret by position, never its content", function()
    local ok, err = pcall(linq.verifier, { secrets = { SECRET, "whsec_MfKQ9r8GKYqrTwjUPD8I LPZ" } })
    assert.is_false(ok)
    assert.matches("secret #2", err, 1, true)
    assert.is_nil(err:find("MfKQ", 1, true))
  end)
  it("raises at the caller's line", function()
    local ok, err = pcall(function() linq.verifier { secret = "nope" } end)
    assert.is_false(ok)
    assert.matches("04%-verifier_api_spec.lua:%d+:", err)
  end)
  it("never shows secrets in tostring", function()
    local v = linq.verifier { secrets = { SECRET, OTHER } }
    local s = tostring(v)
    assert.matches("2 secret", s, 1, true)
    assert.is_nil(s:find("whsec_", 1, true))
    assert.is_nil(s:find("MfKQ", 1, true))
  end)
end)

describe("v:verify", function()
  local h = linq.sign { secret = SECRET, body = BODY, id = "msg_1", timestamp = TS, scheme = "both" }

  it("returns scheme, key index, id and timestamp", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local info = assert(v:verify(BODY, h))
    assert.are.same({ scheme = "standard", key_index = 1, id = "msg_1", timestamp = TS }, info)
  end)

  it("looks headers up case-insensitively", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    assert.truthy(v:verify(BODY, {
      ["WEBHOOK-ID"] = h["webhook-id"], ["Webhook-Timestamp"] = h["webhook-timestamp"],
      ["webhook-SIGNATURE"] = h["webhook-signature"] }))
    local lv = linq.verifier { secret = SECRET, clock = fixed(TS) }
    assert.are.equal("legacy", assert(lv:verify(BODY, {
      ["x-webhook-timestamp"] = h["X-Webhook-Timestamp"],
      ["X-WEBHOOK-SIGNATURE"] = h["X-Webhook-Signature"] })).scheme)
  end)

  it("rejects repeated signature headers (array values), not joins them", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local _, err = v:verify(BODY, {
      ["webhook-id"] = "msg_1", ["webhook-timestamp"] = tostring(TS),
      ["webhook-signature"] = { h["webhook-signature"], h["webhook-signature"] } })
    assert.are.equal("invalid_headers", err.reason)
    _, err = v:verify(BODY, {
      ["webhook-id"] = { "msg_1", "msg_1" }, ["webhook-timestamp"] = tostring(TS),
      ["webhook-signature"] = h["webhook-signature"] })
    assert.are.equal("invalid_headers", err.reason)
  end)

  it("rejects the same header given twice in different case", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local _, err = v:verify(BODY, {
      ["webhook-id"] = "msg_1", ["Webhook-Id"] = "msg_1", ["webhook-timestamp"] = tostring(TS),
      ["webhook-signature"] = h["webhook-signature"] })
    assert.are.equal("invalid_headers", err.reason)
    assert.matches("twice", err.message)
  end)

  it("ignores non-string keys and unrelated headers", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local hh = { "positional", [true] = 1, ["content-type"] = { "a", "b" } }
    for k, val in pairs(h) do
      hh[k] = val
    end
    assert.truthy(v:verify(BODY, hh))
  end)

  it("applies the tolerance inclusively in both directions", function()
    for _, case in ipairs {
      { TS + 300, true }, { TS - 300, true },
      { TS + 301, "timestamp_too_old" }, { TS - 301, "timestamp_too_new" },
    } do
      local v = linq.verifier { secret = SECRET, clock = fixed(case[1]) }
      local info, err = v:verify(BODY, h)
      if case[2] == true then
        assert.truthy(info)
      else
        assert.are.equal(case[2], err.reason)
      end
    end
    local v = linq.verifier { secret = SECRET, tolerance = 10, clock = fixed(TS + 11) }
    assert.are.equal("timestamp_too_old", select(2, v:verify(BODY, h)).reason)
    v = linq.verifier { secret = SECRET, tolerance = false, clock = fixed(0) }
    assert.truthy(v:verify(BODY, h))
  end)

  it("uses os.time by default", function()
    local now = linq.sign { secret = SECRET, body = BODY }
    assert.truthy(linq.verifier { secret = SECRET }:verify(BODY, now))
    local _, err = linq.verifier { secret = SECRET }:verify(BODY, h)
    assert.are.equal("timestamp_too_old", err.reason)
  end)

  it("matches any key of a rotation keyring and says which", function()
    local v = linq.verifier { secrets = { OTHER, SECRET }, clock = fixed(TS) }
    assert.are.equal(2, v:verify(BODY, h).key_index)
    local both = linq.sign { secrets = { OTHER, SECRET }, body = BODY, id = "m", timestamp = TS }
    assert.matches("^v1,%S+ v1,%S+$", both["webhook-signature"])
    assert.are.equal(1, linq.verifier { secrets = { SECRET, OTHER }, clock = fixed(TS) }
      :verify(BODY, both).key_index)
  end)

  it("auto never falls back to legacy once a webhook-* header is present", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local _, err = v:verify(BODY, { ["webhook-signature"] = h["webhook-signature"],
      ["X-Webhook-Timestamp"] = h["X-Webhook-Timestamp"],
      ["X-Webhook-Signature"] = h["X-Webhook-Signature"] })
    assert.are.equal("missing_headers", err.reason)
  end)

  it("raises on wrong argument types", function()
    local v = linq.verifier { secret = SECRET }
    assert.has_error(function() v:verify(nil, h) end)
    assert.has_error(function() v:verify({}, h) end)
    assert.has_error(function() v:verify(BODY, "headers") end,
      "verifier:verify: argument 'headers' must be a table, got string")
    local bad = linq.verifier { secret = SECRET, clock = function() return "now" end }
    assert.has_error(function() bad:verify(BODY, h) end)
  end)

  it("raises after close, and close is idempotent", function()
    local v = linq.verifier { secret = SECRET }
    v:close()
    v:close()
    assert.has_error(function() v:verify(BODY, h) end)
  end)
end)

describe("v:verify_file and v:stream", function()
  local big = string.rep("0123456789abcdef", 131072) -- 2 MB
  local h = linq.sign { secret = SECRET, body = big, id = "msg_big", timestamp = TS }

  it("verifies a 2 MB body from a file", function()
    local path = tmpfile(big)
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local info = assert(v:verify_file(path, h))
    assert.are.equal("msg_big", info.id)
    local f = io.open(path, "ab")
    f:write("x")
    f:close()
    assert.are.equal("no_matching_signature", select(2, v:verify_file(path, h)).reason)
    os.remove(path)
  end)

  it("returns an io error for a missing file, header errors first", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local _, err = v:verify_file("/nonexistent/body", h)
    assert.are.equal("io_error", err.reason)
    _, err = v:verify_file("/nonexistent/body", {})
    assert.are.equal("missing_headers", err.reason)
  end)

  it("verifies a body fed in chunks and reports header errors up front", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local s = assert(v:stream(h))
    for i = 1, #big, 65536 do
      s:update(big:sub(i, i + 65535))
    end
    assert.are.equal("msg_big", assert(s:finish()).id)
    assert.has_error(function() s:finish() end)
    local _, err = v:stream({ ["webhook-id"] = "x" })
    assert.are.equal("missing_headers", err.reason)
    local late = linq.verifier { secret = SECRET, clock = fixed(TS + 1000) }
    _, err = late:stream(h)
    assert.are.equal("timestamp_too_old", err.reason)
  end)
end)

describe("linq.verify", function()
  local h = linq.sign { secret = SECRET, body = BODY, id = "msg_1", timestamp = TS }
  it("is the one-shot form", function()
    assert.truthy(linq.verify(SECRET, BODY, h, { clock = fixed(TS) }))
    assert.truthy(linq.verify({ OTHER, SECRET }, BODY, h, { tolerance = false }))
    local _, err = linq.verify(OTHER, BODY, h, { tolerance = false })
    assert.are.equal("no_matching_signature", err.reason)
    assert.has_error(function() linq.verify(SECRET, BODY, h, { tolerence = 1 }) end)
    assert.has_error(function() linq.verify(nil, BODY, h) end)
  end)
end)

describe("linq.sign", function()
  it("produces the header sets", function()
    local s = linq.sign { secret = SECRET, body = "{}", id = "msg_test", timestamp = 1700000000 }
    assert.are.same({ ["webhook-id"] = "msg_test", ["webhook-timestamp"] = "1700000000",
      ["webhook-signature"] = "v1,jO//uCOdy87LX/E43C2FVLSlqR9y2kT/++2EpoW9cGY=" }, s)
    local l = linq.sign { secret = SECRET, body = "{}", timestamp = "1700000000", scheme = "legacy" }
    assert.are.same({ ["X-Webhook-Timestamp"] = "1700000000",
      ["X-Webhook-Signature"] = "f482e5f34291f1048b1bdf9ba7aae2fea27c32b5eba0184fad4962ee6836b0fc" }, l)
  end)
  it("makes up an id and uses the current time when not given", function()
    local s = linq.sign { secret = SECRET, body = "{}" }
    assert.matches("^msg_%x+$", s["webhook-id"])
    assert.truthy(math.abs(tonumber(s["webhook-timestamp"]) - os.time()) <= 2)
  end)
  it("validates its options", function()
    assert.has_error(function() linq.sign { secret = SECRET } end, "linq.sign: option 'body' is required")
    assert.has_error(function() linq.sign { secret = SECRET, body = "", scheme = "v2" } end)
    assert.has_error(function() linq.sign { secret = SECRET, body = "", id = "a.b" } end)
    assert.has_error(function() linq.sign { secret = SECRET, body = "", timestamp = 1.5 } end)
    assert.has_error(function() linq.sign { secret = SECRET, body = "", timestamp = "12a" } end)
    assert.has_error(function() linq.sign { secret = SECRET, body = "", colour = 1 } end)
  end)
end)

describe("errors", function()
  it("format as linqwebhooks: <reason>: <message>", function()
    local _, err = linq.verifier { secret = SECRET }:verify(BODY, {})
    assert.are.equal("missing_headers", err.reason)
    assert.are.equal("linqwebhooks: missing_headers: " .. err.message, tostring(err))
    assert.is_true(linq.errors.is(err))
  end)
end)

describe("v:unwrap", function()
  local sample = assert(require("support.util").read_file("bench/message_received.json"))

  it("verifies, then decodes the envelope into an event", function()
    local h = linq.sign { secret = SECRET, body = sample, id = "2915e81c-5068-4796-ace2-21d2c94ad298",
                          timestamp = TS }
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local ev = assert(v:unwrap(sample, h))
    assert.are.equal("message.received", ev.type)
    assert.are.equal("2915e81c-5068-4796-ace2-21d2c94ad298", ev.id)
    assert.are.equal("2026-02-05T19:31:13.736444093Z", ev.created_at)
    assert.are.equal("v3", ev.api_version)
    assert.are.equal("2026-02-03", ev.webhook_version)
    assert.are.equal("8af9171a45022df2eb74ba4e4c83be0f", ev.trace_id)
    assert.are.equal("your-partner-id", ev.partner_id)
    assert.are.equal("Hello!", ev.data.parts[1].value)
    assert.are.equal(linq.null, ev.data.effect)
    assert.are.equal(sample, ev.raw)
    assert.are.same({ id = "2915e81c-5068-4796-ace2-21d2c94ad298", timestamp = TS,
                      scheme = "standard", key_index = 1 }, ev.delivery)
  end)

  it("takes the type from the signed body, never from X-Webhook-Event", function()
    local h = linq.sign { secret = SECRET, body = sample, timestamp = TS, scheme = "legacy" }
    h["X-Webhook-Event"] = "message.failed"
    local ev = assert(linq.verifier { secret = SECRET, clock = fixed(TS) }:unwrap(sample, h))
    assert.are.equal("message.received", ev.type)
    assert.are.equal("legacy", ev.delivery.scheme)
  end)

  it("fails verification before decoding", function()
    local h = linq.sign { secret = OTHER, body = sample, timestamp = TS }
    local ev, err = linq.verifier { secret = SECRET, clock = fixed(TS) }:unwrap(sample, h)
    assert.is_nil(ev)
    assert.are.equal("no_matching_signature", err.reason)
  end)

  it("reports a signed body that is not a Linq event as invalid_json", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    for _, body in ipairs { "{", "[]", '"x"', '{"event_id":"1"}', '{"event_type":"message.sent"}',
                            '{"event_type":5,"event_id":"1"}' } do
      local h = linq.sign { secret = SECRET, body = body, timestamp = TS }
      local ev, err = v:unwrap(body, h)
      assert.is_nil(ev)
      assert.are.equal("invalid_json", err.reason)
      assert.matches("^linqwebhooks: invalid_json: ", tostring(err))
    end
  end)
end)

describe("review fixes", function()
  local h = linq.sign { secret = SECRET, body = BODY, id = "msg_1", timestamp = TS, scheme = "both" }

  it("argument errors of v:verify point at the caller's line", function()
    local v = linq.verifier { secret = SECRET }
    local function inner() v:verify(nil, {}) end   -- the line to report
    local line = debug.getinfo(1, "l").currentline - 1
    local function outer() inner() end
    local ok, err = pcall(outer)
    assert.is_false(ok)
    assert.matches(":" .. line .. ": verifier:verify: argument 'body' must be a string", err, 1, true)
    ok, err = pcall(function() v:verify(BODY, 5) end)
    assert.is_false(ok)
    assert.matches("04%-verifier_api_spec.lua:%d+: verifier:verify: argument 'headers'", err)
  end)

  it("finished or closed streams raise naming the method", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local s = assert(v:stream(h))
    assert.truthy(s:update(BODY):finish())
    local ok, err = pcall(s.update, s, "x")
    assert.is_false(ok)
    assert.matches("stream:update: the stream is finished or closed", err, 1, true)
    ok, err = pcall(s.finish, s)
    assert.is_false(ok)
    assert.matches("stream:finish: the stream is finished or closed", err, 1, true)
    local s2 = assert(v:stream(h))
    s2:close()
    s2:close()
    assert.has_error(function() s2:update("x") end)
  end)

  it("accepts one-element arrays as header values, rejects several", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local arr = {}
    for k, val in pairs(h) do
      arr[k] = { val }
    end
    assert.are.equal("standard", assert(v:verify(BODY, arr)).scheme)
    arr["webhook-signature"] = { h["webhook-signature"], h["webhook-signature"] }
    local _, err = v:verify(BODY, arr)
    assert.are.equal("invalid_headers", err.reason)
    assert.matches("repeated", err.message)
  end)

  it("ignores a malformed header of the scheme that is not checked", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS) }
    local hh = { ["webhook-id"] = h["webhook-id"], ["webhook-timestamp"] = h["webhook-timestamp"],
                 ["webhook-signature"] = h["webhook-signature"],
                 ["X-Webhook-Signature"] = { "a", "b" }, ["X-Webhook-Timestamp"] = 5 }
    assert.are.equal("standard", assert(v:verify(BODY, hh)).scheme)
    local lv = linq.verifier { secret = SECRET, clock = fixed(TS), scheme = "legacy" }
    local _, err = lv:verify(BODY, hh)
    assert.are.equal("invalid_headers", err.reason)
    -- a repeated webhook-* header still selects (and fails) the Standard scheme in auto
    local _, err2 = v:verify(BODY, { ["webhook-signature"] = { "x", "y" },
      ["X-Webhook-Timestamp"] = h["X-Webhook-Timestamp"],
      ["X-Webhook-Signature"] = h["X-Webhook-Signature"] })
    assert.are.equal("invalid_headers", err2.reason)
  end)

  it("linq.verify refuses secrets in opts and names itself", function()
    local ok, err = pcall(linq.verify, SECRET, BODY, h, { secret = OTHER })
    assert.is_false(ok)
    assert.matches("linq.verify: give the secret", err, 1, true)
    ok, err = pcall(linq.verify, SECRET, BODY, h, { tolerence = 1 })
    assert.is_false(ok)
    assert.matches("linq.verify: unknown option 'tolerence'", err, 1, true)
  end)

  it("closed verifiers say so", function()
    local v = linq.verifier { secret = SECRET }
    v:close()
    assert.are.equal("linqwebhooks.verifier (closed)", tostring(v))
    local ok, err = pcall(v.unwrap, v, BODY, h)
    assert.is_false(ok)
    assert.matches("verifier:unwrap: the verifier is closed", err, 1, true)
  end)
end)

describe("audit fixes", function()
  local h = linq.sign { secret = SECRET, body = BODY, id = "msg_1", timestamp = 1000 }
  it("a non-finite clock raises instead of disabling the window", function()
    for _, t in ipairs { 0 / 0, math.huge, -math.huge } do
      local v = linq.verifier { secret = SECRET, clock = function() return t end }
      local ok, err = pcall(v.verify, v, BODY, h)
      assert.is_false(ok)
      assert.matches("clock must return a finite number", err, 1, true)
    end
    -- extreme but finite clocks never wrap around
    for _, t in ipairs { -2 ^ 62, 2 ^ 62 } do
      local v = linq.verifier { secret = SECRET, clock = function() return t end }
      local _, err = v:verify(BODY, h)
      assert.truthy(err.reason == "timestamp_too_old" or err.reason == "timestamp_too_new")
    end
  end)
  it("refuses keys over 1024 bytes", function()
    local ok, err = pcall(linq.verifier, { secret = "whsec_" .. ("QUFB"):rep(341) .. "QUE" })
    assert.is_false(ok)
    assert.matches("longer than 1024", err, 1, true)
    assert.truthy(linq.verifier { secret = "whsec_" .. ("QUFB"):rep(341) .. "QQ==" })
  end)
end)

describe("core helpers", function()
  local core = require "linqwebhooks.core"
  it("base64_encode follows RFC 4648 (OpenSSL)", function()
    for plain, enc in pairs { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                              fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" } do
      assert.are.equal(enc, core.base64_encode(plain))
    end
    assert.are.equal(4 * 2048, #core.base64_encode(string.rep("\255", 6144)))
  end)
  it("new_secret makes 32-byte whsec_ secrets a verifier accepts", function()
    local a, b = core.new_secret(), core.new_secret()
    assert.matches("^whsec_[%w+/]+=$", a)
    assert.are.equal(50, #a)
    assert.are_not.equal(a, b)
    assert.truthy(linq.verifier { secret = a })
  end)
end)

describe("module structure (issue 11)", function()
  local child = require "support.child"

  local function run_fresh(code)
    local f = assert(io.popen(child.lua() .. " -e " .. require("support.util").sh_quote(code)
      .. " 2>&1"))
    local out = f:read("*a")
    f:close()
    return out
  end

  it("unwrap works on a dispatcher's verifier without requiring the package root", function()
    local out = run_fresh([[
      local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
      local sign = require("linqwebhooks.verifier").sign
      local body = '{"event_type":"message.received","event_id":"evt_fresh","data":{}}'
      local headers = sign{ secret = SECRET, body = body }
      local ev, err = require("linqwebhooks.webhooks").new{ secret = SECRET }:verifier():unwrap(body, headers)
      print(ev and ev.type, ev and ev.id, err)
      print(package.loaded["linqwebhooks"] == nil and "root not loaded" or "root loaded")
    ]])
    assert.matches("message.received\tevt_fresh\tnil", out, 1, true)
    assert.matches("root not loaded", out, 1, true)
  end)

  it("the dispatcher, verifier, stores and openresty modules never require the package root", function()
    for _, name in ipairs({ "webhooks", "verifier", "options", "openresty", "event", "event_types",
        "store/init", "store/memory", "store/shdict" }) do
      local text = require("support.util").read_file("lua/linqwebhooks/" .. name .. ".lua")
      text = text:gsub("%-%-[^\n]*", "") -- usage examples in comments may
      assert.is_nil(text:match("require%s*%(?%s*[\"']linqwebhooks[\"']"), name)
    end
  end)
end)

describe("options.number (the one numeric option validator)", function()
  local options = require "linqwebhooks.options"

  it("checks bounds, whole numbers, NaN/inf and an allowed non-number", function()
    local c = options.number{ min = 0, integer = true, unit = "seconds", allow = false }
    assert.is_true(c(0))
    assert.is_true(c(300))
    assert.is_true(c(false))
    for _, bad in ipairs({ -1, 1.5, 0 / 0, math.huge, -math.huge, true, "1" }) do
      local ok, msg = c(bad)
      assert.is_false(ok)
      assert.equal("must be a whole number of seconds >= 0, or false", msg)
    end
    local p = options.number{ above = 0, below = 10 }
    assert.is_true(p(0.5))
    assert.is_false(p(0))
    assert.is_false(p(10))
    assert.equal("must be a number > 0 and < 10", select(2, p(10)))
    local m = options.number{ max = 3 }
    assert.is_true(m(3))
    assert.is_false(m(3.1))
  end)

  it("is what linq.verifier's tolerance uses", function()
    assert.has_error(function() linq.verifier{ secret = SECRET, tolerance = 1.5 } end,
      "linq.verifier: option 'tolerance' must be a whole number of seconds >= 0, or false")
  end)
end)

describe("clock skew (authentic deliveries outside the tolerance)", function()
  -- err.skew = this host's clock minus the delivery's timestamp, in seconds:
  -- positive when the delivery looks older than it is (this clock is ahead),
  -- negative when it looks to come from the future (this clock is behind).
  -- (The C API's linqwh_result.skew is the opposite: timestamp minus now.)
  local h = linq.sign { secret = SECRET, body = BODY, timestamp = TS, id = "msg_skew" }

  it("reports the measured skew when the signature is valid and the timestamp is old", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS + 412) }
    local info, err = v:verify(BODY, h)
    assert.is_nil(info)
    assert.are.equal("timestamp_too_old", err.reason)
    assert.are.equal(412, err.skew)
    assert.are.equal("timestamp 412 s older than the 300 s tolerance, signature valid: "
      .. "check this host's clock", err.message)
    assert.matches("timestamp_too_old: timestamp 412 s older", tostring(err), 1, true)
  end)

  it("reports the skew of a timestamp from the future, with the configured tolerance", function()
    local v = linq.verifier { secret = SECRET, tolerance = 10, clock = fixed(TS - 11) }
    local _, err = v:verify(BODY, h)
    assert.are.equal("timestamp_too_new", err.reason)
    assert.are.equal(-11, err.skew)
    assert.matches("timestamp 11 s in the future, beyond the 10 s tolerance", err.message, 1, true)
  end)

  it("says nothing about the clock when the signature does not match", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS + 412) }
    local _, err = v:verify(BODY .. " ", h)
    assert.are.equal("timestamp_too_old", err.reason)
    assert.is_nil(err.skew)
    assert.is_nil(err.message:find("412", 1, true))
    local other = linq.verifier { secret = OTHER, clock = fixed(TS - 412) }
    _, err = other:verify(BODY, h)
    assert.are.equal("timestamp_too_new", err.reason)
    assert.is_nil(err.skew)
  end)

  it("works for the legacy scheme and for linq.verify", function()
    local lh = linq.sign { secret = SECRET, body = BODY, timestamp = TS, scheme = "legacy" }
    local _, err = linq.verify(SECRET, BODY, lh, { clock = fixed(TS + 3600) })
    assert.are.equal("timestamp_too_old", err.reason)
    assert.are.equal(3600, err.skew)
    assert.matches("3600 s older than the 300 s tolerance", err.message, 1, true)
  end)

  it("keeps the millisecond hint, with the skew", function()
    local ms = linq.sign { secret = SECRET, body = BODY, timestamp = TS * 1000 }
    local _, err = linq.verifier { secret = SECRET, clock = fixed(TS) }:verify(BODY, ms)
    assert.are.equal("timestamp_too_new", err.reason)
    assert.are.equal(TS - TS * 1000, err.skew)
    assert.matches("milliseconds", err.message, 1, true)
  end)

  it("reports the skew in the message of verify_file too", function()
    local path = tmpfile(BODY)
    local v = linq.verifier { secret = SECRET, clock = fixed(TS + 412) }
    local _, err = v:verify_file(path, h)
    os.remove(path)
    assert.are.equal("timestamp_too_old", err.reason)
    assert.are.equal(412, err.skew)
    assert.matches("timestamp 412 s older than the 300 s tolerance", err.message, 1, true)
  end)

  it("rejects in stream() before any body is read, without a skew", function()
    local v = linq.verifier { secret = SECRET, clock = fixed(TS + 412) }
    local s, err = v:stream(h)
    assert.is_nil(s)
    assert.are.equal("timestamp_too_old", err.reason)
    assert.are.equal("timestamp is older than the tolerance allows", err.message)
    assert.is_nil(err.skew)
  end)
end)
end)

-- issue 14: the FFI binding under LuaJIT, the classic one elsewhere or on request
describe("binding selection", function()
  local child = require "support.child"
  local function run_fresh(code, env)
    local f = assert(io.popen((env or "") .. " " .. child.lua() .. " -e "
      .. require("support.util").sh_quote(code) .. " 2>&1"))
    local out = f:read("*a")
    f:close()
    return out
  end
  local PROBE = [[
    local linq = require "linqwebhooks"
    local v = linq.verifier{ secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=" }
    local h = linq.sign{ secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=", body = "b" }
    local fast = require "linqwebhooks.ffi"
    print(fast.available and "ffi" or ("classic: " .. tostring(fast.why)),
      getmetatable(v._kr) == "linqwebhooks.Keyring" and "ffi keyring" or "classic keyring",
      v:verify("b", h).scheme)
  ]]

  it("is the FFI one under LuaJIT and the classic one under Lua 5.4", function()
    local out = run_fresh(PROBE)
    if rawget(_G, "jit") then
      assert.matches("ffi\tffi keyring\tstandard", out, 1, true)
    else
      assert.matches("classic: not LuaJIT\tclassic keyring\tstandard", out, 1, true)
    end
  end)

  it("LINQWH_NO_FFI=1 forces the classic binding", function()
    local out = run_fresh(PROBE, "LINQWH_NO_FFI=1")
    assert.matches("classic keyring\tstandard", out, 1, true)
  end)
end)
