---@meta linqwebhooks.inbox.sqlite
-- `require "linqwebhooks.inbox.sqlite"`: the module behind `linq.inbox.sqlite`.

---@class linqwebhooks.inbox.sqlite
local M = {}

---@param opts linqwebhooks.SqliteInboxOptions
---@return linqwebhooks.Inbox|nil inbox
---@return string|nil err the file cannot be opened
function M.new(opts) end

return M
