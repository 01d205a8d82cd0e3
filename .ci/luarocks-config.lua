-- LuaRocks configuration for .ci/run (LUAROCKS_CONFIG): the Lua dependencies
-- declared in the rockspecs are installed from Debian packages (lua-socket,
-- lua-sec, lua-cjson, lua-argparse, lua-busted), which LuaRocks cannot see;
-- this tells it they are provided, so `luarocks make` works offline.
rocks_provided = {
  luasocket = "3.1.0-1",
  luasec = "1.2.0-1",
  ["lua-cjson"] = "2.1.0-1",
  argparse = "0.7.1-1",
  luafilesystem = "1.8.0-1",
  busted = "2.1.1-1",
}
