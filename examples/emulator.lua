-- Runs the local Linq API emulator in the foreground (Ctrl-C stops it).
--
--   eval "$(make -s env)"
--   lua5.4 examples/emulator.lua [port]        # default port 8787; 0 = any free port
--
-- Environment: LINQ_API_V3_API_KEY (the bearer token to accept, default "test_key"),
-- LINQ_EMULATOR_STATE (a state file so subscriptions survive restarts),
-- LINQ_EMULATOR_FAST=1 (retry after 0.5 s, 1 s, 2 s ... instead of Linq's ~25 minute schedule).
local emulator = require "linqwebhooks.emulator"

local port = tonumber(arg and arg[1] or "") or 8787
local opts = {
  host = "127.0.0.1",
  port = port,
  api_key = os.getenv("LINQ_API_V3_API_KEY") or "test_key",
  state_file = os.getenv("LINQ_EMULATOR_STATE"),
}
if os.getenv("LINQ_EMULATOR_FAST") == "1" then
  opts.delivery = { attempts = 10, base_delay = 0.5, max_delay = 8, timeout = 10 }
end
local ok, err = emulator.serve(opts)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
