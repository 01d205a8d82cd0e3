-- verify / unwrap / handle / verify_file / stream accept header objects
-- (anything with :get(name), as lua-http's `headers`), not only tables.
local linq = require "linqwebhooks"
local headers = require "linqwebhooks.headers"

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local BODY = '{"api_version":"v3","event_type":"message.received","event_id":"ev_1",'
  .. '"created_at":"2026-01-01T00:00:00Z","trace_id":"t","partner_id":"p","data":{}}'

-- A small duck-typed header object: lowercase names, repeated values kept,
-- :get returns every value (as lua-http does), no :get_as_sequence.
local Duck = {}
Duck.__index = Duck
local function duck(list)
  local o = setmetatable({ _d = {} }, Duck)
  for _, kv in ipairs(list) do
    local k = kv[1]:lower()
    o._d[k] = o._d[k] or {}
    table.insert(o._d[k], kv[2])
  end
  return o
end
function Duck:get(name)
  local vs = self._d[name]
  if vs then
    return (table.unpack or unpack)(vs) -- luacheck: ignore 113
  end
end

-- The same, but only :get_as_sequence reports repeats (get gives the first).
local Seq = setmetatable({}, { __index = Duck })
Seq.__index = Seq
function Seq:get(name)
  return (Duck.get(self, name))
end
function Seq:get_as_sequence(name)
  local vs = self._d[name] or {}
  local s = { n = #vs }
  for i, v in ipairs(vs) do s[i] = v end
  return s
end

local function signed(scheme)
  local h = linq.sign { secret = SECRET, body = BODY, scheme = scheme or "standard" }
  local list = {}
  for k, v in pairs(h) do list[#list + 1] = { k, v } end
  return list
end

describe("header objects", function()
  it("linq.verify, verifier:verify and :unwrap accept an object with :get", function()
    for _, scheme in ipairs({ "standard", "legacy" }) do
      local h = duck(signed(scheme))
      local info, err = linq.verify(SECRET, BODY, h)
      assert.is_nil(err)
      assert.equal(scheme, info.scheme)
      local v = linq.verifier { secret = SECRET }
      assert.truthy(v:verify(BODY, h))
      local ev = assert(v:unwrap(BODY, h))
      assert.equal("ev_1", ev.id)
    end
  end)

  it("a repeated signature header in an object is rejected, not joined or picked", function()
    local list = signed()
    local fake = linq.sign { secret = "whsec_MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
                             body = BODY }
    list[#list + 1] = { "webhook-signature", fake["webhook-signature"] }
    for _, h in ipairs({ duck(list), setmetatable(duck(list), Seq) }) do
      local info, err = linq.verify(SECRET, BODY, h)
      assert.is_nil(info)
      assert.equal("invalid_headers", err.reason)
      assert.matches("repeated", err.message)
    end
  end)

  it("a wrong signature in an object is still 401 (no bypass)", function()
    local h = duck(signed())
    local info, err = linq.verify(SECRET, BODY .. " ", h)
    assert.is_nil(info)
    assert.equal("no_matching_signature", err.reason)
  end)

  it("hooks:handle and hooks:prepare accept an object", function()
    local hooks = linq.webhooks { secret = SECRET }
    local seen
    hooks:on("message.received", function(ev) seen = ev.id end)
    local res = hooks:handle(BODY, duck(signed()))
    assert.equal(200, res.status)
    assert.equal("ev_1", seen)
    local res2 = hooks:handle(BODY, duck({}))
    assert.equal(401, res2.status)
    assert.equal("missing_headers", res2.err.reason)
  end)

  it("verify_file and stream accept an object", function()
    local v = linq.verifier { secret = SECRET }
    local path = os.tmpname()
    local f = assert(io.open(path, "wb")); f:write(BODY); f:close()
    assert.truthy(v:verify_file(path, duck(signed())))
    os.remove(path)
    local s = assert(v:stream(duck(signed())))
    s:update(BODY)
    assert.truthy(s:finish())
  end)

  it("a plain table with a 'get' key is still a table; an __index that raises is no object", function()
    assert.is_false(headers.is_object({ get = function() end }))
    local strict = setmetatable({}, { __index = function(_, k) error("no field " .. k) end })
    assert.is_false(headers.is_object(strict))
    assert.is_false(headers.is_object("x"))
    local ok, err = pcall(linq.verify, SECRET, BODY, 42)
    assert.is_false(ok)
    assert.matches("argument 'headers' must be a table", err)
  end)

  it("works with a real lua-http headers object (LuaJIT, Debian's lua-http)", function()
    -- lua-http is packaged for Lua 5.1/LuaJIT: run under luajit from either interpreter
    local h = linq.sign { secret = SECRET, body = BODY }
    local script = ([[
      local linq = require "linqwebhooks"
      local H = require "http.headers"
      local h = H.new()
      for k, v in pairs(%s) do h:append(k:lower(), v) end
      local body = %q
      local info, err = linq.verify(%q, body, h)
      assert(info and info.scheme == "standard", tostring(err))
      h:append("webhook-signature", "v1,AAAA")
      local bad, e2 = linq.verify(%q, body, h)
      assert(bad == nil and e2.reason == "invalid_headers", "repeated accepted")
      local hooks = linq.webhooks { secret = %q }
      h = H.new()
      for k, v in pairs(%s) do h:append(k:lower(), v) end
      assert(hooks:handle(body, h).status == 200)
      print("ok")
    ]]):format(
      ("{ [%q] = %q, [%q] = %q, [%q] = %q }"):format("webhook-id", h["webhook-id"],
        "webhook-timestamp", h["webhook-timestamp"], "webhook-signature", h["webhook-signature"]),
      BODY, SECRET, SECRET, SECRET,
      ("{ [%q] = %q, [%q] = %q, [%q] = %q }"):format("webhook-id", h["webhook-id"],
        "webhook-timestamp", h["webhook-timestamp"], "webhook-signature", h["webhook-signature"]))
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write(script); f:close()
    local p = io.popen("env -u LD_PRELOAD LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/jit/?.so;;' "
      .. "luajit " .. path .. " 2>&1")
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.equal("ok\n", out)
  end)
end)

-- The classic Lua C-API binding (Lua 5.x; LuaJIT with use_ffi = false)
-- normalises header objects inside its C verify: no Lua wrapper on the hot
-- path, same results, messages and error positions as before.
describe("header objects, classic binding", function()
  local verifier_mod = require "linqwebhooks.verifier"
  local saved
  before_each(function() saved = verifier_mod.use_ffi; verifier_mod.use_ffi = false end)
  after_each(function() verifier_mod.use_ffi = saved end)

  it("v.verify is the bound C function itself", function()
    local v = linq.verifier { secret = SECRET }
    assert.equal("C", debug.getinfo(v.verify, "S").what)
  end)

  it("objects, plain tables and tables with a metatable but no :get give the same results", function()
    local v = linq.verifier { secret = SECRET }
    for _, scheme in ipairs({ "standard", "legacy" }) do
      local h = linq.sign { secret = SECRET, body = BODY, scheme = scheme }
      local list = signed(scheme)
      for _, hh in ipairs({ h, duck(list), setmetatable(duck(list), Seq),
                            setmetatable(h, { __tostring = function() return "t" end }) }) do
        local info, err = v:verify(BODY, hh)
        assert.is_nil(err)
        assert.equal(scheme, info.scheme)
        assert.equal(1, info.key_index)
      end
      local bad, err = v:verify(BODY .. " ", duck(list))
      assert.is_nil(bad)
      assert.equal("no_matching_signature", err.reason)
    end
    local list = signed()
    list[#list + 1] = { "webhook-signature", "v1,AAAA" }
    local info, err = v:verify(BODY, duck(list))
    assert.is_nil(info)
    assert.equal("invalid_headers", err.reason)
    assert.matches("repeated", err.message)
  end)

  it("a userdata that is no header object, and non-tables, raise at the caller's line", function()
    local v = linq.verifier { secret = SECRET }
    for _, bad in ipairs({ io.stdout, 42, "x", true }) do
      local function inner() v:verify(BODY, bad) end   -- the line to report
      local line = debug.getinfo(1, "l").currentline - 1
      local ok, err = pcall(inner)
      assert.is_false(ok)
      assert.matches(":" .. line .. ": verifier:verify: argument 'headers' must be a table, got "
        .. type(bad), err, 1, true)
    end
    -- the body is checked first, as before
    local ok, err = pcall(v.verify, v, nil, duck(signed()))
    assert.is_false(ok)
    assert.matches("argument 'body' must be a string", err)
  end)

  it("a :get that raises propagates its error; a closed verifier raises after normalising", function()
    local v = linq.verifier { secret = SECRET, clock = function() error("clock must not run") end }
    local broken = setmetatable({}, { __index = { get = function() error("broken get") end } })
    local ok, err = pcall(v.verify, v, BODY, broken)
    assert.is_false(ok)
    assert.matches("broken get", err)
    v:close()
    ok, err = pcall(v.verify, v, BODY, duck(signed()))
    assert.is_false(ok)
    assert.matches("verifier:verify: the verifier is closed", err)
  end)
end)
