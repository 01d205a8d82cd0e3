--- A standalone webhook receiver: verifies, de-duplicates and dispatches
-- deliveries for one subscription.
--
--   LINQ_WEBHOOK_SECRET=whsec_... lua5.4 examples/receiver.lua [port] [host]
--
-- Prints "linqwebhooks receiver listening on http://HOST:PORT/webhooks", one
-- line per request and what the handlers see; stops on SIGTERM / Ctrl-C.
-- Port 0 (the default) picks a free port. LINQ_WEBHOOK_SECRET may hold
-- several comma-separated secrets while you rotate subscriptions.
-- For the open internet put nginx in front (see examples/nginx).

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
local receiver = require "linqwebhooks.receiver"

local env = os.getenv("LINQ_WEBHOOK_SECRET")
if not env or env == "" then
  io.stderr:write("set LINQ_WEBHOOK_SECRET to the subscription's signing_secret\n")
  os.exit(2)
end
local secrets = {}
for s in env:gmatch("[^,]+") do
  secrets[#secrets + 1] = s
end

local hooks = linq.webhooks{ secrets = secrets }

hooks:on("message.received", function(ev)
  print(("message from %s in chat %s: %q"):format(tostring(ev:sender()), tostring(ev:chat_id()),
    tostring(ev:text())))
end)
hooks:on("message.*", function(ev)
  local dir = ev:is_inbound()
  print(("%s message %s (%s)"):format(ev.type, tostring(ev:message_id()),
    dir == nil and "direction unknown" or (dir and "inbound" or "outbound")))
end)
hooks:on("*", function(ev)
  print(("event %s %s"):format(ev.type, ev.id))
end)
hooks:on_error(function(err, ev)
  io.stderr:write(("handler failed for %s %s: %s\n"):format(ev.type, ev.id, tostring(err)))
end)

local ok, err = receiver.serve{
  hooks = hooks,
  port = tonumber(arg[1] or 0),
  host = arg[2] or "127.0.0.1",
}
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
