--- `linqwh`: Linq webhooks on the command line (bin/linqwh runs main()).
--
--   linqwh trigger | sign | verify | listen | emulator | subscriptions ... |
--          inbox ... | worker          (`linqwh COMMAND --help` for each)
--
-- Each command lives in linqwebhooks.cli.<name> with two functions:
-- define(parser) adds the command (argparse), run(args) does it and returns
-- normally (exit 0) or raises util.fail (exit 1) / util.usage (exit 2).
local util = require "linqwebhooks.cli.util"

local M = {}

M.COMMANDS = { "trigger", "sign", "verify", "listen", "emulator", "subscriptions", "inbox", "worker" }

--- The argparse parser of the whole command line.
function M.parser()
  local argparse = require "argparse"
  local p = argparse("linqwh", "Linq Partner API v3 webhooks from the command line: send signed test"
    .. " deliveries, sign and verify, receive, run the local emulator, manage subscriptions,"
    .. " inspect the durable inbox.")
    :epilog("Exit status: 0 success, 1 a failed check or API error (message on stderr), 2 bad usage.\n"
      .. "Run `linqwh COMMAND --help` for the options of a command.")
    :command_target("command")
    :help_max_width(100)
  for _, name in ipairs(M.COMMANDS) do
    require("linqwebhooks.cli." .. name).define(p)
  end
  return p
end

local function usage_exit(parser_obj, msg)
  error(setmetatable({ code = util.EXIT_USAGE, message = msg, usage = parser_obj:get_usage() },
    util.Exit), 0)
end

--- Runs the command line `args` (an array of strings); returns the exit code.
function M.main(args)
  util.reset_hidden()
  util.command = nil
  args = args or {}
  local code = util.EXIT_OK
  local ok, err = xpcall(function()
    local core_ok, core_err = pcall(require, "linqwebhooks.core")
    if not core_ok then
      util.fail("cannot load the C module linqwebhooks.core (in a checkout, run `make` first):\n"
        .. tostring(core_err):sub(1, 600))
    end
    local parser = M.parser()
    parser.error = usage_exit -- argparse calls it with the (sub)command's parser
    local plain = {}
    for i = 1, #args do
      plain[i] = args[i]
    end
    local opts = parser:parse(plain)
    local name = opts.command
    util.command = name .. (opts.action and (" " .. opts.action) or "")
    require("linqwebhooks.cli." .. name).run(opts)
  end, function(e)
    if util.is_exit(e) then
      return e
    end
    return debug.traceback(tostring(e), 2)
  end)
  if not ok then
    if util.is_exit(err) then
      if err.usage then
        util.warn(err.usage)
      end
      util.warn("linqwh: ", err.message)
      if err.code == util.EXIT_USAGE and not err.usage then
        local cmd = util.command or err.cmd
        util.warn("Try 'linqwh ", cmd or "", cmd and " " or "", "--help'.")
      end
      code = err.code
    else
      util.warn("linqwh: internal error: ", err)
      code = util.EXIT_FAIL
    end
  end
  io.stdout:flush()
  return code
end

return M
