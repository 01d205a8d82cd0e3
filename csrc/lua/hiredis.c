/*
 * hiredis.c -- luaopen_linqwebhooks_hiredis: the RESP layer of the Redis client,
 * on hiredis 0.14.1 (libhiredis). Its own shared object (linked with
 * -lhiredis), independent of linqwebhooks.core.
 *
 *   redis.connect(host, port, connect_timeout, timeout) -> conn | nil, err
 *   redis.connect_unix(path, connect_timeout, timeout)  -> conn | nil, err
 *       blocking hiredis connection; timeouts in seconds (0 = none)
 *   conn:command(arg1, ...) -> reply | nil, err, kind
 *       kind "redis": an error reply (the connection stays usable);
 *       kind "io": the connection failed (closed, timeout, EOF) and is now unusable
 *   conn:close()  (also __gc / __close; idempotent)
 *   redis.format(arg1, ...) -> the command as RESP bytes (redisFormatCommandArgv)
 *   redis.reader() -> reader (redisReader):
 *       reader:feed(bytes) -> true | nil, err
 *       reader:get() -> reply | nil (no complete reply yet) | nil, err, kind
 *           kind "redis": an error reply; "protocol": unparsable bytes (the
 *           reader is then unusable)
 *       reader:close()  (also __gc / __close; idempotent)
 *
 * Replies in Lua: bulk string -> string, integer -> integer, array -> table
 * (1..n), status -> { ok = "OK" }, nil bulk / nil array -> false; an error
 * nested in an array -> { err = "..." }.
 *
 * No Lua error may longjmp through hiredis: arguments are converted and
 * scratch arrays allocated (Lua-managed) before any hiredis call; the
 * hiredis-owned results (reply objects, formatted commands) are parked in
 * the userdata before anything is pushed, so a raising push leaks nothing
 * (the parked object is freed by the next call or by destroy).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include "lwh_lua.h"

#define LWH_REDIS_CONN "linqwebhooks.redis.connection"
#define LWH_REDIS_READER "linqwebhooks.redis.reader"
#define LWH_REDIS_BOX "linqwebhooks.redis.buffer"
#define LWH_REDIS_MAX_ARGS 1000000

typedef struct {
    redisContext *ctx;
    redisReply *parked; /* a reply being converted to Lua */
    char where[96];     /* host:port or path, for tostring */
} lwh_redis_conn;

typedef struct {
    redisReader *reader;
    redisReply *parked;
    int broken;
} lwh_redis_reader;

typedef struct {
    char *buf; /* a redisFormatCommandArgv result being pushed */
} lwh_redis_box;

static void *lwh_redis_new(lua_State *L, size_t size, const char *tname)
{
    void *p = lwh_newuserdata(L, size);
    memset(p, 0, size);
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
    return p;
}

/* ---- replies ---------------------------------------------------------- */

static void lwh_redis_push_reply(lua_State *L, const redisReply *r, int depth)
{
    size_t i;
    luaL_checkstack(L, 4, "redis reply nested too deeply");
    switch (r->type) {
    case REDIS_REPLY_STRING:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_STATUS:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "ok");
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, r->elements > 1000000 ? 1000000 : (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            lwh_redis_push_reply(L, r->element[i], depth + 1);
            lua_rawseti(L, -2, (int)(i + 1));
        }
        break;
    case REDIS_REPLY_NIL:
    default:
        lua_pushboolean(L, 0);
        break;
    }
}

/* Pushes a top-level reply: the value, or nil, err, "redis" for an error. */
static int lwh_redis_return_reply(lua_State *L, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, r->str, r->len);
        lua_pushliteral(L, "redis");
        return 3;
    }
    lwh_redis_push_reply(L, r, 0);
    return 1;
}

/* ---- arguments -------------------------------------------------------- */

/* Converts the arguments from index `first` on into argv/argvlen arrays
 * (Lua-managed scratch userdata pushed on the stack); raises on bad types
 * before any hiredis call. Returns argc. */
static int lwh_redis_args(lua_State *L, int first, const char ***argv, size_t **argvlen)
{
    int top = lua_gettop(L);
    int argc = top - first + 1;
    int i;
    if (argc < 1)
        luaL_error(L, "redis: a command needs at least one argument (its name)");
    if (argc > LWH_REDIS_MAX_ARGS)
        luaL_error(L, "redis: too many arguments (%d)", argc);
    *argv = (const char **)lua_newuserdata(L, sizeof(char *) * (size_t)argc);
    *argvlen = (size_t *)lua_newuserdata(L, sizeof(size_t) * (size_t)argc);
    for (i = 0; i < argc; i++) {
        int idx = first + i;
        int t = lua_type(L, idx);
        if (t != LUA_TSTRING && t != LUA_TNUMBER) {
            lua_pushfstring(L, "argument #%d must be a string or a number, got %s", i + 1,
                            lua_typename(L, t));
            luaL_argerror(L, idx, lua_tostring(L, -1));
        }
        (*argv)[i] = lua_tolstring(L, idx, &(*argvlen)[i]); /* numbers converted in place */
    }
    return argc;
}

/* ---- blocking connection ---------------------------------------------- */

static struct timeval lwh_redis_tv(lua_State *L, int idx, const char *name)
{
    struct timeval tv;
    lua_Number s = luaL_optnumber(L, idx, 0);
    if (!(s >= 0 && s < 2147483.0)) {
        lua_pushfstring(L, "%s must be a number of seconds >= 0", name);
        luaL_argerror(L, idx, lua_tostring(L, -1));
    }
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (lua_Number)tv.tv_sec) * 1e6);
    return tv;
}

static void lwh_redis_conn_free(lwh_redis_conn *c)
{
    if (c->parked) {
        freeReplyObject(c->parked);
        c->parked = NULL;
    }
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

static int lwh_redis_conn_destroy(lua_State *L)
{
    lwh_redis_conn *c = (lwh_redis_conn *)luaL_checkudata(L, 1, LWH_REDIS_CONN);
    lwh_redis_conn_free(c);
    return 0;
}

/* hiredis's messages, made clearer for the common cases. */
static const char *lwh_redis_errstr(const redisContext *ctx)
{
    if (ctx->err == REDIS_ERR_IO && (strstr(ctx->errstr, "temporarily unavailable")
                                     || strstr(ctx->errstr, "timed out")))
        return "timeout";
    if (ctx->err == REDIS_ERR_EOF)
        return "connection closed by the server";
    return ctx->errstr;
}

static int lwh_redis_connected(lua_State *L, lwh_redis_conn *c, redisContext *ctx,
                               struct timeval cmd_tv, const char *where)
{
    c->ctx = ctx;
    if (!ctx) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: cannot connect to %s: out of memory", where);
        return 2;
    }
    if (ctx->err) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: cannot connect to %s: %s", where, lwh_redis_errstr(ctx));
        lwh_redis_conn_free(c);
        return 2;
    }
    if ((cmd_tv.tv_sec || cmd_tv.tv_usec) && redisSetTimeout(ctx, cmd_tv) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: cannot set the timeout on %s: %s", where, strerror(errno));
        lwh_redis_conn_free(c);
        return 2;
    }
    return 1; /* the userdata, pushed by the caller */
}

static int lwh_redis_connect(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    struct timeval ctv = lwh_redis_tv(L, 3, "connect_timeout");
    struct timeval tv = lwh_redis_tv(L, 4, "timeout");
    lwh_redis_conn *c;
    redisContext *ctx;
    if (port < 1 || port > 65535)
        return luaL_argerror(L, 2, "port must be between 1 and 65535");
    c = (lwh_redis_conn *)lwh_redis_new(L, sizeof *c, LWH_REDIS_CONN);
    snprintf(c->where, sizeof c->where, "%.80s:%d", host, (int)port);
    if (ctv.tv_sec || ctv.tv_usec)
        ctx = redisConnectWithTimeout(host, (int)port, ctv);
    else
        ctx = redisConnect(host, (int)port);
    return lwh_redis_connected(L, c, ctx, tv, c->where);
}

static int lwh_redis_connect_unix(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct timeval ctv = lwh_redis_tv(L, 2, "connect_timeout");
    struct timeval tv = lwh_redis_tv(L, 3, "timeout");
    lwh_redis_conn *c = (lwh_redis_conn *)lwh_redis_new(L, sizeof *c, LWH_REDIS_CONN);
    redisContext *ctx;
    snprintf(c->where, sizeof c->where, "unix:%.80s", path);
    if (ctv.tv_sec || ctv.tv_usec)
        ctx = redisConnectUnixWithTimeout(path, ctv);
    else
        ctx = redisConnectUnix(path);
    return lwh_redis_connected(L, c, ctx, tv, c->where);
}

static int lwh_redis_command(lua_State *L)
{
    lwh_redis_conn *c = (lwh_redis_conn *)luaL_checkudata(L, 1, LWH_REDIS_CONN);
    const char **argv;
    size_t *argvlen;
    int argc = lwh_redis_args(L, 2, &argv, &argvlen);
    redisReply *r;
    int n;
    if (c->parked) {
        freeReplyObject(c->parked);
        c->parked = NULL;
    }
    if (!c->ctx) {
        lua_pushnil(L);
        lua_pushliteral(L, "redis: connection closed");
        lua_pushliteral(L, "io");
        return 3;
    }
    r = (redisReply *)redisCommandArgv(c->ctx, argc, argv, argvlen);
    if (!r) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: %s: %s", c->where, lwh_redis_errstr(c->ctx));
        lua_pushliteral(L, "io");
        /* after an I/O error the stream position is unknown: never reuse */
        redisFree(c->ctx);
        c->ctx = NULL;
        return 3;
    }
    c->parked = r;
    n = lwh_redis_return_reply(L, r);
    c->parked = NULL;
    freeReplyObject(r);
    return n;
}

static int lwh_redis_conn_tostring(lua_State *L)
{
    lwh_redis_conn *c = (lwh_redis_conn *)luaL_checkudata(L, 1, LWH_REDIS_CONN);
    lua_pushfstring(L, "linqwebhooks.redis.connection (%s%s)", c->where,
                    c->ctx ? "" : ", closed");
    return 1;
}

static int lwh_redis_conn_isopen(lua_State *L)
{
    lwh_redis_conn *c = (lwh_redis_conn *)luaL_checkudata(L, 1, LWH_REDIS_CONN);
    lua_pushboolean(L, c->ctx != NULL);
    return 1;
}

/* ---- formatter -------------------------------------------------------- */

static int lwh_redis_box_destroy(lua_State *L)
{
    lwh_redis_box *b = (lwh_redis_box *)luaL_checkudata(L, 1, LWH_REDIS_BOX);
    if (b->buf) {
        free(b->buf);
        b->buf = NULL;
    }
    return 0;
}

static int lwh_redis_format(lua_State *L)
{
    const char **argv;
    size_t *argvlen;
    int argc = lwh_redis_args(L, 1, &argv, &argvlen);
    lwh_redis_box *b = (lwh_redis_box *)lwh_redis_new(L, sizeof *b, LWH_REDIS_BOX);
    int len = redisFormatCommandArgv(&b->buf, argc, argv, argvlen);
    if (len < 0 || !b->buf)
        return luaL_error(L, "redis.format: out of memory");
    lua_pushlstring(L, b->buf, (size_t)len);
    free(b->buf);
    b->buf = NULL;
    return 1;
}

/* ---- reader ----------------------------------------------------------- */

static void lwh_redis_reader_free(lwh_redis_reader *rd)
{
    if (rd->parked) {
        freeReplyObject(rd->parked);
        rd->parked = NULL;
    }
    if (rd->reader) {
        redisReaderFree(rd->reader);
        rd->reader = NULL;
    }
}

static int lwh_redis_reader_destroy(lua_State *L)
{
    lwh_redis_reader_free((lwh_redis_reader *)luaL_checkudata(L, 1, LWH_REDIS_READER));
    return 0;
}

static int lwh_redis_reader_new(lua_State *L)
{
    lwh_redis_reader *rd = (lwh_redis_reader *)lwh_redis_new(L, sizeof *rd, LWH_REDIS_READER);
    rd->reader = redisReaderCreate();
    if (!rd->reader)
        return luaL_error(L, "redis.reader: out of memory");
    return 1;
}

static lwh_redis_reader *lwh_redis_reader_check(lua_State *L)
{
    lwh_redis_reader *rd = (lwh_redis_reader *)luaL_checkudata(L, 1, LWH_REDIS_READER);
    if (!rd->reader)
        luaL_error(L, "redis reader: closed");
    return rd;
}

static int lwh_redis_reader_feed(lua_State *L)
{
    lwh_redis_reader *rd = lwh_redis_reader_check(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    if (rd->broken || redisReaderFeed(rd->reader, s, len) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "redis reader: unusable after a protocol error");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_redis_reader_get(lua_State *L)
{
    lwh_redis_reader *rd = lwh_redis_reader_check(L);
    void *reply = NULL;
    int n;
    if (rd->parked) {
        freeReplyObject(rd->parked);
        rd->parked = NULL;
    }
    if (rd->broken || redisReaderGetReply(rd->reader, &reply) != REDIS_OK) {
        rd->broken = 1;
        lua_pushnil(L);
        lua_pushfstring(L, "redis: protocol error: %s", rd->reader->errstr);
        lua_pushliteral(L, "protocol");
        return 3;
    }
    if (!reply) {
        lua_pushnil(L);
        return 1;
    }
    rd->parked = (redisReply *)reply;
    n = lwh_redis_return_reply(L, rd->parked);
    freeReplyObject(rd->parked);
    rd->parked = NULL;
    return n;
}

/* ---- module ----------------------------------------------------------- */

LWH_EXPORT int luaopen_linqwebhooks_hiredis(lua_State *L)
{
    static const luaL_Reg conn_methods[] = {
        { "command", lwh_redis_command },
        { "is_open", lwh_redis_conn_isopen },
        { NULL, NULL }
    };
    static const luaL_Reg reader_methods[] = {
        { "feed", lwh_redis_reader_feed },
        { "get", lwh_redis_reader_get },
        { NULL, NULL }
    };
    static const luaL_Reg fns[] = {
        { "connect", lwh_redis_connect },
        { "connect_unix", lwh_redis_connect_unix },
        { "format", lwh_redis_format },
        { "reader", lwh_redis_reader_new },
        { NULL, NULL }
    };
    static const luaL_Reg conn_meta[] = {
        { "__tostring", lwh_redis_conn_tostring },
        { NULL, NULL }
    };
    lwh_new_class(L, LWH_REDIS_CONN, conn_methods, conn_meta, lwh_redis_conn_destroy);
    lwh_new_class(L, LWH_REDIS_READER, reader_methods, NULL, lwh_redis_reader_destroy);
    lwh_new_class(L, LWH_REDIS_BOX, NULL, NULL, lwh_redis_box_destroy);
    lua_newtable(L);
    lwh_setfuncs(L, fns, 0);
    lua_pushfstring(L, "hiredis %d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    lua_setfield(L, -2, "hiredis_version");
    return 1;
}
