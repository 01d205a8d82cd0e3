--- The 25 webhook event types documented for the Linq Partner API v3
-- (17 in the Feb-2026 spec, `message.edited`, and the seven `call.*` types).
-- Linq adds types often: incoming events of other types are still delivered
-- to matching wildcard handlers.
--
-- The module returns the array (in documentation order); `.set` (on its
-- metatable, so pairs/ipairs/# see only the array) maps each type to true:
--   local types = require "linqwebhooks.event_types"
--   for _, t in ipairs(types) do ... end;  if types.set[name] then ... end
local TYPES = {
  "message.sent",
  "message.received",
  "message.read",
  "message.delivered",
  "message.failed",
  "message.edited",
  "reaction.added",
  "reaction.removed",
  "participant.added",
  "participant.removed",
  "chat.created",
  "chat.group_name_updated",
  "chat.group_icon_updated",
  "chat.group_name_update_failed",
  "chat.group_icon_update_failed",
  "chat.typing_indicator.started",
  "chat.typing_indicator.stopped",
  "phone_number.status_updated",
  "call.initiated",
  "call.ringing",
  "call.answered",
  "call.ended",
  "call.failed",
  "call.declined",
  "call.no_answer",
}

-- Everything below stays when the list above is regenerated.
local SET = {}
for _, t in ipairs(TYPES) do
  SET[t] = true
end

return setmetatable(TYPES, { __index = { set = SET } })
