-- examples/scale-out/run.lua: the emulator delivers every event to two
-- receivers sharing one SQLite inbox; two workers handle each event once.
local child = require "support.child"

describe("examples/scale-out (SQLite inbox)", function()
  it("stores each event once though it is delivered twice, and handles every one", function()
    local p = assert(io.popen(child.lua() .. " examples/scale-out/run.lua 6 2>&1"))
    local out = p:read("*a")
    local ok, _, code = p:close()
    assert.matches("emulator: 12 deliveries answered 200 by the receivers", out, 1, true)
    assert.matches("inbox stats: pending=0 in_flight=0 done=6 dead=0", out, 1, true)
    assert.matches("scale-out OK", out, 1, true)
    local handled = 0
    for _ in out:gmatch("worker%-%d +handled ") do
      handled = handled + 1
    end
    assert.equal(6, handled)
    assert.is_true(ok == true or code == 0, out)
  end)
end)
