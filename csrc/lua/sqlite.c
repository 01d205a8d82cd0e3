/* sqlite.c -- linqwebhooks.sqlite: a minimal libsqlite3 binding for the
 * durable inbox (lua/linqwebhooks/inbox/sqlite.lua). Its own module (.so,
 * -lsqlite3) built from this file plus util.c (lwh_new_class); it shares no
 * symbol with linqwebhooks.core.
 *
 *   sqlite.open(path [, busy_timeout_ms]) -> db | nil, err
 *   db:exec(sql)                  -> true | nil, err   (several statements, no parameters)
 *   db:query(sql, ...)            -> rows | nil, err   (one statement; rows = array of
 *                                    { column = value } tables; NULL columns are absent)
 *   db:prepare(sql)               -> stmt | nil, err
 *   stmt:query(...)               -> rows | nil, err   (binds, steps to the end, resets)
 *   db:changes(), db:last_insert_rowid(), db:busy_timeout(ms)
 *   db:close() / stmt:close()     idempotent, also __gc and __close; closing the db
 *                                    finalizes its statements first.
 * Parameters: nil, booleans (0/1), numbers (integers stay integers), strings
 * (bound as text, any bytes). Argument checks happen before any sqlite call;
 * sqlite never calls back into Lua (no user functions), so no Lua error
 * unwinds through libsqlite3.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sqlite3.h>
#include "lwh_lua.h"

#define LWH_SQL_DB "linqwebhooks.sqlite.db"
#define LWH_SQL_STMT "linqwebhooks.sqlite.stmt"
#define LWH_SQL_MAXPARAMS 64

typedef struct lwh_sql_stmt lwh_sql_stmt;

typedef struct {
    sqlite3 *h;
    lwh_sql_stmt *stmts; /* open statements, finalized before the close */
} lwh_sql_db;

struct lwh_sql_stmt {
    sqlite3_stmt *st;
    lwh_sql_db *db;
    lwh_sql_stmt *prev, *next;
};

#if LUA_VERSION_NUM < 502
#define lwh_sql_newud(L, sz) lua_newuserdata((L), (sz))
#define lwh_sql_pushint(L, v) lua_pushnumber((L), (lua_Number)(v))
#else
#if LUA_VERSION_NUM >= 504
#define lwh_sql_newud(L, sz) lua_newuserdatauv((L), (sz), 0)
#else
#define lwh_sql_newud(L, sz) lua_newuserdata((L), (sz))
#endif
#define lwh_sql_pushint(L, v) lua_pushinteger((L), (lua_Integer)(v))
#endif

static int lwh_sql_fail(lua_State *L, const char *what, const char *msg)
{
    lua_pushnil(L);
    lua_pushfstring(L, "sqlite %s: %s", what, msg ? msg : "unknown error");
    return 2;
}

static lwh_sql_db *lwh_sql_checkdb(lua_State *L, const char *fn)
{
    lwh_sql_db *db = (lwh_sql_db *)luaL_checkudata(L, 1, LWH_SQL_DB);
    if (!db->h)
        luaL_error(L, "db:%s: the database is closed", fn);
    return db;
}

static lwh_sql_stmt *lwh_sql_checkstmt(lua_State *L, const char *fn)
{
    lwh_sql_stmt *s = (lwh_sql_stmt *)luaL_checkudata(L, 1, LWH_SQL_STMT);
    if (!s->st)
        luaL_error(L, "stmt:%s: the statement is finalized (or its database closed)", fn);
    return s;
}

static void lwh_sql_stmt_destroy_raw(lwh_sql_stmt *s)
{
    if (!s->st)
        return;
    sqlite3_finalize(s->st);
    s->st = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else if (s->db)
        s->db->stmts = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->db = NULL;
}

static int lwh_sql_stmt_destroy(lua_State *L)
{
    lwh_sql_stmt *s = (lwh_sql_stmt *)luaL_checkudata(L, 1, LWH_SQL_STMT);
    lwh_sql_stmt_destroy_raw(s);
    return 0;
}

static int lwh_sql_db_destroy(lua_State *L)
{
    lwh_sql_db *db = (lwh_sql_db *)luaL_checkudata(L, 1, LWH_SQL_DB);
    while (db->stmts)
        lwh_sql_stmt_destroy_raw(db->stmts);
    if (db->h) {
        sqlite3_close_v2(db->h);
        db->h = NULL;
    }
    return 0;
}

/* Checks the parameters at first..top before anything is bound. */
static int lwh_sql_checkparams(lua_State *L, int first)
{
    int top = lua_gettop(L), i;
    if (top - first + 1 > LWH_SQL_MAXPARAMS)
        return luaL_error(L, "too many parameters (at most %d)", LWH_SQL_MAXPARAMS);
    for (i = first; i <= top; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER && t != LUA_TSTRING)
            return luaL_argerror(L, i, "parameters must be nil, boolean, number or string");
    }
    return top - first + 1;
}

static int lwh_sql_bind(lua_State *L, sqlite3_stmt *st, int first, int n)
{
    int i, rc = SQLITE_OK;
    if (n != sqlite3_bind_parameter_count(st)) {
        lua_pushfstring(L, "expected %d parameter(s), got %d", sqlite3_bind_parameter_count(st), n);
        return SQLITE_MISUSE;
    }
    for (i = 1; i <= n && rc == SQLITE_OK; i++) {
        int idx = first + i - 1;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            rc = sqlite3_bind_null(st, i);
            break;
        case LUA_TBOOLEAN:
            rc = sqlite3_bind_int(st, i, lua_toboolean(L, idx));
            break;
        case LUA_TNUMBER: {
            lua_Number d = lua_tonumber(L, idx);
#if LUA_VERSION_NUM >= 503
            if (lua_isinteger(L, idx)) {
                rc = sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, idx));
                break;
            }
#endif
            if (d == (lua_Number)(sqlite3_int64)d && d > -9007199254740992.0 && d < 9007199254740992.0)
                rc = sqlite3_bind_int64(st, i, (sqlite3_int64)d);
            else
                rc = sqlite3_bind_double(st, i, (double)d);
            break;
        }
        default: {
            size_t len;
            const char *s = lua_tolstring(L, idx, &len);
            rc = sqlite3_bind_text64(st, i, s, (sqlite3_uint64)len, SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        }
        }
    }
    if (rc != SQLITE_OK)
        lua_pushstring(L, sqlite3_errstr(rc));
    return rc;
}

/* Steps st to the end, building the rows table (left on the stack).
 * Returns the final sqlite code; on error the message is pushed instead. */
static int lwh_sql_collect(lua_State *L, sqlite3 *h, sqlite3_stmt *st)
{
    int rc, nrow = 0, ncol = sqlite3_column_count(st);
    lua_newtable(L);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int c;
        lua_createtable(L, 0, ncol);
        for (c = 0; c < ncol; c++) {
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                lwh_sql_pushint(L, sqlite3_column_int64(st, c));
                break;
            case SQLITE_FLOAT:
                lua_pushnumber(L, (lua_Number)sqlite3_column_double(st, c));
                break;
            case SQLITE_NULL:
                continue;
            default: {
                const void *p = sqlite3_column_blob(st, c);
                int len = sqlite3_column_bytes(st, c);
                lua_pushlstring(L, p ? (const char *)p : "", (size_t)len);
                break;
            }
            }
            lua_setfield(L, -2, sqlite3_column_name(st, c));
        }
        lua_rawseti(L, -2, ++nrow);
    }
    if (rc != SQLITE_DONE) {
        lua_pop(L, 1);
        lua_pushstring(L, sqlite3_errmsg(h));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int lwh_sql_run(lua_State *L, sqlite3 *h, sqlite3_stmt *st, int first, int n)
{
    int rc;
    sqlite3_reset(st);
    rc = lwh_sql_bind(L, st, first, n);
    if (rc != SQLITE_OK) {
        sqlite3_clear_bindings(st);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    rc = lwh_sql_collect(L, h, st);
    if (rc != SQLITE_DONE) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int lwh_sql_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer ms = (lua_Integer)luaL_optnumber(L, 2, 5000);
    lwh_sql_db *db;
    sqlite3 *h = NULL;
    int rc;
    if (ms < 0 || ms > 3600000)
        return luaL_argerror(L, 2, "busy_timeout must be 0..3600000 milliseconds");
    db = (lwh_sql_db *)lwh_sql_newud(L, sizeof *db);
    db->h = NULL;
    db->stmts = NULL;
    luaL_getmetatable(L, LWH_SQL_DB);
    lua_setmetatable(L, -2);
    rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
        lua_pushnil(L);
        lua_pushfstring(L, "sqlite open: %s", msg);
        sqlite3_close_v2(h);
        return 2;
    }
    sqlite3_busy_timeout(h, (int)ms);
    sqlite3_extended_result_codes(h, 0);
    db->h = h;
    return 1;
}

static int lwh_sql_exec(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "exec");
    const char *sql = luaL_checkstring(L, 2);
    char *msg = NULL;
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        lua_pushnil(L);
        lua_pushstring(L, msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_sql_prepare_raw(lua_State *L, sqlite3 *h, const char *sql, size_t len, sqlite3_stmt **st)
{
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(h, sql, (int)len, st, &tail);
    if (rc != SQLITE_OK)
        return lwh_sql_fail(L, "prepare", sqlite3_errmsg(h));
    if (!*st)
        return lwh_sql_fail(L, "prepare", "no statement");
    while (tail && *tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(*st);
        *st = NULL;
        return lwh_sql_fail(L, "prepare", "one statement expected (use db:exec for several)");
    }
    return 0;
}

static int lwh_sql_query(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "query");
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    int n = lwh_sql_checkparams(L, 3), r;
    sqlite3_stmt *st = NULL;
    if (len > 1000000)
        return luaL_argerror(L, 2, "sql too long");
    r = lwh_sql_prepare_raw(L, db->h, sql, len, &st);
    if (r)
        return r;
    r = lwh_sql_run(L, db->h, st, 3, n);
    sqlite3_finalize(st);
    return r;
}

static int lwh_sql_prepare(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "prepare");
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    sqlite3_stmt *st = NULL;
    lwh_sql_stmt *s;
    int r;
    if (len > 1000000)
        return luaL_argerror(L, 2, "sql too long");
    /* allocate the userdata first: no Lua allocation failure after prepare */
    s = (lwh_sql_stmt *)lwh_sql_newud(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, LWH_SQL_STMT);
    lua_setmetatable(L, -2);
    r = lwh_sql_prepare_raw(L, db->h, sql, len, &st);
    if (r)
        return r;
    s->st = st;
    s->db = db;
    s->next = db->stmts;
    if (db->stmts)
        db->stmts->prev = s;
    db->stmts = s;
    return 1;
}

static int lwh_sql_stmt_query(lua_State *L)
{
    lwh_sql_stmt *s = lwh_sql_checkstmt(L, "query");
    int n = lwh_sql_checkparams(L, 2);
    return lwh_sql_run(L, s->db->h, s->st, 2, n);
}

static int lwh_sql_changes(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "changes");
    lwh_sql_pushint(L, sqlite3_changes(db->h));
    return 1;
}

static int lwh_sql_last_rowid(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "last_insert_rowid");
    lwh_sql_pushint(L, sqlite3_last_insert_rowid(db->h));
    return 1;
}

static int lwh_sql_busy(lua_State *L)
{
    lwh_sql_db *db = lwh_sql_checkdb(L, "busy_timeout");
    lua_Integer ms = (lua_Integer)luaL_checknumber(L, 2);
    if (ms < 0 || ms > 3600000)
        return luaL_argerror(L, 2, "busy_timeout must be 0..3600000 milliseconds");
    sqlite3_busy_timeout(db->h, (int)ms);
    lua_pushboolean(L, 1);
    return 1;
}

static int lwh_sql_db_tostring(lua_State *L)
{
    lwh_sql_db *db = (lwh_sql_db *)luaL_checkudata(L, 1, LWH_SQL_DB);
    lua_pushstring(L, db->h ? "linqwebhooks.sqlite.db" : "linqwebhooks.sqlite.db (closed)");
    return 1;
}

static int lwh_sql_stmt_tostring(lua_State *L)
{
    lwh_sql_stmt *s = (lwh_sql_stmt *)luaL_checkudata(L, 1, LWH_SQL_STMT);
    lua_pushstring(L, s->st ? "linqwebhooks.sqlite.stmt" : "linqwebhooks.sqlite.stmt (finalized)");
    return 1;
}

LWH_EXPORT int luaopen_linqwebhooks_sqlite(lua_State *L)
{
    static const luaL_Reg db_methods[] = {
        { "exec", lwh_sql_exec },
        { "query", lwh_sql_query },
        { "prepare", lwh_sql_prepare },
        { "changes", lwh_sql_changes },
        { "last_insert_rowid", lwh_sql_last_rowid },
        { "busy_timeout", lwh_sql_busy },
        { NULL, NULL }
    };
    static const luaL_Reg stmt_methods[] = {
        { "query", lwh_sql_stmt_query },
        { NULL, NULL }
    };
    static const luaL_Reg fns[] = {
        { "open", lwh_sql_open },
        { NULL, NULL }
    };
    static const luaL_Reg db_meta[] = {
        { "__tostring", lwh_sql_db_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg stmt_meta[] = {
        { "__tostring", lwh_sql_stmt_tostring },
        { NULL, NULL }
    };
    lwh_new_class(L, LWH_SQL_DB, db_methods, db_meta, lwh_sql_db_destroy);
    lwh_new_class(L, LWH_SQL_STMT, stmt_methods, stmt_meta, lwh_sql_stmt_destroy);
    lua_newtable(L);
    lwh_setfuncs(L, fns, 0);
    lua_pushstring(L, sqlite3_libversion());
    lua_setfield(L, -2, "sqlite_version");
    return 1;
}
