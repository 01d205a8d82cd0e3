---@meta linqwebhooks.store.redis
-- `require "linqwebhooks.store.redis"`: the module behind `linq.store.redis`.

---@class linqwebhooks.store.redis
local M = {}

---@param opts linqwebhooks.RedisStoreOptions
---@return linqwebhooks.RedisStore
function M.new(opts) end

return M
