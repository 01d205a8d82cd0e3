-- wrk script: every request is a distinct, validly signed Linq delivery
-- (the bench/message_received.json sample with a fresh event id), so the
-- dispatcher's de-duplication never turns a request into a cheap duplicate.
-- Signing runs in wrk's LuaJIT with this checkout's C module (build/jit).
-- Environment: LINQWH_ROOT (checkout), LINQWH_BENCH_SECRET (whsec_...).
-- The same script drives the plain `return 200` location, so both runs
-- send byte-for-byte the same kind of requests.
local root = assert(os.getenv("LINQWH_ROOT"), "LINQWH_ROOT is not set")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/jit/?.so;" .. package.cpath
-- the C keyring directly (what linq.sign uses), built once per thread so
-- the client spends ~1 us per request on signing
local core = require "linqwebhooks.core"

local secret = assert(os.getenv("LINQWH_BENCH_SECRET"), "LINQWH_BENCH_SECRET is not set")
local sample = assert(dofile(root .. "/bench/util.lua").read_file(root .. "/bench/message_received.json"))
local SAMPLE_ID = "2915e81c-5068-4796-ace2-21d2c94ad298"
local at = assert(sample:find(SAMPLE_ID, 1, true), "sample event id not found")
local head, tail = sample:sub(1, at - 1), sample:sub(at + #SAMPLE_ID)

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  threads[#threads + 1] = thread
end

local n, bad = 0, 0
local ts, kr

function init()
  ts = tostring(os.time())
  kr = core.keyring({ secret })
end

function request()
  n = n + 1
  -- same length as the sample's uuid: the body size stays the sample's
  local eid = string.format("%08x-0000-4000-8000-%012x", tid or 0, n)
  local body = head .. eid .. tail
  if n % 1024 == 0 then
    ts = tostring(os.time())
  end
  local id = "msg_" .. eid
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["webhook-id"] = id,
    ["webhook-timestamp"] = ts,
    ["webhook-signature"] = assert(kr:sign_standard(1, id, ts, body)),
    -- both header sets, as Linq sends them
    ["X-Webhook-Timestamp"] = ts,
    ["X-Webhook-Signature"] = assert(kr:sign_legacy(1, ts, body)),
  }, body)
end

function response(status, _, body)
  if status ~= 200 or (body ~= "ok" and body ~= "ok\n") then
    bad = bad + 1
  end
end

function done()
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (tonumber(t:get("bad")) or 0)
  end
  io.write(string.format("linqwh_bad_responses %d\n", total))
  io.write(string.format("linqwh_body_bytes %d\n", #head + 36 + #tail))
end
