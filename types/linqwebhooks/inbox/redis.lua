---@meta linqwebhooks.inbox.redis
-- `require "linqwebhooks.inbox.redis"`: the module behind `linq.inbox.redis`
-- (Redis Streams; does not connect when built).

---@class linqwebhooks.inbox.redis
local M = {}

---@param opts linqwebhooks.RedisInboxOptions
---@return linqwebhooks.Inbox
function M.new(opts) end

return M
