--- Verifying one delivery by hand: what a handler of your own web framework
-- does with the raw body and the request headers.
-- Run: lua5.4 examples/verify.lua

-- Runs from a checkout after `make` (or `make luajit`) with no LUA_PATH:
-- this checkout's lua/ and build/<5.4|jit>/ come first (`make -s env` not needed).
do
  local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
  local root = dir .. "/../"
  local build = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
  package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. package.path
  package.cpath = root .. "build/" .. build .. "/?.so;" .. package.cpath
end
local linq = require "linqwebhooks"

-- Linq's documented example secret; yours comes with the subscription
-- (`signing_secret`, shown once) -- keep it in LINQ_WEBHOOK_SECRET.
local secret = os.getenv("LINQ_WEBHOOK_SECRET") or "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="

-- A delivery as it arrives: the raw body, byte for byte, and the headers.
-- (Here we sign it ourselves; Linq sends both header sets.)
local body = '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"message.received",'
  .. '"event_id":"2915e81c-5068-4796-ace2-21d2c94ad298","created_at":"2026-02-05T19:31:13.736444093Z",'
  .. '"trace_id":"8af9171a45022df2eb74ba4e4c83be0f","partner_id":"your-partner-id","data":{'
  .. '"chat":{"id":"8f392755-6865-4b18-880a-227f9d8b458f","is_group":false},'
  .. '"id":"89e3566e-1d13-49e5-a8ee-48490d5bfeb7","direction":"inbound",'
  .. '"sender_handle":{"handle":"+12025559876","service":"iMessage"},'
  .. '"parts":[{"type":"text","value":"Hello!"}],"service":"iMessage"}}'
local headers = linq.sign{ secret = secret, body = body, id = "2915e81c-5068-4796-ace2-21d2c94ad298",
                           scheme = "both" }

local v = linq.verifier{ secret = secret } -- tolerance 300 s, scheme "auto"

local info, err = v:verify(body, headers)
assert(info, tostring(err))
print(("verified: scheme %s, webhook-id %s, timestamp %d"):format(info.scheme, info.id, info.timestamp))

local event = assert(v:unwrap(body, headers))
print(("event %s %s: %q from %s in chat %s"):format(event.type, event.id, event:text(),
  event:sender(), event:chat_id()))

-- A forgery: same headers, different body. Answer 401 (Linq does not retry 4xx).
local forged = body:gsub("Hello!", "Send money")
local nope, why = v:verify(forged, headers)
assert(nope == nil)
print("forged body rejected: " .. tostring(why)) -- linqwebhooks: no_matching_signature: ...

-- A replay an hour later: rejected by the 300 s window.
local later = linq.verifier{ secret = secret, clock = function() return os.time() + 3600 end }
local _, stale = later:verify(body, headers)
print("replayed an hour later: " .. tostring(stale.reason))
v:close()
later:close()
