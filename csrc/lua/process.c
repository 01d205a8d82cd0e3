/* process.c -- small process helpers for the emulator and the test receivers:
 * a SIGTERM/SIGINT flag (sigaction, no Lua code runs in the handler), the
 * process id, sending a signal to a child and waiting (bounded) for it.
 *
 *   core.signal_watch()        install the handlers (idempotent) -> true
 *   core.signal_pending()      -> "SIGTERM" | "SIGINT" | nil (the flag is not cleared)
 *   core.signal_unwatch()      restore the handlers signal_watch replaced and clear
 *                              the flag (idempotent) -> true
 *   core.getpid()              -> integer
 *   core.kill(pid, "TERM"|"KILL"|"INT"|0) -> true | nil, message
 *                                 (0 = probe: true while the process exists)
 *   core.waitpid(pid)          -> exit code (or 128 + signal) | nil ("running"/message)
 *                                 non-blocking (WNOHANG); only for our own children
 *   core.chmod(path, mode)     -> true | nil, message (e.g. 384 = 0600 for files
 *                                 holding signing secrets)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lwh_lua.h"

static volatile sig_atomic_t lwh_signal_seen = 0;
static int lwh_signal_installed = 0;
static struct sigaction lwh_signal_old_term, lwh_signal_old_int;

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
        if (sigaction(SIGTERM, &sa, &lwh_signal_old_term) != 0)
            return luaL_error(L, "signal_watch: sigaction failed: %s", strerror(errno));
        if (sigaction(SIGINT, &sa, &lwh_signal_old_int) != 0) {
            int e = errno;
            sigaction(SIGTERM, &lwh_signal_old_term, NULL);
            return luaL_error(L, "signal_watch: sigaction failed: %s", strerror(e));
        }
        lwh_signal_installed = 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_l_signal_unwatch(lua_State *L)
{
    if (lwh_signal_installed) {
        sigaction(SIGTERM, &lwh_signal_old_term, NULL);
        sigaction(SIGINT, &lwh_signal_old_int, NULL);
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

static int lwh_l_waitpid(lua_State *L)
{
    pid_t pid = lwh_checkpid(L, 1);
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "running");
        return 2;
    }
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    if (WIFEXITED(status))
        lua_pushinteger(L, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        lua_pushinteger(L, 128 + WTERMSIG(status));
    else
        lua_pushinteger(L, -1);
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

void lwh_process_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "signal_watch", lwh_l_signal_watch },
        { "signal_pending", lwh_l_signal_pending },
        { "signal_unwatch", lwh_l_signal_unwatch },
        { "getpid", lwh_l_getpid },
        { "kill", lwh_l_kill },
        { "waitpid", lwh_l_waitpid },
        { "chmod", lwh_l_chmod },
        { NULL, NULL }
    };
    lwh_setfuncs(L, fns, 0);
}
