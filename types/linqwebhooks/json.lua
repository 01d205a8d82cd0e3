---@meta linqwebhooks.json
-- `require "linqwebhooks.json"`: Lua <-> JSON on cJSON (docs/json.md).

---@class linqwebhooks.json
---@field null userdata JSON null (the same value as `linq.null`)
local json = {}

---@param str string
---@return any|nil value
---@return string|nil err e.g. "invalid JSON at byte 8"
function json.decode(str) end

---@param value any
---@return string|nil json compact JSON
---@return string|nil err
function json.encode(value) end

---Marks `t` (or a new table) as a JSON array, so `{}` encodes as `[]`.
---@generic T: table
---@param t? T
---@return T
function json.array(t) end

---@param t any
---@return boolean
function json.is_array(t) end

return json
