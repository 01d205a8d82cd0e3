/*
 * fileinfo.c -- core.file_info(path): the attributes the secrets file's
 * change and permission checks need, from one stat(2) call. Part of the
 * runtime module (nginx workers reload the secrets file with it).
 *
 *   core.file_info(path) -> { type = "file"|"directory"|"other", mode = n
 *                             (permission bits, e.g. 384 = 0600), size = n,
 *                             mtime = seconds (fractional), ino = n }
 *                         | nil, message
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "lwh_lua.h"

static int lwh_l_file_info(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        return 2;
    }
    lua_createtable(L, 0, 5);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, (lua_Number)st.st_ino);
    lua_setfield(L, -2, "ino");
    return 1;
}

void lwh_fileinfo_open(lua_State *L)
{
    lua_pushcfunction(L, lwh_l_file_info);
    lua_setfield(L, -2, "file_info");
}
