--- linqwh inbox stats | dead | replay ID   (--sqlite PATH | --redis URL)
-- Looks into a durable inbox (linqwebhooks.inbox): counts, dead letters, and
-- moving a dead (or done) delivery back to pending.
local util = require "linqwebhooks.cli.util"

local M = {}

local CMD = "inbox"

local function common(c)
  c:option("--sqlite", "SQLite inbox file."):argname("<path>")
  c:option("--redis", "Redis inbox URL redis://[user:password@]host:port/db (password never printed).")
    :argname("<url>")
  c:option("--prefix", "Redis key prefix."):argname("<prefix>")
  c:flag("--json", "JSON output.")
end

--- Opens the inbox the options name.
function M.open(a)
  if (a.sqlite and a.redis) or not (a.sqlite or a.redis) then
    util.usage("give exactly one of --sqlite PATH or --redis URL", CMD)
  end
  if a.prefix and not a.redis then
    util.usage("option '--prefix' goes with --redis", CMD)
  end
  local ok, inbox_mod = pcall(require, "linqwebhooks.inbox")
  if not ok then
    util.fail("the inbox module is not available: " .. tostring(inbox_mod):sub(1, 300))
  end
  local inbox, err
  if a.sqlite then
    ok, inbox, err = pcall(inbox_mod.sqlite, { path = a.sqlite })
  else
    local pw = a.redis:match("^%a+://[^/@]-:([^/@]*)@")
    util.hide(pw)
    ok, inbox, err = pcall(inbox_mod.redis, { url = a.redis, prefix = a.prefix })
  end
  if not ok then
    local msg = tostring(inbox)
    if msg:find("module '[^']+' not found") then
      util.fail("the " .. (a.sqlite and "SQLite" or "Redis") .. " inbox is not available: "
        .. (msg:match("(module '[^']+' not found)")))
    end
    util.usage(msg:gsub("^[^:]*:%d+: ", ""), CMD)
  end
  if not inbox then
    util.fail("cannot open the inbox: " .. tostring(err))
  end
  return inbox
end

local function call(inbox, method, ...)
  local ok, res, err = pcall(inbox[method], inbox, ...)
  if not ok then
    util.fail(tostring(res))
  end
  if res == nil then
    util.fail(tostring(err))
  end
  return res
end

M.ACTIONS = {
  { name = "stats", help = "Counts of pending, in-flight, done and dead deliveries.",
    define = function() end,
    run = function(a, inbox)
      local s = call(inbox, "stats")
      if a.json then
        return util.print_json(s)
      end
      for _, k in ipairs({ "pending", "in_flight", "done", "dead" }) do
        util.out(string.format("%-10s %d", k, s[k] or 0))
      end
    end },
  { name = "dead", help = "The dead letters (deliveries whose handlers kept failing).",
    define = function() end,
    run = function(a, inbox)
      local list = call(inbox, "dead")
      if a.json then
        local json = require "linqwebhooks.json"
        local out = json.array()
        for i, d in ipairs(list) do
          out[i] = { id = d.id, event_type = d.event_type, attempts = d.attempts,
                     error = d.error or json.null }
        end
        return util.print_json(out)
      end
      local rows = {}
      for _, d in ipairs(list) do
        rows[#rows + 1] = { d.id, d.event_type, tostring(d.attempts),
                            (tostring(d.error or "")):gsub("%c", " "):sub(1, 120) }
      end
      util.print_table({ "EVENT_ID", "TYPE", "ATTEMPTS", "ERROR" }, rows)
    end },
  { name = "replay", help = "Move a dead (or done) delivery back to pending (attempts reset).",
    define = function(c) c:argument("id", "event_id of the delivery.") end,
    run = function(a, inbox)
      call(inbox, "replay", a.id)
      if a.json then
        util.print_json({ id = a.id, replayed = true })
      else
        util.out("replayed ", a.id)
      end
    end },
}

function M.define(parser)
  util.define_actions(parser, "inbox", "Inspect the durable inbox: stats, dead letters, replay.",
    M.ACTIONS, common)
end

function M.run(a)
  util.run_action(a, M.ACTIONS, CMD, M.open, function(inbox)
    pcall(inbox.close, inbox)
  end)
end

return M
