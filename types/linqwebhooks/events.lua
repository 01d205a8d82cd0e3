---@meta linqwebhooks.events
-- `require "linqwebhooks.events"` (also `linq.events`): the catalogue of Linq
-- webhook event types, as data (docs/events.md).

---@class linqwebhooks.events
---@field TYPES string[] every known type (= `linq.EVENT_TYPES`)
---@field SET table<string, true>
---@field PAYLOAD_VERSIONS string[] { "2025-01-01", "2026-02-03" }
---@field REMOVED string[] types Linq once documented and removed (e.g. "message.opt_out")
---@field PREFIXES string[] sorted: every P such that the wildcard "P.*" matches a known type
local events = {}

---@param prefix string e.g. "message", "chat.typing_indicator"
---@return boolean true when the wildcard "prefix.*" matches a known type
function events.is_prefix(prefix) end

---@param prefix string
---@param max? integer default 3
---@return string[] the known prefixes nearest to `prefix`
function events.suggest_prefix(prefix, max) end

---@param name string
---@return boolean
function events.known(name) end

---@param name string
---@return string|nil group "message", "poll", "account", ...
function events.group(name) end

---@param name string
---@return string|nil subgroup account events: "api_token", ...
function events.subgroup(name) end

---@param name string
---@return boolean true when Linq publishes a `data` schema
function events.has_schema(name) end

---@param name string
---@return string[]|nil versions the payload versions the type is tied to; nil: one shape, any version
function events.versions(name) end

---@param name string
---@param version string
---@return boolean false when the type does not exist in that payload version
function events.delivered_in(name, version) end

---@param name string
---@return table|nil entry a copy of the catalogue entry
function events.info(name) end

---@param name string
---@return boolean true for lowercase dot-separated segments of [a-z0-9_], optionally ending in ".*"
function events.well_formed(name) end

---The closest known names (edit distance), sorted.
---@param name string
---@param max? integer default 3
---@return string[]
function events.suggest(name, max) end

---@param name string
---@param version string
---@return string|nil json the `data` of the reference example
function events.example(name, version) end

return events
