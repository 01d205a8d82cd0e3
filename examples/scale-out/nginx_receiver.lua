--- The nginx receiver of the scale-out example (content_by_lua, see
-- nginx.conf next to it): verifies, stores the delivery in the Redis inbox
-- through cosockets and answers 200 (503 when Redis cannot store it, so
-- Linq retries). No handler runs in nginx: the workers (worker.lua) run them.
local openresty = require "linqwebhooks.openresty"
local app = require "app"

local M = {}

-- One dispatcher per nginx worker, built on first use. It holds the keys and
-- the inbox's settings; the Redis connections are pooled cosockets opened
-- inside each request, never at load time.
local hooks

function M.serve()
  hooks = hooks or app.hooks(app.inbox("redis"), "nginx-" .. ngx.worker.id())
  return openresty.serve(hooks)
end

return M
