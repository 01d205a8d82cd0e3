--- One strict pass over JSON text in C that finds a few members of an object
-- without decoding anything (csrc/ffi.c): what lets an event be routed on
-- its envelope and `data` be decoded only when read.
--
--   scan.available                      -> boolean
--   scan.envelope(raw)                  -> event_type, event_id, created_at,
--       api_version, webhook_version, trace_id, partner_id, data_first,
--       data_last | nil (decode the body instead)
--   scan.parts_spans(text, first, last, only_parts) -> ok, then the value
--       ranges (first, last) of "parts", "message", "part" in the object
--       text:sub(first, last) (nil, nil when absent)
--   scan.parts_text(text, first, last) -> the text parts of the JSON array
--       text:sub(first, last) joined with "\n" (event:text()), or nil when
--       it must be decoded instead (linqwh_parts_text, csrc/lua/json.c)
--
-- Under LuaJIT through the FFI (linqwebhooks.ffi); elsewhere through the
-- Lua C function core.json_members (csrc/lua/json.c); both call
-- linqwh_json_members. When neither is there, available is false.
local fast = require "linqwebhooks.ffi"

local M = { available = false }

if fast.available then
  M.available = true
  M.envelope = fast.envelope
  M.parts_spans = fast.parts_spans
  M.parts_text = fast.parts_text
  return M
end

local members = require("linqwebhooks.core").json_members
M.parts_text = require("linqwebhooks.core").parts_text
if type(members) ~= "function" then
  return M
end
M.available = true

local sub, byte = string.sub, string.byte
local QUOTE = 34

-- a string member: its value, nil when absent or not a string, false when
-- it is written with escapes
local function str(raw, kind, a, b)
  if kind == 1 then
    return sub(raw, a, b)
  elseif kind == 2 and byte(raw, a) == QUOTE then
    return false
  end
  return nil
end

function M.envelope(raw)
  local st, k1, a1, b1, k2, a2, b2, k3, a3, b3, k4, a4, b4, k5, a5, b5, k6, a6, b6, k7, a7, b7,
    k8, a8, b8 = members(raw, 1, #raw, "event_type", "event_id", "created_at", "api_version",
      "webhook_version", "trace_id", "partner_id", "data")
  if st ~= 1 or k1 ~= 1 or k2 ~= 1 or b1 < a1 or b2 < a2 then
    return nil
  end
  local created_at, api_version, webhook_version = str(raw, k3, a3, b3), str(raw, k4, a4, b4),
    str(raw, k5, a5, b5)
  local trace_id, partner_id = str(raw, k6, a6, b6), str(raw, k7, a7, b7)
  if created_at == false or api_version == false or webhook_version == false or trace_id == false
    or partner_id == false then
    return nil
  end
  local first, last
  if k8 == 2 then
    first, last = a8, b8
  elseif k8 == 1 then -- a string: its text with the quotes
    first, last = a8 - 1, b8 + 1
  end
  return sub(raw, a1, b1), sub(raw, a2, b2), created_at, api_version, webhook_version, trace_id,
    partner_id, first, last
end

local function range(kind, a, b)
  if kind == 2 then
    return a, b
  elseif kind == 1 then
    return a - 1, b + 1
  end
  return nil, nil
end

function M.parts_spans(text, first, last, only_parts)
  if only_parts then
    local st, k, a, b = members(text, first, last, "parts")
    if st ~= 1 then
      return false
    end
    local pa, pb = range(k, a, b)
    return true, pa, pb
  end
  local st, k1, a1, b1, k2, a2, b2, k3, a3, b3 = members(text, first, last, "parts", "message",
    "part")
  if st ~= 1 then
    return false
  end
  local pa, pb = range(k1, a1, b1)
  local ma, mb = range(k2, a2, b2)
  local qa, qb = range(k3, a3, b3)
  return true, pa, pb, ma, mb, qa, qb
end

return M
