---@meta linqwebhooks.receiver
-- `require "linqwebhooks.receiver"`: a plain-Lua receiver on LuaSocket (docs/receiver.md).

---@class linqwebhooks.ReceiverOptions
---@field hooks? linqwebhooks.Hooks until set, requests get 503
---@field host? string default "127.0.0.1"
---@field port? integer default 0 (a free port)
---@field path? string default "/webhooks"
---@field max_body? integer bytes, default 1 MiB
---@field timeout? number seconds per request, default 10
---@field max_connections? integer open connections at once, 1-512, default 128
---@field log? boolean|fun(line: string)

---@class linqwebhooks.Receiver
---@field url string e.g. http://127.0.0.1:PORT/webhooks
local Receiver = {}
---Waits up to `wait` seconds for a connection and serves it.
---@param wait? number
---@return boolean served
function Receiver:step(wait) end
---@param hooks linqwebhooks.Hooks
function Receiver:set_hooks(hooks) end
---Stops listening (idempotent).
function Receiver:close() end

---@class linqwebhooks.receiver
local receiver = {}

---@param opts linqwebhooks.ReceiverOptions
---@return linqwebhooks.Receiver|nil r
---@return string|nil err cannot listen
function receiver.new(opts) end

---Blocking: serves until SIGTERM or SIGINT.
---@param opts linqwebhooks.ReceiverOptions
---@return true|nil ok
---@return string|nil err
function receiver.serve(opts) end

return receiver
