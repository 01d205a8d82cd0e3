--- A receiver of the scale-out example: verifies, stores in the inbox and
-- answers 200 (503 when the inbox cannot store). No handler runs here.
--   lua5.4 examples/scale-out/receiver.lua NAME PORT
local app = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/app.lua")
local name, port = arg[1] or "receiver", tonumber(arg[2]) or 8788
local inbox = app.inbox()
local hooks = app.hooks(inbox, name)
require("linqwebhooks.receiver").serve{ hooks = hooks, host = "127.0.0.1", port = port,
                                         path = "/webhooks", log = false }
inbox:close()
