-- The event catalogue (linq.EVENT_TYPES, linq.events), strict name checks
-- with suggestions, and forward compatibility: a delivery of a type that is
-- not in the catalogue is verified, de-duplicated and dispatched to matching
-- wildcards, never refused.
local linq = require "linqwebhooks"
local event_types = require "linqwebhooks.event_types"

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local NOW = 1770319873

local function delivery(etype, id)
  local body = string.format(
    '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"%s","event_id":"%s",'
      .. '"created_at":"2026-02-05T19:31:13.736444093Z","trace_id":"8af9171a45022df2eb74ba4e4c83be0f",'
      .. '"partner_id":"your-partner-id","data":{"poll_id":"p1"}}', etype, id)
  return body, linq.sign{ secret = SECRET, body = body, timestamp = NOW, id = "msg_" .. id }
end

local function hooks(opts)
  opts = opts or {}
  opts.secret, opts.clock = SECRET, function() return NOW end
  return linq.webhooks(opts)
end

describe("linq.EVENT_TYPES and linq.events", function()
  it("hold today's 75 types from the generated data, in catalogue order", function()
    assert.are.equal(75, #linq.EVENT_TYPES)
    assert.are.equal(event_types, linq.EVENT_TYPES)
    assert.are.equal("message.sent", linq.EVENT_TYPES[1])
    local seen = {}
    for _, t in ipairs(linq.EVENT_TYPES) do
      assert.is_nil(seen[t], t)
      seen[t] = true
      assert.is_true(linq.events.SET[t])
      assert.is_true(linq.events.known(t))
      assert.is_true(linq.events.well_formed(t), t)
    end
    for _, t in ipairs({ "poll.vote.added", "payment.succeeded", "location.sharing.started",
                         "webhook_subscription.created", "api_token.created", "phone_number.assigned",
                         "chat.background_update_failed", "message.edited", "call.no_answer" }) do
      assert.is_true(seen[t], t)
    end
    assert.is_false(linq.events.known("message.opt_out")) -- removed by Linq
    assert.are.same({ "message.opt_out", "message.opt_in" }, linq.events.REMOVED)
  end)

  it("know each type's group, payload versions and schema flag", function()
    local e = linq.events
    assert.are.equal("poll", e.group("poll.vote.added"))
    assert.are.equal("message", e.group("message.received"))
    assert.are.equal("payment", e.group("payment.succeeded"))
    assert.are.equal("account", e.group("webhook_subscription.created"))
    assert.are.equal("webhook_subscription", e.subgroup("webhook_subscription.created"))
    assert.is_nil(e.subgroup("message.sent"))
    assert.is_nil(e.group("nope.nope"))
    assert.are.same({ "2025-01-01", "2026-02-03" }, e.versions("message.sent"))
    assert.are.same({ "2026-02-03" }, e.versions("message.edited"))
    assert.is_nil(e.versions("poll.sent"))
    assert.is_false(e.delivered_in("message.edited", "2025-01-01"))
    assert.is_true(e.delivered_in("message.edited", "2026-02-03"))
    assert.is_true(e.delivered_in("poll.sent", "2025-01-01"))
    assert.is_true(e.has_schema("poll.vote.added"))
    local none = {}
    for _, t in ipairs(linq.EVENT_TYPES) do
      if not e.has_schema(t) then
        none[#none + 1] = t
      end
    end
    assert.are.same({ "call.initiated", "call.ringing", "call.answered", "call.ended", "call.failed",
                      "call.declined", "call.no_answer" }, none)
    local info = e.info("api_token.created")
    assert.are.equal("account", info.group)
    assert.are.equal("account_event", info.category)
    assert.has_error(function() e.group(nil) end, "linq.events.group: argument 'name' must be a string, got nil")
  end)

  it("tell well-formed names", function()
    local wf = linq.events.well_formed
    for _, ok in ipairs({ "a.b", "poll.vote.added", "x_1.y_2", "poll.*", "*", "new", "a.b.c.*" }) do
      assert.is_true(wf(ok), ok)
    end
    for _, bad in ipairs({ "", "Message.sent", "a..b", ".a", "a.", "a.*.b", "a*", "*.a", "**", ".*",
                           "a b", "a-b.c", "a.b\0", 42 }) do
      assert.is_false(wf(bad), tostring(bad))
    end
  end)

  it("list the prefixes wildcards can match, and suggest the nearest one", function()
    local ev = linq.events
    for _, p in ipairs({ "message", "chat", "chat.typing_indicator", "poll", "poll.vote", "webhook_subscription" }) do
      assert.is_true(ev.is_prefix(p), p)
    end
    for _, p in ipairs({ "messages", "message.received", "chat.typing", "brand", "" }) do
      assert.is_false(ev.is_prefix(p), p)
    end
    -- every type has its prefixes listed, sorted, once
    local seen = {}
    for i, p in ipairs(ev.PREFIXES) do
      assert.is_nil(seen[p])
      seen[p] = true
      if i > 1 then
        assert.is_true(ev.PREFIXES[i - 1] < p)
      end
    end
    for _, t in ipairs(ev.TYPES) do
      assert.is_true(seen[t:match("^([^.]+)%.")], t)
    end
    assert.are.same({ "message" }, ev.suggest_prefix("messages"))
    assert.are.same({ "poll.vote" }, ev.suggest_prefix("pol.vote"))
    assert.are.same({}, ev.suggest_prefix("zzzzzz"))
    assert.has_error(function() ev.is_prefix(1) end)
  end)

  it("suggest the nearest names", function()
    assert.are.same({ "message.received" }, linq.events.suggest("message.recieved"))
    assert.are.same({ "poll.vote.added" }, linq.events.suggest("poll.vote.add"))
    assert.are.same({}, linq.events.suggest("totally.different"))
  end)
end)

describe("strict event names", function()
  it("raise on a typo with the closest known name", function()
    local h = hooks()
    assert.has_error(function() h:on("message.recieved", function() end) end,
      "hooks:on: unknown event type 'message.recieved' (did you mean 'message.received'? not in"
        .. " linq.EVENT_TYPES; use a wildcard, or linq.webhooks{ strict = false } to allow it)")
    assert.has_error(function() h:once("poll.vote.add", function() end) end,
      "hooks:once: unknown event type 'poll.vote.add' (did you mean 'poll.vote.added'? not in"
        .. " linq.EVENT_TYPES; use a wildcard, or linq.webhooks{ strict = false } to allow it)")
    assert.has_error(function() h:on("brand.new_thing", function() end) end,
      "hooks:on: unknown event type 'brand.new_thing' (not in linq.EVENT_TYPES; use a wildcard,"
        .. " or linq.webhooks{ strict = false } to allow it)")
  end)

  it("accept every catalogued type", function()
    local h = hooks()
    for _, t in ipairs(linq.EVENT_TYPES) do
      h:on(t, function() end)
    end
  end)

  it("strict = false accepts any well-formed name, and only those", function()
    local h = hooks({ strict = false })
    h:on("brand.new_thing", function() end)
    h:on("brand.*", function() end)
    h:on("x", function() end)
    for _, bad in ipairs({ "Brand.New", "brand..new", "brand new", "brand.", "brand-new.x" }) do
      assert.has_error(function() h:on(bad, function() end) end,
        "hooks:on: bad event name '" .. bad .. "': lowercase segments of [a-z0-9_] separated by dots"
          .. " (e.g. 'message.received')")
    end
  end)
end)

describe("forward compatibility", function()
  it("verifies, de-duplicates and dispatches an unknown type to matching wildcards", function()
    local h = hooks()
    local got = {}
    h:on("*", function(ev) got[#got + 1] = "* " .. ev.type end)
    h:on("poll.*", function(ev) got[#got + 1] = "poll.* " .. ev.type end)
    h:on("poll.vote.*", function(ev) got[#got + 1] = "poll.vote.* " .. ev.type end)
    h:on("message.*", function(ev) got[#got + 1] = "message.* " .. ev.type end)
    local res = h:handle(delivery("poll.vote.changed", "evt_future_1"))
    assert.are.equal(200, res.status)
    assert.is_false(res.duplicate)
    assert.are.same({ "* poll.vote.changed", "poll.* poll.vote.changed",
                      "poll.vote.* poll.vote.changed" }, got)
    -- the same event again: de-duplicated, not re-dispatched
    res = h:handle(delivery("poll.vote.changed", "evt_future_1"))
    assert.are.equal(200, res.status)
    assert.is_true(res.duplicate)
    assert.are.equal(3, #got)
    -- a bad signature on an unknown type is still refused
    local body, headers = delivery("poll.vote.changed", "evt_future_2")
    headers["webhook-signature"] = "v1,AAAA"
    headers["x-webhook-signature"] = "AAAA"
    assert.are.equal(401, h:handle(body, headers).status)
    assert.are.equal(3, #got)
  end)

  it("answers 200 to an unknown type nobody listens to", function()
    local h = hooks()
    h:on("message.received", function() error("not this one") end)
    local res = h:handle(delivery("brand.new_thing", "evt_future_3"))
    assert.are.equal(200, res.status)
  end)
end)

describe("the generated catalogue", function()
  it("is up to date with data/linq-events.json (make catalogue)", function()
    local child = require "support.child"
    local util = require "support.util"
    local out = os.tmpname()
    local ok = os.execute(child.lua() .. " tools/gen_catalogue.lua data/linq-events.json " .. out .. " 2>/dev/null")
    assert.is_true(ok == true or ok == 0, "tools/gen_catalogue.lua failed")
    local fresh = util.read_file(out)
    os.remove(out)
    assert.is_true(fresh == util.read_file("lua/linqwebhooks/catalogue_data.lua"),
      "lua/linqwebhooks/catalogue_data.lua is stale: run `make catalogue`")
  end)
end)
