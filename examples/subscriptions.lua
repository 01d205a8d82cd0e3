-- examples/subscriptions.lua -- manage Linq webhook subscriptions.
--
-- With LINQ_API_V3_API_KEY set, this talks to the real Linq API (and creates,
-- changes and finally deletes one subscription). Without it, it starts the
-- local emulator and runs the same steps there.
--
--   lua5.4 examples/subscriptions.lua                     # emulator
--   LINQ_API_V3_API_KEY=... lua5.4 examples/subscriptions.lua   # real API
--   EXAMPLE_TARGET_URL=https://hooks.example.org/linq lua5.4 examples/subscriptions.lua

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

local emu
local opts = {}
if not os.getenv("LINQ_API_V3_API_KEY") then
  emu = require("linqwebhooks.emulator").spawn{ api_key = "example_key" }
  opts = { api_key = emu.api_key, base_url = emu.api_url }
  print("no LINQ_API_V3_API_KEY: using the emulator at " .. emu.api_url)
end

local client = linq.client(opts)

local function main()
  local events = assert(client.webhook_events:list())
  print(("%d subscribable event types, e.g. %s"):format(#events.events, events.events[1]))

  -- each target_url can be used by one subscription only: make ours unique
  local target = (os.getenv("EXAMPLE_TARGET_URL") or "https://example.com/linq-webhook")
    .. "?version=2026-02-03&example=" .. os.time()
  local sub, err = client.webhook_subscriptions:create{
    target_url = target,
    subscribed_events = { "message.received", "message.delivered" },
  }
  if not sub then
    -- err.name / err.status / err.code / err.message / err.trace_id
    error(tostring(err))
  end
  print("created " .. tostring(sub))
  -- signing_secret is returned by create only: store it now (never log it)
  print(("signing secret received (%d characters); store it for linq.verifier{}"):format(#sub.signing_secret))

  assert(sub:update{ subscribed_events = { "message.received", "message.read" },
                     phone_numbers = { "+12025550123" } })
  print("updated: phone filter " .. table.concat(sub.phone_numbers, ", ")
    .. ", message.read: " .. tostring(sub:subscribes_to("message.read")))
  assert(sub:update{ phone_numbers = linq.null })       -- remove the line filter
  print("updated: phone filter removed (all lines): " .. tostring(sub.phone_numbers == nil
    or sub.phone_numbers == linq.null or #sub.phone_numbers == 0))
  assert(sub:deactivate())
  print("deactivated: is_active = " .. tostring(sub.is_active))
  assert(sub:activate())
  print("activated: is_active = " .. tostring(sub.is_active))

  for _, s in ipairs(assert(client.webhook_subscriptions:list())) do
    print("  listed " .. tostring(s))
  end

  local again = assert(client.webhook_subscriptions:retrieve(sub.id))
  print("retrieved " .. again.id .. " (no secret here: " .. tostring(again.signing_secret) .. ")")

  assert(sub:delete())
  print("deleted " .. sub.id)
  local gone, gerr = client.webhook_subscriptions:retrieve(sub.id)
  print("after delete: " .. tostring(gone) .. ", " .. (gerr and gerr.name or "?"))
end

local ok, err = pcall(main)
client:close()
if emu then
  emu.stop()
end
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
