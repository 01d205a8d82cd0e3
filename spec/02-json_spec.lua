-- linqwebhooks.json: Lua tables <-> JSON on the C core (cJSON).
-- Runs under Lua 5.4 and LuaJIT: integer expectations branch on math.type.
local json = require "linqwebhooks.json"
local linq = require "linqwebhooks"
local core = require "linqwebhooks.core"

local null = json.null
local INTEGERS = math.type ~= nil -- Lua 5.3+: exact 64-bit integers

local function roundtrip(v)
  local s, err = json.encode(v)
  assert.is_nil(err)
  assert.is_string(s)
  local back, err2 = json.decode(s)
  assert.is_nil(err2)
  return back, s
end

local function decode_ok(s)
  local v, err = json.decode(s)
  assert.is_nil(err)
  return v
end

local function decode_fails(s, pattern)
  local v, err = json.decode(s)
  assert.is_nil(v)
  assert.is_string(err)
  if pattern then
    assert.matches(pattern, err)
  else
    assert.matches("^invalid JSON", err)
  end
  return err
end

local function encode_fails(v, pattern)
  local s, err = json.encode(v)
  assert.is_nil(s)
  assert.is_string(err)
  assert.matches(pattern, err)
  return err
end

-- deepest nesting of n arrays around x
local function nest_text(n, x)
  return string.rep("[", n) .. (x or "") .. string.rep("]", n)
end

local function nest_table(n)
  local t = {}
  local cur = t
  for _ = 2, n do
    local child = {}
    cur[1] = child
    cur = child
  end
  return t
end

-- linq-api.md section 3.7 (1): message.received, webhook_version 2026-02-03
local SAMPLE = [==[
{
  "api_version": "v3",
  "webhook_version": "2026-02-03",
  "event_type": "message.received",
  "event_id": "2915e81c-5068-4796-ace2-21d2c94ad298",
  "created_at": "2026-02-05T19:31:13.736444093Z",
  "trace_id": "8af9171a45022df2eb74ba4e4c83be0f",
  "partner_id": "your-partner-id",
  "data": {
    "chat": {
      "id": "8f392755-6865-4b18-880a-227f9d8b458f",
      "is_group": false,
      "owner_handle": {"handle": "+12025551234", "id": "6d6c617f-187a-4dcd-a0d5-988347a8c092", "is_me": true,
                       "joined_at": "2026-01-04T05:48:51.321469Z", "left_at": null, "service": "iMessage", "status": "active"}
    },
    "id": "89e3566e-1d13-49e5-a8ee-48490d5bfeb7",
    "direction": "inbound",
    "sender_handle": {"handle": "+12025559876", "id": "e604375a-5913-483a-8278-c631e8f0ffda", "is_me": false,
                      "joined_at": "2026-01-04T05:48:51.321469Z", "left_at": null, "service": "iMessage", "status": "active"},
    "parts": [{"type": "text", "value": "Hello!"}],
    "effect": null,
    "reply_to": null,
    "sent_at": "2026-02-05T19:31:13.074Z",
    "delivered_at": null,
    "read_at": null,
    "service": "iMessage"
  }
}
]==]

describe("linqwebhooks.json", function()
  describe("API", function()
    it("shares the null sentinel with linq.null and core.null", function()
      assert.equals(core.null, json.null)
      assert.equals(linq.null, json.null)
      assert.equals("userdata", type(json.null))
    end)

    it("marks tables as arrays with json.array and reports it with json.is_array", function()
      local t = { 1, 2 }
      assert.equals(t, json.array(t))
      assert.is_true(json.is_array(t))
      assert.is_true(json.is_array(json.array()))
      assert.is_false(json.is_array({}))
      assert.is_false(json.is_array({ 1, 2 }))
      assert.is_false(json.is_array("[]"))
      assert.is_false(json.is_array(nil))
    end)

    it("returns exactly one value on success and nil, message on failure", function()
      assert.equals(1, select("#", json.decode("[1]")))
      assert.equals(1, select("#", json.decode("false")))
      assert.equals(1, select("#", json.encode({ 1 })))
      assert.equals(2, select("#", json.decode("[")))
      assert.equals(2, select("#", json.encode({ f = print })))
    end)

    it("raises on wrong argument types at the caller's level, naming the argument", function()
      local function msg(f, ...)
        local ok, err = pcall(f, ...)
        assert.is_false(ok)
        return err
      end
      assert.matches("02%-json_spec%.lua:%d+: bad argument #1 to 'decode' %(string expected, got nil%)",
                     msg(function() local v = json.decode() return v end))
      assert.matches("bad argument #1 to 'decode' %(string expected, got number%)",
                     msg(json.decode, 12))
      assert.matches("bad argument #1 to 'decode' %(string expected, got table%)",
                     msg(json.decode, {}))
      assert.matches("02%-json_spec%.lua:%d+: bad argument #1 to 'encode' %(value expected, got nil%)",
                     msg(function() local v = json.encode(nil) return v end))
      assert.matches("02%-json_spec%.lua:%d+: bad argument #1 to 'array' %(table expected, got string%)",
                     msg(function() local v = json.array("x") return v end))
      assert.matches("bad argument #1 to 'array' %(table already has a metatable%)",
                     msg(json.array, setmetatable({}, {})))
      -- the C functions check too
      assert.matches("string expected, got number", msg(core.json_decode, 1))
      assert.matches("value expected", msg(core.json_encode))
    end)
  end)

  describe("decoding", function()
    it("decodes scalars at the top level", function()
      assert.equals(null, decode_ok("null"))
      assert.equals(true, decode_ok("true"))
      assert.equals(false, decode_ok(" false "))
      assert.equals("x", decode_ok('"x"'))
      assert.equals("", decode_ok('""'))
      assert.equals(42, decode_ok("42"))
      assert.equals(-1.5, decode_ok("-1.5"))
    end)

    it("decodes nested objects and arrays, arrays marked and objects plain", function()
      local v = decode_ok('{"a":[1,[2,[]],{"b":{}}],"c":{"d":[null,true]}}')
      assert.same({ a = { 1, { 2, {} }, { b = {} } }, c = { d = { null, true } } }, v)
      assert.is_true(json.is_array(v.a))
      assert.is_true(json.is_array(v.a[2]))
      assert.is_true(json.is_array(v.a[2][2]))
      assert.is_false(json.is_array(v))
      assert.is_false(json.is_array(v.a[3]))
      assert.is_false(json.is_array(v.a[3].b))
      assert.is_nil(getmetatable(v.c))
    end)

    it("keeps nulls as json.null, inside arrays too (no holes)", function()
      local v = decode_ok('{"a":null,"list":[null,1,null]}')
      assert.equals(null, v.a)
      assert.equals(3, #v.list)
      assert.equals(null, v.list[1])
      assert.equals(1, v.list[2])
      assert.equals(null, v.list[3])
    end)

    it("lets the last of duplicate keys win", function()
      assert.same({ a = 2 }, decode_ok('{"a":1,"a":2}'))
    end)

    it("accepts any JSON whitespace around values and skips a UTF-8 BOM", function()
      assert.same({ 1, 2 }, decode_ok(" \t\r\n[ 1 ,\n2 ]\r\n "))
      assert.same({ 1 }, decode_ok("\239\187\191[1]"))
    end)

    it("decodes the message.received sample from the API reference", function()
      assert.is_true(#SAMPLE > 1100)
      local doc = decode_ok(SAMPLE)
      assert.equals("v3", doc.api_version)
      assert.equals("2026-02-03", doc.webhook_version)
      assert.equals("message.received", doc.event_type)
      assert.equals("2915e81c-5068-4796-ace2-21d2c94ad298", doc.event_id)
      assert.equals("2026-02-05T19:31:13.736444093Z", doc.created_at)
      assert.equals("8af9171a45022df2eb74ba4e4c83be0f", doc.trace_id)
      assert.equals("your-partner-id", doc.partner_id)
      local d = doc.data
      assert.equals("8f392755-6865-4b18-880a-227f9d8b458f", d.chat.id)
      assert.equals(false, d.chat.is_group)
      assert.equals("+12025551234", d.chat.owner_handle.handle)
      assert.equals(true, d.chat.owner_handle.is_me)
      assert.equals(null, d.chat.owner_handle.left_at)
      assert.equals(linq.null, d.chat.owner_handle.left_at)
      assert.equals("89e3566e-1d13-49e5-a8ee-48490d5bfeb7", d.id)
      assert.equals("inbound", d.direction)
      assert.equals("+12025559876", d.sender_handle.handle)
      assert.equals(false, d.sender_handle.is_me)
      assert.is_true(json.is_array(d.parts))
      assert.same({ { type = "text", value = "Hello!" } }, d.parts)
      assert.equals(null, d.effect)
      assert.equals(null, d.reply_to)
      assert.equals(null, d.delivered_at)
      assert.equals(null, d.read_at)
      assert.equals("2026-02-05T19:31:13.074Z", d.sent_at)
      assert.equals("iMessage", d.service)
      -- and it survives a round-trip unchanged
      assert.same(doc, (roundtrip(doc)))
    end)
  end)

  describe("round-trips", function()
    it("round-trips nested tables, nulls, booleans and strings", function()
      local v = {
        s = "text", n = 3, f = 2.5, t = true, fa = false, z = null,
        list = { 1, "two", { three = 3 }, { 4, { 5 } }, null, false },
        obj = { a = { b = { c = { "deep" } } } },
      }
      local back = roundtrip(v)
      assert.same(v, back)
      assert.is_true(json.is_array(back.list))
      assert.is_true(json.is_array(back.obj.a.b.c))
    end)

    it("encodes empty tables as {} unless marked as arrays", function()
      assert.equals("{}", json.encode({}))
      assert.equals("[]", json.encode(json.array()))
      assert.equals("[]", json.encode(json.array({})))
      assert.equals("[]", json.encode(decode_ok("[]")))
      assert.equals("{}", json.encode(decode_ok("{}")))
      assert.equals('{"a":[]}', json.encode({ a = json.array() }))
      assert.equals('[[],{},[[]]]', json.encode(decode_ok('[[],{},[[]]]')))
      local back = roundtrip({ empty_array = json.array(), empty_object = {} })
      assert.is_true(json.is_array(back.empty_array))
      assert.is_false(json.is_array(back.empty_object))
      assert.is_nil(next(back.empty_array))
      assert.is_nil(next(back.empty_object))
    end)

    it("encodes sequences as arrays in order and string-keyed tables as objects", function()
      assert.equals("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.equals('["a",null,"c"]', json.encode({ "a", null, "c" }))
      assert.equals('{"k":"v"}', json.encode({ k = "v" }))
      assert.equals('{"1":"one"}', json.encode({ ["1"] = "one" }))
      local big = {}
      for i = 1, 5000 do
        big[i] = i * 3
      end
      local back = roundtrip(big)
      assert.equals(5000, #back)
      for i = 1, 5000 do
        assert.equals(i * 3, back[i])
      end
    end)

    it("encodes top-level scalars", function()
      assert.equals("null", json.encode(null))
      assert.equals("true", json.encode(true))
      assert.equals("false", json.encode(false))
      assert.equals('"hi"', json.encode("hi"))
      assert.equals("7", json.encode(7))
    end)

    it("encodes a table referenced twice (not a cycle) in both places", function()
      local shared = { x = 1 }
      assert.same({ a = shared, b = { shared, shared } }, (roundtrip({ a = shared, b = { shared, shared } })))
    end)

    it("ignores metatables other than the array marker", function()
      local t = setmetatable({ a = 1 }, { __index = function() return "x" end })
      assert.equals('{"a":1}', json.encode(t))
    end)
  end)

  describe("strings", function()
    it("passes multi-byte UTF-8 through unchanged both ways", function()
      local s = "h\195\169llo \226\156\147 \240\159\152\128 \228\184\173\230\150\135"
      assert.equals('"' .. s .. '"', json.encode(s))
      assert.equals(s, decode_ok('"' .. s .. '"'))
      assert.same({ [s] = s }, (roundtrip({ [s] = s })))
    end)

    it("decodes \\uXXXX escapes to UTF-8, surrogate pairs included, any hex case", function()
      assert.equals("\195\169", decode_ok('"\\u00e9"'))
      assert.equals("\195\169", decode_ok('"\\u00E9"'))
      assert.equals("\226\156\147", decode_ok('"\\u2713"'))
      assert.equals("\240\159\152\128", decode_ok('"\\ud83d\\ude00"'))
      assert.equals("\240\159\152\128", decode_ok('"\\uD83D\\uDE00"'))
      assert.equals("A\240\159\152\128B", decode_ok('"A\\uD83D\\uDE00B"'))
      assert.equals("/\"\\\b\f\n\r\t", decode_ok('"\\/\\"\\\\\\b\\f\\n\\r\\t"'))
      assert.same({ ["\195\169"] = 1 }, decode_ok('{"\\u00e9":1}'))
    end)

    it("refuses lone surrogates and malformed escapes", function()
      decode_fails('"\\uD800"', "^invalid JSON at byte 2$")
      decode_fails('"\\uDC00"', "^invalid JSON at byte 2$")
      decode_fails('"\\uD83Dx"', "^invalid JSON at byte 2$")
      decode_fails('"\\uD800\\u0041"', "^invalid JSON at byte 2$")
      decode_fails('"\\x"', "^invalid JSON at byte 2$")
      decode_fails('"\\u12"', "^invalid JSON at byte 2")
      decode_fails('"\\u12G4"', "^invalid JSON at byte 2: invalid \\u escape$")
      decode_fails('["ok", "\\uZZZZ"]', "^invalid JSON at byte 9: invalid \\u escape$")
      -- an escaped backslash followed by "u12G4" is fine
      assert.equals("\\u12G4", decode_ok('"\\\\u12G4"'))
    end)

    it("passes invalid UTF-8 bytes through unchanged (no validation)", function()
      local s = "\255\254\192\128\237\160\128"
      assert.equals('"' .. s .. '"', json.encode(s))
      assert.equals(s, decode_ok('"' .. s .. '"'))
    end)

    it("escapes quotes, backslashes and control characters", function()
      assert.equals('"a\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f/"', json.encode("a\"b\\c\n\t\r\b\f\1\31/"))
      local s = ""
      for i = 1, 31 do
        s = s .. string.char(i)
      end
      assert.equals(s, (roundtrip(s)))
    end)

    it("encodes embedded NUL bytes as \\u0000 and decodes them back", function()
      assert.equals('"a\\u0000b"', json.encode("a\0b"))
      assert.equals('"\\u0000"', json.encode("\0"))
      assert.equals("a\0b", decode_ok('"a\\u0000b"'))
      assert.equals("\0\0", decode_ok('"\\u0000\\u0000"'))
      -- byte 0xC0 next to NULs (the internal mapping uses it) stays intact
      local tricky = "\192\0\192\128\0\192\193x\0"
      assert.equals(tricky, (roundtrip(tricky)))
      assert.equals(tricky, decode_ok(json.encode(tricky)))
      -- NULs in keys and values, several strings in one document
      local v = { ["k\0ey"] = "v\0al", list = { "\0", "plain", "\192" }, other = "\192\128" }
      assert.same(v, (roundtrip(v)))
      -- a literal backslash followed by "u0000" is not a NUL
      assert.equals("\\u0000", decode_ok('"\\\\u0000"'))
      assert.same({ "\\u0000", "\0" }, decode_ok('["\\\\u0000", "\\u0000"]'))
    end)

    it("refuses raw NUL bytes in the input", function()
      decode_fails('"a\0b"', "^invalid JSON at byte 3: NUL byte$")
      decode_fails("[1]\0", "^invalid JSON at byte 4: NUL byte$")
    end)
  end)

  describe("numbers", function()
    it("decodes integer literals as integers and other numbers as floats", function()
      assert.equals(0, decode_ok("0"))
      assert.equals(-7, decode_ok("-7"))
      assert.equals(1, decode_ok("1.0"))
      assert.equals(1000, decode_ok("1e3"))
      assert.equals(0.1, decode_ok("0.1"))
      assert.equals(-2.5e-3, decode_ok("-2.5E-3"))
      if INTEGERS then
        assert.equals("integer", math.type(decode_ok("12")))
        assert.equals("integer", math.type(decode_ok("-0")))
        assert.equals("float", math.type(decode_ok("1.0")))
        assert.equals("float", math.type(decode_ok("1e3")))
        assert.equals("float", math.type(decode_ok("0.5")))
        assert.equals("integer", math.type(decode_ok('{"size_bytes":245678}').size_bytes))
      end
    end)

    it("keeps 64-bit integers exact on Lua 5.4 (doubles on LuaJIT)", function()
      local v = decode_ok("[9007199254740992,9007199254740993,9223372036854775807,-9223372036854775808]")
      if INTEGERS then
        assert.equals(math.tointeger(2 ^ 53), v[1])
        assert.equals(math.tointeger(2 ^ 53) + 1, v[2])
        assert.equals(math.maxinteger, v[3])
        assert.equals(math.mininteger, v[4])
        for i = 1, 4 do
          assert.equals("integer", math.type(v[i]))
        end
        assert.equals("[9007199254740992,9007199254740993,9223372036854775807,-9223372036854775808]",
                      json.encode(v))
        -- beyond int64 a literal becomes the nearest float
        local big = decode_ok("9223372036854775808")
        assert.equals("float", math.type(big))
        assert.equals(2 ^ 63, big)
        assert.equals("float", math.type(decode_ok("-9223372036854775809")))
      else
        -- doubles: precision is lost beyond 2^53 (documented)
        assert.equals(2 ^ 53, v[1])
        assert.equals(2 ^ 53, v[2])
        assert.equals(2 ^ 63, v[3])
        assert.equals(-2 ^ 63, v[4])
        assert.equals("9007199254740992", json.encode(2 ^ 53))
      end
    end)

    it("encodes Lua 5.4 integers exactly over the whole int64 range", function()
      if not INTEGERS then
        return
      end
      assert.equals("9223372036854775807", json.encode(math.maxinteger))
      assert.equals("-9223372036854775808", json.encode(math.mininteger))
      assert.equals("9007199254740993", json.encode(math.tointeger(2 ^ 53) + 1))
      assert.equals("[0,-1,1]", json.encode({ 0, -1, 1 }))
    end)

    it("encodes floats so that they read back exactly", function()
      assert.equals("0.1", json.encode(0.1))
      assert.equals("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.equals("-1.5", json.encode(-1.5))
      assert.equals("1e+300", json.encode(1e300))
      assert.equals("5", json.encode(5.0))
      for _, x in ipairs({ 1 / 3, 2 / 3, 0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                           -123456.789, 2 ^ 53, 2 ^ 60, 1e21, 1e-7, 3.14159265358979 }) do
        local s = json.encode(x)
        assert.equals(x, decode_ok(s))
        assert.equals(x, tonumber(s))
      end
      local seed = os.time()
      math.randomseed(seed)
      for _ = 1, 2000 do
        local x = (math.random() - 0.5) * 10 ^ math.random(-300, 300)
        local back = decode_ok(json.encode(x))
        assert(back == x, "float round-trip failed for " .. string.format("%.17g", x) .. " seed " .. seed)
      end
    end)

    it("refuses NaN and infinities on encode", function()
      encode_fails(0 / 0, "^cannot encode NaN$")
      encode_fails(math.huge, "^cannot encode an infinite number$")
      encode_fails({ a = { -math.huge } }, "^cannot encode an infinite number %(at a%[1%]%)$")
    end)

    it("decodes literals beyond the double range to infinities", function()
      assert.equals(math.huge, decode_ok("1e400"))
      assert.equals(-math.huge, decode_ok("-1e400"))
      assert.equals(0, decode_ok("1e-400"))
    end)

    it("refuses numbers outside the JSON grammar", function()
      decode_fails("01", "^invalid JSON at byte 1: malformed number$")
      decode_fails("[1.]", "^invalid JSON at byte 2: malformed number$")
      decode_fails('{"a":-01}', "^invalid JSON at byte 6: malformed number$")
      decode_fails("1.e5", "^invalid JSON at byte 1: malformed number$")
      for _, s in ipairs({ ".5", "+1", "-", "1e", "1e+", "0x10", "--1", "1.2.3", "NaN", "Infinity", "-Infinity" }) do
        decode_fails(s)
        decode_fails("[" .. s .. "]")
      end
    end)
  end)

  describe("invalid input", function()
    it("refuses empty input", function()
      decode_fails("", "^invalid JSON: empty input$")
      decode_fails(" \n\t ", "^invalid JSON: empty input$")
    end)

    it("refuses every truncation of a valid document", function()
      local doc = '{"a":[1,2.5,{"b":null,"c":"x\\u00e9y"}],"d":true,"e":"\\u0000"}'
      assert.is_table(decode_ok(doc))
      for n = 1, #doc - 1 do
        decode_fails(doc:sub(1, n))
      end
      local sample_prefix = SAMPLE:sub(1, 700)
      decode_fails(sample_prefix)
    end)

    it("refuses trailing garbage and reports its position", function()
      decode_fails("[1,2]x", "^invalid JSON at byte 6: unexpected data after the JSON value$")
      decode_fails("{} {}", "^invalid JSON at byte 4: unexpected data after the JSON value$")
      decode_fails("nulll", "^invalid JSON at byte 5")
      decode_fails('"\\u0000" x', "^invalid JSON at byte 10: unexpected data after the JSON value$")
      assert.same({ 1 }, decode_ok("[1]  \n"))
    end)

    it("reports the byte where structural errors are found", function()
      decode_fails("[1,]", "^invalid JSON at byte 4$")
      decode_fails('{"a":1,}', "^invalid JSON at byte 8$")
      decode_fails("[1 2]", "^invalid JSON at byte 4$")
      decode_fails("{a:1}", "^invalid JSON at byte [23]$") -- cJSON reports inside the key
      decode_fails("'a'", "^invalid JSON at byte 1$")
      decode_fails("// c\n1", "^invalid JSON at byte 1$")
      decode_fails("tru", "^invalid JSON at byte 1$")
      decode_fails('["\192\\u0000", 01]', "^invalid JSON at byte 13: malformed number$")
    end)

    it("never raises on garbage input", function()
      local seed = os.time()
      math.randomseed(seed)
      local alphabet = '{}[]:,"\\0123456789.eE+-truefalsnul u\0\192 \n'
      for _ = 1, 3000 do
        local t = {}
        for i = 1, math.random(1, 40) do
          local k = math.random(1, #alphabet)
          t[i] = alphabet:sub(k, k)
        end
        local s = table.concat(t)
        local ok, v, err = pcall(json.decode, s)
        assert(ok, "decode raised on " .. string.format("%q", s) .. " seed " .. seed)
        assert(v ~= nil or type(err) == "string")
      end
    end)
  end)

  describe("limits", function()
    it("decodes 128 levels of nesting and refuses 129", function()
      local v = decode_ok(nest_text(128, "1"))
      for _ = 1, 127 do
        v = v[1]
      end
      assert.same({ 1 }, v)
      decode_fails(nest_text(129, "1"), "^invalid JSON at byte 129: nesting deeper than 128 levels$")
      -- the 129th '{' follows 128 times '{"a":' (5 bytes each)
      decode_fails(string.rep('{"a":', 129) .. "1" .. string.rep("}", 129),
        "^invalid JSON at byte 641: nesting deeper than 128 levels$")
    end)

    it("names the nesting limit beyond cJSON's own limit of 1000 levels", function()
      -- cJSON stops at 1000 levels and reported only "invalid JSON at byte 1001"
      decode_fails(nest_text(1001), "^invalid JSON at byte 129: nesting deeper than 128 levels$")
      decode_fails(string.rep("[", 5000), "^invalid JSON at byte 129: nesting deeper than 128 levels$")
      decode_fails("  " .. string.rep('{"k":', 2000), "^invalid JSON at byte 643: nesting deeper than 128 levels$")
      -- brackets inside strings (and escaped quotes) do not count
      decode_fails('["[[[\\"{{", ' .. nest_text(1001) .. "]",
        "^invalid JSON at byte 140: nesting deeper than 128 levels$")
      -- positions count the caller's bytes, also when the text holds \u0000
      decode_fails('["\\u0000", ' .. nest_text(1001) .. "]",
        "^invalid JSON at byte 139: nesting deeper than 128 levels$")
      -- a syntax error before the limit is still reported as such
      decode_fails("[1,,2" .. string.rep("[", 2000), "^invalid JSON at byte 4$")
    end)

    it("refuses absurdly deep input without crashing", function()
      decode_fails(nest_text(100000), "nesting deeper than 128 levels")
      decode_fails(string.rep("[", 100000), "nesting deeper than 128 levels")
    end)

    it("encodes 128 levels of nesting and refuses 129", function()
      local s = json.encode(nest_table(128))
      assert.equals(nest_text(127, "{}"), s)
      encode_fails(nest_table(129), "^cannot encode tables nested deeper than 128 levels")
    end)

    it("refuses cycles instead of hanging", function()
      local t = {}
      t.self = t
      encode_fails(t, "^cannot encode a table that contains itself %(cycle%) %(at self%)$")
      local a, b = {}, {}
      a.b = b
      b.list = { a }
      encode_fails(a, "cycle%) %(at b%.list%[1%]%)$")
      local arr = json.array()
      arr[1] = arr
      encode_fails(arr, "cycle")
    end)
  end)

  describe("encoding errors", function()
    it("refuses sparse and mixed tables and bad keys", function()
      encode_fails({ [1] = "a", [3] = "c" }, "^cannot encode a sparse array")
      encode_fails({ [2] = "b" }, "^cannot encode a sparse array")
      encode_fails({ [0] = "z" }, "^cannot encode a sparse array")
      encode_fails({ [-1] = "z" }, "^cannot encode a sparse array")
      encode_fails({ 1, 2, x = 3 }, "^cannot encode a table mixing array and object keys$")
      encode_fails(json.array({ x = 1 }), "^cannot encode a table mixing array and object keys$")
      encode_fails({ [1.5] = 1 }, "^cannot encode a table key of type number")
      encode_fails({ [true] = 1 }, "^cannot encode a table key of type boolean")
      encode_fails({ a = { [{}] = 1 } }, "^cannot encode a table key of type table .* %(at a%)$")
    end)

    it("refuses values that have no JSON form, naming where they are", function()
      encode_fails(print, "^cannot encode a function value$")
      encode_fails({ a = { b = { 1, print } } }, "^cannot encode a function value %(at a%.b%[2%]%)$")
      encode_fails({ co = coroutine.create(function() end) }, "^cannot encode a thread value %(at co%)$")
      encode_fails({ io.stdout }, "^cannot encode a userdata value %(at %[1%]%)$")
    end)

    it("still encodes after an error (no state left behind)", function()
      encode_fails({ f = print }, "function")
      assert.equals('{"ok":true}', json.encode({ ok = true }))
    end)
  end)
end)
