--- Shared helpers of the `linqwh` command line: exit codes, messages on
-- stderr with secrets redacted, secrets from flags or the environment,
-- tables, JSON lines, signals.
--
-- Commands raise util.fail(msg) (exit 1: a failed check or an API error) or
-- util.usage(msg) (exit 2: bad usage); linqwebhooks.cli.main catches both.
local M = {}

M.EXIT_OK, M.EXIT_FAIL, M.EXIT_USAGE = 0, 1, 2

local Exit = {}
Exit.__tostring = function(e)
  return "linqwh: " .. tostring(e.message)
end
M.Exit = Exit

--- Values that must never be printed (secrets, API keys, URL passwords).
local hidden = {}

function M.hide(value)
  if type(value) == "string" and #value >= 4 then
    hidden[#hidden + 1] = value
  end
  return value
end

function M.reset_hidden()
  hidden = {}
end

local function plain_replace(s, needle, by)
  local out, i = {}, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then
      break
    end
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = by
    i = b + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

--- s with every registered secret and anything shaped like a signing secret
-- (whsec_...) replaced by "***".
function M.redact(s)
  s = tostring(s)
  for _, v in ipairs(hidden) do
    s = plain_replace(s, v, "***")
  end
  return (s:gsub("whsec_[%w+/=_%-]+", "whsec_***"))
end

function M.fail(msg)
  error(setmetatable({ code = M.EXIT_FAIL, message = msg }, Exit), 0)
end

function M.usage(msg, cmd)
  error(setmetatable({ code = M.EXIT_USAGE, message = msg, cmd = cmd }, Exit), 0)
end

function M.is_exit(v)
  return getmetatable(v) == Exit
end

--- A line on stderr, redacted.
function M.warn(...)
  local parts = { ... }
  for i = 1, #parts do
    parts[i] = tostring(parts[i])
  end
  io.stderr:write(M.redact(table.concat(parts)), "\n")
  io.stderr:flush()
end

--- A line on stdout (flushed: output is often piped into another tool).
function M.out(...)
  io.stdout:write(...)
  io.stdout:write("\n")
  io.stdout:flush()
end

local getenv = require("linqwebhooks.options").getenv
M.getenv = getenv

--- The signing secret(s): the --secret values (repeatable, first = newest),
-- else $LINQ_WEBHOOK_SECRET. Checked by building a verifier (the library's
-- messages never contain the secret). Returns the list.
function M.secrets(values, cmd)
  local list = {}
  if type(values) == "string" then
    values = { values }
  end
  for _, v in ipairs(values or {}) do
    list[#list + 1] = v
  end
  if #list == 0 then
    list[1] = getenv("LINQ_WEBHOOK_SECRET")
  end
  if #list == 0 then
    M.usage("a signing secret is required: --secret whsec_... (or set LINQ_WEBHOOK_SECRET)", cmd)
  end
  for _, s in ipairs(list) do
    M.hide(s)
  end
  local linq = require "linqwebhooks"
  local ok, err = pcall(linq.verifier, { secrets = list })
  if not ok then
    M.usage("invalid --secret: " .. tostring(err):gsub("^.-linq%.verifier: ", ""), cmd)
  end
  err:close()
  return list
end

--- Adds the repeatable --secret option (read by M.secrets) to command c;
-- `note` (optional) goes into its help after "a rotation keyring".
function M.secret_option(c, note)
  c:option("--secret", "Signing secret whsec_... (repeat for a rotation keyring" .. (note or "") .. ")."
    .. " Default: $LINQ_WEBHOOK_SECRET."):count("*"):argname("<whsec_...>")
end

--- Whole stdin.
function M.read_stdin()
  return io.stdin:read("*a") or ""
end

--- "a,b , c" -> { "a", "b", "c" } (empty items dropped); a table of such
-- strings (a repeated option) is flattened.
function M.split_list(v)
  local out = {}
  local items = type(v) == "table" and v or { v }
  for _, s in ipairs(items) do
    for item in tostring(s):gmatch("[^,]+") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then
        out[#out + 1] = item
      end
    end
  end
  return out
end

--- Checks event type names against the catalogue (patterns "x.*" and "*"
-- allowed when `wildcards`); usage error naming close matches otherwise.
function M.check_event_types(list, cmd, wildcards)
  local known = {}
  for _, t in ipairs(require("linqwebhooks.event_types")) do
    known[t] = true
  end
  for _, name in ipairs(list) do
    local ok = known[name]
    if not ok and wildcards then
      ok = name == "*" or (name:match("^[%w_.]+%.%*$") ~= nil)
    end
    if not ok then
      local prefix = name:match("^([^.]+)%.") or name
      local close = {}
      for _, t in ipairs(require("linqwebhooks.event_types")) do
        if t:sub(1, #prefix) == prefix then
          close[#close + 1] = t
        end
      end
      M.usage("unknown event type '" .. name .. "'" .. (#close > 0
        and (" (did you mean one of: " .. table.concat(close, ", ") .. "?)")
        or " (see `linqwh subscriptions events`, or linq.EVENT_TYPES)"), cmd)
    end
  end
  return list
end

--- Prints rows (arrays of strings) under a header, columns aligned.
function M.print_table(header, rows)
  local width = {}
  for i, h in ipairs(header) do
    width[i] = #h
  end
  for _, r in ipairs(rows) do
    for i = 1, #header do
      r[i] = tostring(r[i] == nil and "" or r[i])
      if #r[i] > width[i] then
        width[i] = #r[i]
      end
    end
  end
  local function line(r)
    local cells = {}
    for i = 1, #header do
      cells[i] = i < #header and (r[i] .. string.rep(" ", width[i] - #r[i])) or r[i]
    end
    M.out(M.redact(table.concat(cells, "  ")))
  end
  line(header)
  for _, r in ipairs(rows) do
    line(r)
  end
end

--- One compact JSON document on its own line.
function M.print_json(v)
  local json = require "linqwebhooks.json"
  local s, err = json.encode(v)
  if not s then
    M.fail("cannot encode the output as JSON: " .. tostring(err))
  end
  M.out(M.redact(s))
end

--- A function of linqwebhooks.process (signals, chmod), loaded on first use.
function M.native(name)
  return require("linqwebhooks.process")[name]
end

--- Starts watching SIGTERM/SIGINT; returns a function telling whether one
-- arrived (its name) or nil.
function M.watch_signals()
  local watch, pending = M.native("signal_watch"), M.native("signal_pending")
  if not (watch and pending) then
    return function() return nil end
  end
  watch()
  return pending
end

--- Commands made of actions (`linqwh inbox stats`, `linqwh subscriptions
-- list`): `actions` is a list of { name, help, define(cmd), run(args, obj) }.
-- define_actions adds the command `name` with one sub-command per action,
-- each given its own arguments (act.define) and the shared ones (common).
function M.define_actions(parser, name, help, actions, common)
  local c = parser:command(name, help):command_target("action")
  for _, act in ipairs(actions) do
    local sc = c:command(act.name, act.help)
    act.define(sc)
    common(sc)
  end
end

--- Runs the action args.action: obj = open(args), act.run(args, obj), then
-- close(obj) whatever happened; an error of run is raised again after.
function M.run_action(args, actions, cmd, open, close)
  for _, act in ipairs(actions) do
    if act.name == args.action then
      local obj = open(args)
      local ok, err = pcall(act.run, args, obj)
      close(obj)
      if not ok then
        error(err, 0)
      end
      return
    end
  end
  M.usage("unknown action '" .. tostring(args.action) .. "'", cmd)
end

--- Integer option value check (argparse gives strings for typed values we
-- convert ourselves so the messages stay ours).
function M.number(v, name, cmd, min, max, integer)
  local n = tonumber(v)
  if not n or n ~= n or (min and n < min) or (max and n > max)
    or (integer and n % 1 ~= 0) then
    M.usage("option '" .. name .. "' must be " .. (integer and "a whole number" or "a number")
      .. (min and (" >= " .. min) or "") .. (max and (" and <= " .. max) or "")
      .. ", got '" .. tostring(v) .. "'", cmd)
  end
  return n
end

return M
