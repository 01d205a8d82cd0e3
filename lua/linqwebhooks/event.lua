--- Event objects built from a verified delivery: the envelope fields, the
-- decoded `data`, the raw body and the delivery info.
local core = require "linqwebhooks.core"
local errors = require "linqwebhooks.errors"

local M = {}

local Event = {}
Event.__index = Event
Event.__tostring = function(e)
  return "linqwebhooks.event " .. tostring(e.type) .. " " .. tostring(e.id)
end
M.Event = Event

local ENVELOPE_STRINGS = { "created_at", "api_version", "webhook_version", "trace_id", "partner_id" }

--- Decodes a raw body into an event. Returns nil, err (reason "invalid_json")
-- for a body that is not JSON or not a Linq event envelope.
function M.decode(raw, delivery)
  local doc, msg = core.json_decode(raw)
  if doc == nil then
    return nil, errors.verification("invalid_json", "body is not valid JSON: " .. tostring(msg))
  end
  if type(doc) ~= "table" then
    return nil, errors.verification("invalid_json", "body is not a JSON object")
  end
  local etype, eid = doc.event_type, doc.event_id
  if type(etype) ~= "string" or etype == "" then
    return nil, errors.verification("invalid_json", "not a Linq event: missing event_type")
  end
  if type(eid) ~= "string" or eid == "" then
    return nil, errors.verification("invalid_json", "not a Linq event: missing event_id")
  end
  local ev = setmetatable({
    type = etype,
    id = eid,
    data = doc.data,
    raw = raw,
    delivery = delivery,
    document = doc,
  }, Event)
  for _, k in ipairs(ENVELOPE_STRINGS) do
    local v = doc[k]
    if type(v) == "string" then
      ev[k] = v
    end
  end
  return ev
end

return M
