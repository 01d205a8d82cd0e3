-- Runs the local Linq API emulator in the foreground (Ctrl-C stops it).
--
--   lua5.4 examples/emulator.lua [port] [--verbose]   # default port 8787; 0 = any free port
--   make emulator PORT=9000 VERBOSE=1                 # the same through make
--
-- --verbose (or LINQ_EMULATOR_VERBOSE=1) logs every API request and delivery
-- attempt to stderr.
--
-- Environment: LINQ_API_V3_API_KEY (the bearer token to accept, default "test_key"),
-- LINQ_EMULATOR_STATE (a state file so subscriptions survive restarts),
-- LINQ_EMULATOR_FAST=1 (retry after 0.5 s, 1 s, 2 s ... instead of Linq's ~25 minute schedule).

-- Runs from a checkout after `make` (or `make luajit`) with no LUA_PATH:
-- this checkout's lua/ and build/<5.4|jit>/ come first (`make -s env` not needed).
do
  local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
  local root = dir .. "/../"
  local build = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
  package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. package.path
  package.cpath = root .. "build/" .. build .. "/?.so;" .. package.cpath
end
local emulator = require "linqwebhooks.emulator"

local port, verbose = 8787, os.getenv("LINQ_EMULATOR_VERBOSE") == "1"
for _, a in ipairs(arg or {}) do
  if a == "--verbose" or a == "-v" then
    verbose = true
  elseif tonumber(a) then
    port = tonumber(a)
  else
    io.stderr:write("usage: examples/emulator.lua [port] [--verbose]\n")
    os.exit(2)
  end
end
local opts = {
  host = "127.0.0.1",
  port = port,
  verbose = verbose,
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
