---@meta linqwebhooks.openresty
-- `require "linqwebhooks.openresty"`: answer deliveries in content_by_lua* (docs/openresty.md).

---@class linqwebhooks.OpenrestyOptions
---@field quick_ack? boolean answer 200 after verification and run the handlers in a timer

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

return openresty
