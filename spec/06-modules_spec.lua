-- The C modules: the runtime module nginx workers load (linqwebhooks.core:
-- verification and JSON) holds no libcurl binding and no process primitives;
-- those live in linqwebhooks.http and linqwebhooks.process, loaded only by
-- the parts that use them.
local util = require "support.util"

local INTERP = jit and "luajit" or "lua5.4"

-- Runs a chunk in a fresh interpreter with this process's module paths;
-- returns its stdout and the shell's exit status.
local function run(code)
  local chunk = string.format("package.path = %q; package.cpath = %q; %s", package.path,
    package.cpath, code)
  local p = assert(io.popen(INTERP .. " -e " .. util.sh_quote(chunk) .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)rc=(%d+)\n?$")
  return body, tonumber(rc)
end

describe("linqwebhooks.core (the runtime module)", function()
  local core = require "linqwebhooks.core"

  it("holds verification and JSON only", function()
    for _, name in ipairs { "keyring", "bind_verify", "random_bytes", "new_secret", "base64_encode",
                            "json_decode", "json_encode" } do
      assert.is_function(core[name], name)
    end
    for _, name in ipairs { "http_client", "sleep", "curl_version", "kill", "chmod", "now_ns",
                            "signal_watch", "signal_pending", "getpid", "waitpid" } do
      assert.is_nil(core[name], name)
    end
  end)

  it("does not map libcurl into the process that loads it", function()
    local out, rc = run([[
      require "linqwebhooks.core"
      for line in io.lines("/proc/self/maps") do
        if line:find("libcurl", 1, true) then print("libcurl mapped: " .. line) os.exit(1) end
      end
      print("ok")]])
    assert.are.equal(0, rc, out)
    -- and the libcurl module does map it (the check above can fail)
    out, rc = run([[
      require "linqwebhooks.http"
      for line in io.lines("/proc/self/maps") do
        if line:find("libcurl", 1, true) then os.exit(3) end
      end]])
    assert.are.equal(3, rc, out)
  end)
end)

describe("linqwebhooks.http", function()
  it("holds the libcurl client, its version and a blocking sleep", function()
    local http = require "linqwebhooks.http"
    assert.is_function(http.http_client)
    assert.is_function(http.sleep)
    assert.matches("^%d+%.%d+", http.curl_version)
    local h = http.http_client {}
    assert.matches("^linqwebhooks.HttpClient", tostring(h))
    h:close()
  end)
end)

describe("linqwebhooks.process", function()
  local process = require "linqwebhooks.process"

  it("holds the process primitives and nothing dead", function()
    for _, name in ipairs { "signal_watch", "signal_pending", "signal_unwatch", "getpid", "kill",
                            "chmod", "now_ns" } do
      assert.is_function(process[name], name)
    end
    assert.is_nil(process.waitpid)
    assert.is_true(process.now_ns() > 0)
    assert.is_true(process.kill(process.getpid(), 0))
  end)

  it("signal_unwatch restores the previous SIGTERM handling and clears the flag", function()
    local out, rc = run([[
      local p = require "linqwebhooks.process"
      p.signal_watch()
      p.kill(p.getpid(), "TERM")
      assert(p.signal_pending() == "SIGTERM", "flag set")
      p.signal_unwatch()
      assert(p.signal_pending() == nil, "flag cleared")
      p.signal_unwatch() -- idempotent
      p.signal_watch()   -- and watching again works
      p.kill(p.getpid(), "TERM")
      assert(p.signal_pending() == "SIGTERM", "flag set again")
      p.signal_unwatch()
      p.kill(p.getpid(), "TERM") -- the default action: the process ends here
      print("still alive")]])
    assert.are.equal(128 + 15, rc, out)
    assert.is_nil(out:find("still alive", 1, true))
  end)
end)
