--- An OpenResty handler that owns its response (the shape of a Lapis action):
-- openresty.process(hooks) verifies, de-duplicates and dispatches exactly as
-- openresty.serve does, but writes nothing; the application answers.
--
--   lua_shared_dict linq_dedupe 10m;
--   env LINQ_WEBHOOK_SECRET;                      (main context)
--   location = /linq/webhooks {
--     content_by_lua_block { require("openresty_owned").action() }
--   }
local linq = require "linqwebhooks"
local openresty = require "linqwebhooks.openresty"
local json = require "linqwebhooks.json"

local M = {}

local hooks -- one dispatcher per worker, built on first use
local function get_hooks()
  if not hooks then
    hooks = linq.webhooks{
      secret = assert(os.getenv("LINQ_WEBHOOK_SECRET"), "LINQ_WEBHOOK_SECRET is not set"),
      dedupe = linq.store.shdict(ngx.shared.linq_dedupe, { ttl = 1800 }),
    }
    hooks:on("message.received", function(ev)
      ngx.log(ngx.INFO, "linq: message ", ev.id, " from ", tostring(ev:sender()))
    end)
  end
  return hooks
end

--- The action: Linq only needs the status; the body and headers are ours.
function M.action()
  local res = openresty.process(get_hooks())
  ngx.status = res.status
  for k, v in pairs(res.headers or {}) do -- Allow: POST on a 405
    ngx.header[k] = v
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.header["X-Linq-Event"] = res.event and res.event.type or nil
  ngx.print(json.encode({
    ok = res.status == 200,
    duplicate = res.duplicate,
    event_id = res.event and res.event.id or nil,
    error = res.err and res.err.reason or nil,
  }))
end

return M
