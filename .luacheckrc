-- luacheck configuration (`make lint`). Every Lua file runs on Lua 5.4 and on
-- LuaJIT 2.1 inside OpenResty: the base is ngx_lua (LuaJIT + the ngx API),
-- and the Lua 5.4 names the code looks up behind a version check are read-only
-- globals. Specs add busted's globals.
std = "ngx_lua"
max_line_length = 120
max_code_line_length = 120
max_comment_line_length = 140
codes = true

read_globals = {
  table = { fields = { "unpack", "move", "pack" } },
  math = { fields = { "tointeger", "type", "ult", "maxinteger", "mininteger" } },
  string = { fields = { "pack", "unpack", "packsize" } },
  utf8 = { other_fields = true },
  "warn",
}

exclude_files = { "build/", "types/", ".luarocks/", "lua_modules/" }

-- specs quote long expected messages and URLs
files["spec/"] = { std = "+busted", max_line_length = 140, max_code_line_length = 140 }
files[".busted"] = { std = "max" }
-- wrk scripts: wrk calls these globals and sets thread variables as globals
files["bench/nginx/"] = {
  std = "luajit",
  globals = { "setup", "init", "request", "response", "done" },
  read_globals = { "wrk", "tid" },
}
