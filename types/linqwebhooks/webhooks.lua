---@meta linqwebhooks.webhooks
-- `require "linqwebhooks.webhooks"`: the dispatcher module behind `linq.webhooks`.

---@class linqwebhooks.webhooks
local webhooks = {}

---@param opts linqwebhooks.HooksOptions
---@return linqwebhooks.Hooks
function webhooks.new(opts) end

return webhooks
