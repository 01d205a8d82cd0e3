-- examples/scale-out/run.lua end to end, both variants: the emulator
-- delivers every event to two receivers sharing one inbox (each event twice);
-- two workers handle each event once; every process stops.
--   * Redis (the default, `make scale-out`): run.lua starts its own
--     redis-server; receiver-2 is nginx (openresty.serve, cosockets) when
--     nginx with the Lua module is installed, else a second plain-Lua one
--   * LINQ_INBOX=sqlite: two plain-Lua receivers on one SQLite file
local child = require "support.child"
local nginx = require "support.nginx"
local util = require "support.util"
local alive = require("linqwebhooks.emulator.process").alive
local socket = require "socket"

local EVENTS = 6

local function listening(port)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

-- Runs the example (bounded: `timeout` stops it after 90 s); returns its
-- output and whether it exited 0.
local function run_example(env)
  -- the variant is chosen by the environment: start from a clean one
  local cmd = "env -u LINQ_INBOX -u LINQ_REDIS_URL -u LINQ_REDIS_PREFIX -u LINQ_INBOX_PATH "
    .. (env or "") .. " timeout -k 5 90 " .. child.lua() .. " examples/scale-out/run.lua " .. EVENTS
    .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  local a, _, code = p:close()
  return out, (a == true and (code == nil or code == 0)) or a == 0
end

-- The checks shared by both variants.
local function check_run(out, ok, kinds)
  assert.is_true(ok, out)
  assert.matches("scale-out OK", out, 1, true)
  -- delivered twice (once per subscription / receiver), all answered 200
  assert.matches("emulator: " .. 2 * EVENTS .. " deliveries answered 200 by the receivers", out, 1, true)
  assert.matches("  receiver-1 (" .. kinds[1] .. "): " .. EVENTS .. ", receiver-2 (" .. kinds[2] .. "): "
    .. EVENTS .. "\n", out, 1, true)
  -- stored once: the inbox holds EVENTS deliveries, all done
  assert.matches("inbox stats: pending=0 in_flight=0 done=" .. EVENTS .. " dead=0", out, 1, true)
  -- handled once: counted here from the workers' own lines
  local per_id, lines = {}, 0
  for id in out:gmatch("worker%-%d +handled +%S+ +(%S+) secret #%d\n") do
    per_id[id] = (per_id[id] or 0) + 1
    lines = lines + 1
  end
  local distinct = 0
  for id, n in pairs(per_id) do
    distinct = distinct + 1
    assert.equal(1, n, "event " .. id .. " handled " .. n .. " times")
  end
  assert.equal(EVENTS, lines)
  assert.equal(EVENTS, distinct)
  -- both workers stopped on SIGTERM, having handled EVENTS between them
  local total = 0
  for w = 1, 2 do
    local n = out:match("worker%-" .. w .. " +stopped %(SIGTERM%): handled (%d+), retried 0, dead%-lettered 0")
    assert.is_truthy(n, out)
    total = total + tonumber(n)
  end
  assert.equal(EVENTS, total)
  -- every process stopped: run.lua says so, and none of the pids it
  -- printed is still running, no port it used still listens
  assert.matches("none left running", out, 1, true)
  local pids = 0
  for line in out:gmatch("process +[^\n]+") do
    for pid in (line:match(" pids? ([%d ]+)") or ""):gmatch("%d+") do
      pids = pids + 1
      assert.is_false(alive(tonumber(pid)), line)
    end
  end
  assert.is_true(pids >= 5, out) -- receivers, workers, emulator (+ redis, nginx workers)
  for port in out:gmatch("port (%d+)") do
    assert.is_false(listening(tonumber(port)), "port " .. port .. " still listens")
  end
  -- the temporary directory is gone
  local tmp = out:match("(/tmp/linqwh%-scale%-out%.%w+)")
  assert.is_truthy(tmp, out)
  assert.is_nil(util.read_file(tmp .. "/children.log"))
end

describe("examples/scale-out", function()
  it("Redis (default): own redis-server, nginx + plain-Lua receivers, two workers", function()
    local with_nginx = nginx.available() == true
    if with_nginx then
      -- nginx runs the LuaJIT build of the C modules
      local a = os.execute("env -u LD_PRELOAD make -s -C " .. util.sh_quote(nginx.ROOT) .. " luajit >/dev/null")
      assert.is_true(a == true or a == 0, "make luajit failed")
    end
    local out, ok = run_example()
    local kinds = { "plain Lua", with_nginx and "nginx" or "plain Lua" }
    check_run(out, ok, kinds)
    -- its own Redis, AOF on, no snapshots, on loopback
    local redis_port = out:match("process +redis +pid %d+ +redis%-server 127%.0%.0%.1:(%d+) %(%-%-save \"\" "
      .. "%-%-appendonly yes")
    assert.is_truthy(redis_port, out)
    assert.matches("inbox        linqwebhooks.inbox.redis (redis://127.0.0.1:" .. redis_port .. "/0", out, 1, true)
    assert.is_false(listening(tonumber(redis_port)))
    if with_nginx then
      assert.matches("receivers    receiver-1 plain Lua + receiver-2 nginx", out, 1, true)
      assert.matches("process +receiver%-2 +pid %d+ +nginx master", out)
      assert.matches("process +receiver%-2 +pids %d+ %d+ %(nginx workers%)", out)
      assert.matches("nginx error log: 0 error lines", out, 1, true)
    else
      assert.matches("receivers    2 plain-Lua receivers (no nginx receiver: ", out, 1, true)
    end
  end)

  it("LINQ_INBOX=sqlite: two plain-Lua receivers on one SQLite file, two workers", function()
    local out, ok = run_example("LINQ_INBOX=sqlite")
    check_run(out, ok, { "plain Lua", "plain Lua" })
    assert.matches("inbox        sqlite /tmp/linqwh-scale-out.", out, 1, true)
    assert.matches("receivers    2 plain-Lua receivers (no nginx receiver: the SQLite inbox would block"
      .. " nginx workers)", out, 1, true)
    assert.is_nil(out:find("redis-server", 1, true))
    assert.is_nil(out:find("nginx master", 1, true))
  end)
end)
