-- Keeps README.md true: every ```lua block runs (in a child process, with
-- this run's interpreter and module paths) and exits 0; the C fragment
-- compiles and runs against the public header; the nginx config and handler
-- shown are the files that the nginx specs run.
local child = require "support.child"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local readme = read("README.md")

-- { lang, code, heading } for every fenced block
local blocks = {}
do
  local heading = ""
  local lang, buf
  for line in (readme .. "\n"):gmatch("([^\n]*)\n") do
    if buf then
      if line == "```" then
        blocks[#blocks + 1] = { lang = lang, code = table.concat(buf, "\n") .. "\n", heading = heading }
        buf = nil
      else
        buf[#buf + 1] = line
      end
    else
      local l = line:match("^```(%w*)$")
      if l then
        lang, buf = l, {}
      elseif line:match("^#+ ") then
        heading = line
      end
    end
  end
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  return out
end

local function tmpfile(content, suffix)
  local path = os.tmpname() .. (suffix or "")
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

describe("README.md", function()
  it("has its blocks", function()
    local n = 0
    for _, b in ipairs(blocks) do
      if b.lang == "lua" then
        n = n + 1
      end
    end
    assert.is_true(n >= 6, "expected the Lua snippets, found " .. n)
  end)

  for i, b in ipairs(blocks) do
    if b.lang == "lua" and b.code:find("ngx.", 1, true) then
      it("block " .. i .. " (" .. b.heading .. ") is examples/nginx/handler.lua", function()
        assert.truthy(read("examples/nginx/handler.lua"):find(b.code, 1, true))
      end)
    elseif b.lang == "lua" then
      it("lua block " .. i .. " (" .. b.heading .. ") runs", function()
        local path = tmpfile(b.code, ".lua")
        local out = run("timeout 60 env -u LINQ_WEBHOOK_SECRET -u LINQ_API_V3_API_KEY -u LINQ_API_V3_BASE_URL " .. child.lua():gsub("^env ", "") .. " " .. path)
        os.remove(path)
        assert.matches("exit=0\n$", out)
        assert.is_nil(out:find("whsec_", 1, true), "a snippet printed a secret")
      end)
    elseif b.lang == "nginx" and b.code:find("load_module", 1, true) then
      it("nginx block " .. i .. " is examples/nginx/nginx.conf", function()
        assert.are.equal(read("examples/nginx/nginx.conf"), b.code)
      end)
    elseif b.lang == "nginx" then
      it("nginx block " .. i .. " (" .. b.heading .. ") is a location that nginx accepts", function()
        local nginx = require "support.nginx"
        local srv = nginx.start { server = b.code }
        local res, err = srv:request("GET", "/notify")
        srv:stop()
        assert.truthy(res, err)
        assert.are.equal(200, res.status)
      end)
    elseif b.lang == "c" then
      it("C block " .. i .. " compiles and verifies a delivery", function()
        local prog = table.concat({
          "#define _POSIX_C_SOURCE 200809L",
          "#include <stdio.h>", "#include <string.h>", "#include <time.h>",
          '#include "linqwebhooks.h"',
          "int main(void) {",
          '  const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=";',
          '  const char *id = "msg_1", *body = "{}";',
          "  size_t body_len = strlen(body);",
          "  char ts[32], sig[LINQWH_STANDARD_SIG_SIZE];",
          "  { linqwh_keyring *k = NULL; size_t l = strlen(secret);",
          "    snprintf(ts, sizeof ts, \"%lld\", (long long)time(NULL));",
          "    if (linqwh_keyring_new(&k, &secret, &l, 1, NULL, 0) ||",
          "        linqwh_sign_standard(k, 0, id, 5, ts, strlen(ts), body, body_len, sig)) return 3;",
          "    linqwh_keyring_free(k); }",
          b.code,
          "  return st == LINQWH_OK ? 0 : 1;",
          "}",
        }, "\n")
        local src = tmpfile(prog, ".c")
        local bin = os.tmpname()
        local out = run("make -s build/lib/liblinqwebhooks.a >/dev/null && cc -std=c99 -Icsrc -o "
          .. bin .. " " .. src .. " build/lib/liblinqwebhooks.a -lcrypto && " .. bin)
        os.remove(src)
        os.remove(bin)
        assert.matches("exit=0\n$", out)
      end)
    end
  end
end)
