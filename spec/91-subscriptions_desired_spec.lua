-- Subscriptions as code: plan/apply against the real emulator (from empty,
-- from drifted state, idempotence, prune), strict validation of the desired
-- state, the rotation marker and the plan's text form.
local linq = require "linqwebhooks"
local emulator = require "linqwebhooks.emulator"
local sfile = require "linqwebhooks.secrets_file"
local D = require "linqwebhooks.subscriptions.desired"

local function tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function by_url(list)
  local t = {}
  for _, s in ipairs(list) do
    t[s.target_url] = s
  end
  return t
end

local function count(plan)
  return { #plan.create, #plan.update, #plan.delete, #plan.unchanged }
end

describe("rotation marker", function()
  it("is removed from and added to target URLs, keeping the other parameters", function()
    assert.same({ "https://a.example/x?version=2026-02-03", 2 },
      { D.strip_marker("https://a.example/x?version=2026-02-03&linqwh_rotation=2") })
    assert.same({ "https://a.example/x", 1 }, { D.strip_marker("https://a.example/x?linqwh_rotation=1") })
    assert.same({ "https://a.example/x?a=1&b=2#f", 7 },
      { D.strip_marker("https://a.example/x?a=1&linqwh_rotation=7&b=2#f") })
    -- URLs without the marker are returned unchanged, even odd ones
    assert.same({ "https://a.example/x?", nil }, { D.strip_marker("https://a.example/x?") })
    assert.same({ "https://a.example/x?linqwh_rotation_x=1", nil },
      { D.strip_marker("https://a.example/x?linqwh_rotation_x=1") })
    assert.equal("https://a.example/x?linqwh_rotation=1", D.with_marker("https://a.example/x", 1))
    assert.equal("https://a.example/x?version=2026-02-03&linqwh_rotation=3",
      D.with_marker("https://a.example/x?version=2026-02-03&linqwh_rotation=2", 3))
    assert.equal("https://a.example/x?linqwh_rotation=2#f", D.with_marker("https://a.example/x#f", 2))
    assert.has_error(function() D.with_marker("https://a.example/x", 0) end)
  end)
end)

describe("desired state validation", function()
  local E = { "message.received" }
  local cases = {
    { "not a list", { target_url = "https://a.example" }, "must be an array of subscriptions" },
    { "a string", "x", "must be an array of subscriptions, got string" },
    { "unknown key", { { target_url = "https://a.example", subscribed_events = E, event = "x" } },
      "desired%[1%]: unknown key 'event'" },
    { "target_url type", { { target_url = 5, subscribed_events = E } }, "target_url must be a string.*got number" },
    { "missing events", { { target_url = "https://a.example" } }, "subscribed_events is required" },
    { "empty events", { { target_url = "https://a.example", subscribed_events = {} } },
      "subscribed_events must be a non%-empty array" },
    { "event type", { { target_url = "https://a.example", subscribed_events = { "a.b", 3 } } },
      "subscribed_events%[2%] must be a string, got number" },
    { "phones type", { { target_url = "https://a.example", subscribed_events = E, phone_numbers = "+1" } },
      "phone_numbers must be an array of strings, got string" },
    { "is_active type", { { target_url = "https://a.example", subscribed_events = E, is_active = "yes" } },
      "is_active must be a boolean.*got string" },
    { "marker", { { target_url = "https://a.example/?linqwh_rotation=1", subscribed_events = E } },
      "must not carry the rotation marker" },
    { "same endpoint twice", { { target_url = "https://a.example", subscribed_events = E },
                               { target_url = "https://a.example", subscribed_events = E } },
      "desired%[2%]%.target_url is the same as desired%[1%]" },
  }
  local client
  setup(function()
    -- no request is made: validation raises first
    client = linq.client{ api_key = "k", base_url = "http://127.0.0.1:9" }
  end)
  for _, c in ipairs(cases) do
    it("raises on " .. c[1] .. " (plan and apply), naming the entry", function()
      local ok, e = pcall(function() local p = client.webhook_subscriptions:plan(c[2]) return p end)
      assert.is_false(ok)
      assert.matches(c[3], e)
      assert.matches("^spec/91%-subscriptions_desired_spec%.lua:%d+:", e) -- the caller's line
      ok, e = pcall(client.webhook_subscriptions.apply, client.webhook_subscriptions, c[2], {})
      assert.is_false(ok)
      assert.matches(c[3], e)
    end)
  end
  it("raises on unknown apply options", function()
    local ok, e = pcall(client.webhook_subscriptions.apply, client.webhook_subscriptions, {},
      { prune = true, dry = true })
    assert.is_false(ok)
    assert.matches("unknown option 'dry'", e)
  end)
end)

describe("plan/apply against the emulator", function()
  local emu, client, subs

  setup(function()
    emu = emulator.spawn{}
    client = linq.client{ api_key = emu.api_key, base_url = emu.api_url }
    subs = client.webhook_subscriptions
  end)

  teardown(function()
    client:close()
    emu.stop()
  end)

  before_each(function()
    for _, s in ipairs(assert(subs:list())) do
      assert(subs:delete(s.id))
    end
  end)

  local A = "https://app.example.com/linq?version=2026-02-03"
  local B = "https://app.example.com/linq-line2"
  local function desired()
    return {
      { target_url = A, subscribed_events = { "message.received", "message.sent" } },
      { target_url = B, subscribed_events = { "message.delivered" }, phone_numbers = { "+12025550123" } },
    }
  end

  it("from empty: creates everything, secrets to the file and on_secret; a second apply changes nothing", function()
    local path = tmpfile()
    local plan = assert(subs:plan(desired()))
    assert.same({ 2, 0, 0, 0 }, count(plan))
    assert.equal(A, plan.create[1].target_url)
    local handed = {}
    local done = assert(subs:apply(desired(), { secrets_file = path,
      on_secret = function(sub, secret) handed[sub.target_url] = secret end }))
    assert.same({ 2, 0, 0, 0 }, count(done))
    for _, s in ipairs(done.create) do
      assert.is_nil(s.signing_secret) -- never kept on the returned objects
      assert.matches("^whsec_", handed[s.target_url])
    end
    local have = by_url(assert(subs:list()))
    assert.same({ "message.received", "message.sent" }, have[A].subscribed_events)
    assert.same({ "+12025550123" }, have[B].phone_numbers)
    -- the secrets file: 0600, one secret per endpoint, the same as on_secret got
    local doc = assert(sfile.read(path))
    assert.equal(handed[A], doc.endpoints[A].secrets[1].secret)
    assert.equal(have[A].id, doc.endpoints[A].secrets[1].subscription_id)
    assert.equal(handed[B], doc.endpoints[B].secrets[1].secret)
    assert.equal(384, require("linqwebhooks.core").file_info(path).mode) -- 0600
    -- idempotent
    local again = assert(subs:apply(desired(), { secrets_file = path }))
    assert.same({ 0, 0, 0, 2 }, count(again))
    assert.same({ 0, 0, 0, 2 }, count(assert(subs:plan(desired()))))
    assert.equal(2, #assert(subs:list()))
    os.remove(path)
  end)

  it("from drifted state: field-by-field updates, then nothing", function()
    assert(subs:apply(desired(), { on_secret = function() end }))
    local have = by_url(assert(subs:list()))
    -- drift: events changed by hand, B deactivated and its line filter removed
    assert(have[A]:update{ subscribed_events = { "message.received", "chat.created" } })
    assert(have[B]:update{ is_active = false, phone_numbers = linq.null })
    local plan = assert(subs:plan(desired()))
    assert.same({ 0, 2, 0, 0 }, count(plan))
    local ch = {}
    for _, u in ipairs(plan.update) do
      ch[u.sub.target_url] = u.changes
    end
    assert.same({ subscribed_events = { { "chat.created", "message.received" },
                                        { "message.received", "message.sent" } } }, ch[A])
    assert.same({ is_active = { false, true }, phone_numbers = { {}, { "+12025550123" } } }, ch[B])
    local text = D.format_plan(plan)
    assert.matches("~ update " .. A:gsub("%p", "%%%0") .. " %(id ", text)
    assert.matches("\n    subscribed_events: chat.created, message.received %-> message.received, message.sent", text)
    assert.matches("\n    phone_numbers: %(none%) %-> %+12025550123", text)
    assert.matches("\n    is_active: false %-> true", text)
    assert.matches("Plan: 0 to create, 2 to update, 0 to delete, 0 unchanged%.$", text)
    local done = assert(subs:apply(desired()))
    assert.same({ 0, 2, 0, 0 }, count(done))
    have = by_url(assert(subs:list()))
    assert.same({ "message.received", "message.sent" }, have[A].subscribed_events)
    assert.is_true(have[B].is_active)
    assert.same({ "+12025550123" }, have[B].phone_numbers)
    assert.same({ 0, 0, 0, 2 }, count(assert(subs:plan(desired()))))
    -- event order and duplicates do not count as drift
    local d = desired()
    d[1].subscribed_events = { "message.sent", "message.received", "message.sent" }
    assert.same({ 0, 0, 0, 2 }, count(assert(subs:plan(d))))
  end)

  it("is_active = false in the desired state; removing a line filter", function()
    local d = desired()
    d[2].is_active = false
    assert(subs:apply(d, { on_secret = function() end }))
    assert.is_false(by_url(assert(subs:list()))[B].is_active)
    d[2].phone_numbers = nil
    local done = assert(subs:apply(d))
    assert.same({ 0, 1, 0, 1 }, count(done))
    assert.is_nil(by_url(assert(subs:list()))[B].phone_numbers)
    assert.same({ 0, 0, 0, 2 }, count(assert(subs:plan(d))))
  end)

  it("deletes only with prune", function()
    local path = tmpfile()
    assert(subs:apply(desired(), { secrets_file = path }))
    local extra = assert(subs:create{ target_url = "https://stray.example.com/x",
                                      subscribed_events = { "message.sent" } })
    local d = { desired()[1] } -- B is no longer wanted
    local plan = assert(subs:plan(d))
    assert.same({ 0, 0, 2, 1 }, count(plan))
    assert.matches("%- delete https://stray%.example%.com/x %(id " .. extra.id:gsub("%p", "%%%0")
      .. "%)  %[only with prune%]",
      D.format_plan(plan))
    assert.matches("2 to delete %(with prune%)", D.format_plan(plan))
    local done = assert(subs:apply(d, { secrets_file = path }))
    assert.same({ 0, 0, 0, 1 }, count(done))
    assert.equal(3, #assert(subs:list()))
    done = assert(subs:apply(d, { prune = true, secrets_file = path }))
    assert.same({ 0, 0, 2, 1 }, count(done))
    local left = assert(subs:list())
    assert.equal(1, #left)
    assert.equal(A, left[1].target_url)
    -- the deleted subscription's secret expires (in-flight deliveries still verify)
    local doc = assert(sfile.read(path))
    assert.is_number(doc.endpoints[B].secrets[1].expires_at)
    assert.is_nil(doc.endpoints[A].secrets[1].expires_at)
    assert.same({ 0, 0, 0, 1 }, count(assert(subs:apply(d, { prune = true }))))
    -- an empty desired state with prune deletes everything
    assert.same({ 0, 0, 1, 0 }, count(assert(subs:apply({}, { prune = true }))))
    assert.equal(0, #assert(subs:list()))
    os.remove(path)
  end)

  it("matches twins by target_url without the marker; apply leaves an unfinished rotation alone", function()
    assert(subs:apply(desired(), { on_secret = function() end }))
    local twin = assert(subs:create{ target_url = D.with_marker(A, 1),
      subscribed_events = { "message.received", "message.sent" } })
    local plan = assert(subs:plan(desired()))
    assert.same({ 0, 0, 0, 2 }, count(plan))
    assert.equal(1, #plan.rotating)
    assert.not_equal(twin.id, plan.rotating[1].id) -- the newest twin serves the endpoint
    local ids = {}
    for _, s in ipairs(plan.unchanged) do
      ids[s.id] = true
    end
    assert.is_true(ids[twin.id])
    assert.matches("! rotating " .. A:gsub("%p", "%%%0"), D.format_plan(plan))
    local done = assert(subs:apply(desired(), { prune = true }))
    assert.same({ 0, 0, 0, 2 }, count(done))
    assert.equal(3, #assert(subs:list()))
  end)

  it("refuses to create without a place for the secret; an API error carries what was done", function()
    local _, err = subs:apply(desired())
    assert.matches("neither on_secret nor secrets_file", tostring(err))
    assert.equal(0, #assert(subs:list()))
    local d = desired()
    d[2].phone_numbers = { "12025550123" } -- not E.164: the client refuses it
    local done, e2 = subs:apply(d, { on_secret = function() end })
    assert.is_nil(done)
    assert.matches("E%.164", tostring(e2))
    assert.equal(1, #e2.done.create)
    -- fixed, apply goes on from there
    d[2].phone_numbers = { "+12025550123" }
    assert.same({ 1, 0, 0, 1 }, count(assert(subs:apply(d, { on_secret = function() end }))))
  end)

  it("load_file reads a JSON or Lua desired-state file", function()
    local j = tmpfile() .. ".json"
    local f = assert(io.open(j, "wb"))
    f:write('[{"target_url":"https://app.example.com/j","subscribed_events":["message.sent"],"phone_numbers":null}]')
    f:close()
    local d = assert(D.load_file(j))
    assert.same({ 1, 0, 0, 0 }, count(assert(subs:plan(d))))
    local l = tmpfile() .. ".lua"
    f = assert(io.open(l, "wb"))
    f:write('return { { target_url = "https://app.example.com/l", subscribed_events = { "message.sent" } } }')
    f:close()
    assert.equal("https://app.example.com/l", assert(D.load_file(l))[1].target_url)
    f = assert(io.open(l, "wb"))
    f:write('return os.exit(3)') -- no globals in there
    f:close()
    local _, err = D.load_file(l)
    assert.matches("os", tostring(err))
    os.remove(j)
    os.remove(l)
  end)

  it("commands.plan/apply (for linqwh): text out, exit statuses", function()
    local cmd = require "linqwebhooks.subscriptions.commands"
    local file = tmpfile() .. ".json"
    local f = assert(io.open(file, "wb"))
    f:write('[{"target_url":"https://app.example.com/cli","subscribed_events":["message.sent"]}]')
    f:close()
    local text, err = cmd.plan(client, file)
    assert.is_nil(err)
    assert.matches("^%+ create https://app%.example%.com/cli\n", text)
    assert.matches("Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged%.$", text)
    -- creating without a secrets file: a usage error, nothing created
    local st
    text, err, st = cmd.apply(client, file, {})
    assert.is_nil(text)
    assert.equal(2, st)
    assert.matches("%-%-secrets%-file", err)
    assert.equal(0, #assert(subs:list()))
    local path = tmpfile()
    text = assert(cmd.apply(client, file, { secrets_file = path }))
    assert.matches("^%+ create https://app%.example%.com/cli %(id ", text)
    assert.not_matches("whsec_", text)
    assert.matches("^= unchanged .*Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged%.$",
      assert(cmd.apply(client, file, { secrets_file = path })))
    assert.matches("Plan: 0 to create, 0 to update, 0 to delete, 1 unchanged%.$", (cmd.plan(client, file)))
    -- a malformed file: status 2 with the entry named
    f = assert(io.open(file, "wb"))
    f:write('[{"target_url":"https://app.example.com/cli","subscribed_events":["message.sent"],"x":1}]')
    f:close()
    text, err, st = cmd.plan(client, file)
    assert.is_nil(text)
    assert.equal(2, st)
    assert.matches("%[1%]: unknown key 'x'", err)
    text, err, st = cmd.plan(client, file .. ".missing")
    assert.is_nil(text)
    assert.matches("cannot read", err)
    assert.equal(2, st)
    text, err, st = cmd.rotate(client, "some-id", {})
    assert.is_nil(text)
    assert.equal(2, st)
    assert.matches("%-%-secrets%-file", err)
    text, err, st = cmd.rotate(client, "no-such-id", { secrets_file = path })
    assert.is_nil(text)
    assert.equal(1, st)
    assert.matches("NotFoundError", err)
    os.remove(file)
    os.remove(path)
  end)
end)
