/*
 * lwh_lua.h -- internal header shared by the Lua bindings (the files in csrc/lua).
 * Written against the Lua 5.4 API; prefixed shims cover Lua 5.1 / LuaJIT 2.1.
 * Never defines an unprefixed luaL_* symbol (LuaJIT exports several).
 *
 * Each C module (linqwebhooks.core, .http, .process, ...) is its own shared
 * object built from its own files plus util.c; only its luaopen_* function
 * is exported (LWH_EXPORT), everything else is static or LWH_HIDDEN.
 */
#ifndef LWH_LUA_H
#define LWH_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>
#include "lwh_common.h"

#if LUA_VERSION_NUM < 502
LWH_HIDDEN void lwh_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
LWH_HIDDEN void lwh_setmetatable(lua_State *L, const char *tname);
#define lwh_rawlen(L, i) lua_objlen((L), (i))
#define lwh_newuserdata(L, sz) lua_newuserdata((L), (sz))
#else
#define lwh_setfuncs luaL_setfuncs
#define lwh_setmetatable luaL_setmetatable
#define lwh_rawlen(L, i) lua_rawlen((L), (i))
#if LUA_VERSION_NUM >= 504
#define lwh_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define lwh_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif
#endif

/* util.c: creates (or fetches) the metatable tname with methods in its
 * __index, metamethods set directly; leaves nothing on the stack. destroy is
 * bound to __gc, __close (5.4) and the "close" method. */
LWH_HIDDEN void lwh_new_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                              const luaL_Reg *metamethods, lua_CFunction destroy);

/* linqwebhooks.core's per-concern initialisers (verify.c, json.c): each adds
 * its functions to the table at -1. */
LWH_HIDDEN void lwh_verify_open(lua_State *L);
LWH_HIDDEN void lwh_json_open(lua_State *L);
LWH_HIDDEN void lwh_fileinfo_open(lua_State *L);

/* The entry points, one per shared object. */
LWH_EXPORT int luaopen_linqwebhooks_core(lua_State *L);
LWH_EXPORT int luaopen_linqwebhooks_http(lua_State *L);
LWH_EXPORT int luaopen_linqwebhooks_process(lua_State *L);
LWH_EXPORT int luaopen_linqwebhooks_hiredis(lua_State *L);   /* hiredis.c */
LWH_EXPORT int luaopen_linqwebhooks_sqlite(lua_State *L);  /* sqlite.c (libsqlite3) */

#endif
