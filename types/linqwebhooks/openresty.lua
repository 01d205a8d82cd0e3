---@meta linqwebhooks.openresty
-- `require "linqwebhooks.openresty"`: answer deliveries in content_by_lua* (docs/openresty.md).

---@class linqwebhooks.OpenrestyOptions
---@field quick_ack? boolean answer 200 after verification and run the handlers in a timer

---@class linqwebhooks.OpenrestyWorkOptions: linqwebhooks.WorkOptions
---@field workers? integer how many nginx workers work the inbox (those with ngx.worker.id() < workers; default all)

---@class linqwebhooks.openresty
local openresty = {}

---Reads the body, verifies, de-duplicates, dispatches and sends the answer.
---Raises outside `content_by_lua*`.
---@param hooks linqwebhooks.Hooks
---@param opts? linqwebhooks.OpenrestyOptions
---@return linqwebhooks.HandleResult
function openresty.serve(hooks, opts) end

---The same as serve without writing the response, for frameworks that own it
---(Lapis). `res.headers` = `{ Allow = "POST" }` on the 405. See docs/frameworks.md.
---@param hooks linqwebhooks.Hooks
---@param opts? linqwebhooks.OpenrestyOptions
---@return linqwebhooks.HandleResult
function openresty.process(hooks, opts) end

---Works the dispatcher's inbox inside nginx: from `init_worker_by_lua*` only, starts
---`ngx.timer.at(0, ...)` running the hooks:work loop (ngx.sleep, cosockets) in this
---worker when it is one of `opts.workers`; stops on reload/quit. Raises in another
---phase, without an inbox, on unknown options or `heartbeat = true`.
---@param hooks linqwebhooks.Hooks
---@param opts? linqwebhooks.OpenrestyWorkOptions
---@return integer started loops started in this worker (0 or 1)
function openresty.work(hooks, opts) end

return openresty
