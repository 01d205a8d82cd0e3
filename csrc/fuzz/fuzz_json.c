/* libFuzzer harness for core.json_decode/json_encode: decode must never crash
 * or raise; whatever decodes must encode and decode back to an equal value;
 * core.parts_text of an array that decodes gives the text parts of the decoded
 * value (event:text()) whenever it does not decline. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_linqwebhooks_core(lua_State *L);

static const char *CHECK =
    "local core = ...\n"
    "local function same(a, b, depth)\n"
    "  if a == b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return false end\n"
    "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(s)\n"
    "  local v, err = core.json_decode(s)\n"
    "  if v == nil then assert(type(err) == 'string' and err:find('^invalid JSON'), err) return end\n"
    "  local e, err2 = core.json_encode(v)\n"
    "  if e == nil then assert(err2:find('infinite'), err2) return end\n"
    "  local v2, err3 = core.json_decode(e)\n"
    "  assert(err3 == nil, err3)\n"
    "  assert(same(v, v2), 'round-trip changed the value: ' .. e)\n"
    "  assert(core.json_encode(v2))\n"
    /* event:text()'s C join agrees with the decoded array whenever it answers */
    "  if type(v) == 'table' and s:sub(1, 1) == '[' then\n"
    "    local t = core.parts_text(s, 1, #s)\n"
    "    if t ~= nil then\n"
    "      local out = {}\n"
    "      for i = 1, #v do\n"
    "        local p = v[i]\n"
    "        if type(p) == 'table' and p.type == 'text' and type(p.value) == 'string' then\n"
    "          out[#out + 1] = p.value\n"
    "        end\n"
    "      end\n"
    "      assert(t == table.concat(out, '\\n'), 'parts_text differs from the decode: ' .. s)\n"
    "    end\n"
    "  end\n"
    "end\n";

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
        if (luaL_loadstring(L, CHECK) != 0) abort();
        luaopen_linqwebhooks_core(L);
        if (lua_pcall(L, 1, 1, 0) != 0) abort();
        lua_setglobal(L, "check");
    }
    lua_getglobal(L, "check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "check failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
    return 0;
}
