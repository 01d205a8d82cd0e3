--- linqwh worker APP.lua [--max-attempts N] [--backoff S] [--visibility S] [--until-idle]
-- APP.lua returns a linq.webhooks dispatcher created with an inbox; the worker
-- runs its handlers on the stored deliveries (hooks:work) until SIGTERM/SIGINT
-- (or until idle), then prints the inbox's counts.
local util = require "linqwebhooks.cli.util"

local M = {}

local CMD = "worker"

function M.define(parser)
  local c = parser:command("worker", "Run the handlers of APP.lua on the deliveries stored in its inbox.")
  c:argument("app", "Lua file returning a linq.webhooks{ ..., inbox = ... } dispatcher."):argname("<APP.lua>")
  c:option("--max-attempts", "Attempts before a delivery goes to the dead letters."):default("10")
  c:option("--backoff", "Seconds before the first retry (doubling, capped at 300)."):default("1")
  c:option("--visibility", "Seconds before a delivery taken by a dead worker is taken over."):default("60")
  c:option("--name", "Worker name (default: host and pid)."):argname("<name>")
  c:flag("--until-idle", "Return when nothing is pending or in flight (cron, tests).")
  c:flag("--json", "Print the final counts as JSON.")
end

function M.run(a)
  local max_attempts = util.number(a.max_attempts, "--max-attempts", CMD, 1, 1000, true)
  local backoff = util.number(a.backoff, "--backoff", CMD, 0.001, 300)
  local visibility = util.number(a.visibility, "--visibility", CMD, 0.001, 86400)
  local chunk, lerr = loadfile(a.app)
  if not chunk then
    util.usage("cannot load " .. a.app .. ": " .. tostring(lerr), CMD)
  end
  local ok, hooks = pcall(chunk)
  if not ok then
    util.fail(a.app .. " raised: " .. tostring(hooks))
  end
  local okw, work = pcall(function() return hooks.work end)
  if not okw or type(work) ~= "function" then
    util.usage(a.app .. " must return a linq.webhooks dispatcher created with an inbox"
      .. " (got " .. type(hooks) .. ")", CMD)
  end
  util.warn("linqwh: worker running ", a.app, a.until_idle and " until idle" or " (Ctrl-C to stop)")
  local wok, stats, err = pcall(work, hooks, { max_attempts = max_attempts, backoff = backoff,
                                               visibility = visibility, until_idle = a.until_idle,
                                               worker = a.name })
  if not wok then
    local msg = tostring(stats)
    if msg:find("option '", 1, true) then
      util.usage(msg:gsub("^[^:]*:%d+: ", ""), CMD) -- a value hooks:work refuses
    end
    util.fail("worker: " .. msg)
  end
  if not stats then
    util.fail("worker: " .. tostring(err))
  end
  if a.json then
    return util.print_json(stats)
  end
  util.out(string.format("pending %d, in_flight %d, done %d, dead %d", stats.pending or 0,
    stats.in_flight or 0, stats.done or 0, stats.dead or 0))
end

return M
