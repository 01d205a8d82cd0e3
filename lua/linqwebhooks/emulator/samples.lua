--- Realistic sample `data` objects for the 25 documented event types, shaped
-- after Linq's OpenAPI examples (see shared reference, section 3.6/3.7).
-- Message events follow the payload version of the target URL (2026-02-03 by
-- default, 2025-01-01 on request). `call.*` payloads are not documented by
-- Linq: those samples are the emulator's own guess (call id, chat, handles,
-- timestamps).
--
-- samples.data(event_type, version, line) -> fresh table (nil for unknown types)
--   line: the Linq phone number the event concerns (E.164), default +12025551234
local json = require "linqwebhooks.json"
local util = require "linqwebhooks.emulator.util"

local M = {}

M.DEFAULT_LINE = "+12025551234"
M.CONTACT = "+12025559876"

local null = json.null
local arr = json.array

local function ts(offset)
  return util.rfc3339(util.now() + (offset or 0), 3)
end

local function handle(number, is_me)
  return {
    id = util.uuid4(),
    handle = number,
    is_me = is_me,
    joined_at = ts(-86400),
    left_at = null,
    service = "iMessage",
    status = "active",
  }
end

local function health()
  return { status = "HEALTHY", doc_url = "https://docs.linqapp.com/guides/chats/health", updated_at = ts(-3600) }
end

-- message.* in the 2026-02-03 format (MessageEventV2).
local function message_v2(kind, line)
  local inbound = kind == "message.received"
  local owner = handle(line, true)
  local d = {
    id = util.uuid4(),
    chat = { id = util.uuid4(), is_group = false, owner_handle = owner, health_status = health() },
    direction = inbound and "inbound" or "outbound",
    sender_handle = inbound and handle(M.CONTACT, false) or owner,
    service = "iMessage",
    parts = arr({ { type = "text", value = inbound and "Hello!" or "Hello from Linq!" } }),
    effect = null,
    reply_to = null,
    idempotency_key = null,
    preferred_service = null,
    sent_at = ts(-2),
    delivered_at = null,
    read_at = null,
  }
  if kind == "message.delivered" or kind == "message.read" then
    d.delivered_at = ts(-1)
  end
  if kind == "message.read" then
    d.read_at = ts(0)
  end
  return d
end

-- message.* in the 2025-01-01 format (MessageEvent).
local function message_v1(kind, line)
  local inbound = kind == "message.received"
  local me, other = handle(line, true), handle(M.CONTACT, false)
  local msg = {
    id = util.uuid4(),
    parts = arr({ { type = "text", value = inbound and "Hello!" or "Hello from Linq!" } }),
    sent_at = ts(-2),
    delivered_at = null,
    read_at = null,
    is_delivered = false,
    is_read = false,
    effect = null,
    reply_to = null,
    created_at = ts(-3),
    updated_at = ts(-2),
  }
  local d = {
    chat_id = util.uuid4(),
    is_group = false,
    is_from_me = not inbound,
    from = inbound and M.CONTACT or line,
    from_handle = inbound and other or me,
    recipient_phone = inbound and line or null,
    recipient_handle = inbound and me or null,
    received_at = inbound and ts(-2) or null,
    service = "iMessage",
    preferred_service = null,
    idempotency_key = null,
    message = msg,
  }
  if kind == "message.delivered" or kind == "message.read" then
    msg.delivered_at, msg.is_delivered = ts(-1), true
    d.message_id = msg.id
    d.delivered_at = msg.delivered_at
  end
  if kind == "message.read" then
    msg.read_at, msg.is_read = ts(0), true
    d.read_at = msg.read_at
  end
  return d
end

local function reaction()
  return {
    chat_id = util.uuid4(),
    message_id = util.uuid4(),
    part_index = 0,
    reaction_type = "love",
    custom_emoji = null,
    is_from_me = false,
    from = M.CONTACT,
    from_handle = handle(M.CONTACT, false),
    reacted_at = ts(0),
    service = "iMessage",
  }
end

local function participant(kind, _)
  local d = {
    chat_id = util.uuid4(),
    handle = "+14155559876",
    participant = handle("+14155559876", false),
  }
  if kind == "participant.added" then
    d.added_at = ts(0)
  else
    d.removed_at = ts(0)
    d.participant.status = "removed"
    d.participant.left_at = ts(0)
  end
  return d
end

local function group_update(kind, _)
  local icon = kind == "chat.group_icon_updated"
  return {
    chat_id = util.uuid4(),
    updated_at = ts(0),
    old_value = icon and "https://example.com/old-icon.png" or "Old Group Name",
    new_value = icon and "https://example.com/new-icon.png" or "New Group Name",
    changed_by_handle = handle(M.CONTACT, false),
  }
end

local function group_update_failed()
  return { chat_id = util.uuid4(), error_code = 4001, failed_at = ts(0) }
end

local function typing()
  return { chat_id = util.uuid4() }
end

local function chat_created(_, line)
  return {
    id = util.uuid4(),
    display_name = null,
    handles = arr({ handle(line, true), handle(M.CONTACT, false) }),
    is_group = false,
    service = "iMessage",
    created_at = ts(0),
    updated_at = ts(0),
    health_status = health(),
  }
end

local function message_failed(_, _)
  return {
    code = 4001,
    reason = "Request expired before being processed",
    chat_id = util.uuid4(),
    message_id = util.uuid4(),
    failed_at = ts(0),
    service = "iMessage",
    preferred_service = null,
  }
end

local function message_edited(_, line)
  return {
    id = util.uuid4(),
    chat = { id = util.uuid4(), is_group = false, owner_handle = handle(line, true) },
    direction = "inbound",
    sender_handle = handle(M.CONTACT, false),
    edited_at = ts(0),
    part = { index = 0, text = "Hello! (edited)" },
  }
end

local function phone_status(_, line)
  return {
    phone_number = line,
    previous_status = "ACTIVE",
    new_status = "FLAGGED",
    previous_health_status = "AT_RISK",
    new_health_status = "CRITICAL",
    changed_at = ts(0),
  }
end

-- call.*: undocumented by Linq (FaceTime call service); the emulator's guess.
local CALL_STATUS = {
  ["call.initiated"] = "initiated", ["call.ringing"] = "ringing", ["call.answered"] = "answered",
  ["call.ended"] = "ended", ["call.failed"] = "failed", ["call.declined"] = "declined",
  ["call.no_answer"] = "no_answer",
}
local function call(kind, line)
  local d = {
    call_id = util.uuid4(),
    chat_id = util.uuid4(),
    status = CALL_STATUS[kind],
    direction = "outbound",
    service = "FaceTime",
    caller_handle = handle(line, true),
    callee_handle = handle(M.CONTACT, false),
    initiated_at = ts(-30),
  }
  if kind == "call.answered" or kind == "call.ended" then
    d.answered_at = ts(-20)
  end
  if kind == "call.ended" then
    d.ended_at = ts(0)
    d.duration_seconds = 20
  end
  if kind == "call.failed" then
    d.code = 4001
    d.reason = "Call could not be connected"
  end
  return d
end

local BUILDERS = {
  ["message.failed"] = message_failed,
  ["message.edited"] = message_edited,
  ["reaction.added"] = reaction,
  ["reaction.removed"] = reaction,
  ["participant.added"] = participant,
  ["participant.removed"] = participant,
  ["chat.created"] = chat_created,
  ["chat.group_name_updated"] = group_update,
  ["chat.group_icon_updated"] = group_update,
  ["chat.group_name_update_failed"] = group_update_failed,
  ["chat.group_icon_update_failed"] = group_update_failed,
  ["chat.typing_indicator.started"] = typing,
  ["chat.typing_indicator.stopped"] = typing,
  ["phone_number.status_updated"] = phone_status,
}
for k in pairs(CALL_STATUS) do
  BUILDERS[k] = call
end

local MESSAGE = {
  ["message.sent"] = true, ["message.received"] = true,
  ["message.read"] = true, ["message.delivered"] = true,
}

function M.data(event_type, version, line)
  line = line or M.DEFAULT_LINE
  local d
  if MESSAGE[event_type] then
    if version == "2025-01-01" then
      d = message_v1(event_type, line)
    else
      d = message_v2(event_type, line)
    end
  elseif BUILDERS[event_type] then
    d = BUILDERS[event_type](event_type, line)
  else
    return nil
  end
  return d
end

return M
