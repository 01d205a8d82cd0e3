--- Plain functions behind `linqwh subscriptions plan|apply|rotate` (the CLI
-- parses arguments and prints; these do the work and return text).
--
--   local cmd = require "linqwebhooks.subscriptions.commands"
--   local text, err, status = cmd.plan(client, FILE, { prune = false })
--   local text, err, status = cmd.apply(client, FILE, { prune = false, secrets_file = PATH })
--   local text, err, status = cmd.rotate(client, ID, { secrets_file = PATH, timeout = 600,
--                                                      progress = function(line) end })
--
-- On success: the text to print (never a secret). On failure: nil, a message
-- and the exit status (2: bad usage or a malformed desired-state file, 1: an
-- API, file or rotation failure).
local desired = require "linqwebhooks.subscriptions.desired"
local rotation = require "linqwebhooks.subscriptions.rotation"

local M = {}

local function load(path)
  local d, err = desired.load_file(path)
  if d == nil then
    return nil, tostring(err and err.message or err), 2
  end
  -- structural problems raise in check: turn them into a usage error
  local ok, msg = pcall(desired.check, d, path)
  if not ok then
    return nil, tostring(msg), 2
  end
  return d
end

--- plan(client, path, { prune }) -> text | nil, message, status
function M.plan(client, path, opts)
  opts = opts or {}
  local d, msg, st = load(path)
  if not d then
    return nil, msg, st
  end
  local plan, err = client.webhook_subscriptions:plan(d)
  if not plan then
    return nil, tostring(err), 1
  end
  return desired.format_plan(plan, { prune = opts.prune })
end

--- apply(client, path, { prune, secrets_file }) -> text | nil, message, status
-- Something to create needs secrets_file (the CLI never prints a secret).
function M.apply(client, path, opts)
  opts = opts or {}
  local d, msg, st = load(path)
  if not d then
    return nil, msg, st
  end
  local done, err = client.webhook_subscriptions:apply(d, { prune = opts.prune == true,
                                                             secrets_file = opts.secrets_file })
  if not done then
    local text = tostring(err)
    if type(err) == "table" and err.kind == "invalid_request" and not opts.secrets_file then
      return nil, text .. " (pass --secrets-file PATH)", 2
    end
    if type(err) == "table" and err.done then
      text = text .. "\ncarried out before the failure:\n"
        .. desired.format_plan(err.done, { applied = true })
    end
    return nil, text, 1
  end
  return desired.format_plan(done, { applied = true })
end

--- rotate(client, id, { secrets_file, timeout, poll, progress = fn(line) })
-- -> text | nil, message, status. Uses the default confirm (a signed probe
-- to the endpoint); progress gets one line per step.
function M.rotate(client, id, opts)
  opts = opts or {}
  if not opts.secrets_file then
    return nil, "rotate needs --secrets-file PATH (the new secret and the rotation state go there)", 2
  end
  local progress = opts.progress
  local ok, new_sub, err = pcall(client.webhook_subscriptions.rotate, client.webhook_subscriptions, id, {
    secrets_file = opts.secrets_file, timeout = opts.timeout, poll = opts.poll,
    on_step = progress and function(step, info) progress(rotation.format_step(step, info)) end,
  })
  if not ok then -- bad arguments (an empty id, a negative timeout, ...)
    return nil, tostring(new_sub), 2
  end
  if not new_sub then
    return nil, tostring(err), 1
  end
  return "rotated: " .. tostring(new_sub)
end

return M
