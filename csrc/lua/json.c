/* json.c -- Lua <-> JSON on cJSON (to be filled in by the JSON layer work). */
#include "lwh_lua.h"

void lwh_json_open(lua_State *L)
{
    (void)L;
}
