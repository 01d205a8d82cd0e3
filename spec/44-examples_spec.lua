-- examples/*.lua as a newcomer meets them: after `make` (and `make luajit`),
-- from any directory, with no LUA_PATH/LUA_CPATH set (each example finds the
-- checkout itself); `make emulator PORT=... VERBOSE=1`; the subscriptions
-- example prints every change it makes. Every run is bounded by `timeout`.
local child = require "support.child"
local util = require "support.util"
local nginx = require "support.nginx" -- (only its plain HTTP client, nginx.http)
local linq = require "linqwebhooks"

local q = util.sh_quote
local ROOT = assert(io.popen("pwd")):read("*l")
local LUA = child.interpreter
-- what a fresh shell has: none of the module path variables
local CLEAN = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LINQ_API_V3_API_KEY "
  .. "-u LINQ_API_V3_BASE_URL "

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  return out
end

-- Starts `cmd` in the background (its output into a file); returns a handle
-- with wait_for(pattern) and stop(). `timeout` is the process we started:
-- stopping it signals its process group (make and the interpreter under it).
local function background(cmd)
  local out = os.tmpname()
  assert(os.execute("sh -c " .. q("echo $$; exec timeout 120 " .. cmd) .. " >" .. q(out)
    .. " 2>&1 &"))
  local h = { out = out }
  function h.text()
    return util.read_file(out) or ""
  end
  function h.wait_for(pattern)
    local deadline = os.time() + 30
    repeat
      local m = h.text():match(pattern)
      if m then
        return m
      end
      os.execute("sleep 0.05")
    until os.time() > deadline
    error("timed out waiting for " .. pattern .. " in:\n" .. h.text())
  end
  function h.stop()
    local pid = tonumber(h.text():match("^(%d+)\n"))
    if pid then
      os.execute("kill -TERM " .. pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then
          break
        end
        os.execute("sleep 0.05")
      end
    end
    local text = h.text()
    os.remove(out)
    return text
  end
  return h
end

describe("examples from a fresh shell (no LUA_PATH), run from another directory", function()
  setup(function()
    assert(os.execute("make -s all luajit >/dev/null"))
  end)

  it("examples/verify.lua", function()
    local out = run("cd /tmp && " .. CLEAN .. "timeout 60 " .. LUA .. " " .. q(ROOT .. "/examples/verify.lua"))
    assert.matches("exit=0\n$", out)
    assert.matches("verified: scheme standard", out)
    assert.matches("forged body rejected", out)
  end)

  it("examples/demo.lua", function()
    local out = run("cd /tmp && " .. CLEAN .. "timeout 120 " .. LUA .. " " .. q(ROOT .. "/examples/demo.lua"))
    assert.matches("exit=0\n$", out)
    assert.matches("demo OK", out)
  end)

  it("examples/subscriptions.lua prints every state change it makes", function()
    local out = run("cd /tmp && " .. CLEAN .. "timeout 60 " .. LUA .. " "
      .. q(ROOT .. "/examples/subscriptions.lua"))
    assert.matches("exit=0\n$", out)
    local want = { "created linqwebhooks.subscription ", "updated: phone filter %+12025550123",
      "updated: phone filter removed", "deactivated: is_active = false",
      "activated: is_active = true", "deleted [%w%-]+\n", "after delete: nil, NotFoundError" }
    local pos = 1
    for _, w in ipairs(want) do
      local s, e = out:find(w, pos)
      assert.truthy(s, "missing (in order) " .. w .. " in:\n" .. out)
      pos = e + 1
    end
    assert.is_nil(out:find("whsec_", 1, true))
  end)

  it("examples/receiver.lua answers a signed delivery", function()
    local secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="
    local port = util.free_port()
    local h = background("sh -c " .. q("cd /tmp && exec " .. CLEAN .. "LINQ_WEBHOOK_SECRET=" .. secret
      .. " " .. LUA .. " " .. ROOT .. "/examples/receiver.lua " .. port))
    local ok, err = pcall(function()
      h.wait_for("listening on http://127%.0%.0%.1:" .. port .. "/webhooks")
      local body = '{"api_version":"v3","event_type":"message.received","event_id":"ev_ex_1",'
        .. '"created_at":"2026-01-01T00:00:00Z","trace_id":"t","partner_id":"p","data":{}}'
      local hdrs = linq.sign { secret = secret, body = body }
      local res = assert(nginx.http(port, "POST", "/webhooks", hdrs, body, 10))
      assert.equal(200, res.status)
    end)
    h.stop()
    assert(ok, err)
  end)

  it("make emulator PORT=... VERBOSE=1 listens there and logs each request", function()
    local port = util.free_port()
    local h = background("make -s -C " .. q(ROOT) .. " emulator PORT=" .. port .. " VERBOSE=1")
    local ok, err = pcall(function()
      h.wait_for("listening on http://127%.0%.0%.1:" .. port)
      local res = assert(nginx.http(port, "GET", "/api/partner/v3/webhook-subscriptions",
        { Authorization = "Bearer test_key" }, nil, 10))
      assert.equal(200, res.status)
      h.wait_for("GET /api/partner/v3/webhook%-subscriptions %-> 200")
    end)
    h.stop()
    assert(ok, err)
    -- without VERBOSE: quiet
    port = util.free_port()
    h = background("make -s -C " .. q(ROOT) .. " emulator PORT=" .. port)
    ok, err = pcall(function()
      h.wait_for("listening on http://127%.0%.0%.1:" .. port)
      assert(nginx.http(port, "GET", "/api/partner/v3/webhook-subscriptions",
        { Authorization = "Bearer test_key" }, nil, 10))
    end)
    local text = h.stop()
    assert(ok, err)
    assert.is_nil(text:find("-> 200", 1, true))
  end)
end)
