/*
 * scan.c -- the Lua C-API face of csrc/ffi.c's member scan, for interpreters
 * without the FFI (Lua 5.4). Not registered in the module table: loaded by
 * lua/linqwebhooks/scan.lua with package.loadlib from the core.so that
 * `require "linqwebhooks.core"` found, so adding it touched no existing file.
 *
 * linqwh_lua_json_members(text, first, last, name1, ..., nameN)
 *   -> status, then kind, a, b for each name
 * Scans text:sub(first, last) (which should be a JSON object; 1 <= first,
 * last <= #text) for the members name1..nameN (N <= 16) as
 * linqwh_json_members does. status: 1 valid JSON object, 0 not valid, -1
 * unsure. kind: 0 absent, 1 a string without escapes, 2 any other value; a
 * and b: the 1-based positions in text of the string's content (kind 1) or
 * of the value's text (kind 2), 0 and -1 when absent.
 */
#include <stdint.h>
#include "lwh_lua.h"

#define LWH_SCAN_MAX_NAMES 16

int linqwh_json_members(const char *text, size_t len, const char *const *names, int n,
                        int64_t *spans, int *kinds);

LWH_EXPORT int linqwh_lua_json_members(lua_State *L);

int linqwh_lua_json_members(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_Integer first = luaL_checkinteger(L, 2);
    lua_Integer last = luaL_checkinteger(L, 3);
    int n = lua_gettop(L) - 3, i, st;
    const char *names[LWH_SCAN_MAX_NAMES];
    int64_t spans[2 * LWH_SCAN_MAX_NAMES];
    int kinds[LWH_SCAN_MAX_NAMES];

    if (n < 1 || n > LWH_SCAN_MAX_NAMES)
        return luaL_error(L, "json_members: 1 to %d names", LWH_SCAN_MAX_NAMES);
    if (first < 1 || last < first - 1 || (size_t)last > len)
        return luaL_argerror(L, 2, "range out of the string");
    for (i = 0; i < n; i++)
        names[i] = luaL_checkstring(L, 4 + i);
    st = linqwh_json_members(text + (first - 1), (size_t)(last - first + 1), names, n, spans,
                             kinds);
    luaL_checkstack(L, 1 + 3 * n, "json_members");
    lua_pushinteger(L, st);
    for (i = 0; i < n; i++) {
        lua_Integer a = 0, b = -1;
        if (st == 1 && kinds[i] != 0) {
            a = (first - 1) + (lua_Integer)spans[2 * i] + 1;
            b = a + (lua_Integer)spans[2 * i + 1] - 1;
        }
        lua_pushinteger(L, st == 1 ? kinds[i] : 0);
        lua_pushinteger(L, a);
        lua_pushinteger(L, b);
    }
    return 1 + 3 * n;
}
