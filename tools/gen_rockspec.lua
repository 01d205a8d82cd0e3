-- Generates the rockspecs from the files in csrc/, lua/ and bin/:
--   linqwebhooks-scm-1.rockspec     (the development version, branch main)
--   linqwebhooks-<VERSION>-1.rockspec (the release, tag v<VERSION>)
--
-- usage (from the checkout's root; `make rockspec` runs it):
--   lua5.4 tools/gen_rockspec.lua            writes both files
--   lua5.4 tools/gen_rockspec.lua --stdout scm|release    prints one
--
-- What is generated follows what exists, so the same script works before and
-- after the C module split:
-- * C_MODULES below is the one list of C modules; each links the libraries
--   whose headers its sources include (LIBRARIES). A module other than the core
--   is built as its own .so only when its main source defines its
--   luaopen_<name> function; otherwise a main source that exists (today's
--   csrc/lua/http.c, process.c) is built into linqwebhooks.core with its
--   libraries. Each module gets the csrc/ files defining the lwh_* functions
--   its sources call (found by grepping, to a fixed point).
-- * linqwebhooks.core takes every other csrc/*.c and csrc/lua/*.c file.
-- * Lua modules: every lua/linqwebhooks/**/*.lua. Lua dependencies: a rock
--   is declared when lua/ or bin/ requires one of its modules.
-- * bin/linqwh is installed when the file exists.
-- The homepage/issues URLs are placeholders until the project is published.

local VERSION = "0.2.0"
local REPO = "https://github.com/linqwebhooks/linqwebhooks" -- placeholder, see above

-- The C modules: name and main source (the file with luaopen_<name>).
local C_MODULES = {
  { name = "linqwebhooks.core", main = "csrc/lua/core.c" },       -- verify, JSON: libcrypto, cJSON
  { name = "linqwebhooks.http", main = "csrc/lua/http.c" },       -- libcurl
  { name = "linqwebhooks.process", main = "csrc/lua/process.c" }, -- signals, kill, time
  { name = "linqwebhooks.hiredis", main = "csrc/lua/hiredis.c" }, -- hiredis
  { name = "linqwebhooks.sqlite", main = "csrc/lua/sqlite.c" },   -- libsqlite3
}

-- A module links the libraries whose headers its sources include (directly
-- or through the project's own headers): header pattern, library, the
-- external_dependencies entry, its include directories.
local LIBRARIES = {
  { include = "^openssl/", lib = "crypto", ext = "OPENSSL",
    spec = '{ header = "openssl/evp.h", library = "crypto" }', incdirs = { "$(OPENSSL_INCDIR)" } },
  { include = "cJSON%.h$", lib = "cjson", ext = "CJSON",
    spec = '{ header = "cjson/cJSON.h", library = "cjson" }',
    incdirs = { "$(CJSON_INCDIR)/cjson", "$(CJSON_INCDIR)" } },
  -- Debian: curl.h is under the multiarch include dir, so only the library is looked up
  { include = "^curl/", lib = "curl", ext = "CURL", spec = '{ library = "curl" }', incdirs = {} },
  { include = "^hiredis/", lib = "hiredis", ext = "HIREDIS",
    spec = '{ header = "hiredis/hiredis.h", library = "hiredis" }', incdirs = { "$(HIREDIS_INCDIR)" } },
  { include = "^sqlite3%.h$", lib = "sqlite3", ext = "SQLITE",
    spec = '{ header = "sqlite3.h", library = "sqlite3" }', incdirs = { "$(SQLITE_INCDIR)" } },
}

-- rock = Lua modules that mean it is used (require "x" or "x.y")
local LUA_DEPS = {
  { rock = "luasocket >= 3.0", modules = { "socket", "mime", "ltn12" } },
  { rock = "luasec >= 1.0", modules = { "ssl" } },
  { rock = "lua-cjson >= 2.1", modules = { "cjson" } },
  { rock = "argparse >= 0.7", modules = { "argparse" } },
}

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local t = {}
  for line in p:lines() do
    t[#t + 1] = line
  end
  p:close()
  table.sort(t)
  return t
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then
      return true
    end
  end
  return false
end

local c_files = lines_of("ls csrc/*.c csrc/lua/*.c 2>/dev/null")
local lua_files = lines_of("cd lua && find linqwebhooks -name '*.lua'")
local has_bin = read("bin/linqwh") ~= nil

-- lwh_* functions defined (non-static, at column 0) in each C file
local defined_in = {}
for _, f in ipairs(c_files) do
  for line in (read(f) .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^%a") and not line:match("^static") and not line:match(";%s*$") then
      local fn = line:match("[%s%*](lwh_[%w_]+)%s*%(")
      if fn then
        defined_in[fn] = f
      end
    end
  end
end

-- sources: the given files plus every file defining an lwh_* function they call
local function close_over(files)
  local set, out, i = {}, {}, 1
  for _, f in ipairs(files) do
    set[f] = true
    out[#out + 1] = f
  end
  while i <= #out do
    for fn in read(out[i]):gmatch("(lwh_[%w_]+)%s*%(") do
      local f = defined_in[fn]
      if f and not set[f] then
        set[f] = true
        out[#out + 1] = f
      end
    end
    i = i + 1
  end
  table.sort(out)
  return out
end

-- the LIBRARIES entries a file needs, through the project's own headers too
local function libs_of(path, seen, acc)
  seen = seen or {}
  acc = acc or {}
  if seen[path] then
    return acc
  end
  seen[path] = true
  local src = read(path) or ""
  local dir = path:match("^(.*)/") or "."
  for q, inc in src:gmatch('#%s*include%s*([<"])([^>"]+)[>"]') do
    for _, l in ipairs(LIBRARIES) do
      if inc:find(l.include) and not contains(acc, l) then
        acc[#acc + 1] = l
      end
    end
    if q == '"' then
      for _, d in ipairs({ dir, "csrc", "csrc/lua" }) do
        local h = (d .. "/" .. inc):gsub("[^/]+/%.%./", "")
        if read(h) then
          libs_of(h, seen, acc)
          break
        end
      end
    end
  end
  return acc
end

local function module(name, sources)
  local libs = {}
  for _, f in ipairs(sources) do
    for _, l in ipairs(libs_of(f)) do
      if not contains(libs, l) then
        libs[#libs + 1] = l
      end
    end
  end
  table.sort(libs, function(a, b) return a.lib < b.lib end)
  return { name = name, sources = sources, libs = libs }
end

-- split modules (main source defines luaopen_<name>) vs. sources built into the core
local split, claimed = {}, {}
for _, m in ipairs(C_MODULES) do
  local src = read(m.main)
  if m.name ~= "linqwebhooks.core" and src and src:find("luaopen_" .. m.name:gsub("%.", "_"), 1, true) then
    split[#split + 1] = m
    claimed[m.main] = true
  end
end
local core_sources = {}
for _, f in ipairs(c_files) do
  if not claimed[f] then
    core_sources[#core_sources + 1] = f
  end
end
local modules = { module("linqwebhooks.core", core_sources) }
local mains = {}
for _, m in ipairs(C_MODULES) do
  mains[m.main] = m.name
end
for _, m in ipairs(split) do
  local sources = close_over({ m.main })
  for _, f in ipairs(sources) do
    if f ~= m.main and mains[f] then
      io.stderr:write(("warning: %s needs a helper defined in %s (%s's main source): "
        .. "move the helper to a shared file\n"):format(m.name, f, mains[f]))
    end
  end
  modules[#modules + 1] = module(m.name, sources)
end

-- Lua dependencies that are used
local required = {}
do
  local files = {}
  for _, f in ipairs(lua_files) do
    files[#files + 1] = "lua/" .. f
  end
  if has_bin then
    files[#files + 1] = "bin/linqwh"
  end
  for _, f in ipairs(files) do
    for mod in read(f):gmatch("require%s*%(?%s*[\"']([%w_]+)[%.\"']") do
      required[mod] = true
    end
  end
end
local deps = { '"lua >= 5.1, < 5.5"' }
for _, d in ipairs(LUA_DEPS) do
  for _, mod in ipairs(d.modules) do
    if required[mod] then
      deps[#deps + 1] = string.format("%q", d.rock)
      break
    end
  end
end

local function generate(kind)
  local out = {}
  local function w(s, ...)
    out[#out + 1] = select("#", ...) > 0 and string.format(s, ...) or s
  end
  local version = kind == "scm" and "scm-1" or VERSION .. "-1"
  w("-- Generated by tools/gen_rockspec.lua (make rockspec): edit that script, not this file.")
  w("-- The URLs are placeholders until the project is published.")
  w('rockspec_format = "3.0"')
  w('package = "linqwebhooks"')
  w('version = "%s"', version)
  w("source = {")
  w('  url = "git+%s.git",', REPO)
  if kind == "scm" then
    w('  branch = "main",')
  else
    w('  tag = "v%s",', VERSION)
  end
  w("}")
  w([[description = {
  summary = "Linq Partner API v3 webhooks: verification, dispatch, subscriptions, emulator",
  detailed = [==[
Verifies Linq webhook deliveries (Standard Webhooks and legacy X-Webhook-* HMAC-SHA256
signatures, constant time, replay window, key rotation, streaming), dispatches verified
events to Lua handlers with de-duplication, manages webhook subscriptions over libcurl,
runs in OpenResty, and ships a local emulator of the Linq API.
]==],]])
  w('  homepage = "%s",', REPO)
  w('  issues_url = "%s/issues",', REPO)
  w([[  license = "MIT",
  labels = { "webhooks", "hmac", "openresty", "linq" },
}]])
  w("dependencies = {")
  for _, d in ipairs(deps) do
    w("  %s,", d)
  end
  w("}")
  w("external_dependencies = {")
  local ext_seen = {}
  for _, m in ipairs(modules) do
    for _, l in ipairs(m.libs) do
      if not ext_seen[l.ext] then
        ext_seen[l.ext] = true
        w("  %s = %s,", l.ext, l.spec)
      end
    end
  end
  w("}")
  w([[test_dependencies = {
  "busted >= 2.0",
}
test = {
  type = "busted",
}
build = {
  type = "builtin",
  modules = {]])
  for _, m in ipairs(modules) do
    w('    ["%s"] = {', m.name)
    w("      sources = {")
    for _, f in ipairs(m.sources) do
      w('        "%s",', f)
    end
    w("      },")
    w('      defines = { "_POSIX_C_SOURCE=200809L" },')
    local libs, incs, libdirs = {}, { '"csrc"', '"csrc/lua"' }, {}
    for _, l in ipairs(m.libs) do
      libs[#libs + 1] = string.format("%q", l.lib)
      for _, d in ipairs(l.incdirs) do
        incs[#incs + 1] = string.format("%q", d)
      end
      libdirs[#libdirs + 1] = string.format('"$(%s_LIBDIR)"', l.ext)
    end
    local function list(t)
      return #t == 0 and "{}" or "{ " .. table.concat(t, ", ") .. " }"
    end
    w("      libraries = %s,", list(libs))
    w("      incdirs = %s,", list(incs))
    w("      libdirs = %s,", list(libdirs))
    w("    },")
  end
  for _, f in ipairs(lua_files) do
    local mod = f:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    w('    ["%s"] = "lua/%s",', mod, f)
  end
  w("  },")
  if has_bin then
    w("  install = {")
    w('    bin = { linqwh = "bin/linqwh" },')
    w("  },")
  end
  w("}")
  return table.concat(out, "\n") .. "\n"
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  io.stderr:write("wrote " .. path .. "\n")
end

if arg[1] == "--stdout" then
  io.write(generate(arg[2] == "release" and "release" or "scm"))
else
  write("linqwebhooks-scm-1.rockspec", generate("scm"))
  write("linqwebhooks-" .. VERSION .. "-1.rockspec", generate("release"))
end
