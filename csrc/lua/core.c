/*
 * core.c -- luaopen_linqwebhooks_core: the runtime module (verification and
 * JSON; OpenSSL libcrypto and cJSON only). It builds the module table and
 * calls the per-concern initialisers; nothing else lives here.
 */
#include <openssl/opensslv.h>
#include <cJSON.h>
#include "lwh_lua.h"
#include "linqwebhooks.h"

int luaopen_linqwebhooks_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushstring(L, LINQWH_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, OPENSSL_VERSION_TEXT);
    lua_setfield(L, -2, "openssl_version");
    lua_pushstring(L, cJSON_Version());
    lua_setfield(L, -2, "cjson_version");
    /* JSON null sentinel (same convention as lua-cjson's cjson.null) */
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lwh_verify_open(L);
    lwh_json_open(L);
    lwh_fileinfo_open(L);
    return 1;
}
