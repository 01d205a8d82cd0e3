-- Properties over many random cases: sign -> verify round-trips, any
-- single-byte change fails, and verify never raises on header garbage.
local linq = require "linqwebhooks"
local core = require "linqwebhooks.core"
local b64 = core.base64_encode

local CASES = os.getenv("LINQWH_VALGRIND") and 15 or 150

-- deterministic per run but different across runs: seed from the CSPRNG and
-- print it so a failure can be replayed
local seed = 0
for _ = 1, 4 do
  seed = seed * 256 + core.random_bytes(1):byte()
end
math.randomseed(seed)
print("properties seed " .. seed)

local function rand_bytes(n)
  local t = {}
  for i = 1, n do
    t[i] = string.char(math.random(0, 255))
  end
  return table.concat(t)
end

local function rand_printable(n, avoid)
  local t = {}
  for i = 1, n do
    local c
    repeat
      c = string.char(math.random(0x21, 0x7e))
    until not avoid or not avoid:find(c, 1, true)
    t[i] = c
  end
  return table.concat(t)
end

local function rand_secret()
  return "whsec_" .. b64(rand_bytes(math.random(16, 64)))
end

local function flip(s, pos)
  local b = s:byte(pos)
  local nb = (b + math.random(1, 255)) % 256
  return s:sub(1, pos - 1) .. string.char(nb) .. s:sub(pos + 1)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

-- every block runs once per binding of the C core (classic; FFI under LuaJIT);
-- the blocks keep their indentation (a wrapper, not a rewrite)
require("support.backends").each({ describe = describe, setup = setup, teardown = teardown }, function()
describe("sign -> verify round-trips", function()
  it("accepts every random case under both schemes and rejects every single-byte change", function()
    for _ = 1, CASES do
      local secret = rand_secret()
      local body = rand_bytes(math.random(0, 2000))
      local id = rand_printable(math.random(1, 64), ".")
      local ts = math.random(1, 2000000000)
      local h = linq.sign { secret = secret, body = body, id = id, timestamp = ts, scheme = "both" }
      local std = linq.verifier { secret = secret, scheme = "standard", tolerance = false }
      local leg = linq.verifier { secret = secret, scheme = "legacy", tolerance = false }
      local info = assert(std:verify(body, h))
      assert.are.equal("standard", info.scheme)
      assert.are.equal(id, info.id)
      assert.are.equal(ts, info.timestamp)
      assert.are.equal("legacy", assert(leg:verify(body, h)).scheme)

      -- body
      if #body > 0 then
        local bad = flip(body, math.random(1, #body))
        local _, e1 = std:verify(bad, h)
        local _, e2 = leg:verify(bad, h)
        assert.are.equal("no_matching_signature", e1 and e1.reason)
        assert.are.equal("no_matching_signature", e2 and e2.reason)
      end
      -- id (stay within the valid alphabet so the HMAC decides)
      local hid = copy(h)
      local pos = math.random(1, #id)
      local c
      repeat
        c = string.char(math.random(0x21, 0x7e))
      until c ~= "." and c ~= id:sub(pos, pos)
      hid["webhook-id"] = id:sub(1, pos - 1) .. c .. id:sub(pos + 1)
      local _, e = std:verify(body, hid)
      assert.are.equal("no_matching_signature", e and e.reason)
      -- timestamp: another digit string
      local hts = copy(h)
      local tss = h["webhook-timestamp"]
      pos = math.random(1, #tss)
      local d = tss:sub(pos, pos)
      local nd = tostring((tonumber(d) + math.random(1, 9)) % 10)
      hts["webhook-timestamp"] = tss:sub(1, pos - 1) .. nd .. tss:sub(pos + 1)
      hts["X-Webhook-Timestamp"] = hts["webhook-timestamp"]
      _, e = std:verify(body, hts)
      assert.are.equal("no_matching_signature", e and e.reason)
      _, e = leg:verify(body, hts)
      assert.are.equal("no_matching_signature", e and e.reason)
      -- signature: any byte of the signature value
      local hs = copy(h)
      local sig = h["webhook-signature"]
      hs["webhook-signature"] = flip(sig, math.random(4, #sig))
      _, e = std:verify(body, hs)
      assert.truthy(e and (e.reason == "no_matching_signature" or e.reason == "invalid_headers"))
      local hl = copy(h)
      hl["X-Webhook-Signature"] = flip(h["X-Webhook-Signature"], math.random(1, 64))
      _, e = leg:verify(body, hl)
      assert.truthy(e and (e.reason == "no_matching_signature" or e.reason == "invalid_headers"))
      -- key: another secret of the same length
      local other = linq.verifier { secret = rand_secret(), tolerance = false, scheme = "standard" }
      _, e = other:verify(body, h)
      assert.are.equal("no_matching_signature", e and e.reason)
      std:close()
      leg:close()
      other:close()
    end
  end)
end)

describe("verify on hostile headers", function()
  local REASONS = {
    missing_headers = true, invalid_headers = true, invalid_timestamp = true,
    timestamp_too_old = true, timestamp_too_new = true, no_matching_signature = true,
  }
  local NAMES = { "webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "x-webhook-timestamp",
    "X-Webhook-Signature" }

  local function garbage()
    local k = math.random(1, 9)
    if k == 1 then return rand_bytes(math.random(0, 64)) end
    if k == 2 then return rand_printable(math.random(0, 200)) end
    if k == 3 then return ("v1," .. rand_printable(44)):rep(math.random(1, 40), " ") end
    if k == 4 then return { "a", "b" } end
    if k == 5 then return math.random(0, 1e9) end
    if k == 6 then return string.rep("9", math.random(1, 30)) end
    if k == 7 then return rand_bytes(math.random(4000, 9000)) end
    if k == 8 then return "v1," .. b64(rand_bytes(32)) end
    return ""
  end

  it("never raises and always returns a documented reason", function()
    local v = linq.verifier { secrets = { rand_secret(), rand_secret() } }
    for _ = 1, CASES * 10 do
      local h = {}
      for _, n in ipairs(NAMES) do
        if math.random() < 0.7 then
          h[n] = garbage()
        end
      end
      if math.random() < 0.2 then
        h["WEBHOOK-ID"] = garbage()
      end
      local ok, info, err = pcall(v.verify, v, rand_bytes(math.random(0, 100)), h)
      assert.is_true(ok, tostring(info))
      assert.is_nil(info)
      assert.truthy(err and REASONS[err.reason], err and err.reason)
      assert.are.equal("string", type(err.message))
    end
  end)
end)
end)
