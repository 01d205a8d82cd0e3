local linq = require "linqwebhooks"
local event = require "linqwebhooks.event"

local null = linq.null

local function envelope(version, etype, data)
  return {
    api_version = "v3", webhook_version = version, event_type = etype,
    event_id = "2915e81c-5068-4796-ace2-21d2c94ad298",
    created_at = "2026-02-05T19:31:13.736444093Z",
    trace_id = "8af9171a45022df2eb74ba4e4c83be0f", partner_id = "your-partner-id",
    data = data,
  }
end

local function make(doc)
  local ev, err = event.from_document(doc, "{}", { id = "msg_1", timestamp = 1, scheme = "standard" })
  assert.is_nil(err)
  return ev
end

local function handle(h, is_me)
  return { handle = h, id = "e604375a-5913-483a-8278-c631e8f0ffda", is_me = is_me,
           joined_at = "2026-01-04T05:48:51.321469Z", left_at = null, service = "iMessage",
           status = "active" }
end

-- linq-api.md 3.7 (1): message.received, 2026-02-03
local function received_2026(parts)
  return envelope("2026-02-03", "message.received", {
    chat = { id = "8f392755-6865-4b18-880a-227f9d8b458f", is_group = false,
             owner_handle = handle("+12025551234", true) },
    id = "89e3566e-1d13-49e5-a8ee-48490d5bfeb7",
    direction = "inbound",
    sender_handle = handle("+12025559876", false),
    parts = parts or { { type = "text", value = "Hello!" } },
    effect = null, reply_to = null, sent_at = "2026-02-05T19:31:13.074Z",
    delivered_at = null, read_at = null, service = "iMessage",
  })
end

-- linq-api.md 3.7 (3): message.received, 2025-01-01
local function received_2025(parts)
  return envelope("2025-01-01", "message.received", {
    chat_id = "8f392755-6865-4b18-880a-227f9d8b458f",
    from = "+12025559876",
    from_handle = handle("+12025559876", false),
    idempotency_key = null, is_from_me = false, is_group = false,
    message = { created_at = "2026-02-05T19:31:12.892Z", delivered_at = null,
                id = "89e3566e-1d13-49e5-a8ee-48490d5bfeb7", is_delivered = false, is_read = false,
                parts = parts or { { type = "text", value = "Hello!" } },
                read_at = null, sent_at = "2026-02-05T19:31:13.074Z",
                updated_at = "2026-02-05T19:31:13.712Z" },
    preferred_service = null, received_at = "2026-02-05T19:31:13.074Z",
    recipient_handle = handle("+12025551234", true), recipient_phone = null,
    service = "iMessage",
  })
end

describe("event helpers", function()
  for _, case in ipairs({ { "2026-02-03", received_2026 }, { "2025-01-01", received_2025 } }) do
    local version, build = case[1], case[2]

    describe("on a " .. version .. " message.received", function()
      it("gives the same chat, message, sender, direction and text", function()
        local ev = make(build())
        assert.equal(version, ev.webhook_version)
        assert.equal("8f392755-6865-4b18-880a-227f9d8b458f", ev:chat_id())
        assert.equal("89e3566e-1d13-49e5-a8ee-48490d5bfeb7", ev:message_id())
        assert.equal("+12025559876", ev:sender())
        assert.is_true(ev:is_inbound())
        assert.equal("Hello!", ev:text())
        assert.equal("iMessage", ev:service())
        assert.same({ { type = "text", value = "Hello!" } }, ev:parts())
      end)

      it("joins text parts with newlines and skips media parts", function()
        local ev = make(build({
          { type = "text", value = "Hello from Linq!" },
          { type = "media", id = "f13d", url = "https://cdn.example/p.jpg", mime_type = "image/jpeg" },
          { type = "text", value = "second line" },
        }))
        assert.equal("Hello from Linq!\nsecond line", ev:text())
        assert.equal(3, #ev:parts())
      end)

      it("gives an empty text for a media-only message", function()
        local ev = make(build({ { type = "media", id = "m", url = "https://x/y" } }))
        assert.equal("", ev:text())
      end)
    end)
  end

  it("reads an outbound 2026-02-03 message.sent", function()
    local doc = received_2026()
    doc.event_type = "message.sent"
    doc.data.direction = "outbound"
    doc.data.sender_handle = handle("+12025551234", true)
    local ev = make(doc)
    assert.is_false(ev:is_inbound())
    assert.equal("+12025551234", ev:sender())
  end)

  it("reads an outbound 2025-01-01 message.sent (from only, no from_handle)", function()
    local doc = received_2025()
    doc.event_type = "message.sent"
    doc.data.is_from_me = true
    doc.data.from_handle = nil
    doc.data.from = "+12025551234"
    local ev = make(doc)
    assert.is_false(ev:is_inbound())
    assert.equal("+12025551234", ev:sender())
  end)

  it("reads a 2025-01-01 message.read with a top-level message_id", function()
    local ev = make(envelope("2025-01-01", "message.read", {
      chat_id = "c1", message_id = "m1", is_from_me = true, read_at = "2026-02-05T19:13:58.177Z",
    }))
    assert.equal("m1", ev:message_id())
    assert.equal("c1", ev:chat_id())
    assert.is_nil(ev:text())
  end)

  it("reads message.edited (2026-02-03 only)", function()
    local ev = make(envelope("2026-02-03", "message.edited", {
      id = "m2", chat = { id = "c2", is_group = false }, direction = "inbound",
      sender_handle = handle("+12025559876", false), edited_at = "2026-02-05T19:40:00Z",
      part = { index = 0, text = "fixed typo" },
    }))
    assert.equal("fixed typo", ev:text())
    assert.equal("m2", ev:message_id())
    assert.equal("c2", ev:chat_id())
    assert.is_true(ev:is_inbound())
  end)

  it("reads reactions, typing indicators and chat.created", function()
    local r = make(envelope("2026-02-03", "reaction.added", {
      chat_id = "c3", message_id = "m3", is_from_me = false, reaction_type = "love",
      from_handle = handle("+12025550147", false),
    }))
    assert.equal("c3", r:chat_id())
    assert.equal("m3", r:message_id())
    assert.equal("+12025550147", r:sender())
    assert.is_true(r:is_inbound())
    assert.is_nil(r:text())

    local t = make(envelope("2026-02-03", "chat.typing_indicator.started",
      { chat_id = "8f392755-6865-4b18-880a-227f9d8b458f" }))
    assert.equal("8f392755-6865-4b18-880a-227f9d8b458f", t:chat_id())
    assert.is_nil(t:message_id())
    assert.is_nil(t:sender())
    assert.is_nil(t:is_inbound())
    assert.is_nil(t:parts())

    local c = make(envelope("2026-02-03", "chat.created", { id = "c4", is_group = true, handles = {} }))
    assert.equal("c4", c:chat_id())
  end)

  it("treats JSON null and missing data as absent", function()
    local ev = make(envelope("2026-02-03", "message.failed", {
      code = 4001, failed_at = "2026-02-05T19:31:13Z", chat_id = null, message_id = null,
    }))
    assert.is_nil(ev:chat_id())
    assert.is_nil(ev:message_id())
    assert.is_nil(ev:sender())
    local bare = make(envelope("2026-02-03", "call.ended", nil))
    assert.is_nil(bare:chat_id())
    assert.is_nil(bare:text())
    assert.is_nil(bare:is_inbound())
  end)

  it("reads both documented samples decoded from JSON text", function()
    local v2026 = assert(require("support.util").read_file("bench/message_received.json"))
    local v2025 = '{"api_version":"v3","webhook_version":"2025-01-01","event_type":"message.received",'
      .. '"event_id":"2915e81c-5068-4796-ace2-21d2c94ad298","created_at":"2026-02-05T19:31:13.736444093Z",'
      .. '"trace_id":"8af9171a45022df2eb74ba4e4c83be0f","partner_id":"your-partner-id","data":{'
      .. '"chat_id":"8f392755-6865-4b18-880a-227f9d8b458f","from":"+12025559876",'
      .. '"from_handle":{"handle":"+12025559876","id":"e604375a-5913-483a-8278-c631e8f0ffda","is_me":false,'
      .. '"joined_at":"2026-01-04T05:48:51.321469Z","left_at":null,"service":"iMessage","status":"active"},'
      .. '"idempotency_key":null,"is_from_me":false,"is_group":false,"message":{'
      .. '"created_at":"2026-02-05T19:31:12.892Z","delivered_at":null,'
      .. '"id":"89e3566e-1d13-49e5-a8ee-48490d5bfeb7","is_delivered":false,"is_read":false,'
      .. '"parts":[{"type":"text","value":"Hello!"}],"read_at":null,"sent_at":"2026-02-05T19:31:13.074Z",'
      .. '"updated_at":"2026-02-05T19:31:13.712Z"},"preferred_service":null,'
      .. '"received_at":"2026-02-05T19:31:13.074Z","recipient_handle":{"handle":"+12025551234",'
      .. '"id":"6d6c617f-187a-4dcd-a0d5-988347a8c092","is_me":true,"joined_at":"2026-01-04T05:48:51.321469Z",'
      .. '"left_at":null,"service":"iMessage","status":"active"},"recipient_phone":null,"service":"iMessage"}}'
    for _, raw in ipairs({ v2026, v2025 }) do
      local ev = assert(event.decode(raw, { id = "d", timestamp = 1, scheme = "standard" }))
      assert.equal(raw, ev.raw)
      assert.equal("8f392755-6865-4b18-880a-227f9d8b458f", ev:chat_id())
      assert.equal("89e3566e-1d13-49e5-a8ee-48490d5bfeb7", ev:message_id())
      assert.equal("+12025559876", ev:sender())
      assert.is_true(ev:is_inbound())
      assert.equal("Hello!", ev:text())
      assert.equal("iMessage", ev:service())
    end
  end)

  it("keeps the envelope fields and the delivery", function()
    local ev = make(received_2026())
    assert.equal("message.received", ev.type)
    assert.equal("2915e81c-5068-4796-ace2-21d2c94ad298", ev.id)
    assert.equal("v3", ev.api_version)
    assert.equal("your-partner-id", ev.partner_id)
    assert.equal("msg_1", ev.delivery.id)
    assert.matches("message.received", tostring(ev))
  end)

  it("rejects documents that are not Linq events", function()
    local ev, err = event.from_document({ event_type = "message.received" }, "{}")
    assert.is_nil(ev)
    assert.equal("invalid_json", err.reason)
    ev, err = event.from_document("x", "x")
    assert.is_nil(ev)
    assert.equal("invalid_json", err.reason)
  end)
end)

describe("linqwebhooks.event_types", function()
  local types = require "linqwebhooks.event_types"

  it("is the array of types, with .set alongside that pairs and # do not see", function()
    assert.equal(types, linq.EVENT_TYPES)
    local n = 0
    for k, v in pairs(types) do
      n = n + 1
      assert.equal("number", type(k))
      assert.is_true(types.set[v])
    end
    assert.equal(#types, n)
    assert.is_true(n >= 25)
    local count = 0
    for t, on in pairs(types.set) do
      count = count + 1
      assert.is_true(on)
      assert.equal("string", type(t))
    end
    assert.equal(#types, count)
    assert.is_nil(types.set["message.nope"])
  end)
end)
