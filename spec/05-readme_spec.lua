-- Keeps README.md and docs/*.md true. The fenced blocks are checked by their
-- info string (the words after the opening ```):
--
--   ```lua                 runs in a child process (this run's interpreter and
--                          module paths, LINQ_* variables unset), must exit 0
--                          within 60 s and must not print a `whsec_` secret.
--                          Use `-->` comments for the output it shows.
--   ```lua norun           a fragment shown, not run (it needs nginx, a live
--                          server, or lines around it).
--   ```lua file=PATH       must appear verbatim in PATH (e.g. a handler that
--                          only runs inside nginx; PATH's spec runs it).
--   ```nginx file=PATH     must be exactly the content of PATH.
--   ```nginx server        the directives of one `server {}`: a real nginx must
--                          start with them, and GET on the first `location = P`
--                          must answer 200.
--   ```nginx norun         a fragment, not checked.
--   ```c                   the body of main() after a delivery was signed into
--                          `secret`, `id`, `ts`, `sig`, `body`, `body_len`; it
--                          must compile against csrc/linqwebhooks.h, link with
--                          the static library and leave `st == LINQWH_OK`.
--   ```c norun             a fragment, not checked.
--   ```sh, ```text, ```    shown, never run (shell sessions, output, layouts).
--
-- Any other word after lua/nginx/c fails the spec, so a typo cannot turn a
-- checked block into an unchecked one. Relative links to files (README.md ->
-- docs/x.md, docs/x.md -> y.md#anchor) must point at files that exist.
-- New pages in docs/ are picked up by themselves; README.md must link each.
-- Also checked here: the committed rockspecs are what tools/gen_rockspec.lua
-- generates from the tree (after adding a module: `make rockspec`).
local child = require "support.child"
local read_file = require("support.util").read_file

local function read(path)
  return (assert(read_file(path)))
end

local exists = require("support.util").exists

local function docs_pages()
  local pages = { "README.md" }
  local p = assert(io.popen("ls docs/*.md 2>/dev/null"))
  for line in p:lines() do
    pages[#pages + 1] = line
  end
  p:close()
  return pages
end

-- { lang, attr, code, heading, line } for every fenced block of a page
local function blocks_of(text)
  local blocks = {}
  local heading = ""
  local lang, attr, buf, start
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if buf then
      if line == "```" then
        blocks[#blocks + 1] = { lang = lang, attr = attr, code = table.concat(buf, "\n") .. "\n",
          heading = heading, line = start }
        buf = nil
      else
        buf[#buf + 1] = line
      end
    else
      local l, a = line:match("^```(%w*)%s*(.-)%s*$")
      if l then
        lang, attr, buf, start = l, a, {}, n
      elseif line:match("^#+ ") then
        heading = line
      end
    end
  end
  assert(not buf, "unclosed ``` block")
  return blocks
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

local function run_lua(code)
  local path = tmpfile(code, ".lua")
  local out = run("timeout 60 env -u LINQ_WEBHOOK_SECRET -u LINQ_API_V3_API_KEY -u LINQ_API_V3_BASE_URL "
    .. child.lua():gsub("^env ", "") .. " " .. path)
  os.remove(path)
  return out
end

local function run_c(code)
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
    code,
    "  return st == LINQWH_OK ? 0 : 1;",
    "}",
  }, "\n")
  local src = tmpfile(prog, ".c")
  local bin = os.tmpname()
  local out = run("make -s build/lib/liblinqwebhooks.a >/dev/null && cc -std=c99 -Icsrc -o "
    .. bin .. " " .. src .. " build/lib/liblinqwebhooks.a -lcrypto && " .. bin)
  os.remove(src)
  os.remove(bin)
  return out
end

local pages = docs_pages()

describe("README.md", function()
  local readme = read("README.md")

  it("is short: the reference lives in docs/", function()
    local _, lines = readme:gsub("\n", "")
    assert.is_true(lines <= 260, "README.md has " .. lines .. " lines")
  end)

  it("starts with the two set-up commands", function()
    assert.truthy(readme:find("make demo", 1, true))
    assert.truthy(readme:find("make test", 1, true))
  end)

  it("links every page of docs/", function()
    for _, page in ipairs(pages) do
      if page ~= "README.md" then
        assert.truthy(readme:find("(" .. page .. ")", 1, true), page .. " is not linked from README.md")
      end
    end
  end)
end)

describe("docs", function()
  it("have their pages and snippets", function()
    local want = { "verifier", "dispatcher", "client", "emulator", "openresty", "json", "c-api",
      "choices", "benchmarks" }
    for _, name in ipairs(want) do
      assert.is_true(exists("docs/" .. name .. ".md"), "docs/" .. name .. ".md")
    end
    local n = 0
    for _, page in ipairs(pages) do
      for _, b in ipairs(blocks_of(read(page))) do
        if b.lang == "lua" and b.attr == "" then
          n = n + 1
        end
      end
    end
    assert.is_true(n >= 8, "expected the Lua snippets, found " .. n)
  end)
end)

for _, page in ipairs(pages) do
  local text = read(page)
  local dir = page:match("^(.*)/") or "."

  describe(page, function()
    it("links only to files that exist", function()
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a[%w+.-]*:") and not target:match("^#") then
          local file = target:gsub("#.*$", "")
          assert.is_true(exists(dir .. "/" .. file) or exists(dir .. "/" .. file .. "/."),
            page .. " links to a missing " .. target)
        end
      end
    end)

    for i, b in ipairs(blocks_of(text)) do
      local where = page .. ":" .. b.line .. " (" .. b.heading .. ")"
      local file = b.attr:match("^file=(%S+)$")
      if b.lang == "lua" and b.attr == "" then
        it("lua block " .. i .. " at " .. where .. " runs", function()
          local out = run_lua(b.code)
          assert.matches("exit=0\n$", out)
          assert.is_nil(out:find("whsec_", 1, true), "a snippet printed a secret")
        end)
      elseif (b.lang == "lua" or b.lang == "nginx") and file then
        it(b.lang .. " block " .. i .. " at " .. where .. " is " .. file, function()
          if b.lang == "nginx" then
            assert.are.equal(read(file), b.code)
          else
            assert.truthy(read(file):find(b.code, 1, true), "not found verbatim in " .. file)
          end
        end)
      elseif b.lang == "nginx" and b.attr == "server" then
        it("nginx block " .. i .. " at " .. where .. " is a server that nginx accepts", function()
          local nginx = require "support.nginx"
          local path = assert(b.code:match("location%s*=%s*(%S+)"), "no `location = /path` in the block")
          local srv = nginx.start { server = b.code }
          local res, err = srv:request("GET", path)
          srv:stop()
          assert.truthy(res, err)
          assert.are.equal(200, res.status)
        end)
      elseif b.lang == "c" and b.attr == "" then
        it("C block " .. i .. " at " .. where .. " compiles and verifies a delivery", function()
          assert.matches("exit=0\n$", run_c(b.code))
        end)
      elseif (b.lang == "lua" or b.lang == "nginx" or b.lang == "c") and b.attr ~= "norun" then
        it(b.lang .. " block " .. i .. " at " .. where .. " has a known info string", function()
          error("unknown info string ```" .. b.lang .. " " .. b.attr .. " (see spec/05-readme_spec.lua)")
        end)
      end
    end
  end)
end

describe("the rockspecs", function()
  for _, kind in ipairs({ "scm", "release" }) do
    it("(" .. kind .. ") are what tools/gen_rockspec.lua generates (else: make rockspec)", function()
      local p = assert(io.popen(child.interpreter .. " tools/gen_rockspec.lua --stdout " .. kind .. " 2>/dev/null"))
      local want = p:read("*a")
      p:close()
      local version = assert(want:match('\nversion = "([^"]+)"'))
      assert.are.equal(want, read("linqwebhooks-" .. version .. ".rockspec"))
    end)
  end
end)
