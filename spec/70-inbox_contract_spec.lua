-- The inbox contract (lua/linqwebhooks/inbox/init.lua), one suite run against
-- every backend: SQLite always, Redis Streams whenever
-- linqwebhooks.inbox.redis is there (a redis-server on a free loopback port,
-- through spec/support/redis.lua when present). Plus the dispatcher glue:
-- hooks:handle with an inbox, hooks:work, and 503 for an unreachable store.
local linq = require "linqwebhooks"
local inboxes = require "linqwebhooks.inbox"
local util = require "support.util"
local socket = require "socket"

local SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="
local now = socket.gettime

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. util.sh_quote(p)))
  return p
end

local function rm_rf(p)
  os.execute("rm -rf " .. util.sh_quote(p))
end

-- A redis-server for the Redis backend: the shared helper when there is one,
-- else one started here (never a skip: the backend is there, so it is tested).
local function start_redis()
  local ok, R = pcall(require, "support.redis")
  if ok and type(R) == "table" then
    for _, f in ipairs({ "start", "spawn", "new", "server" }) do
      if type(R[f]) == "function" then
        local sok, srv = pcall(R[f])
        local url = sok and type(srv) == "table"
          and (type(srv.url) == "function" and srv:url() or srv.url)
        if type(url) == "string" then
          return url, function()
            local stop = srv.stop or srv.close
            if stop then stop(srv) end
          end
        end
      end
    end
  end
  local dir = tmpdir()
  local port = util.free_port()
  assert(os.execute(string.format(
    "redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no --dir %s"
    .. " --daemonize yes --pidfile %s/redis.pid --logfile %s/redis.log",
    port, util.sh_quote(dir), util.sh_quote(dir), util.sh_quote(dir))))
  local deadline = now() + 10
  while now() < deadline do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:send("PING\r\n")
      local line = c:receive("*l")
      c:close()
      if line == "+PONG" then
        break
      end
    end
    socket.sleep(0.05)
  end
  return "redis://127.0.0.1:" .. port .. "/0", function()
    local pid = util.read_file(dir .. "/redis.pid")
    if pid then
      os.execute("kill " .. tonumber(pid) .. " 2>/dev/null")
    end
    rm_rf(dir)
  end
end

local BACKENDS = {
  {
    name = "sqlite",
    setup = function()
      local dir = tmpdir()
      local n = 0
      return function()
        n = n + 1
        return assert(linq.inbox.sqlite{ path = dir .. "/inbox" .. n .. ".db" })
      end, function() rm_rf(dir) end
    end,
  },
}
if pcall(require, "linqwebhooks.inbox.redis") then
  BACKENDS[#BACKENDS + 1] = {
    name = "redis",
    setup = function()
      local url, stop = start_redis()
      local n = 0
      local run = tostring(os.time()) .. tostring(math.random(1e6))
      return function()
        n = n + 1
        return assert(linq.inbox.redis{ url = url, prefix = "lwhspec:" .. run .. ":" .. n .. ":" })
      end, stop
    end,
  }
end

local function rec(id, extra)
  local r = {
    key = id, id = id, event_type = "message.received",
    body = '{"event_id":"' .. id .. '"}\0tail',
    headers = { ["webhook-id"] = "msg_" .. id, ["webhook-timestamp"] = "1700000000",
                ["webhook-signature"] = "v1,abc" },
    info = { scheme = "standard", key_index = 1, id = "msg_" .. id, timestamp = 1700000000 },
    received_at = now(),
  }
  for k, v in pairs(extra or {}) do
    r[k] = v
  end
  return r
end

local function delivery(id, etype)
  local body = string.format('{"api_version":"v3","event_type":"%s","event_id":"%s",'
    .. '"created_at":"2026-02-03T10:00:00Z","data":{"n":1}}', etype or "message.received", id)
  return body, linq.sign{ secret = SECRET, body = body }
end

-- the four counters of the contract (a backend may add more fields)
local function counts(inbox)
  local s = assert(inbox:stats())
  return { pending = s.pending, in_flight = s.in_flight, done = s.done, dead = s.dead }
end

local function wait_until(pred, secs)
  local deadline = now() + (secs or 5)
  while now() < deadline do
    if pred() then
      return true
    end
    socket.sleep(0.02)
  end
  return pred()
end

for _, backend in ipairs(BACKENDS) do
  describe("inbox contract (" .. backend.name .. ")", function()
    local open, teardown_backend
    local inbox

    setup(function()
      open, teardown_backend = backend.setup()
    end)
    teardown(function()
      if teardown_backend then teardown_backend() end
    end)
    before_each(function()
      inbox = open()
    end)
    after_each(function()
      inbox:close()
    end)

    it("put stores a pending delivery once; the same key again is a duplicate", function()
      assert.is_true(inbox:put(rec("e1")))
      local ok, why = inbox:put(rec("e1", { body = "other" }))
      assert.is_false(ok)
      assert.equal("duplicate", why)
      assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
    end)

    it("take returns the stored delivery intact and marks it in flight", function()
      local r = rec("e2")
      assert.is_true(inbox:put(r))
      local job = assert(inbox:take("w1", 30))
      assert.equal("e2", job.key)
      assert.equal("e2", job.id)
      assert.equal("message.received", job.event_type)
      assert.equal(r.body, job.body) -- binary-safe
      assert.same(r.headers, job.headers)
      assert.same(r.info, job.info)
      assert.equal(1, job.attempts)
      assert.is_true(math.abs(job.received_at - r.received_at) < 1)
      assert.is_not_nil(job.token)
      assert.same({ pending = 0, in_flight = 1, done = 0, dead = 0 }, counts(inbox))
      -- held: nobody else gets it while the lease runs
      assert.is_nil(inbox:take("w2", 30))
    end)

    it("take on an empty inbox returns nil without an error", function()
      local job, err = inbox:take("w1", 30)
      assert.is_nil(job)
      assert.is_nil(err)
    end)

    it("take hands out the oldest ready delivery first", function()
      for _, id in ipairs({ "a", "b", "c" }) do
        assert.is_true(inbox:put(rec(id)))
      end
      local got = {}
      for i = 1, 3 do
        got[i] = assert(inbox:take("w1", 30)).id
      end
      assert.same({ "a", "b", "c" }, got)
    end)

    it("ack marks a delivery done; a done key stays a duplicate", function()
      assert.is_true(inbox:put(rec("e3")))
      local job = assert(inbox:take("w1", 30))
      assert.is_true(inbox:ack(job))
      assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, counts(inbox))
      assert.is_nil(inbox:take("w1", 30))
      local ok, why = inbox:put(rec("e3"))
      assert.is_false(ok)
      assert.equal("duplicate", why)
    end)

    it("fail with retry_at puts it back to pending, not taken before it is due", function()
      assert.is_true(inbox:put(rec("e4")))
      local job = assert(inbox:take("w1", 30))
      assert.is_true(inbox:fail(job, "boom", now() + 0.4))
      assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
      assert.is_nil(inbox:take("w1", 30))
      local again
      assert.is_true(wait_until(function()
        again = inbox:take("w1", 30)
        return again ~= nil
      end, 5))
      assert.equal("e4", again.id)
      assert.equal(2, again.attempts)
    end)

    it("fail without retry_at moves it to the dead letters; replay brings it back", function()
      assert.is_true(inbox:put(rec("e5")))
      local job = assert(inbox:take("w1", 30))
      assert.is_true(inbox:fail(job, "handler raised: nope", nil))
      assert.same({ pending = 0, in_flight = 0, done = 0, dead = 1 }, counts(inbox))
      assert.is_nil(inbox:take("w1", 30))
      local dead = inbox:dead()
      assert.equal(1, #dead)
      assert.equal("e5", dead[1].id)
      assert.equal("e5", dead[1].key)
      assert.equal("message.received", dead[1].event_type)
      assert.equal(1, dead[1].attempts)
      assert.matches("nope", dead[1].error)
      -- a dead key is still a duplicate for put
      assert.is_false((inbox:put(rec("e5"))))
      assert.is_true(inbox:replay("e5"))
      assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
      assert.same({}, inbox:dead())
      local again = assert(inbox:take("w1", 30))
      assert.equal("e5", again.id)
      assert.equal(1, again.attempts) -- reset to 0, this take is the 1st
      assert.equal(rec("e5").body, again.body)
    end)

    it("replay moves a done delivery back to pending too", function()
      assert.is_true(inbox:put(rec("e6")))
      assert.is_true(inbox:ack(assert(inbox:take("w1", 30))))
      assert.is_true(inbox:replay("e6"))
      assert.equal("e6", assert(inbox:take("w1", 30)).id)
    end)

    it("replay of an unknown id returns nil, err", function()
      local ok, err = inbox:replay("no-such-event")
      assert.is_nil(ok)
      assert.is_string(err)
    end)

    it("a delivery whose worker stopped renewing is taken over after the visibility", function()
      assert.is_true(inbox:put(rec("e7")))
      local first = assert(inbox:take("w1", 0.3))
      assert.is_nil(inbox:take("w2", 0.3))
      local second
      assert.is_true(wait_until(function()
        second = inbox:take("w2", 30)
        return second ~= nil
      end, 5))
      assert.equal("e7", second.id)
      assert.equal(2, second.attempts) -- the dead worker's attempt counts
      -- the first worker lost its lease
      assert.is_false(inbox:extend(first, 30))
      assert.is_true(inbox:ack(second))
      assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, counts(inbox))
    end)

    it("extend renews the lease: no takeover while the worker is alive", function()
      assert.is_true(inbox:put(rec("e8")))
      local job = assert(inbox:take("w1", 0.5))
      assert.is_true(inbox:extend(job, 30))
      socket.sleep(0.8)
      assert.is_nil(inbox:take("w2", 30))
      assert.is_true(inbox:ack(job))
    end)

    it("release hands the delivery back at once, this attempt not counted", function()
      assert.is_true(inbox:put(rec("e9")))
      local job = assert(inbox:take("w1", 30))
      assert.is_true(inbox:release(job))
      assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
      local again = assert(inbox:take("w2", 30))
      assert.equal("e9", again.id)
      assert.equal(1, again.attempts)
    end)

    it("close is idempotent", function()
      local other = open()
      other:close()
      other:close()
    end)

    describe("with a dispatcher", function()
      local function hooks_with(h_inbox)
        return linq.webhooks{ secret = SECRET, inbox = h_inbox }
      end

      it("handle stores (200), answers duplicates with 200, and runs no handler", function()
        local hooks = hooks_with(inbox)
        local ran = 0
        hooks:on("message.received", function() ran = ran + 1 end)
        local body, headers = delivery("evt-h1")
        local res = hooks:handle(body, headers)
        assert.equal(200, res.status)
        assert.equal("stored", res.body)
        assert.is_false(res.duplicate)
        assert.equal("evt-h1", res.event.id)
        res = hooks:handle(body, headers)
        assert.equal(200, res.status)
        assert.is_true(res.duplicate)
        assert.equal(0, ran)
        assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
        local job = assert(inbox:take("w1", 30))
        assert.equal(body, job.body)
        assert.equal(headers["webhook-id"], job.headers["webhook-id"])
        assert.equal("standard", job.info.scheme)
        assert.equal(1, job.info.key_index)
      end)

      it("handle answers 401 for a bad signature and 400 for a signed non-event; nothing stored", function()
        local hooks = hooks_with(inbox)
        local body, headers = delivery("evt-h2")
        assert.equal(401, hooks:handle(body .. " ", headers).status)
        local junk = "[1,2]"
        assert.equal(400, hooks:handle(junk, linq.sign{ secret = SECRET, body = junk }).status)
        assert.same({ pending = 0, in_flight = 0, done = 0, dead = 0 }, counts(inbox))
      end)

      it("work runs the handlers with the same event as direct dispatch and acks", function()
        local hooks = hooks_with(inbox)
        local seen = {}
        hooks:on("message.*", function(ev) seen[#seen + 1] = ev end)
        local body, headers = delivery("evt-w1")
        assert.equal(200, hooks:handle(body, headers).status)
        local direct = linq.webhooks{ secret = SECRET, dedupe = false }
        local ref
        direct:on("*", function(ev) ref = ev end)
        assert.equal(200, direct:handle(body, headers).status)
        local stats = hooks:work{ until_idle = true, poll = 0.02 }
        assert.equal(1, #seen)
        local ev = seen[1]
        assert.equal("evt-w1", ev.id)
        assert.equal("message.received", ev.type)
        assert.equal(ref.raw, ev.raw)
        assert.same(ref.data, ev.data)
        assert.equal(ref.delivery.scheme, ev.delivery.scheme)
        assert.equal(ref.delivery.timestamp, ev.delivery.timestamp)
        assert.equal(ref.delivery.id, ev.delivery.id)
        assert.equal(1, stats.handled)
        assert.equal(1, stats.done)
        assert.equal(0, stats.pending)
        assert.equal("idle", stats.stopped)
      end)

      it("work retries a failing handler with backoff: fails twice, then 3 attempts, done", function()
        local hooks = hooks_with(inbox)
        local calls = 0
        local errs = {}
        hooks:on_error(function(err) errs[#errs + 1] = err end)
        hooks:on("message.received", function()
          calls = calls + 1
          if calls <= 2 then
            error("flaky " .. calls)
          end
        end)
        local body, headers = delivery("evt-r1")
        assert.equal(200, hooks:handle(body, headers).status)
        local stats = hooks:work{ until_idle = true, backoff = 0.05, poll = 0.02 }
        assert.equal(3, calls)
        assert.equal(2, #errs)
        assert.equal(2, stats.retried)
        assert.equal(1, stats.handled)
        assert.same({ 1, 0, 0 }, { stats.done, stats.dead, stats.pending })
      end)

      it("work dead-letters after max_attempts; replay then handles it", function()
        local hooks = hooks_with(inbox)
        local calls, fixed = 0, false
        hooks:on("message.received", function()
          calls = calls + 1
          if not fixed then
            error("still broken")
          end
        end)
        local body, headers = delivery("evt-d1")
        assert.equal(200, hooks:handle(body, headers).status)
        local stats = hooks:work{ until_idle = true, max_attempts = 2, backoff = 0.05, poll = 0.02 }
        assert.equal(2, calls)
        assert.equal(1, stats.dead)
        assert.equal(1, stats.dead_lettered)
        local dead = inbox:dead()
        assert.equal(1, #dead)
        assert.equal("evt-d1", dead[1].id)
        assert.equal(2, dead[1].attempts)
        assert.matches("still broken", dead[1].error)
        fixed = true
        assert.is_true(inbox:replay("evt-d1"))
        stats = hooks:work{ until_idle = true, max_attempts = 2, backoff = 0.05, poll = 0.02 }
        assert.equal(3, calls)
        assert.same({ 1, 0 }, { stats.done, stats.dead })
      end)

      it("work dead-letters a delivery taken over after its last allowed attempt", function()
        local hooks = hooks_with(inbox)
        local calls = 0
        hooks:on("message.received", function() calls = calls + 1 end)
        local body, headers = delivery("evt-x1")
        assert.equal(200, hooks:handle(body, headers).status)
        -- a worker took it and died (never acked) on attempt 1 of max 1
        assert(inbox:take("dead-worker", 0.2))
        local stats = hooks:work{ until_idle = true, max_attempts = 1, visibility = 0.2, poll = 0.05 }
        assert.equal(0, calls)
        assert.equal(1, stats.dead)
        assert.matches("attempts exhausted", inbox:dead()[1].error)
      end)

      it("work takes over a delivery whose worker died, after the visibility", function()
        local hooks = hooks_with(inbox)
        local calls = 0
        hooks:on("message.received", function() calls = calls + 1 end)
        local body, headers = delivery("evt-t1")
        assert.equal(200, hooks:handle(body, headers).status)
        assert(inbox:take("dead-worker", 0.3))
        local stats = hooks:work{ until_idle = true, visibility = 0.3, poll = 0.05 }
        assert.equal(1, calls)
        assert.same({ 1, 0, 0 }, { stats.done, stats.dead, stats.in_flight })
      end)

      it("hooks:heartbeat() renews the lease from inside a long handler", function()
        local hooks = hooks_with(inbox)
        assert.is_nil((hooks:heartbeat())) -- outside a handler
        local stolen, beats = nil, {}
        hooks:on("message.received", function()
          for _ = 1, 5 do
            socket.sleep(0.2) -- a blocking call: no automatic heartbeat here
            beats[#beats + 1] = hooks:heartbeat()
            stolen = stolen or inbox:take("thief", 30)
          end
        end)
        local body, headers = delivery("evt-l2")
        assert.equal(200, hooks:handle(body, headers).status)
        local stats = hooks:work{ until_idle = true, visibility = 0.5, poll = 0.05, heartbeat = false }
        assert.is_nil(stolen)
        assert.same({ true, true, true, true, true }, beats)
        assert.equal(1, stats.done)
      end)

      it("work renews the lease automatically while Lua code of a long handler runs", function()
        local hooks = hooks_with(inbox)
        local stolen
        local function handler()
          local t, next_try = now() + 1.0, 0
          while now() < t do
            -- busy Lua code: the heartbeat extends the 0.3 s lease
            for _ = 1, 1000 do end
            if now() >= next_try then
              next_try = now() + 0.1
              stolen = stolen or inbox:take("thief", 30)
            end
          end
        end
        -- (LuaJIT runs no hook inside compiled code: keep this one interpreted)
        if rawget(_G, "jit") then jit.off(handler, true) end
        hooks:on("message.received", handler)
        local body, headers = delivery("evt-l1")
        assert.equal(200, hooks:handle(body, headers).status)
        local stats = hooks:work{ until_idle = true, visibility = 0.3, poll = 0.05 }
        assert.is_nil(stolen)
        assert.equal(1, stats.done)
      end)
    end)
  end)
end

describe("inbox glue", function()
  local dir
  setup(function() dir = tmpdir() end)
  teardown(function() rm_rf(dir) end)

  it("linq.webhooks rejects inbox together with dedupe, and a non-inbox", function()
    local inbox = assert(linq.inbox.sqlite{ path = dir .. "/g1.db" })
    assert.has_error(function()
      linq.webhooks{ secret = SECRET, inbox = inbox, dedupe = false }
    end, "linq.webhooks: options 'inbox' and 'dedupe' are mutually exclusive (the inbox de-duplicates)")
    assert.has_error(function()
      linq.webhooks{ secret = SECRET, inbox = {} }
    end)
    inbox:close()
  end)

  it("hooks:work needs an inbox and checks its options", function()
    local plain = linq.webhooks{ secret = SECRET }
    assert.has_error(function() plain:work{} end,
      "hooks:work: this dispatcher has no inbox (linq.webhooks{ inbox = ... })")
    local inbox = assert(linq.inbox.sqlite{ path = dir .. "/g2.db" })
    local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
    assert.has_error(function() hooks:work{ max_atempts = 3 } end, "hooks:work: unknown option 'max_atempts'")
    assert.has_error(function() hooks:work{ max_attempts = 0 } end)
    assert.has_error(function() hooks:work{ visibility = "60" } end)
    inbox:close()
  end)

  it("linq.inbox.sqlite checks its options and reports an unopenable path as nil, err", function()
    assert.has_error(function() linq.inbox.sqlite{ path = "x.db", synchronus = "FULL" } end,
      "linq.inbox.sqlite: unknown option 'synchronus'")
    assert.has_error(function() linq.inbox.sqlite{ path = "x.db", synchronous = "SOMETIMES" } end)
    assert.has_error(function() linq.inbox.sqlite{} end)
    local inbox, err = linq.inbox.sqlite{ path = dir .. "/no/such/dir/x.db" }
    assert.is_nil(inbox)
    assert.matches("unable to open", err)
  end)

  it("several connections share one SQLite file", function()
    local a = assert(linq.inbox.sqlite{ path = dir .. "/shared.db", synchronous = "FULL" })
    local b = assert(linq.inbox.sqlite{ path = dir .. "/shared.db" })
    assert.is_true(a:put(rec("s1")))
    assert.is_false((b:put(rec("s1"))))
    local job = assert(b:take("wb", 30))
    assert.is_nil(a:take("wa", 30))
    assert.is_true(b:ack(job))
    assert.equal(1, counts(a).done)
    a:close()
    b:close()
  end)

  it("a closed inbox raises on use", function()
    local inbox = assert(linq.inbox.sqlite{ path = dir .. "/c.db" })
    inbox:close()
    assert.has_error(function() inbox:put(rec("z")) end, "inbox:put: the inbox is closed")
  end)

  it("inbox methods check their arguments", function()
    local inbox = assert(linq.inbox.sqlite{ path = dir .. "/args.db" })
    assert.has_error(function() inbox:put("x") end, "inbox:put: argument 'rec' must be a table, got string")
    assert.has_error(function() inbox:put({ key = "k", id = "k" }) end)
    assert.has_error(function() inbox:take(nil, 1) end)
    assert.has_error(function() inbox:take("w", 0) end)
    assert.has_error(function() inbox:ack({}) end)
    inbox:close()
  end)

  it("answers 503 (not 200) when the inbox cannot store the delivery", function()
    local inbox = assert(linq.inbox.sqlite{ path = dir .. "/g3.db" })
    local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
    -- the backend fails: a put returning nil, err, and a put that raises
    local orig = inbox.put
    inbox.put = function() return nil, "disk I/O error" end
    local body, headers = delivery("evt-503")
    local res = hooks:handle(body, headers)
    assert.equal(503, res.status)
    assert.equal("store_failed", res.err.reason)
    inbox.put = function() error("connection reset") end
    assert.equal(503, hooks:handle(body, headers).status)
    inbox.put = orig
    assert.equal(200, hooks:handle(body, headers).status)
    inbox:close()
  end)

  it("bounded keys: ids up to 128 bytes are their own key, longer ones are hashed", function()
    assert.equal("evt-1", inboxes.key("evt-1"))
    local id128 = string.rep("a", 128)
    assert.equal(id128, inboxes.key(id128))
    local ok, k = pcall(inboxes.key, string.rep("a", 129))
    if ok then
      assert.matches("^sha256:%x+$", k)
      assert.equal(7 + 64, #k)
    else
      assert.matches("sha256_hex", k) -- this build has no hash yet (wired at the merge)
    end
  end)
end)

describe("dispatcher with a dedupe store that cannot be reached", function()
  it("answers 503 so Linq retries, and runs no handler", function()
    local store = {
      claim = function() return nil, "connection refused" end,
      commit = function() return true end,
      release = function() return true end,
    }
    local hooks = linq.webhooks{ secret = SECRET, dedupe = store }
    local ran = false
    hooks:on("message.received", function() ran = true end)
    local body, headers = delivery("evt-store")
    local res = hooks:handle(body, headers)
    assert.equal(503, res.status)
    assert.equal("store_failed", res.err.reason)
    assert.is_false(ran)
  end)
end)
