-- bench/verify.lua -- ns per v:verify from Lua next to the OpenSSL floor
-- (bench/hmac_floor.c: pre-keyed HMAC + base64 + compare), same run.
-- usage: lua5.4 bench/verify.lua build/bench/hmac_floor
local linq = require "linqwebhooks"
local core = require "linqwebhooks.core"
local process = require "linqwebhooks.process"
local util = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/util.lua")

local floor_bin = assert(arg[1], "usage: verify.lua PATH_TO_hmac_floor")
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local ROUNDS = 5

local sample = assert(util.read_file("bench/message_received.json"))
local cases = {
  { name = "0 B", body = "" },
  { name = string.format("%.1f KB sample", #sample / 1000), body = sample },
  { name = "64 KB", body = string.rep("x", 65536) },
  { name = "1 MB", body = string.rep("x", 1048576) },
}

-- iterations so one round takes roughly 0.2 s
local function iterations(size)
  return math.max(20, math.floor(200000000 / (600 + size * 0.7)))
end

local function best_of(rounds, iters, fn)
  local best = math.huge
  for _ = 1, rounds do
    local t0 = process.now_ns()
    for _ = 1, iters do
      fn()
    end
    local dt = (process.now_ns() - t0) / iters
    if dt < best then
      best = dt
    end
  end
  return best
end

print(string.format("linqwebhooks %s, %s, %s", linq.VERSION, _VERSION, core.openssl_version))
local verifier_mod = require "linqwebhooks.verifier"
local ffi_on = verifier_mod.use_ffi
print("binding: " .. (ffi_on and "FFI (linqwebhooks.ffi); 'classic ns' = the Lua C-API binding"
  or "classic Lua C-API binding"))
print(string.format("%-16s %12s %10s %8s %12s %8s %12s", "body", "v:verify ns", "floor ns", "ratio",
  "C API ns", "ratio", ffi_on and "classic ns" or ""))
for _, c in ipairs(cases) do
  local v = linq.verifier { secret = SECRET, tolerance = false }
  local headers = linq.sign { secret = SECRET, body = c.body, id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
                              timestamp = 1614265330 }
  assert(v:verify(c.body, headers))
  local iters = iterations(#c.body)
  local lua_ns = best_of(ROUNDS, iters, function() v:verify(c.body, headers) end)
  local classic_ns
  if ffi_on then
    verifier_mod.use_ffi = false
    local vc = linq.verifier { secret = SECRET, tolerance = false }
    verifier_mod.use_ffi = true
    classic_ns = best_of(ROUNDS, iters, function() vc:verify(c.body, headers) end)
  end
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(c.body)
  f:close()
  local p = assert(io.popen(string.format("%s %s %d %d", floor_bin, path, iters, ROUNDS)))
  local line = p:read("*l")
  local floor_ns, capi_ns = line:match("^(%S+) (%S+)$")
  floor_ns, capi_ns = tonumber(floor_ns), tonumber(capi_ns)
  p:close()
  os.remove(path)
  print(string.format("%-16s %12.0f %10.0f %8.2f %12.0f %8.2f %12s", c.name, lua_ns, floor_ns,
    lua_ns / floor_ns, capi_ns, capi_ns / floor_ns,
    classic_ns and string.format("%.0f", classic_ns) or ""))
end
print("floor: pre-keyed OpenSSL HMAC-SHA256 + base64 + CRYPTO_memcmp in C (bench/hmac_floor.c);")
print("C API: linqwh_verify() on the same body; targets: ratio <= 1.3 at the sample, <= 1.1 at 64 KB")
