/* process.c -- linqwebhooks.process: small process primitives for the
 * plain-Lua receiver, the emulator, the specs and the benchmarks (tooling:
 * nginx workers never load it). A SIGTERM/SIGINT flag (sigaction, no Lua
 * code runs in the handler), the process id, sending a signal, chmod and a
 * monotonic clock.
 *
 *   local process = require "linqwebhooks.process"
 *   process.signal_watch()     install the handlers (idempotent) -> true
 *   process.signal_pending()   -> "SIGTERM" | "SIGINT" | nil (the flag is not cleared)
 *   process.signal_unwatch()   restore the previous handlers, clear the flag -> true
 *   process.getpid()           -> integer
 *   process.kill(pid, "TERM"|"KILL"|"INT"|0) -> true | nil, message
 *                                 (0 = probe: true while the process exists)
 *   process.chmod(path, mode)  -> true | nil, message (e.g. 384 = 0600 for files
 *                                 holding signing secrets)
 *   process.now_ns()           -> monotonic clock reading in nanoseconds (a number)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include "lwh_lua.h"

static volatile sig_atomic_t lwh_signal_seen = 0;
static int lwh_signal_installed = 0;
static struct sigaction lwh_prev_term, lwh_prev_int;

static void lwh_on_signal(int sig)
{
    lwh_signal_seen = sig;
}

static int lwh_l_signal_watch(lua_State *L)
{
    if (!lwh_signal_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = lwh_on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART; /* blocking I/O resumes; select() still returns early */
        if (sigaction(SIGTERM, &sa, &lwh_prev_term) != 0)
            return luaL_error(L, "signal_watch: sigaction failed: %s", strerror(errno));
        if (sigaction(SIGINT, &sa, &lwh_prev_int) != 0) {
            int e = errno;
            sigaction(SIGTERM, &lwh_prev_term, NULL);
            return luaL_error(L, "signal_watch: sigaction failed: %s", strerror(e));
        }
        lwh_signal_installed = 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* signal_unwatch(): puts back the handlers signal_watch replaced and clears
 * the flag (idempotent), so a later SIGTERM acts as it did before. */
static int lwh_l_signal_unwatch(lua_State *L)
{
    if (lwh_signal_installed) {
        sigaction(SIGTERM, &lwh_prev_term, NULL);
        sigaction(SIGINT, &lwh_prev_int, NULL);
        lwh_signal_installed = 0;
    }
    lwh_signal_seen = 0;
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_l_signal_pending(lua_State *L)
{
    int sig = (int)lwh_signal_seen;
    if (sig == SIGTERM)
        lua_pushliteral(L, "SIGTERM");
    else if (sig == SIGINT)
        lua_pushliteral(L, "SIGINT");
    else
        lua_pushnil(L);
    return 1;
}

static int lwh_l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static pid_t lwh_checkpid(lua_State *L, int idx)
{
    lua_Integer pid = luaL_checkinteger(L, idx);
    if (pid <= 1 || pid > 0x7fffffff)
        luaL_argerror(L, idx, "pid must be a process id greater than 1");
    return (pid_t)pid;
}

static int lwh_l_kill(lua_State *L)
{
    static const char *const names[] = { "TERM", "KILL", "INT", NULL };
    static const int sigs[] = { SIGTERM, SIGKILL, SIGINT };
    pid_t pid = lwh_checkpid(L, 1);
    int sig = 0;
    if (lua_type(L, 2) != LUA_TNUMBER || lua_tointeger(L, 2) != 0)
        sig = sigs[luaL_checkoption(L, 2, NULL, names)];
    if (kill(pid, sig) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_l_chmod(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer mode = luaL_checkinteger(L, 2);
    if (mode < 0 || mode > 07777)
        return luaL_argerror(L, 2, "mode must be between 0 and 4095 (07777)");
    if (chmod(path, (mode_t)mode) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_l_now_ns(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec * 1e9 + (lua_Number)ts.tv_nsec);
    return 1;
}

int luaopen_linqwebhooks_process(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "signal_watch", lwh_l_signal_watch },
        { "signal_pending", lwh_l_signal_pending },
        { "signal_unwatch", lwh_l_signal_unwatch },
        { "getpid", lwh_l_getpid },
        { "kill", lwh_l_kill },
        { "chmod", lwh_l_chmod },
        { "now_ns", lwh_l_now_ns },
        { NULL, NULL }
    };
    lua_newtable(L);
    lwh_setfuncs(L, fns, 0);
    return 1;
}
