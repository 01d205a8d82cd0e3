--- Every Linq webhook event type known to this version (an array, in the
-- catalogue's order), generated from data/linq-events.json: see
-- linqwebhooks.events for the groups, payload versions and schema flags.
-- Linq adds types often: incoming events of other types are still delivered
-- to matching wildcard handlers.
--
-- The module returns the array; `.set` (on its metatable, so pairs/ipairs/#
-- see only the array) maps each type to true. Both are the catalogue's own
-- tables (linqwebhooks.events.TYPES / .SET): one list, one set.
local events = require "linqwebhooks.events"

return setmetatable(events.TYPES, { __index = { set = events.SET } })
