-- bench/verify.lua -- ns per v:verify from Lua next to the OpenSSL floor
-- (bench/hmac_floor.c: pre-keyed HMAC + base64 + compare), same run.
-- The rounds alternate: one floor round (the C program), one C API round
-- (the same program) and one v:verify round, ROUNDS times; each figure is the
-- best of its rounds, so all three see the same machine conditions.
-- usage: lua5.4 bench/verify.lua build/bench/hmac_floor
local linq = require "linqwebhooks"
local core = require "linqwebhooks.core"
local process = require "linqwebhooks.process"
local util = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/util.lua")

local floor_bin = assert(arg[1], "usage: verify.lua PATH_TO_hmac_floor")
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local ROUNDS = tonumber(os.getenv("LINQWH_BENCH_ROUNDS")) or 11

local sample = assert(util.read_file("bench/message_received.json"))
local cases = {
  { name = "0 B", body = "" },
  { name = string.format("%.1f KB sample", #sample / 1000), body = sample },
  { name = "64 KB", body = string.rep("x", 65536) },
  { name = "1 MB", body = string.rep("x", 1048576) },
}

-- iterations so one round takes roughly 0.1 s
local function iterations(size)
  return math.max(10, math.floor(100000000 / (600 + size * 0.7)))
end

-- ns per call of one round of fn, called iters times in a plain loop
local function round(iters, verify, v, body, headers)
  local t0 = process.now_ns()
  for _ = 1, iters do
    verify(v, body, headers)
  end
  return (process.now_ns() - t0) / iters
end

-- one round of the C program: floor ns, C API ns
local function c_round(path, iters)
  local p = assert(io.popen(string.format("%s %s %d 1", floor_bin, path, iters)))
  local line = p:read("*l")
  p:close()
  local floor_ns, capi_ns = line:match("^(%S+) (%S+)$")
  return tonumber(floor_ns), tonumber(capi_ns)
end

print(string.format("linqwebhooks %s, %s, %s", linq.VERSION, _VERSION, core.openssl_version))
local verifier_mod = require "linqwebhooks.verifier"
local ffi_on = verifier_mod.use_ffi
print("binding: " .. (ffi_on and "FFI (linqwebhooks.ffi); 'classic ns' = the Lua C-API binding"
  or "classic Lua C-API binding"))
print(string.format("best of %d alternated rounds (floor, C API, v:verify%s)", ROUNDS,
  ffi_on and ", classic" or ""))
print(string.format("%-16s %12s %10s %8s %12s %8s %12s", "body", "v:verify ns", "floor ns", "ratio",
  "C API ns", "ratio", ffi_on and "classic ns" or ""))
for _, c in ipairs(cases) do
  local v = linq.verifier { secret = SECRET, tolerance = false }
  local headers = linq.sign { secret = SECRET, body = c.body, id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
                              timestamp = 1614265330 }
  assert(v:verify(c.body, headers))
  local vc
  if ffi_on then
    verifier_mod.use_ffi = false
    vc = linq.verifier { secret = SECRET, tolerance = false }
    verifier_mod.use_ffi = true
    assert(vc:verify(c.body, headers))
  end
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(c.body)
  f:close()
  local iters = iterations(#c.body)
  local best = { lua = math.huge, floor = math.huge, capi = math.huge, classic = math.huge }
  round(iters, v.verify, v, c.body, headers) -- warm-up
  for _ = 1, ROUNDS do
    local floor_ns, capi_ns = c_round(path, iters)
    best.floor = math.min(best.floor, floor_ns)
    best.capi = math.min(best.capi, capi_ns)
    best.lua = math.min(best.lua, round(iters, v.verify, v, c.body, headers))
    if vc then
      best.classic = math.min(best.classic, round(iters, vc.verify, vc, c.body, headers))
    end
  end
  os.remove(path)
  print(string.format("%-16s %12.0f %10.0f %8.2f %12.0f %8.2f %12s", c.name, best.lua, best.floor,
    best.lua / best.floor, best.capi, best.capi / best.floor,
    vc and string.format("%.0f", best.classic) or ""))
end
print("floor: pre-keyed OpenSSL HMAC-SHA256 + base64 + CRYPTO_memcmp in C (bench/hmac_floor.c);")
print("C API: linqwh_verify() on the same body; targets: ratio <= 1.3 at the sample, <= 1.1 at 64 KB")
