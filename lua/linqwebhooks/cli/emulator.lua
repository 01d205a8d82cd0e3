--- linqwh emulator [--port P] [--host H] [--api-key K] [--state-file F] [--verbose]
-- Runs the local Linq API emulator (linqwebhooks.emulator.serve) until
-- SIGTERM/SIGINT.
local util = require "linqwebhooks.cli.util"

local M = {}

function M.define(parser)
  local c = parser:command("emulator", "Run the local Linq API emulator (API + signed deliveries).")
  c:option("--host", "Address to listen on."):default("127.0.0.1")
  c:option("--port", "Port (0 = any free port, shown at start)."):default("8787")
  c:option("--api-key", "Bearer token the emulator accepts (never printed).")
    :default("test_key"):argname("<key>"):show_default(false)
  c:option("--state-file", "JSON file keeping subscriptions across restarts (mode 0600)."):argname("<path>")
  c:flag("--verbose", "Log requests and delivery attempts to stderr.")
end

function M.run(a)
  local cmd = "emulator"
  local port = util.number(a.port, "--port", cmd, 0, 65535, true)
  util.hide(a.api_key)
  if a.api_key == "" or a.api_key:find("%s") then
    util.usage("option '--api-key' must be a non-empty token without whitespace", cmd)
  end
  local ok, done, err = pcall(require("linqwebhooks.emulator").serve, {
    host = a.host, port = port, api_key = a.api_key, state_file = a.state_file,
    verbose = a.verbose or false,
  })
  if not ok then
    util.usage(tostring(done):gsub("^.-linqwebhooks%.emulator%.serve: ", ""), cmd)
  end
  if not done then
    util.fail(err)
  end
end

return M
