--- The two bindings of the C core that the verifier can use: the classic
-- Lua C-API one (every interpreter) and the FFI one (linqwebhooks.ffi,
-- LuaJIT). each(busted, fn) runs fn inside one describe block per binding
-- that is available (busted = { describe, setup, teardown } of the spec
-- file), with linqwebhooks.verifier.use_ffi set for the tests in it, so a
-- spec file written once runs against both paths under LuaJIT.
local M = {}

function M.list()
  if require("linqwebhooks.ffi").available then
    return { "classic", "ffi" }
  end
  return { "classic" }
end

function M.each(b, fn)
  local verifier = require "linqwebhooks.verifier"
  for _, name in ipairs(M.list()) do
    b.describe("[" .. name .. " binding]", function()
      local saved
      b.setup(function()
        saved = verifier.use_ffi
        verifier.use_ffi = name == "ffi"
      end)
      b.teardown(function()
        verifier.use_ffi = saved
      end)
      fn(name)
    end)
  end
end

return M
