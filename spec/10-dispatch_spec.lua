local linq = require "linqwebhooks"

local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
local NOW = 1770319873

local function body_for(etype, id, data)
  return string.format(
    '{"api_version":"v3","webhook_version":"2026-02-03","event_type":"%s","event_id":"%s",'
      .. '"created_at":"2026-02-05T19:31:13.736444093Z","trace_id":"8af9171a45022df2eb74ba4e4c83be0f",'
      .. '"partner_id":"your-partner-id","data":%s}',
    etype, id, data or '{"chat_id":"8f392755-6865-4b18-880a-227f9d8b458f"}')
end

local seq = 0
local function delivery(etype, id, opts)
  opts = opts or {}
  seq = seq + 1
  local body = opts.body or body_for(etype, id or ("evt_" .. seq))
  local headers = linq.sign{ secret = opts.secret or SECRET, body = body, timestamp = NOW,
                             id = "msg_" .. seq, scheme = opts.scheme or "standard" }
  return body, headers
end

local function new_hooks(opts)
  opts = opts or {}
  if opts.secret == nil and opts.secrets == nil then
    opts.secret = SECRET
  end
  if opts.clock == nil then
    opts.clock = function() return NOW end
  end
  return linq.webhooks(opts)
end

describe("linq.webhooks dispatch", function()
  it("runs exact handlers before wildcards, each group in registration order", function()
    local hooks = new_hooks()
    local order = {}
    local function rec(tag)
      return function(ev)
        order[#order + 1] = tag .. ":" .. ev.type
      end
    end
    local ret = hooks:on("*", rec("all"))
      :on("message.received", rec("exact1"))
      :on("message.*", rec("prefix"))
      :on("message.received", rec("exact2"))
      :on("reaction.*", rec("other"))
    assert.equal(hooks, ret)
    local res = hooks:handle(delivery("message.received"))
    assert.equal(200, res.status)
    assert.same({ "exact1:message.received", "exact2:message.received",
                  "all:message.received", "prefix:message.received" }, order)
  end)

  it("runs many handlers in order, isolating a failure among them", function()
    local hooks = new_hooks()
    local order = {}
    for i = 1, 7 do
      hooks:on(i % 2 == 0 and "message.*" or "message.received", function()
        order[#order + 1] = i
        if i == 5 or i == 6 then
          error("handler " .. i, 0)
        end
      end)
    end
    local res = hooks:handle(delivery("message.received"))
    assert.equal(500, res.status)
    assert.same({ 1, 3, 5, 7, 2, 4, 6 }, order)
    assert.equal("handler 5", res.err.cause)
  end)

  it("matches nested prefixes and never a bare prefix", function()
    local hooks = new_hooks({ strict = false })
    local got = {}
    hooks:on("chat.typing_indicator.*", function(ev) got[#got + 1] = "typing " .. ev.type end)
    hooks:on("chat.*", function(ev) got[#got + 1] = "chat " .. ev.type end)
    hooks:handle(delivery("chat.typing_indicator.started"))
    hooks:handle(delivery("chat.created"))
    hooks:handle(delivery("chat"))
    hooks:handle(delivery("chatter.x"))
    assert.same({ "typing chat.typing_indicator.started", "chat chat.typing_indicator.started",
                  "chat chat.created" }, got)
  end)

  it("passes the decoded event, with type and id from the signed body only", function()
    local hooks = new_hooks()
    local seen
    hooks:on("message.received", function(ev) seen = ev end)
    local body, headers = delivery("message.received", "evt_body")
    headers["X-Webhook-Event"] = "message.failed"
    local res = hooks:handle(body, headers)
    assert.equal(200, res.status)
    assert.equal("ok", res.body)
    assert.is_false(res.duplicate)
    assert.is_nil(res.err)
    assert.equal(seen, res.event)
    assert.equal("message.received", seen.type)
    assert.equal("evt_body", seen.id)
    assert.equal(body, seen.raw)
    assert.equal("standard", seen.delivery.scheme)
    assert.equal(headers["webhook-id"], seen.delivery.id)
    assert.equal("8f392755-6865-4b18-880a-227f9d8b458f", seen:chat_id())
  end)

  it("answers 200 when no handler matches", function()
    local hooks = new_hooks()
    hooks:on("reaction.added", function() error("must not run") end)
    assert.equal(200, hooks:handle(delivery("message.received")).status)
  end)

  it("once handlers run a single time", function()
    local hooks = new_hooks()
    local n, m = 0, 0
    hooks:once("message.received", function() n = n + 1 end)
    hooks:once("*", function() m = m + 1 end)
    hooks:handle(delivery("message.received"))
    hooks:handle(delivery("message.received"))
    assert.equal(1, n)
    assert.equal(1, m)
  end)

  it("once handlers run a single time even when handle re-enters", function()
    local hooks = new_hooks()
    local n = 0
    local inner
    hooks:once("message.*", function()
      n = n + 1
      if not inner then
        inner = hooks:handle(delivery("message.sent"))
      end
    end)
    hooks:handle(delivery("message.received"))
    assert.equal(1, n)
    assert.equal(200, inner.status)
  end)

  it("off removes a handler, or every handler of a name", function()
    local hooks = new_hooks()
    local calls = {}
    local a = function() calls[#calls + 1] = "a" end
    local b = function() calls[#calls + 1] = "b" end
    hooks:on("message.received", a):on("message.received", b):on("message.*", a)
    assert.equal(hooks, hooks:off("message.received", a))
    hooks:handle(delivery("message.received"))
    assert.same({ "b", "a" }, calls)
    calls = {}
    hooks:off("message.*", a):off("message.received")
    hooks:handle(delivery("message.received"))
    assert.same({}, calls)
    -- removing something never registered is fine
    hooks:off("reaction.added", a)
  end)

  it("handlers added or removed during a dispatch apply from the next event", function()
    local hooks = new_hooks()
    local calls = {}
    local late = function() calls[#calls + 1] = "late" end
    local second = function() calls[#calls + 1] = "second" end
    hooks:on("message.received", function()
      calls[#calls + 1] = "first"
      hooks:on("message.received", late)
      hooks:off("message.received", second)
    end)
    hooks:on("message.received", second)
    hooks:handle(delivery("message.received"))
    assert.same({ "first", "second" }, calls)
    calls = {}
    hooks:handle(delivery("message.received"))
    assert.same({ "first", "late" }, calls)
  end)

  it("isolates handler errors, reports them to on_error and answers 500", function()
    local hooks = new_hooks()
    local ran, reported = {}, {}
    hooks:on("message.received", function() error("boom") end)
    hooks:on("message.received", function() ran[#ran + 1] = "second" end)
    hooks:on("*", function() error({ code = 7 }) end)
    hooks:on("*", function() ran[#ran + 1] = "third" end)
    hooks:on_error(function(err, ev) reported[#reported + 1] = { err = err, ev = ev } end)
    hooks:on_error(function() error("a failing error handler is ignored") end)
    local res = hooks:handle(delivery("message.received"))
    assert.equal(500, res.status)
    assert.equal("handler failed", res.body)
    assert.same({ "second", "third" }, ran)
    assert.equal(2, #reported)
    local e1 = reported[1].err
    assert.equal("handler", e1.kind)
    assert.equal("handler_failed", e1.reason)
    assert.matches("boom", e1.message)
    assert.matches("message.received", e1.message)
    assert.matches("boom", tostring(e1))
    assert.is_string(e1.traceback)
    assert.equal("message.received", e1.event_type)
    assert.equal(res.event, reported[1].ev)
    assert.same({ code = 7 }, reported[2].err.cause)
    assert.equal(e1, res.err)
  end)

  it("survives a raised value whose __tostring fails", function()
    local hooks = new_hooks()
    local bad = setmetatable({}, { __tostring = function() error("no") end })
    hooks:on("message.received", function() error(bad) end)
    local res = hooks:handle(delivery("message.received"))
    assert.equal(500, res.status)
    assert.equal(bad, res.err.cause)
    assert.matches("raised: %(a table%)", res.err.message)
  end)

  it("answers 500 on a handler error even without on_error handlers", function()
    local hooks = new_hooks()
    hooks:on("message.received", function() error("boom") end)
    local res = hooks:handle(delivery("message.received"))
    assert.equal(500, res.status)
    assert.matches("boom", res.err.message)
  end)

  describe("status mapping", function()
    it("401 for a bad signature, missing headers or a stale timestamp", function()
      local hooks = new_hooks()
      local ran = false
      hooks:on("*", function() ran = true end)
      local body, headers = delivery("message.received", nil, {
        secret = "whsec_MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=" })
      local res = hooks:handle(body, headers)
      assert.equal(401, res.status)
      assert.equal("no_matching_signature", res.err.reason)
      assert.matches("verification failed", res.body)
      assert.is_nil(res.event)
      assert.is_false(res.duplicate)

      res = hooks:handle(body, {})
      assert.equal(401, res.status)
      assert.equal("missing_headers", res.err.reason)

      local stale = new_hooks({ clock = function() return NOW + 301 end })
      res = stale:handle(delivery("message.received"))
      assert.equal(401, res.status)
      assert.equal("timestamp_too_old", res.err.reason)

      -- a body altered after signing
      body, headers = delivery("message.received")
      res = hooks:handle(body:gsub("message.received", "message.sent"), headers)
      assert.equal(401, res.status)
      assert.is_false(ran)
    end)

    it("400 for a signed body that is not a Linq event", function()
      local hooks = new_hooks()
      for _, bad in ipairs({ "not json", "[1,2]", '{"event_type":"message.received"}',
                             '{"event_id":"e1"}', '"str"' }) do
        local res = hooks:handle(delivery(nil, nil, { body = bad }))
        assert.equal(400, res.status)
        assert.equal("invalid_json", res.err.reason)
        assert.matches("invalid event", res.body)
        assert.is_nil(res.event)
      end
    end)

    it("accepts the legacy scheme", function()
      local hooks = new_hooks()
      local n = 0
      hooks:on("message.received", function(ev)
        n = n + 1
        assert.equal("legacy", ev.delivery.scheme)
      end)
      local res = hooks:handle(delivery("message.received", nil, { scheme = "legacy" }))
      assert.equal(200, res.status)
      assert.equal(1, n)
    end)

    it("verifies with any secret of a rotation keyring", function()
      local hooks = new_hooks({ secrets = { "whsec_MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=", SECRET } })
      assert.equal(200, hooks:handle(delivery("message.received")).status)
    end)
  end)

  describe("event names", function()
    it("rejects unknown exact names unless strict = false", function()
      local hooks = new_hooks()
      assert.has_error(function() hooks:on("mesage.received", function() end) end,
        "hooks:on: unknown event type 'mesage.received' (did you mean 'message.received'? not in"
          .. " linq.EVENT_TYPES; use a wildcard, or linq.webhooks{ strict = false } to allow it)")
      assert.has_error(function() hooks:once("poll.sent.later", function() end) end)
      local loose = new_hooks({ strict = false })
      local got
      loose:on("poll.sent.later", function(ev) got = ev.type end)
      loose:handle(delivery("poll.sent.later"))
      assert.equal("poll.sent.later", got)
    end)

    it("rejects a wildcard that matches no known type under strict, with the closest prefix", function()
      local hooks = new_hooks()
      assert.has_error(function() hooks:on("messages.*", function() end) end,
        "hooks:on: wildcard 'messages.*' matches no event type (did you mean 'message.*'? no type in"
          .. " linq.EVENT_TYPES starts with 'messages.'; use '*', or linq.webhooks{ strict = false }"
          .. " to allow it)")
      assert.has_error(function() hooks:once("chat.typing.*", function() end) end)
      assert.has_error(function() hooks:off("pol.vote.*") end,
        "hooks:off: wildcard 'pol.vote.*' matches no event type (did you mean 'poll.vote.*'? no"
          .. " type in linq.EVENT_TYPES starts with 'pol.vote.'; use '*', or linq.webhooks{ strict"
          .. " = false } to allow it)")
      -- no near prefix: no suggestion
      assert.has_error(function() hooks:on("zzzzzz.*", function() end) end,
        "hooks:on: wildcard 'zzzzzz.*' matches no event type (no type in linq.EVENT_TYPES starts"
          .. " with 'zzzzzz.'; use '*', or linq.webhooks{ strict = false } to allow it)")
      -- a full type name is not a prefix of any type
      assert.has_error(function() hooks:on("message.received.*", function() end) end)
      -- every prefix of a known type is fine, and "*"
      hooks:on("*", function() end)
      for _, t in ipairs(linq.EVENT_TYPES) do
        local pos = t:find(".", 1, true)
        while pos do
          hooks:on(t:sub(1, pos - 1) .. ".*", function() end)
          pos = t:find(".", pos + 1, true)
        end
      end
      -- strict = false: any well-formed wildcard (types Linq ships later)
      local loose = new_hooks({ strict = false })
      local got
      loose:on("messages.*", function(ev) got = ev.type end)
      loose:handle(delivery("messages.new"))
      assert.equal("messages.new", got)
    end)

    it("delivers unknown incoming types to matching wildcards, losslessly", function()
      local hooks = new_hooks()
      local got = {}
      hooks:on("*", function(ev) got[#got + 1] = ev end)
      hooks:on("payment.*", function(ev) got[#got + 1] = ev end)
      local body, headers = delivery("payment.succeeded", "evt_pay",
        nil)
      local res = hooks:handle(body, headers)
      assert.equal(200, res.status)
      assert.equal(2, #got)
      assert.equal("payment.succeeded", got[1].type)
      assert.equal(body, got[1].raw)
    end)

    it("validates names and handlers", function()
      local hooks = new_hooks()
      local f = function() end
      for _, bad in ipairs({ "message*", "*.received", "message.*.x", ".*", "", "**" }) do
        assert.has_error(function() hooks:on(bad, f) end)
      end
      assert.has_error(function() hooks:on(42, f) end, "hooks:on: argument 'name' must be a string, got number")
      assert.has_error(function() hooks:on("message.received", "f") end,
        "hooks:on: argument 'fn' must be a function, got string")
      assert.has_error(function() hooks:on_error(nil) end,
        "hooks:on_error: argument 'fn' must be a function, got nil")
      assert.has_error(function() hooks:off(nil) end)
      assert.has_error(function() hooks:handle(nil, {}) end,
        "hooks:handle: argument 'body' must be a string (the raw request body), got nil")
      assert.has_error(function() hooks:handle("{}", "headers") end,
        "hooks:handle: argument 'headers' must be a table, got string")
      -- a callable table is a fine handler
      local n = 0
      hooks:on("message.received", setmetatable({}, { __call = function() n = n + 1 end }))
      hooks:handle(delivery("message.received"))
      assert.equal(1, n)
    end)
  end)

  describe("options", function()
    it("are strict", function()
      assert.has_error(function() linq.webhooks{ secret = SECRET, tolerence = 300 } end,
        "linq.webhooks: unknown option 'tolerence'")
      assert.has_error(function() linq.webhooks{ secret = SECRET, dedupe = {} } end)
      assert.has_error(function() linq.webhooks{ secret = SECRET, strict = "no" } end)
      assert.has_error(function() linq.webhooks{ secret = SECRET, scheme = "v2" } end)
      assert.has_error(function() linq.webhooks{} end,
        "linq.webhooks: option 'secret' (or 'secrets') is required")
      assert.has_error(function() linq.webhooks() end)
      assert.has_error(function() linq.webhooks{ secret = "whsec_short" } end)
    end)

    it("never show the secret", function()
      local hooks = new_hooks()
      assert.not_matches("MfKQ9r8", tostring(hooks))
      local ok, err = pcall(linq.webhooks, { secret = SECRET .. " " })
      assert.is_false(ok)
      assert.not_matches("MfKQ9r8", tostring(err))
    end)
  end)
end)

describe("linq.webhooks de-duplication", function()
  it("dispatches an event id once and answers 200 to duplicates", function()
    local hooks = new_hooks()
    local n = 0
    hooks:on("message.received", function() n = n + 1 end)
    local body = body_for("message.received", "evt_dup")
    -- two deliveries of one event: different webhook-id/timestamp, same event_id
    local r1 = hooks:handle(body, linq.sign{ secret = SECRET, body = body, timestamp = NOW, id = "msg_a" })
    local r2 = hooks:handle(body, linq.sign{ secret = SECRET, body = body, timestamp = NOW - 5,
                                            id = "msg_b", scheme = "legacy" })
    assert.equal(200, r1.status)
    assert.is_false(r1.duplicate)
    assert.equal(200, r2.status)
    assert.is_true(r2.duplicate)
    assert.equal("duplicate", r2.body)
    assert.equal("evt_dup", r2.event.id)
    assert.equal(1, n)
  end)

  it("keeps a failed delivery retryable, then de-duplicates the success", function()
    local hooks = new_hooks()
    local attempts, errs = 0, 0
    hooks:on("message.received", function()
      attempts = attempts + 1
      if attempts == 1 then
        error("database down")
      end
    end)
    hooks:on_error(function() errs = errs + 1 end)
    local body, headers = delivery("message.received", "evt_retry")
    assert.equal(500, hooks:handle(body, headers).status)
    local retry = hooks:handle(body, headers)
    assert.equal(200, retry.status)
    assert.is_false(retry.duplicate)
    local again = hooks:handle(body, headers)
    assert.equal(200, again.status)
    assert.is_true(again.duplicate)
    assert.equal(2, attempts)
    assert.equal(1, errs)
  end)

  it("answers 503 to a concurrent duplicate and dispatches once", function()
    local hooks = new_hooks()
    local n, inner = 0, nil
    local body, headers = delivery("message.received", "evt_conc")
    hooks:on("message.received", function()
      n = n + 1
      -- the same event arrives again while its handlers are still running
      inner = hooks:handle(body, headers)
    end)
    local outer = hooks:handle(body, headers)
    assert.equal(200, outer.status)
    assert.equal(503, inner.status)
    assert.is_true(inner.duplicate)
    assert.equal(1, n)
  end)

  it("with dedupe = false dispatches every delivery", function()
    local hooks = new_hooks({ dedupe = false })
    assert.is_nil(hooks:store())
    local n = 0
    hooks:on("*", function() n = n + 1 end)
    local body, headers = delivery("message.received", "evt_same")
    hooks:handle(body, headers)
    local r = hooks:handle(body, headers)
    assert.equal(2, n)
    assert.is_false(r.duplicate)
  end)

  it("forgets ids after the store's ttl", function()
    local now = NOW
    local hooks = new_hooks({ dedupe = linq.store.memory{ ttl = 60, clock = function() return now end },
                              tolerance = false })
    local n = 0
    hooks:on("*", function() n = n + 1 end)
    local body, headers = delivery("message.received", "evt_ttl")
    hooks:handle(body, headers)
    now = now + 59
    assert.is_true(hooks:handle(body, headers).duplicate)
    now = now + 1
    assert.is_false(hooks:handle(body, headers).duplicate)
    assert.equal(2, n)
  end)

  it("drives any store through claim/commit/release on the event id", function()
    local calls = {}
    local seen = {}
    local store = {
      claim = function(_, key)
        calls[#calls + 1] = "claim " .. key
        if seen[key] then
          return false, "seen"
        end
        return true
      end,
      commit = function(_, key)
        calls[#calls + 1] = "commit " .. key
        seen[key] = true
        return true
      end,
      release = function(_, key)
        calls[#calls + 1] = "release " .. key
        return true
      end,
    }
    local hooks = new_hooks({ dedupe = store })
    local fail = true
    hooks:on("*", function()
      if fail then
        fail = false
        error("once")
      end
    end)
    local body, headers = delivery("message.received", "evt_s")
    hooks:handle(body, headers)
    hooks:handle(body, headers)
    hooks:handle(body, headers)
    assert.same({ "claim evt_s", "release evt_s", "claim evt_s", "commit evt_s", "claim evt_s" }, calls)
  end)

  it("answers 503 (Linq retries) without dispatching when the store fails to claim", function()
    local store = {
      claim = function() return nil, "no memory" end,
      commit = function() return true end,
      release = function() return true end,
    }
    local logged = {}
    local hooks = new_hooks({ dedupe = store, log = function(level, msg)
      logged[#logged + 1] = level .. ": " .. msg
    end })
    local n = 0
    hooks:on("*", function() n = n + 1 end)
    local res = hooks:handle(delivery("message.received", "evt_claim_fails"))
    assert.equal(503, res.status)
    assert.equal("store", res.err.kind)
    assert.matches("no memory", res.err.message)
    assert.equal(0, n)
    -- logged at error level (outside nginx nothing else would show it)
    assert.are.same({ "error: cannot claim event evt_claim_fails (message.received): dedupe store"
      .. " claim failed: no memory (answered 503: Linq retries)" }, logged)
  end)

  it("logs a warning when the commit fails (answered 200: handled, but a retry may run it again)", function()
    local logged = {}
    local store = {
      claim = function() return true end,
      commit = function() return nil, "connection refused" end,
      release = function() return true end,
    }
    local hooks = new_hooks({ secret = SECRET, dedupe = store, log = function(level, msg)
      logged[#logged + 1] = level .. ": " .. msg
    end })
    local res = hooks:handle(delivery("message.received", "evt_commit_fails"))
    assert.equal(200, res.status)
    assert.equal("store_failed", res.err.reason)
    assert.are.same({ "warn: event evt_commit_fails (message.received) was handled but not marked"
      .. " handled: dedupe store commit failed: connection refused (answered 200; a redelivery of"
      .. " it would run the handlers again)" }, logged)
    assert.not_matches("whsec_", logged[1])
  end)
end)

describe("hooks:prepare", function()
  it("answers before dispatching; run() dispatches once and commits", function()
    local hooks = new_hooks()
    local ran = 0
    hooks:on("message.received", function() ran = ran + 1 end)
    local body, headers = delivery("message.received", "evt_prep_1")
    local res, run = hooks:prepare(body, headers)
    assert.equal(200, res.status)
    assert.equal("accepted", res.body)
    assert.equal("evt_prep_1", res.event.id)
    assert.equal(0, ran)
    -- while claimed, the same event is in flight
    local dup = hooks:handle(body, headers)
    assert.equal(503, dup.status)
    assert.is_true(dup.duplicate)
    local final = run()
    assert.equal(200, final.status)
    assert.equal("ok", final.body)
    assert.equal(1, ran)
    assert.has_error(function() run() end)
    assert.equal("duplicate", hooks:handle(body, headers).body)
    assert.equal(1, ran)
  end)

  it("returns the final answer and no run() when nothing is to dispatch", function()
    local hooks = new_hooks()
    local body, headers = delivery("message.received")
    local res, run = hooks:prepare(body .. " ", headers)
    assert.equal(401, res.status)
    assert.is_nil(run)
  end)

  it("skips verification when given the verifier's result for the body", function()
    local hooks = new_hooks()
    local seen
    hooks:on("message.received", function(ev) seen = ev end)
    local body, headers = delivery("message.received", "evt_prep_2")
    local info = assert(hooks:verifier():verify(body, headers))
    local res, run = hooks:prepare(body, {}, info)
    assert.equal(200, res.status)
    assert.equal(200, run().status)
    assert.equal("evt_prep_2", seen.id)
    assert.equal(info.id, seen.delivery.id)
    assert.has_error(function() hooks:prepare(body, headers, "yes") end)
  end)

  it("releases the claim when a handler fails, so a retry dispatches again", function()
    local hooks = new_hooks()
    local calls = 0
    hooks:on("message.received", function()
      calls = calls + 1
      if calls == 1 then error("boom") end
    end)
    local body, headers = delivery("message.received", "evt_prep_3")
    local _, run = hooks:prepare(body, headers)
    assert.equal(500, run().status)
    assert.equal(200, hooks:handle(body, headers).status)
    assert.equal(2, calls)
  end)
end)

describe("hooks:off name checks", function()
  it("raises on a misspelt exact name under strict, like on()", function()
    local hooks = new_hooks()
    assert.has_error(function() hooks:off("message.recieved") end)
    assert.equal(hooks, hooks:off("message.received"))
    assert.equal(hooks, hooks:off("message.*"))
    local loose = new_hooks { strict = false }
    assert.equal(loose, loose:off("custom.thing"))
  end)
end)

describe("a dedupe store that raises", function()
  it("never leaves a claim behind when commit raises", function()
    local mem = linq.store.memory{ clock = function() return NOW end }
    local store = {
      claim = function(_, k) return mem:claim(k) end,
      commit = function() error("disk full") end,
      release = function(_, k) return mem:release(k) end,
    }
    local logged = {}
    local hooks = new_hooks { dedupe = store, log = function(level, msg)
      logged[#logged + 1] = level .. ": " .. msg
    end }
    local runs = 0
    hooks:on("message.received", function() runs = runs + 1 end)
    local body, headers = delivery("message.received", "evt_store_raise")
    local res = hooks:handle(body, headers)
    assert.equal(200, res.status)
    assert.matches("disk full", tostring(res.err))
    assert.equal(1, #logged)
    assert.matches("^warn: event evt_store_raise %(message%.received%) was handled but not marked"
      .. " handled: dedupe store commit failed: .*disk full", logged[1])
    assert.is_nil(mem:state("evt_store_raise"))   -- released, not stuck "in_flight"
    assert.equal(200, hooks:handle(body, headers).status)
    assert.equal(2, runs)
  end)
end)

describe("hooks:dispatch (no verification, no dedupe)", function()
  it("runs the handlers in order and reports ok", function()
    local hooks = new_hooks()
    local order = {}
    hooks:on("message.received", function(ev) order[#order + 1] = "a:" .. ev.id end)
    hooks:on("*", function(ev) order[#order + 1] = "b:" .. ev.id end)
    local ev = hooks:verifier():unwrap(delivery("message.received", "evt_d1"))
    assert.is_true((hooks:dispatch(ev)))
    assert.is_true((hooks:dispatch(ev))) -- no dedupe: runs again
    assert.same({ "a:evt_d1", "b:evt_d1", "a:evt_d1", "b:evt_d1" }, order)
    local mem = hooks:store()
    assert.is_nil(mem:state("evt_d1"))
  end)

  it("returns false and every handler error, each also sent to on_error", function()
    local hooks = new_hooks()
    local seen = {}
    hooks:on("message.*", function() error("first") end)
      :on("*", function() end)
      :on("*", function() error("second") end)
      :on_error(function(err) seen[#seen + 1] = err.reason end)
    local ok, errs = hooks:dispatch({ type = "message.read", id = "x" })
    assert.is_false(ok)
    assert.equal(2, #errs)
    assert.matches("first", errs[1].message)
    assert.matches("second", errs[2].message)
    assert.same({ "handler_failed", "handler_failed" }, seen)
    local ok2, errs2 = hooks:dispatch({ type = "chat.created", id = "y" })
    assert.is_false(ok2)
    assert.equal(1, #errs2) -- only the failing "*" handler
    local quiet = new_hooks()
    quiet:on("*", function() end)
    local ok3, errs3 = quiet:dispatch({ type = "chat.created", id = "y" })
    assert.is_true(ok3)
    assert.is_nil(errs3)
  end)

  it("raises without an event", function()
    local hooks = new_hooks()
    assert.has_error(function() hooks:dispatch(nil) end,
      "hooks:dispatch: argument 'event' must be an event (a table with a string 'type'), got nil")
    assert.has_error(function() hooks:dispatch({ id = "x" }) end)
  end)
end)

describe("store keys, full stores and leases (issue 9)", function()
  local stores = require "linqwebhooks.store"

  it("handles a 70 KB event_id once and recognises the duplicate (hashed store key)", function()
    local mem = linq.store.memory{ clock = function() return NOW end }
    local hooks = new_hooks({ dedupe = mem })
    local runs = 0
    hooks:on("*", function() runs = runs + 1 end)
    local id = string.rep("L", 70 * 1024)
    local body, headers = delivery("message.received", id)
    local res = hooks:handle(body, headers)
    assert.equal(200, res.status)
    assert.is_false(res.duplicate)
    assert.equal(id, res.event.id)
    local again = hooks:handle(body, headers)
    assert.equal(200, again.status)
    assert.is_true(again.duplicate)
    assert.equal(1, runs)
    assert.equal("seen", mem:state(stores.key(id)))
    assert.is_nil(mem:state(id)) -- the store never saw the 70 KB id itself
  end)

  it("passes every store the bounded key (a store limited to 250-byte keys)", function()
    local inner = linq.store.memory{ clock = function() return NOW end }
    local keys = {}
    local strict = {}
    for _, m in ipairs({ "claim", "commit", "release", "touch" }) do
      strict[m] = function(_, key)
        keys[#keys + 1] = #key
        if #key > 250 then
          return nil, "key too long"
        end
        return inner[m](inner, key)
      end
    end
    local hooks = new_hooks({ dedupe = strict })
    hooks:on("*", function() end)
    local body, headers = delivery("message.received", string.rep("z", 300))
    assert.equal(200, hooks:handle(body, headers).status)
    assert.same({ 71, 71 }, keys) -- claim, commit
  end)

  it("answers 503 and logs an error when the store is full (Linq retries)", function()
    local logged = {}
    local full = {
      claim = function() return nil, "no room for a new claim", "full" end,
      commit = function() return true end,
      release = function() return true end,
    }
    local hooks = new_hooks({ dedupe = full, log = function(level, msg)
      logged[#logged + 1] = level .. ": " .. msg
    end })
    local runs = 0
    hooks:on("*", function() runs = runs + 1 end)
    local res = hooks:handle(delivery("message.received", "evt_full"))
    assert.equal(503, res.status)
    assert.equal("dedupe store full, retry later", res.body)
    assert.is_false(res.duplicate)
    assert.equal("store_full", res.err.reason)
    assert.equal(0, runs)
    assert.equal(1, #logged)
    assert.matches("^error: cannot claim event evt_full: dedupe store full: no room", logged[1])
    -- any other store failure (unreachable) is a 503 too, so Linq retries,
    -- logged at error level as well
    full.claim = function() return nil, "boom" end
    assert.equal(503, hooks:handle(delivery("message.received", "evt_full2")).status)
    assert.equal(2, #logged)
    assert.matches("^error: cannot claim event evt_full2 %(message%.received%): dedupe store claim"
      .. " failed: boom", logged[2])
  end)

  it("renews the claim between handlers: a retry during a long dispatch is not dispatched again", function()
    local now = NOW
    local clock = function() return now end
    local mem = linq.store.memory{ clock = clock, lease = 60 }
    local logged = {}
    local hooks = new_hooks({ clock = clock, dedupe = mem,
      log = function(level, msg) logged[#logged + 1] = level .. ": " .. msg end })
    local body, headers = delivery("message.received", "evt_long")
    local runs, retry = 0, nil
    hooks:on("message.received", function()
      runs = runs + 1
      now = now + 50 -- a slow first handler (lease 60 s)
    end)
    hooks:on("message.received", function()
      now = now + 50 -- 100 s after the claim: past the original lease
      if not retry then
        retry = hooks:handle(body, headers) -- Linq's retry arrives meanwhile
      end
    end)
    local res = hooks:handle(body, headers)
    assert.equal(200, res.status)
    assert.equal(503, retry.status) -- still in flight thanks to the renewal
    assert.is_true(retry.duplicate)
    assert.equal(1, runs)
    assert.same({}, logged)
    assert.equal("seen", mem:state("evt_long"))
  end)

  it("logs a warning when a handler outran the lease (the claim lapsed)", function()
    local now = NOW
    local clock = function() return now end
    local mem = linq.store.memory{ clock = clock, lease = 60 }
    local logged = {}
    local hooks = new_hooks({ clock = clock, dedupe = mem,
      log = function(level, msg) logged[#logged + 1] = level .. ": " .. msg end })
    hooks:on("message.received", function() now = now + 61 end)
    hooks:on("message.received", function() now = now + 61 end)
    local res = hooks:handle(delivery("message.received", "evt_slow"))
    assert.equal(200, res.status)
    assert.equal(1, #logged) -- once per dispatch
    assert.matches("^warn: handlers of event evt_slow %(message.received%) outran the dedupe"
      .. " store's claim lease: a retry may have dispatched this event a second time", logged[1])
    assert.equal("seen", mem:state("evt_slow"))
  end)

  it("does not call touch after quick handlers; works with stores without touch", function()
    local inner = linq.store.memory{ clock = function() return NOW end }
    local touches = 0
    local counting = setmetatable({ touch = function(_, k)
      touches = touches + 1
      return inner:touch(k)
    end }, { __index = function(_, m)
      return function(_, ...) return inner[m](inner, ...) end
    end })
    local hooks = new_hooks({ dedupe = counting })
    hooks:on("*", function() end):on("*", function() end)
    assert.equal(200, hooks:handle(delivery("message.received")).status)
    assert.equal(0, touches)
    local plain = {
      claim = function() return true end,
      commit = function() return true end,
      release = function() return true end,
    }
    local now = NOW
    local h2 = new_hooks({ dedupe = plain, clock = function() return now end, log = false })
    h2:on("*", function() now = now + 100 end)
    assert.equal(200, h2:handle(delivery("message.received")).status)
  end)

  it("rejects a bad log option", function()
    assert.has_error(function() new_hooks({ log = true }) end,
      "linq.webhooks: option 'log' must be a function(level, message), or false")
    assert.has_error(function() new_hooks({ log = "x" }) end)
  end)
end)
