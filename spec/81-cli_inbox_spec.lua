-- NEEDS the inbox modules (linqwebhooks.inbox with .sqlite/.redis, hooks:work,
-- linq.webhooks{ inbox = }: helpers h8/h7, merged by the lead). Written against
-- notes/INBOX-CONTRACT.md; it cannot pass on a branch without them.
--
-- `linqwh inbox stats|dead|replay` and `linqwh worker APP.lua` as a user runs
-- them: real processes on a real SQLite inbox file, and on a real
-- redis-server (support.redis), filled by a dispatcher (hooks:handle with
-- signed deliveries).
local cli = require "support.cli"
local linq = require "linqwebhooks"
local json = require "linqwebhooks.json"
local core = require "linqwebhooks.core"
local trigger = require "linqwebhooks.cli.trigger"

local SECRET = core.new_secret()

local APP = [[
local linq = require "linqwebhooks"
local inbox_mod = require "linqwebhooks.inbox"
local inbox = os.getenv("APP_REDIS") and inbox_mod.redis{ url = os.getenv("APP_REDIS"), prefix = "clitest:" }
  or inbox_mod.sqlite{ path = os.getenv("APP_DB") }
local hooks = linq.webhooks{ secret = os.getenv("APP_SECRET"), inbox = inbox }
hooks:on("message.received", function(event)
  local f = assert(io.open(os.getenv("APP_OUT"), "ab"))
  f:write(event.id, "\n")
  f:close()
end)
hooks:on("message.failed", function(event)
  error("boom " .. event.id)
end)
return hooks
]]

local function store(db, etype, id, redis_url)
  local inbox_mod = require "linqwebhooks.inbox"
  local inbox = redis_url and assert(inbox_mod.redis{ url = redis_url, prefix = "clitest:" })
    or assert(inbox_mod.sqlite{ path = db })
  local hooks = linq.webhooks{ secret = SECRET, inbox = inbox }
  local body = assert(trigger.build(etype, "2026-02-03", id))
  local headers = linq.sign{ secret = SECRET, body = body, id = id, scheme = "both" }
  local res = hooks:handle(body, headers)
  inbox:close()
  assert.are.equal(200, res.status, tostring(res.body))
end

describe("linqwh inbox and worker (SQLite)", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. cli.q(dir)))
  local db, out, app = dir .. "/inbox.db", dir .. "/handled.txt", dir .. "/app.lua"
  local env = { APP_DB = db, APP_OUT = out, APP_SECRET = SECRET }

  setup(function()
    cli.write(app, APP)
    store(db, "message.received", "evt-ok-1")
    store(db, "message.received", "evt-ok-2")
    store(db, "message.failed", "evt-bad")
  end)

  teardown(function()
    cli.stop_all()
    os.execute("rm -rf " .. cli.q(dir))
  end)

  it("inbox stats counts the stored deliveries (table and --json)", function()
    local code, o, err = cli.run({ "inbox", "stats", "--sqlite", db })
    assert.are.equal(0, code, err)
    assert.matches("pending%s+3\n", o)
    assert.matches("dead%s+0\n", o)
    code, o = cli.run({ "inbox", "stats", "--sqlite", db, "--json" })
    assert.are.equal(0, code)
    local s = json.decode(o)
    assert.are.equal(3, s.pending)
    assert.are.equal(0, s.done)
  end)

  it("worker --until-idle runs the handlers; a failing one goes to the dead letters", function()
    local code, o, err = cli.run({ "worker", app, "--until-idle", "--max-attempts", "1", "--backoff", "0.01" },
      nil, env, 60)
    assert.are.equal(0, code, err)
    assert.are.equal("pending 0, in_flight 0, done 2, dead 1\n", o)
    local handled = cli.read(out)
    assert.truthy(handled:find("evt-ok-1\n", 1, true))
    assert.truthy(handled:find("evt-ok-2\n", 1, true))
  end)

  it("inbox dead lists it; replay moves it back to pending; unknown ids exit 1", function()
    local code, o, err = cli.run({ "inbox", "dead", "--sqlite", db })
    assert.are.equal(0, code, err)
    assert.matches("^EVENT_ID%s+TYPE%s+ATTEMPTS%s+ERROR\n", o)
    assert.matches("evt%-bad%s+message%.failed%s+1%s+[^\n]*boom", o)
    code, o = cli.run({ "inbox", "dead", "--sqlite", db, "--json" })
    assert.are.equal(0, code)
    local list = json.decode(o)
    assert.are.equal(1, #list)
    assert.are.equal("evt-bad", list[1].id)
    code, o = cli.run({ "inbox", "replay", "evt-bad", "--sqlite", db })
    assert.are.equal(0, code)
    assert.are.equal("replayed evt-bad\n", o)
    code, o = cli.run({ "inbox", "stats", "--sqlite", db, "--json" })
    assert.are.equal(0, code)
    local s = json.decode(o)
    assert.are.equal(1, s.pending)
    assert.are.equal(0, s.dead)
    code, o, err = cli.run({ "inbox", "replay", "no-such-event", "--sqlite", db })
    assert.are.equal(1, code)
    assert.are.equal("", o)
    assert.matches("^linqwh: ", err)
  end)

  it("a worker without --until-idle runs until SIGTERM and prints the counts", function()
    local w = cli.spawn({ "worker", app, "--max-attempts", "2", "--backoff", "0.01" },
      "(worker running)", "err", env)
    assert.truthy(cli.wait_for(function()
      local code, o = cli.run({ "inbox", "stats", "--sqlite", db, "--json" })
      local s = code == 0 and json.decode(o)
      return s and s.pending == 0 and s.in_flight == 0
    end, 20))
    assert.is_true(w.stop("TERM"))
    assert.matches("pending 0, in_flight 0, done 2, dead 1\n$", w.stdout())
  end)

  it("bad APP.lua files exit 2 (not a dispatcher) or 1 (it raises)", function()
    local bad = dir .. "/bad.lua"
    cli.write(bad, "return 42\n")
    local code, o, err = cli.run({ "worker", bad })
    assert.are.equal(2, code, err)
    assert.are.equal("", o)
    assert.matches("must return a linq%.webhooks dispatcher", err)
    cli.write(bad, "error('no config here')\n")
    code, o, err = cli.run({ "worker", bad })
    assert.are.equal("", o)
    assert.are.equal(1, code)
    assert.matches("no config here", err)
  end)

  it("an unreachable Redis inbox exits 1 without printing its password", function()
    local port = require("support.util").free_port()
    local code, o, err = cli.run({ "inbox", "stats", "--redis",
                                   "redis://user:s3cretPassw0rd@127.0.0.1:" .. port .. "/0" })
    assert.are.equal(1, code, err)
    assert.are.equal("", o)
    assert.falsy(err:find("s3cretPassw0rd", 1, true), err)
  end)

  it("never prints the signing secret", function()
    for _, o in ipairs(cli.outputs) do
      assert.falsy(o:find(SECRET, 1, true))
    end
  end)
end)

describe("linqwh inbox and worker (Redis)", function()
  local rs = require "support.redis"
  local srv, url, dir, app, out

  setup(function()
    srv = rs.start{ password = "pw-" .. require("linqwebhooks.emulator.util").trace_id() }
    url = srv.url
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. cli.q(dir)))
    app, out = dir .. "/app.lua", dir .. "/handled.txt"
    cli.write(app, APP)
    store(nil, "message.received", "r-ok", url)
    store(nil, "message.failed", "r-bad", url)
  end)

  teardown(function()
    cli.stop_all()
    if srv then
      srv:destroy()
    end
    os.execute("rm -rf " .. cli.q(dir))
  end)

  it("stats, worker --until-idle, dead, replay", function()
    local code, o, err = cli.run({ "inbox", "stats", "--redis", url, "--prefix", "clitest:", "--json" })
    assert.are.equal(0, code, err)
    assert.are.equal(2, json.decode(o).pending)
    code, o, err = cli.run({ "worker", app, "--until-idle", "--max-attempts", "1" }, nil,
      { APP_REDIS = url, APP_OUT = out, APP_SECRET = SECRET }, 60)
    assert.are.equal(0, code, err)
    assert.are.equal("pending 0, in_flight 0, done 1, dead 1\n", o)
    assert.are.equal("r-ok\n", cli.read(out))
    code, o = cli.run({ "inbox", "dead", "--redis", url, "--prefix", "clitest:" })
    assert.are.equal(0, code)
    assert.matches("r%-bad%s+message%.failed%s+1%s+[^\n]*boom", o)
    code, o = cli.run({ "inbox", "replay", "r-bad", "--redis", url, "--prefix", "clitest:" })
    assert.are.equal(0, code)
    assert.are.equal("replayed r-bad\n", o)
    code, o = cli.run({ "inbox", "stats", "--redis", url, "--prefix", "clitest:", "--json" })
    assert.are.equal(0, code)
    assert.are.equal(1, json.decode(o).pending)
  end)

  it("a wrong password exits 1; no password is ever printed", function()
    local bad = srv:url_for{ password = "not-the-password-42" }
    local code, o, err = cli.run({ "inbox", "stats", "--redis", bad })
    assert.are.equal(1, code, err)
    assert.are.equal("", o)
    assert.falsy(err:find("not-the-password-42", 1, true), err)
    local pw = url:match("^redis://[^:]*:([^@]+)@")
    assert.truthy(pw)
    for _, text in ipairs(cli.outputs) do
      assert.falsy(text:find(pw, 1, true))
      assert.falsy(text:find(SECRET, 1, true))
    end
  end)
end)
