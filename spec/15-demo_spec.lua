-- `make demo` (the README's first command) and examples/demo.lua must run to
-- the end, exit 0 and leave nothing running.
local socket = require "socket"

local LUA = jit and "luajit" or "lua5.4"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"EXIT:$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("EXIT:(%d+)%s*$"))
  return code, out
end

local function port_closed(url)
  local port = tonumber(url:match(":(%d+)"))
  local c = socket.tcp()
  c:settimeout(1)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return not ok
end

local function check_transcript(out)
  assert.matches("%[1/6%] emulator listening on http://127%.0%.0%.1:%d+", out)
  assert.matches("%[2/6%] receiver listening on http://127%.0%.0%.1:%d+/webhooks", out)
  assert.matches("%[3/6%] subscription %x+ %-> http://127%.0%.0%.1:%d+/webhooks%?version=2026%-02%-03", out)
  assert.matches("message%.received%s+FAILED: simulated database outage", out)
  assert.matches('message%.received%s+from %+12025559876 in chat %x+: "Hello!"', out)
  assert.matches("message%.received%s+attempt 1%s+500%s+retrying", out)
  assert.matches("message%.received%s+attempt 2%s+200%s+delivered", out)
  assert.matches("%[6/6%] subscription %x+ deleted", out)
  assert.matches("demo OK: 4 events handled, 1 delivery retried after a handler failure", out)
  assert.not_matches("whsec_", out) -- the signing secret is never printed
  -- everything was stopped
  assert.is_true(port_closed(out:match("emulator listening on (http://%S+)")))
  assert.is_true(port_closed(out:match("receiver listening on (http://%S+)")))
end

describe("the demo", function()
  it("examples/demo.lua runs the whole flow under " .. LUA, function()
    local code, out = run("LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath
      .. "' timeout 120 " .. LUA .. " examples/demo.lua")
    assert.equal(0, code, out)
    check_transcript(out)
  end)

  it("make demo exits 0", function()
    local f = assert(io.open("Makefile"))
    local mk = f:read("*a")
    f:close()
    if not mk:find("examples/demo.lua", 1, true) then
      pending("the Makefile's demo target does not run examples/demo.lua yet")
      return
    end
    local code, out = run("timeout 300 make -s demo")
    assert.equal(0, code, out)
    check_transcript(out)
  end)
end)
