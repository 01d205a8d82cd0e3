---@meta linqwebhooks.errors
-- `require "linqwebhooks.errors"` (also `linq.errors`): the error objects.

---@class linqwebhooks.errors
---@field Error table the metatable of every error object
local errors = {}

---@param fields table reason, message, ...
---@return linqwebhooks.Error
function errors.new(fields) end

---@param reason string
---@param message? string
---@return linqwebhooks.Error
function errors.verification(reason, message) end

---@param v any
---@return boolean
function errors.is(v) end

return errors
