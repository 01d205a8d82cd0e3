--- The application shared by the receivers and the workers of the scale-out
-- example: the inbox (chosen by environment variables) and the dispatcher
-- with its handlers. Loaded with dofile() by receiver.lua / worker.lua and
-- with require("app") by the nginx receiver (nginx_receiver.lua).
--
--   LINQ_INBOX=redis (default)  LINQ_REDIS_URL=redis://127.0.0.1:6379/0  LINQ_REDIS_PREFIX=linqwh-example:
--   LINQ_INBOX=sqlite           LINQ_INBOX_PATH=linq-inbox.db
--   LINQ_WEBHOOK_SECRETS="whsec_... whsec_..."   (the subscriptions' signing secrets)
local linq = require "linqwebhooks"

local M = {}

-- A configuration error: a script prints it and exits 1; inside nginx it
-- raises (the request gets 500 and the message goes to the error log).
local function fail(msg)
  if rawget(_G, "ngx") then
    error(msg, 0)
  end
  io.stderr:write(msg, "\n")
  os.exit(1)
end

--- The inbox. `backend` overrides LINQ_INBOX (the nginx receiver passes
-- "redis": a SQLite call would block the nginx worker).
function M.inbox(backend)
  backend = backend or os.getenv("LINQ_INBOX") or "redis"
  local inbox, err
  if backend == "redis" then
    inbox, err = linq.inbox.redis{ url = os.getenv("LINQ_REDIS_URL") or "redis://127.0.0.1:6379/0",
                                   prefix = os.getenv("LINQ_REDIS_PREFIX") or "linqwh-example:" }
  elseif backend == "sqlite" then
    inbox, err = linq.inbox.sqlite{ path = os.getenv("LINQ_INBOX_PATH") or "linq-inbox.db" }
  else
    err = "LINQ_INBOX must be redis or sqlite, got " .. backend
  end
  if not inbox then
    fail("inbox: " .. tostring(err))
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
    fail(name .. ": LINQ_WEBHOOK_SECRETS is not set")
  end
  local hooks = linq.webhooks{ secrets = secrets, inbox = inbox }
  -- "secret #n": the delivery verified with the n-th secret, i.e. it was
  -- stored by the receiver of the n-th subscription
  hooks:on("*", function(ev)
    io.stdout:write(string.format("%-9s handled %-30s %s secret #%s\n", name, ev.type, ev.id,
      tostring(ev.delivery and ev.delivery.key_index or "?")))
    io.stdout:flush()
  end)
  return hooks
end

return M
