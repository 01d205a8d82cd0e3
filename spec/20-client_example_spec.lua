-- examples/subscriptions.lua runs end to end on the emulator.
describe("examples/subscriptions.lua", function()
  it("manages a subscription on the emulator", function()
    if os.getenv("LINQ_API_V3_API_KEY") then
      pending("LINQ_API_V3_API_KEY is set: the example would use the real API")
      return
    end
    local child = require "support.child"
    local p = assert(io.popen(child.lua() .. " examples/subscriptions.lua 2>&1; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    assert.matches("exit=0", out)
    assert.matches("using the emulator", out)
    assert.matches("created linqwebhooks%.subscription ", out)
    assert.matches("after delete: nil, NotFoundError", out)
    assert.is_nil(out:find("whsec_", 1, true))
  end)
end)
