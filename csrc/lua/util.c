/*
 * util.c -- helpers linked into every Lua module: the Lua 5.1 compat shims
 * and lwh_new_class.
 */
#include "lwh_lua.h"

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
