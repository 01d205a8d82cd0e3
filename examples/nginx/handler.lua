--- Linq webhook endpoint for OpenResty / nginx (see nginx.conf next to it).
--
-- Rules that keep a worker responsive:
--   * verification, JSON and handlers run in content_by_lua (CPU only);
--   * HTTP calls to the API go through cosockets: create the client inside
--     the request or timer that uses it, never at module level;
--   * from phases without cosockets (log_by_lua, header_filter...) move the
--     call into ngx.timer.at(0, fn).
local linq = require "linqwebhooks"
local openresty = require "linqwebhooks.openresty"

local M = {}

-- One dispatcher per worker, built on first use. It holds keys and
-- handlers, no sockets, so keeping it is fine (unlike a client).
local hooks

-- The signing secrets: a secrets file (written 0600 by `linqwh subscriptions
-- apply|rotate`, re-read when it changes, so a rotation needs no reload) or
-- one secret in the environment.
local function keys()
  local file = os.getenv("LINQ_WEBHOOK_SECRETS_FILE")
  if file and file ~= "" then
    local endpoint = os.getenv("LINQ_WEBHOOK_ENDPOINT")
    return { secrets_file = file, endpoint = endpoint ~= "" and endpoint or nil }
  end
  local secret = os.getenv("LINQ_WEBHOOK_SECRET")
  if not secret or secret == "" then
    error("set LINQ_WEBHOOK_SECRETS_FILE or LINQ_WEBHOOK_SECRET (nginx.conf needs"
      .. " `env LINQ_WEBHOOK_SECRET;` / `env LINQ_WEBHOOK_SECRETS_FILE;`)")
  end
  return { secret = secret }
end

local function build()
  local opts = keys()
  -- de-duplicate across all workers; Linq retries for about 25 minutes
  opts.dedupe = linq.store.shdict(ngx.shared.linq_dedupe, { ttl = 1800 })
  local h = linq.webhooks(opts)
  h:on("message.received", function(event)
    ngx.log(ngx.INFO, "linq: message ", tostring(event:message_id()), " in chat ",
      tostring(event:chat_id()), ": ", #(event:text() or ""), " chars")
  end)
  h:on("message.*", function(event)
    ngx.log(ngx.INFO, "linq: ", event.type, " ", event.id)
  end)
  h:on_error(function(err, event)
    ngx.log(ngx.ERR, "linq: handler failed for ", tostring(event and event.id), ": ", tostring(err))
  end)
  return h
end

--- content_by_lua: verify, de-duplicate, dispatch and answer.
function M.serve(opts)
  hooks = hooks or build()
  return openresty.serve(hooks, opts)
end

--- content_by_lua: list the subscriptions (the client lives for this request only).
function M.list_subscriptions()
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  if (os.getenv("LINQ_API_V3_API_KEY") or "") == "" then
    ngx.status = 503
    ngx.say("LINQ_API_V3_API_KEY is not set (nginx.conf passes it with `env LINQ_API_V3_API_KEY;`)")
    return
  end
  local client = linq.client{ timeout = 10, max_retries = 1 }   -- key: LINQ_API_V3_API_KEY
  local subs, err = client.webhook_subscriptions:list()
  client:close()
  if not subs then
    ngx.status = 502
    ngx.say("error: ", tostring(err))
    return
  end
  for _, sub in ipairs(subs) do
    ngx.say(sub.id, " ", sub.target_url, " ", sub.is_active and "active" or "inactive")
  end
end

return M
