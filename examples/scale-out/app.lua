--- The application shared by the receivers and the workers of the scale-out
-- example: the inbox (chosen by environment variables) and the dispatcher
-- with its handlers.
--
--   LINQ_INBOX=sqlite (default) LINQ_INBOX_PATH=linq-inbox.db
--   LINQ_INBOX=redis            LINQ_REDIS_URL=redis://127.0.0.1:6379/0  LINQ_REDIS_PREFIX=linqwh-example:
--   LINQ_WEBHOOK_SECRETS="whsec_... whsec_..."   (the subscriptions' signing secrets)
local linq = require "linqwebhooks"

local M = {}

function M.inbox()
  local backend = os.getenv("LINQ_INBOX") or "sqlite"
  local inbox, err
  if backend == "redis" then
    inbox, err = linq.inbox.redis{ url = os.getenv("LINQ_REDIS_URL") or "redis://127.0.0.1:6379/0",
                                   prefix = os.getenv("LINQ_REDIS_PREFIX") or "linqwh-example:" }
  elseif backend == "sqlite" then
    inbox, err = linq.inbox.sqlite{ path = os.getenv("LINQ_INBOX_PATH") or "linq-inbox.db" }
  else
    err = "LINQ_INBOX must be sqlite or redis, got " .. backend
  end
  if not inbox then
    io.stderr:write("inbox: ", tostring(err), "\n")
    os.exit(1)
  end
  return inbox
end

--- The dispatcher: `name` tags the output lines of this process.
function M.hooks(inbox, name)
  local secrets = {}
  for s in (os.getenv("LINQ_WEBHOOK_SECRETS") or ""):gmatch("%S+") do
    secrets[#secrets + 1] = s
  end
  if #secrets == 0 then
    io.stderr:write(name, ": LINQ_WEBHOOK_SECRETS is not set\n")
    os.exit(1)
  end
  local hooks = linq.webhooks{ secrets = secrets, inbox = inbox }
  hooks:on("*", function(ev)
    io.stdout:write(string.format("%-9s handled %-30s %s\n", name, ev.type, ev.id))
    io.stdout:flush()
  end)
  return hooks
end

return M
