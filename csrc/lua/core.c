/*
 * core.c -- luaopen_linqwebhooks_core: builds the module table and calls the
 * per-concern initialisers. Also holds the 5.1 compat shims and small helpers.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include <openssl/opensslv.h>
#include <curl/curl.h>
#include <cJSON.h>
#include "lwh_lua.h"
#include "../linqwebhooks.h"

#if LUA_VERSION_NUM < 502
void lwh_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

void lwh_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#endif

void lwh_new_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metamethods, lua_CFunction destroy)
{
    if (!luaL_newmetatable(L, tname)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushstring(L, tname);
    lua_setfield(L, -2, "__name");
    if (metamethods)
        lwh_setfuncs(L, metamethods, 0);
    lua_pushcfunction(L, destroy);
    lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
    lua_pushcfunction(L, destroy);
    lua_setfield(L, -2, "__close");
#endif
    lua_newtable(L);
    if (methods)
        lwh_setfuncs(L, methods, 0);
    lua_pushcfunction(L, destroy);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

int lwh_l_now_ns(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec * 1e9 + (lua_Number)ts.tv_nsec);
    return 1;
}

LWH_EXPORT int luaopen_linqwebhooks_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushstring(L, LINQWH_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, OPENSSL_VERSION_TEXT);
    lua_setfield(L, -2, "openssl_version");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    lua_pushstring(L, cJSON_Version());
    lua_setfield(L, -2, "cjson_version");
    lua_pushcfunction(L, lwh_l_now_ns);
    lua_setfield(L, -2, "now_ns");
    /* JSON null sentinel (same convention as lua-cjson's cjson.null) */
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lwh_verify_open(L);
    lwh_json_open(L);
    lwh_http_open(L);
    lwh_process_open(L);
    return 1;
}
