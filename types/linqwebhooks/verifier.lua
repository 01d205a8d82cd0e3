---@meta linqwebhooks.verifier
-- `require "linqwebhooks.verifier"`: the module behind `linq.verifier`, `linq.verify`, `linq.sign`.

---@class linqwebhooks.verifier
local verifier = {}

---@param opts linqwebhooks.VerifierOptions
---@return linqwebhooks.Verifier
function verifier.new(opts) end

---@param secret_or_secrets string|string[]
---@param body string
---@param headers linqwebhooks.Headers
---@param opts? linqwebhooks.VerifierOptions
---@return linqwebhooks.VerifyInfo|nil info
---@return linqwebhooks.Error|nil err
function verifier.verify(secret_or_secrets, body, headers, opts) end

---@param opts linqwebhooks.SignOptions
---@return table<string, string> headers
function verifier.sign(opts) end

return verifier
