--- Error objects: tables with a `__tostring`, returned as the second value of
-- runtime failures (`nil, err`). Secrets never reach them.
local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return "linqwebhooks: " .. tostring(e.reason or e.name or e.kind) .. ": " .. tostring(e.message)
end
M.Error = Error

--- Builds an error object from a table of fields (`reason`, `message`, ...).
function M.new(fields)
  return setmetatable(fields, Error)
end

--- Verification failure with one of the documented `reason` strings.
function M.verification(reason, message)
  return setmetatable({ kind = "verification", reason = reason, message = message or reason }, Error)
end

--- True when `v` is an error object made by this module.
function M.is(v)
  return getmetatable(v) == Error
end

return M
