-- Failure tests of the durable inbox with real processes (bounded in time),
-- run on both backends: SQLite (a file per test) and Redis Streams (a
-- redis-server on loopback, AOF on, a database per test). A worker killed with
-- SIGKILL mid-handler, flaky handlers, dead letters and replay, two workers
-- sharing the load, receiver and worker restarts; on Redis also Redis stopped
-- while deliveries arrive (503, never 200) and restarted (every accepted
-- delivery handled once). The child scripts are written to a temporary
-- directory; they find the modules where this process found them, and never
-- outlive it. An inbox target is a redis:// URL or a SQLite file path.
local linq = require "linqwebhooks"
local rs = require "support.redis"
local util = require "support.util"
local child = require "support.child"
local http = require("support.receiver").http
local process = require "linqwebhooks.emulator.process"
local core = require "linqwebhooks.process"
local json = require "linqwebhooks.json"
local socket = require "socket"

local SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="
local now = socket.gettime

local function open_inbox(t)
  return (t:match("^redis://") and linq.inbox.redis{ url = t } or linq.inbox.sqlite{ path = t })
end

-- The worker child: `worker.lua DB LOG MODE OPTS_JSON PARENT_PID`.
-- Every handler start appends "start <id> <pid>" to LOG, every success
-- "done <id> <pid>"; the stats hooks:work returns go to LOG .. ".stats.<pid>".
local WORKER = [[
local db, log, mode, opts_json, parent = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local socket = require "socket"
local function open_inbox(t) return (t:match("^redis://") and linq.inbox.redis{ url = t } or linq.inbox.sqlite{ path = t }) end
local alive = require("linqwebhooks.emulator.process").alive
local pid = require("linqwebhooks.process").getpid()
local function append(line)
  local f = assert(io.open(log, "ab"))
  f:write(line, "\n")
  f:close()
end
local function count(id)
  local n = 0
  local f = io.open(log, "rb")
  if f then
    for l in f:lines() do
      if l:match("^start " .. id:gsub("%p", "%%%0") .. " ") then n = n + 1 end
    end
    f:close()
  end
  return n
end
local inbox = assert(open_inbox(db))
local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET"), inbox = inbox }
hooks:on("*", function(ev)
  append("start " .. ev.id .. " " .. pid)
  if mode == "hang" then
    while alive(parent) do socket.sleep(0.1) end
    os.exit(3)
  elseif mode == "flaky" and count(ev.id) <= 2 then
    error("flaky failure " .. count(ev.id))
  elseif mode == "broken" then
    error("broken handler")
  elseif mode == "slow" then
    socket.sleep(0.05)
  end
  append("done " .. ev.id .. " " .. pid)
end)
local opts = json.decode(opts_json)
local stats = hooks:work(opts)
local f = assert(io.open(log .. ".stats." .. pid, "wb"))
f:write(json.encode(stats))
f:close()
inbox:close()
]]

-- The receiver child: `receiver.lua DB PARENT_PID`: serves a dispatcher with
-- the inbox on a free port, prints its url, stops on SIGTERM or when the
-- parent is gone.
local RECEIVER = [[
local db, parent = arg[1], tonumber(arg[2])
local linq = require "linqwebhooks"
local function open_inbox(t) return (t:match("^redis://") and linq.inbox.redis{ url = t } or linq.inbox.sqlite{ path = t }) end
local core = require "linqwebhooks.process"
local alive = require("linqwebhooks.emulator.process").alive
local inbox = assert(open_inbox(db))
local hooks = linq.webhooks{ secret = os.getenv("LWH_TEST_SECRET"), inbox = inbox }
local r = assert(require("linqwebhooks.receiver").new{ hooks = hooks, port = 0 })
io.stdout:write("listening on ", r.url, "\n")
io.stdout:flush()
core.signal_watch()
while alive(parent) and not core.signal_pending() do
  r:step(0.1)
end
r:close()
inbox:close()
]]

local dir, procs

local function write(path, s)
  util.write_file(path, s)
  return path
end

local function spawn(script, ...)
  local args = {}
  for i, a in ipairs({ ... }) do
    args[i] = util.sh_quote(a)
  end
  local cmd = "LWH_TEST_SECRET=" .. util.sh_quote(SECRET) .. " sh -c " .. util.sh_quote(
    "echo $$; exec " .. child.lua() .. " " .. util.sh_quote(script) .. " " .. table.concat(args, " "))
    .. " 2>&1"
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  local pr = { p = p, pid = pid }
  procs[#procs + 1] = pr
  return pr
end

local function wait_exit(pr, secs)
  local deadline = now() + (secs or 20)
  while process.alive(pr.pid) and now() < deadline do
    socket.sleep(0.05)
  end
  if process.alive(pr.pid) then
    -- say what it printed (the reason it hangs, if any), then fail
    os.execute("kill -9 " .. pr.pid .. " 2>/dev/null")
    local out = ""
    if not pr.closed then
      pr.closed = true
      out = pr.p:read("*a") or ""
      pr.p:close()
    end
    error("child " .. pr.pid .. " still running after " .. (secs or 20) .. " s; its output:\n"
      .. out:sub(-2000), 2)
  end
  if not pr.closed then
    pr.closed = true
    pr.output = pr.p:read("*a")
    pr.p:close()
  end
  return pr.output
end

local function kill(pr, sig)
  core.kill(pr.pid, sig)
end

local function lines(path)
  local out = {}
  local f = io.open(path, "rb")
  if f then
    for l in f:lines() do
      out[#out + 1] = l
    end
    f:close()
  end
  return out
end

-- The ids the workers' log says were handled ("done ID PID" lines), each
-- asserted to be handled only once: set of ids.
local function handled_once(log)
  local done = {}
  for _, l in ipairs(lines(log)) do
    local id = l:match("^done (%S+)")
    if id then
      assert.is_nil(done[id], id .. " handled twice")
      done[id] = true
    end
  end
  return done
end

local function wait_for(pred, secs)
  local deadline = now() + (secs or 20)
  while now() < deadline do
    if pred() then
      return true
    end
    socket.sleep(0.05)
  end
  return pred()
end

local function delivery(id)
  local body = string.format('{"api_version":"v3","event_type":"message.received","event_id":"%s",'
    .. '"created_at":"2026-02-03T10:00:00Z","data":{"n":1}}', id)
  return body, linq.sign{ secret = SECRET, body = body }
end

local function store(db, ids)
  local inbox = assert(open_inbox(db))
  local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
  for _, id in ipairs(ids) do
    local body, headers = delivery(id)
    assert.equal(200, hooks:handle(body, headers).status)
  end
  return inbox
end

local function stats_of(log, pr)
  return json.decode(assert(util.read_file(log .. ".stats." .. pr.pid), "no stats from " .. pr.pid))
end

local PARENT = tostring(core.getpid())

-- Each backend: a fresh inbox target per test, and setup/teardown of what it needs.
local srv, ndb = nil, 0
local BACKENDS = {
  { name = "SQLite", target = function(d) return d .. "/inbox.db" end },
  { name = "Redis Streams",
    setup = function() srv = rs.start() end,
    teardown = function() if srv then srv:destroy() end end,
    target = function()
      ndb = ndb + 1
      return srv:url_for{ db = ndb }
    end },
}

for _, backend in ipairs(BACKENDS) do
  describe("inbox failures (" .. backend.name .. ", real processes)", function()
    local worker_lua, receiver_lua
    local function next_target() return backend.target(dir) end

    if backend.setup then
      setup(backend.setup)
      teardown(backend.teardown)
    end

    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. util.sh_quote(dir)))
      worker_lua = write(dir .. "/worker.lua", WORKER)
      receiver_lua = write(dir .. "/receiver.lua", RECEIVER)
      procs = {}
    end)

    after_each(function()
      for _, pr in ipairs(procs) do
        if process.alive(pr.pid) then
          core.kill(pr.pid, "KILL")
        end
        if not pr.closed then
          pr.closed = true
          pr.p:close()
        end
      end
      os.execute("rm -rf " .. util.sh_quote(dir))
    end)

    it("kill -9 of a worker mid-handler: another worker handles it after the visibility; done, not lost", function()
      local db, log = next_target(), dir .. "/log"
      local inbox = store(db, { "evt-kill" })
      local a = spawn(worker_lua, db, log, "hang", '{"visibility":1,"poll":0.05}', PARENT)
      assert.is_true(wait_for(function() return #lines(log) >= 1 end))
      assert.same({ pending = 0, in_flight = 1, done = 0, dead = 0 }, inbox:stats())
      kill(a, "KILL")
      wait_exit(a)
      local b = spawn(worker_lua, db, log, "ok", '{"visibility":1,"poll":0.05,"until_idle":true}', PARENT)
      wait_exit(b, 30)
      local l = lines(log)
      assert.same({ "start evt-kill " .. a.pid, "start evt-kill " .. b.pid, "done evt-kill " .. b.pid }, l)
      local s = stats_of(log, b)
      assert.equal(1, s.handled)
      assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, inbox:stats())
      inbox:close()
    end)

    it("a handler that fails twice then succeeds: 3 attempts, done", function()
      local db, log = next_target(), dir .. "/log"
      local inbox = store(db, { "evt-flaky" })
      local w = spawn(worker_lua, db, log, "flaky", '{"backoff":0.1,"poll":0.05,"until_idle":true}', PARENT)
      wait_exit(w, 30)
      local starts = 0
      for _, l in ipairs(lines(log)) do
        if l:match("^start evt%-flaky") then starts = starts + 1 end
      end
      assert.equal(3, starts)
      local s = stats_of(log, w)
      assert.same({ 2, 1, 0 }, { s.retried, s.handled, s.dead_lettered })
      assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, inbox:stats())
      inbox:close()
    end)

    it("max_attempts = 2: dead letter, then inbox:replay(id) has it handled", function()
      local db, log = next_target(), dir .. "/log"
      local inbox = store(db, { "evt-dead" })
      local w = spawn(worker_lua, db, log, "broken",
        '{"backoff":0.1,"poll":0.05,"until_idle":true,"max_attempts":2}', PARENT)
      wait_exit(w, 30)
      assert.same({ pending = 0, in_flight = 0, done = 0, dead = 1 }, inbox:stats())
      local dead = inbox:dead()
      assert.equal("evt-dead", dead[1].id)
      assert.equal(2, dead[1].attempts)
      assert.matches("broken handler", dead[1].error)
      assert.is_true(inbox:replay("evt-dead"))
      local w2 = spawn(worker_lua, db, log, "ok", '{"poll":0.05,"until_idle":true,"max_attempts":2}', PARENT)
      wait_exit(w2, 30)
      assert.same({ pending = 0, in_flight = 0, done = 1, dead = 0 }, inbox:stats())
      assert.equal("done evt-dead " .. w2.pid, lines(log)[#lines(log)])
      inbox:close()
    end)

    it("two workers on one inbox share the load; every delivery is handled exactly once", function()
      local db, log = next_target(), dir .. "/log"
      local ids = {}
      for i = 1, 60 do
        ids[i] = "evt-c" .. i
      end
      local inbox = store(db, ids)
      local opts = '{"poll":0.02,"until_idle":true}'
      local a = spawn(worker_lua, db, log, "ok", opts, PARENT)
      local b = spawn(worker_lua, db, log, "ok", opts, PARENT)
      wait_exit(a, 60)
      wait_exit(b, 60)
      local starts, done = {}, 0
      for _, l in ipairs(lines(log)) do
        local id = l:match("^start (%S+)")
        if id then
          assert.is_nil(starts[id], id .. " taken twice")
          starts[id] = true
        elseif l:match("^done ") then
          done = done + 1
        end
      end
      assert.equal(60, done)
      local sa, sb = stats_of(log, a), stats_of(log, b)
      assert.equal(60, sa.handled + sb.handled)
      assert.same({ pending = 0, in_flight = 0, done = 60, dead = 0 }, inbox:stats())
      inbox:close()
    end)

    it("receiver and worker restarted: nothing accepted is lost, each handled once", function()
      local db, log = next_target(), dir .. "/log"
      local function start_receiver()
        local r = spawn(receiver_lua, db, PARENT)
        local line = r.p:read("*l") or ""
        r.url = assert(line:match("listening on (http://%S+)"), line)
        return r
      end
      local function send(url, id)
        local body, headers = delivery(id)
        headers["Content-Type"] = "application/json"
        local res = assert(http("POST", url, headers, body))
        return res.status, res.body
      end
      local expected = {}
      local r1 = start_receiver()
      for i = 1, 20 do
        expected[#expected + 1] = "evt-r" .. i
        assert.equal(200, (send(r1.url, "evt-r" .. i)))
      end
      -- a worker handles a part, then is stopped gracefully mid-stream
      local w1 = spawn(worker_lua, db, log, "slow", '{"poll":0.05}', PARENT)
      assert.is_true(wait_for(function() return #lines(log) >= 6 end))
      kill(w1, "TERM")
      wait_exit(w1)
      local s1 = stats_of(log, w1)
      assert.equal("SIGTERM", s1.stopped)
      assert.equal(0, s1.in_flight) -- finished (or handed back) what it held
      -- the receiver crashes; a new one accepts more, and retries of old ids
      kill(r1, "KILL")
      wait_exit(r1)
      local r2 = start_receiver()
      for i = 21, 30 do
        expected[#expected + 1] = "evt-r" .. i
        assert.equal(200, (send(r2.url, "evt-r" .. i)))
      end
      for i = 1, 5 do
        local status, body = send(r2.url, "evt-r" .. i)
        assert.equal(200, status)
        assert.equal("duplicate", body)
      end
      kill(r2, "TERM")
      wait_exit(r2)
      local w2 = spawn(worker_lua, db, log, "slow", '{"poll":0.05,"until_idle":true}', PARENT)
      wait_exit(w2, 60)
      local done = handled_once(log)
      for _, id in ipairs(expected) do
        assert.is_true(done[id] or false, id .. " lost")
      end
      local inbox = assert(open_inbox(db))
      assert.same({ pending = 0, in_flight = 0, done = 30, dead = 0 }, inbox:stats())
      inbox:close()
    end)
    if backend.name == "Redis Streams" then
      it("Redis stopped while deliveries arrive: 503, never 200; after the restart all are handled", function()
        local db, log = next_target(), dir .. "/log"
        local r = spawn(receiver_lua, db, PARENT)
        local line = r.p:read("*l") or ""
        local url = assert(line:match("listening on (http://%S+)"), line)
        local function send(id)
          local body, headers = delivery(id)
          headers["Content-Type"] = "application/json"
          local res = assert(http("POST", url, headers, body))
          return res.status
        end
        for i = 1, 5 do
          assert.equal(200, send("evt-up" .. i))
        end
        srv:stop()
        for i = 1, 5 do
          assert.equal(503, send("evt-down" .. i))
        end
        srv:restart() -- the AOF brings back what was accepted
        for i = 1, 5 do
          assert.equal(200, send("evt-down" .. i)) -- Linq's retries
          assert.equal(200, send("evt-up" .. i)) -- duplicates
        end
        kill(r, "TERM")
        wait_exit(r)
        local w = spawn(worker_lua, db, log, "ok", '{"poll":0.05,"until_idle":true}', PARENT)
        wait_exit(w, 30)
        local done = handled_once(log)
        for i = 1, 5 do
          assert.is_true(done["evt-up" .. i] and done["evt-down" .. i])
        end
        local inbox = assert(open_inbox(db))
        assert.same({ pending = 0, in_flight = 0, done = 10, dead = 0 }, inbox:stats())
        inbox:close()
      end)
    end
  end)
end
