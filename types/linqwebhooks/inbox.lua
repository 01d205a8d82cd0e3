---@meta linqwebhooks.inbox
-- `require "linqwebhooks.inbox"`: the durable inbox (docs/scale-out.md): the
-- backend constructors behind `linq.inbox`, the key function and the
-- interface every backend implements (`linqwebhooks.Inbox`, declared in
-- ../linqwebhooks.lua).

---@class linqwebhooks.inbox
---@field METHODS string[] the interface methods an inbox must have
local inbox = {}

---@param opts linqwebhooks.SqliteInboxOptions
---@return linqwebhooks.Inbox|nil inbox
---@return string|nil err
function inbox.sqlite(opts) end

---@param opts linqwebhooks.RedisInboxOptions
---@return linqwebhooks.Inbox|nil inbox
---@return string|nil err
function inbox.redis(opts) end

---True when `v` has every interface method; else false and a message.
---@param v any
---@return boolean ok
---@return string|nil err
function inbox.is_inbox(v) end

---The bounded key of an event id (as `linq.store.key`).
---@param event_id string
---@return string
function inbox.key(event_id) end

---@return number epoch seconds (fractional with LuaSocket)
function inbox.now() end

---The record `inbox:put` stores for a verified, decoded event.
---@param ev linqwebhooks.Event
---@param body string
---@param headers linqwebhooks.Headers
---@param info linqwebhooks.VerifyInfo
---@return linqwebhooks.InboxRecord
function inbox.record(ev, body, headers, info) end

---The dispatcher's answer with an inbox: 200 "stored", 200 "duplicate", 503 not stored.
---@param box linqwebhooks.Inbox
---@param ev linqwebhooks.Event
---@param body string
---@param headers linqwebhooks.Headers
---@param info linqwebhooks.VerifyInfo
---@return linqwebhooks.HandleResult
function inbox.accept(box, ev, body, headers, info) end

return inbox
