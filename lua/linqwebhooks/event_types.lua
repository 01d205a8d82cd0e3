--- Every Linq webhook event type known to this version (an array, in the
-- catalogue's order), generated from data/linq-events.json: see
-- linqwebhooks.events for the groups, payload versions and schema flags.
-- Linq adds types often: incoming events of other types are still delivered
-- to matching wildcard handlers.
local list = {}
for i, t in ipairs(require("linqwebhooks.catalogue_data").types) do
  list[i] = t.name
end
return list
