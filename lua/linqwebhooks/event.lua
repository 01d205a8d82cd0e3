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

-- Deferred decoding: the envelope is read by one strict scan in C
-- (linqwebhooks.scan: through the FFI under LuaJIT, a Lua C function
-- elsewhere) and `data` is decoded when
-- first read, so routing and de-duplication never pay for a full decode.
-- Such an event has the metatable below: `data` and `document` are decoded
-- on first access and then stored in the event as plain fields.
local json_decode = core.json_decode
local scan = require "linqwebhooks.scan"
local envelope = scan.available and scan.envelope or nil
local sub = string.sub

local Lazy = {}
Lazy.__tostring = Event.__tostring
M.LazyEvent = Lazy

local function lazy_decode(e, what)
  local raw = rawget(e, "raw")
  local doc, msg = json_decode(raw)
  if type(doc) ~= "table" then
    -- the scan accepted what the decoder refuses: a bug, never input-dependent silence
    error("linqwebhooks.event: cannot decode " .. what .. " of event " .. tostring(rawget(e, "id"))
      .. ": " .. tostring(msg), 3)
  end
  return doc
end

local byte = string.byte
local OPEN_ARRAY, OPEN_OBJECT = 91, 123
local parts_spans = scan.available and scan.parts_spans or nil
local parts_text = scan.available and scan.parts_text or nil
local lazy_parts, lazy_text, join_text -- below

Lazy.__index = function(e, k)
  if k == "parts" then
    return lazy_parts
  elseif k == "text" then
    return lazy_text
  elseif k == "data" then
    local first, last = rawget(e, "_data_first"), rawget(e, "_data_last")
    local v
    if first then
      local msg
      v, msg = json_decode(sub(rawget(e, "raw"), first, last))
      if v == nil and msg ~= nil then
        v = lazy_decode(e, "data").data
      end
    end
    rawset(e, "data", v)
    return v
  elseif k == "document" then
    local doc = lazy_decode(e, "the document")
    rawset(e, "document", doc)
    if rawget(e, "data") == nil then
      rawset(e, "data", doc.data)
    end
    return doc
  end
  return Event[k]
end

-- Whether the value text at raw position a is an array or object.
local function is_container(raw, a)
  local c = a and byte(raw, a)
  return c == OPEN_ARRAY or c == OPEN_OBJECT
end

-- The value text raw:sub(a, b) decoded when it is an array or object, else nil.
local function container_at(raw, a, b)
  if is_container(raw, a) then
    local v = json_decode(sub(raw, a, b))
    if type(v) == "table" then
      return v
    end
  end
  return nil
end

-- Where the parts of an event whose data is not decoded yet are, read with
-- the strict scan (no decoding): "parts", a, b -- raw:sub(a, b) is data.parts
-- or else data.message.parts, an array or object; "part", a, b -- data.part
-- (message.edited), an array or object; nil -- none of them; false -- data is
-- decoded already or the scan is not sure: use the decoded data instead.
-- The order is Event.parts'.
local function parts_route(e)
  local first, last, raw = rawget(e, "_data_first"), rawget(e, "_data_last"), rawget(e, "raw")
  if rawget(e, "data") ~= nil or not first or byte(raw, first) ~= OPEN_OBJECT then
    return false
  end
  local ok, pa, pb, ma, mb, qa, qb = parts_spans(raw, first, last)
  if not ok then
    return false
  end
  if is_container(raw, pa) then
    return "parts", pa, pb
  end
  if ma and byte(raw, ma) == OPEN_OBJECT then
    local mok, a, b = parts_spans(raw, ma, mb, true)
    if not mok then
      return false
    end
    if is_container(raw, a) then
      return "parts", a, b
    end
  end
  if is_container(raw, qa) then
    return "part", qa, qb
  end
  return nil
end

-- event:parts() from a route of parts_route (kind not false).
local function parts_at(raw, kind, a, b)
  local v = kind and container_at(raw, a, b)
  if kind == "parts" or not v then
    return v
  end
  if type(v.text) == "string" then -- data.part
    return { { type = "text", value = v.text, index = v.index } }
  end
  return nil
end

--- event:parts() of an event whose data is not decoded yet: the same result
-- as Event.parts, decoding only the member it reads (data.parts, or
-- data.message.parts, or data.part) instead of the whole of data.
lazy_parts = function(e)
  local kind, a, b = parts_route(e)
  if kind == false then
    return Event.parts(e)
  end
  return parts_at(rawget(e, "raw"), kind, a, b)
end

--- event:text() of an event whose data is not decoded yet: the same result
-- as Event.text. A parts array has its text parts joined in C from its JSON
-- text (linqwh_parts_text), no Lua table built; otherwise (data.part, an
-- object for parts, a \u0000 escape) the member is decoded as by
-- event:parts().
lazy_text = function(e)
  local kind, a, b = parts_route(e)
  if kind == false then
    return Event.text(e)
  end
  local raw = rawget(e, "raw")
  if kind == "parts" and parts_text and byte(raw, a) == OPEN_ARRAY then
    local text = parts_text(raw, a, b)
    if text then
      return text
    end
  end
  return join_text(parts_at(raw, kind, a, b))
end

--- Decodes a raw body into an event. Returns nil, err (reason "invalid_json")
-- for a body that is not JSON or not a Linq event envelope.
function M.decode(raw, delivery)
  if envelope then
    local etype, eid, created_at, api_version, webhook_version, trace_id, partner_id, first, last =
      envelope(raw)
    if etype then
      return setmetatable({
        type = etype,
        id = eid,
        raw = raw,
        delivery = delivery,
        created_at = created_at,
        api_version = api_version,
        webhook_version = webhook_version,
        trace_id = trace_id,
        partner_id = partner_id,
        _data_first = first,
        _data_last = last,
      }, Lazy)
    end
  end
  local doc, msg = json_decode(raw)
  if doc == nil then
    return nil, errors.verification("invalid_json", "body is not valid JSON: " .. tostring(msg))
  end
  return M.from_document(doc, raw, delivery)
end

--- Builds an event from an already decoded envelope table (e.g. in tests,
-- or a document decoded by other means). Same checks and errors as decode.
function M.from_document(doc, raw, delivery)
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
  -- every field in one constructor (the table is sized once: this is on
  -- the per-delivery path); non-string envelope values are left out
  local created_at, api_version, webhook_version = doc.created_at, doc.api_version,
    doc.webhook_version
  local trace_id, partner_id = doc.trace_id, doc.partner_id
  return setmetatable({
    type = etype,
    id = eid,
    data = doc.data,
    raw = raw,
    delivery = delivery,
    document = doc,
    created_at = type(created_at) == "string" and created_at or nil,
    api_version = type(api_version) == "string" and api_version or nil,
    webhook_version = type(webhook_version) == "string" and webhook_version or nil,
    trace_id = type(trace_id) == "string" and trace_id or nil,
    partner_id = type(partner_id) == "string" and partner_id or nil,
  }, Event)
end

-- Helpers that hide Linq's two message payload versions:
--   2025-01-01: data.chat_id, data.is_from_me, data.from_handle / data.from,
--               data.message{ id, parts, ... }
--   2026-02-03: data.chat{ id, ... }, data.direction, data.sender_handle,
--               data.id and data.parts flat in data
-- Each returns nil when the event does not carry the value (e.g. text() of a
-- typing indicator). JSON null counts as absent.

local function str(v)
  if type(v) == "string" then
    return v
  end
  return nil
end

local function tbl(v)
  if type(v) == "table" then
    return v
  end
  return nil
end

local function data(e)
  return tbl(e.data) or {}
end

local function handle_of(v)
  if type(v) == "string" then
    return v
  end
  if type(v) == "table" then
    return str(v.handle)
  end
  return nil
end

--- event:chat_id() -> string | nil
-- data.chat.id (2026 messages, edits, polls), data.chat_id (2025 messages,
-- reactions, participants, typing, group updates, failures), data.id of
-- chat.created.
function Event:chat_id()
  local d = data(self)
  local chat = tbl(d.chat)
  if chat and str(chat.id) then
    return chat.id
  end
  if str(d.chat_id) then
    return d.chat_id
  end
  if self.type == "chat.created" then
    return str(d.id)
  end
  return nil
end

local function is_message_type(t)
  return type(t) == "string" and t:sub(1, 8) == "message."
end

--- event:message_id() -> string | nil
-- data.message.id (2025), data.message_id (2025 read/delivered, failures,
-- reactions), data.id of message.* events (2026).
function Event:message_id()
  local d = data(self)
  local msg = tbl(d.message)
  if msg and str(msg.id) then
    return msg.id
  end
  if str(d.message_id) then
    return d.message_id
  end
  if is_message_type(self.type) then
    return str(d.id)
  end
  return nil
end

--- event:parts() -> array of part tables | nil
-- data.parts (2026) or data.message.parts (2025); for message.edited, the
-- edited part as { { type = "text", value = text, index = n } }.
function Event:parts()
  local d = data(self)
  local parts = tbl(d.parts)
  if parts then
    return parts
  end
  local msg = tbl(d.message)
  if msg and tbl(msg.parts) then
    return msg.parts
  end
  local part = tbl(d.part)
  if part and str(part.text) then
    return { { type = "text", value = part.text, index = part.index } }
  end
  return nil
end

-- The values of the text parts of `parts` joined with "\n"; nil for nil.
join_text = function(parts)
  if not parts then
    return nil
  end
  local out = {}
  for i = 1, #parts do
    local p = parts[i]
    if type(p) == "table" and p.type == "text" and str(p.value) then
      out[#out + 1] = p.value
    end
  end
  return table.concat(out, "\n")
end

--- event:text() -> string | nil
-- The values of the text parts joined with "\n" ("" when the message has no
-- text part); nil when the event carries no message parts.
function Event:text()
  return join_text(self:parts())
end

--- event:sender() -> handle string (E.164 number or email) | nil
-- data.sender_handle (2026), data.from_handle or data.from (2025, reactions).
function Event:sender()
  local d = data(self)
  return handle_of(d.sender_handle) or handle_of(d.from_handle) or str(d.from)
end

--- event:is_inbound() -> true | false | nil
-- data.direction == "inbound" (2026), not data.is_from_me (2025, reactions);
-- nil when the event says neither.
function Event:is_inbound()
  local d = data(self)
  if d.direction == "inbound" then
    return true
  elseif d.direction == "outbound" then
    return false
  end
  if type(d.is_from_me) == "boolean" then
    return not d.is_from_me
  end
  return nil
end

--- event:service() -> "iMessage" | "SMS" | "RCS" | nil
function Event:service()
  local d = data(self)
  return str(d.service)
end

return M
