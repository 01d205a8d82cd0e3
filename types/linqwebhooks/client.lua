---@meta linqwebhooks.client
-- `require "linqwebhooks.client"`: the module behind `linq.client`.

---@class linqwebhooks.client
local client = {}

---@param opts? linqwebhooks.ClientOptions
---@return linqwebhooks.Client
function client.new(opts) end

---@param status integer
---@return string name e.g. "NotFoundError"
function client.status_name(status) end

return client
