-- linq.inbox.redis: the inbox backend interface on Redis Streams, against a
-- real redis-server (loopback, AOF on).
local rs = require "support.redis"
local socket = require "socket"
local inbox_redis = require "linqwebhooks.inbox.redis"

local function rec(key, o)
  o = o or {}
  return {
    key = key,
    id = o.id or key,
    event_type = o.event_type or "message.received",
    body = o.body or ('{"event_id":"' .. key .. '"}'),
    headers = o.headers or { ["webhook-id"] = key, ["webhook-timestamp"] = "1700000000" },
    info = o.info or { scheme = "standard", key_index = 1, id = key, timestamp = 1700000000 },
    received_at = o.received_at or 1700000000.25,
  }
end

describe("linq.inbox.redis", function()
  local srv
  local n = 0
  local t -- the injected clock's time
  local function clock()
    return t
  end
  local function new_inbox(o)
    n = n + 1
    o = o or {}
    local opts = { url = srv.url, prefix = "ib" .. n .. ":", clock = clock }
    for k, v in pairs(o) do
      opts[k] = v
    end
    if o.clock == false then
      opts.clock = nil
    end
    return inbox_redis.new(opts)
  end

  setup(function()
    srv = rs.start()
  end)
  teardown(function()
    if srv then
      srv:destroy()
    end
  end)
  before_each(function()
    t = 1800000000
  end)

  it("checks its options and arguments", function()
    assert.has_error(function() inbox_redis.new{} end,
      "linq.inbox.redis: option 'url' is required (redis://host:port/db)")
    assert.has_error(function() inbox_redis.new{ url = srv.url, prefx = "x" } end,
      "linq.inbox.redis: unknown option 'prefx'")
    local ib = new_inbox()
    assert.has_error(function() ib:put("x") end, "inbox:put: argument 'rec' must be a table, got string")
    assert.has_error(function() ib:put{ key = 1 } end)
    assert.has_error(function() ib:take(nil, 5) end)
    assert.has_error(function() ib:take("w", 0) end)
    assert.has_error(function() ib:ack({}) end, "inbox:ack: argument 'job' must be a job returned by take()")
    ib:close()
    ib:close()
  end)

  it("stores a delivery and hands it back whole, oldest first", function()
    local ib = new_inbox()
    local body = '{"x":"\0binary\r\n"}'
    assert.is_true(ib:put(rec("evt_1", { body = body })))
    assert.is_true(ib:put(rec("evt_2")))
    assert.same({ pending = 2, in_flight = 0, done = 0, dead = 0 }, ib:stats())
    local job = assert(ib:take("w1", 30))
    assert.equal("evt_1", job.key)
    assert.equal("evt_1", job.id)
    assert.equal("message.received", job.event_type)
    assert.equal(body, job.body)
    assert.same({ ["webhook-id"] = "evt_1", ["webhook-timestamp"] = "1700000000" }, job.headers)
    assert.same({ scheme = "standard", key_index = 1, id = "evt_1", timestamp = 1700000000 }, job.info)
    assert.equal(1700000000.25, job.received_at)
    assert.equal(1, job.attempts)
    assert.is_string(job.token)
    assert.same({ pending = 1, in_flight = 1, done = 0, dead = 0 }, ib:stats())
    local job2 = assert(ib:take("w2", 30)) -- another worker gets the next one
    assert.equal("evt_2", job2.key)
    assert.is_nil(ib:take("w3", 30)) -- nothing ready
    assert.is_true(ib:ack(job))
    assert.is_true(ib:ack(job2))
    assert.same({ pending = 0, in_flight = 0, done = 2, dead = 0 }, ib:stats())
  end)

  it("refuses a key it ever stored: pending, in flight, done or dead", function()
    local ib = new_inbox()
    assert.is_true(ib:put(rec("a")))
    assert.same({ false, "duplicate" }, { ib:put(rec("a")) })
    local job = ib:take("w", 30)
    assert.same({ false, "duplicate" }, { ib:put(rec("a")) })
    ib:ack(job)
    assert.same({ false, "duplicate" }, { ib:put(rec("a")) })
    assert.is_true(ib:put(rec("b")))
    ib:fail(ib:take("w", 30), "boom", nil)
    assert.same({ false, "duplicate" }, { ib:put(rec("b")) })
    assert.same({ pending = 0, in_flight = 0, done = 1, dead = 1 }, ib:stats())
  end)

  it("puts in one round trip (one EVALSHA), atomically with the dedupe key", function()
    local ib = new_inbox()
    assert.is_true(ib:put(rec("warm"))) -- loads the script once
    local admin = srv:client()
    local function evalsha_calls()
      local s = admin:call("INFO", "commandstats")
      return tonumber(s:match("cmdstat_evalsha:calls=(%d+)") or "0")
    end
    local before_rt, before_sha = ib._redis.round_trips, evalsha_calls()
    for i = 1, 20 do
      assert.is_true(ib:put(rec("rt" .. i)))
      assert.is_false((ib:put(rec("rt" .. i))))
    end
    assert.equal(40, ib._redis.round_trips - before_rt)
    assert.equal(40, evalsha_calls() - before_sha)
    admin:close()
  end)

  it("retries at retry_at, dead-letters without one, replays by id", function()
    local ib = new_inbox()
    assert.is_true(ib:put(rec("sha256:abc", { id = "evt_long" })))
    local job = ib:take("w", 30)
    assert.is_true(ib:fail(job, "handler raised: first", t + 10))
    assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, ib:stats())
    assert.is_nil(ib:take("w", 30)) -- not due yet
    t = t + 10
    job = assert(ib:take("w", 30))
    assert.equal(2, job.attempts)
    assert.equal("evt_long", job.id)
    assert.is_true(ib:fail(job, "handler raised: second", nil))
    assert.same({ pending = 0, in_flight = 0, done = 0, dead = 1 }, ib:stats())
    assert.is_nil(ib:take("w", 30))
    assert.same({ { key = "sha256:abc", id = "evt_long", event_type = "message.received", attempts = 2,
                    error = "handler raised: second" } }, ib:dead())
    local ok, err = ib:replay("evt_nope")
    assert.is_nil(ok)
    assert.matches("unknown delivery", err)
    assert.is_true(ib:replay("evt_long"))
    assert.same({}, ib:dead())
    job = assert(ib:take("w", 30))
    assert.equal(1, job.attempts) -- attempts reset by the replay
    ok, err = ib:replay("evt_long")
    assert.is_nil(ok)
    assert.matches("in_flight", err)
    assert.is_true(ib:ack(job))
    assert.is_true(ib:replay("evt_long")) -- a done delivery can be replayed too
    assert.same({ pending = 1, in_flight = 0, done = 0, dead = 0 }, ib:stats())
  end)

  it("hands out a due retry before newer deliveries (oldest first)", function()
    local ib = new_inbox()
    ib:put(rec("old"))
    assert.is_true(ib:fail(ib:take("w", 30), "try later", t + 5))
    ib:put(rec("new"))
    local job = assert(ib:take("w", 30)) -- the retry is not due yet
    assert.equal("new", job.key)
    ib:ack(job)
    ib:put(rec("newer"))
    t = t + 5
    job = assert(ib:take("w", 30))
    assert.equal("old", job.key)
    assert.equal(2, job.attempts)
    assert.equal("newer", assert(ib:take("w", 30)).key)
  end)

  it("takes over a delivery whose worker died, after the visibility timeout (clock)", function()
    local ib = new_inbox()
    ib:put(rec("x"))
    local first = assert(ib:take("dead-worker", 60))
    t = t + 59
    assert.is_nil(ib:take("w2", 60))
    t = t + 2
    local again = assert(ib:take("w2", 60))
    assert.equal("x", again.key)
    assert.equal(2, again.attempts)
    assert.same({ pending = 0, in_flight = 1, done = 0, dead = 0 }, ib:stats())
    -- the first worker lost it: extend says so; its ack/fail change nothing
    assert.is_false(ib:extend(first, 60))
    assert.is_true(ib:fail(first, "late", nil))
    assert.same({ pending = 0, in_flight = 1, done = 0, dead = 0 }, ib:stats())
    assert.is_true(ib:extend(again, 120))
    t = t + 100
    assert.is_nil(ib:take("w3", 60)) -- the extended lease still holds
    assert.is_true(ib:ack(again))
    assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, ib:stats())
  end)

  it("takes over after a real short visibility timeout (Redis time, no clock)", function()
    local ib = new_inbox{ clock = false }
    ib:put(rec("real"))
    assert(ib:take("gone", 0.2))
    assert.is_nil(ib:take("w2", 0.2))
    socket.sleep(0.3)
    local job = assert(ib:take("w2", 5))
    assert.equal(2, job.attempts)
    assert.is_true(ib:ack(job))
  end)

  it("release hands a delivery back at once without counting the attempt", function()
    local ib = new_inbox()
    ib:put(rec("r1"))
    ib:put(rec("r2"))
    local job = ib:take("w", 30)
    assert.equal("r1", job.key)
    assert.is_true(ib:release(job))
    assert.same({ pending = 2, in_flight = 0, done = 0, dead = 0 }, ib:stats())
    local again = assert(ib:take("w2", 30))
    assert.equal("r1", again.key)
    assert.equal(1, again.attempts)
    assert.same({ pending = 1, in_flight = 1, done = 0, dead = 0 }, ib:stats())
  end)

  it("forgets done deliveries after ttl", function()
    local ib = new_inbox{ ttl = 0.3 }
    ib:put(rec("short"))
    ib:ack(ib:take("w", 30))
    assert.equal(1, ib:stats().done)
    socket.sleep(0.4)
    t = t + 1
    assert.equal(0, ib:stats().done)
    assert.is_true(ib:put(rec("short"))) -- purged: stored again
  end)

  it("keeps pending and in-flight deliveries across a Redis restart (AOF)", function()
    local ib = new_inbox()
    for i = 1, 5 do
      assert.is_true(ib:put(rec("keep" .. i)))
    end
    local held = assert(ib:take("w1", 30))
    srv:restart()
    assert.same({ pending = 4, in_flight = 1, done = 0, dead = 0 }, ib:stats())
    assert.same({ false, "duplicate" }, { ib:put(rec("keep1")) })
    local seen = { [held.key] = true }
    for _ = 1, 4 do
      local job = assert(ib:take("w2", 30))
      seen[job.key] = true
      assert.is_true(ib:ack(job))
    end
    t = t + 31 -- w1 died with the restart: its delivery is taken over
    local job = assert(ib:take("w2", 30))
    assert.equal(held.key, job.key)
    seen[job.key] = true
    assert.is_true(ib:ack(job))
    for i = 1, 5 do
      assert.is_true(seen["keep" .. i])
    end
    assert.same({ pending = 0, in_flight = 0, done = 5, dead = 0 }, ib:stats())
  end)

  it("returns nil, err while Redis is down", function()
    local ib = new_inbox{ timeout = 1 }
    ib:put(rec("before"))
    srv:stop()
    local ok, err = ib:put(rec("during"))
    assert.is_nil(ok)
    assert.matches("^redis: ", err)
    local job
    job, err = ib:take("w", 30)
    assert.is_nil(job)
    assert.matches("^redis: ", err)
    ok, err = ib:stats()
    assert.is_nil(ok)
    assert.is_string(err)
    srv:restart()
    job = assert(ib:take("w", 30))
    assert.equal("before", job.key)
    assert.is_true(ib:put(rec("during")))
  end)

  it("hands each delivery to exactly one of several worker processes", function()
    local child = require "support.child"
    local util = require "support.util"
    n = n + 1
    local prefix = "ibp" .. n .. ":"
    local ib = inbox_redis.new{ url = srv.url, prefix = prefix }
    for i = 1, 60 do
      assert.is_true(ib:put(rec("p" .. i)))
    end
    local script = os.tmpname()
    util.write_file(script, [[
      local ib = require("linqwebhooks.inbox.redis").new{ url = ]] .. string.format("%q", srv.url)
        .. [[, prefix = ]] .. string.format("%q", prefix) .. [[ }
      local got = {}
      while true do
        local job, err = ib:take("worker-" .. arg[1], 30)
        assert(job or not err, err)
        if not job then break end
        got[#got + 1] = job.key
        assert(ib:ack(job))
      end
      io.write(table.concat(got, " "), "\n")
    ]])
    local pipes = {}
    for i = 1, 3 do
      pipes[i] = io.popen(child.lua() .. " " .. util.sh_quote(script) .. " " .. i .. " 2>&1")
    end
    local count = {}
    for i = 1, 3 do
      local out = pipes[i]:read("*a")
      pipes[i]:close()
      for k in out:gmatch("p%d+") do
        count[k] = (count[k] or 0) + 1
      end
    end
    os.remove(script)
    for i = 1, 60 do
      assert.equal(1, count["p" .. i], "p" .. i)
    end
    assert.same({ pending = 0, in_flight = 0, done = 60, dead = 0 }, ib:stats())
  end)
end)
