/*
 * verify.c -- Lua binding of the keyring, verification, streaming and
 * signing. Lua values are read first, the core is called with plain C data,
 * results are pushed afterwards: no Lua error can unwind through OpenSSL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "lwh_lua.h"
#include "linqwebhooks.h"

#define LWH_KEYRING "linqwebhooks.Keyring"
#define LWH_STREAM "linqwebhooks.VerifyStream"

typedef struct { linqwh_keyring *kr; } lwh_lkeyring;
typedef struct {
    linqwh_verify_ctx *ctx;
    char id[LINQWH_MAX_ID_LEN];
    size_t id_len;
    int has_id;
} lwh_lstream;

static const char *const lwh_scheme_names[] = { "auto", "standard", "legacy", NULL };

/*
 * The methods verify_file and stream (and, bound per verifier, verify: see
 * lwh_l_bind_verify) are closures with upvalues:
 * 1 = the keyring metatable, 2.. = interned result keys and values, so the
 * hot path does no string lookups by C name.
 */
#define LWH_UV_MT 1
#define LWH_UV_SCHEME 2
#define LWH_UV_KEY_INDEX 3
#define LWH_UV_TIMESTAMP 4
#define LWH_UV_ID 5
#define LWH_UV_STANDARD 6
#define LWH_UV_LEGACY 7
#define LWH_NUPVALUES 7

/* Pushes the six strings of upvalues 2..7 (LWH_UV_SCHEME .. LWH_UV_LEGACY). */
static void lwh_push_result_strings(lua_State *L)
{
    lua_pushliteral(L, "scheme");
    lua_pushliteral(L, "key_index");
    lua_pushliteral(L, "timestamp");
    lua_pushliteral(L, "id");
    lua_pushliteral(L, "standard");
    lua_pushliteral(L, "legacy");
}

static linqwh_keyring *lwh_fast_keyring(lua_State *L)
{
    lwh_lkeyring *k = lua_touserdata(L, 1);
    int has_mt = k != NULL && lua_getmetatable(L, 1);
    int ok = has_mt && lua_rawequal(L, -1, lua_upvalueindex(LWH_UV_MT));
    if (has_mt)
        lua_pop(L, 1);
    if (!ok)
        luaL_argerror(L, 1, "linqwebhooks.Keyring expected");
    if (!k->kr)
        luaL_argerror(L, 1, "keyring is closed");
    return k->kr;
}

static linqwh_keyring *lwh_check_keyring(lua_State *L, int idx)
{
    lwh_lkeyring *k = luaL_checkudata(L, idx, LWH_KEYRING);
    if (!k->kr)
        luaL_argerror(L, idx, "keyring is closed");
    return k->kr;
}

/* keyring(secrets) -> keyring | nil, message */
static int lwh_l_keyring(lua_State *L)
{
    const char *secrets[LINQWH_MAX_KEYS];
    size_t lens[LINQWH_MAX_KEYS];
    char err[160];
    size_t n, i;
    lwh_lkeyring *k;
    linqwh_status st;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = lwh_rawlen(L, 1);
    if (n == 0 || n > LINQWH_MAX_KEYS) {
        lua_pushnil(L);
        lua_pushfstring(L, "need 1 to %d secrets", LINQWH_MAX_KEYS);
        return 2;
    }
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pushnil(L);
            lua_pushfstring(L, "secret #%d: must be a string", (int)i + 1);
            return 2;
        }
        secrets[i] = lua_tolstring(L, -1, &lens[i]);
        lua_pop(L, 1); /* still referenced by the table at 1 */
    }
    k = lwh_newuserdata(L, sizeof *k);
    k->kr = NULL;
    lwh_setmetatable(L, LWH_KEYRING);
    st = linqwh_keyring_new(&k->kr, secrets, lens, n, err, sizeof err);
    if (st != LINQWH_OK) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int lwh_l_keyring_close(lua_State *L)
{
    lwh_lkeyring *k = luaL_checkudata(L, 1, LWH_KEYRING);
    linqwh_keyring_free(k->kr);
    k->kr = NULL;
    return 0;
}

static int lwh_l_keyring_tostring(lua_State *L)
{
    lwh_lkeyring *k = luaL_checkudata(L, 1, LWH_KEYRING);
    if (k->kr)
        lua_pushfstring(L, "linqwebhooks.Keyring (%d secrets): %p",
                        (int)linqwh_keyring_size(k->kr), (void *)k);
    else
        lua_pushstring(L, "linqwebhooks.Keyring (closed)");
    return 1;
}

/* ASCII case-insensitive comparison of a header name with a lowercase name
 * (an exact, all-lowercase name, the common spelling, takes the memcmp). */
static int lwh_name_is(const char *s, const char *lower, size_t len)
{
    size_t i;
    unsigned char diff = 0;
    if (memcmp(s, lower, len) == 0)
        return 1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        c = (unsigned char)(c + (((unsigned char)(c - 'A') < 26) << 5));
        diff |= (unsigned char)(c ^ (unsigned char)lower[i]);
    }
    return diff == 0;
}

/*
 * Reads the five signature-bearing headers from the table at idx. A value is
 * a string, or an array holding exactly one string (as some frameworks give
 * every header); anything else is an error for that header: a repeated header
 * (an array of several values, as ngx.req.get_headers() gives) is rejected,
 * never joined, and so is the same header given twice in different letter
 * case. Errors are kept per header set, so that a malformed header of the
 * scheme that is not checked does not matter; lwh_header_error() picks the
 * one that applies. Pointers stay valid while the table is on the stack.
 */
typedef struct lwh_header_read {
    const char *std_err, *legacy_err; /* static messages or NULL */
    int std_present;                  /* any webhook-* header given, valid or not */
} lwh_header_read;

static void lwh_read_headers(lua_State *L, int idx, linqwh_headers *h, lwh_header_read *rd,
                             int id_slot)
{
    memset(h, 0, sizeof *h);
    memset(rd, 0, sizeof *rd);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char **slot = NULL;
        size_t *lenp = NULL;
        size_t klen;
        const char *key, *err = NULL;
        int std = 0;
        /* lua_tolstring of a number would convert the key in place and
         * break lua_next: only string keys are read */
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        key = lua_tolstring(L, -2, &klen);
        switch (klen) {
        case 10:
            if (lwh_name_is(key, "webhook-id", 10)) {
                slot = &h->id;
                lenp = &h->id_len;
                std = 1;
            }
            break;
        case 17: /* the 9th letter tells the two names apart */
            if ((key[8] | 0x20) == 't' && lwh_name_is(key, "webhook-timestamp", 17)) {
                slot = &h->timestamp;
                lenp = &h->timestamp_len;
                std = 1;
            } else if ((key[8] | 0x20) == 's' && lwh_name_is(key, "webhook-signature", 17)) {
                slot = &h->signature;
                lenp = &h->signature_len;
                std = 1;
            }
            break;
        case 19:
            if ((key[10] | 0x20) == 't' && lwh_name_is(key, "x-webhook-timestamp", 19)) {
                slot = &h->legacy_timestamp;
                lenp = &h->legacy_timestamp_len;
            } else if ((key[10] | 0x20) == 's' && lwh_name_is(key, "x-webhook-signature", 19)) {
                slot = &h->legacy_signature;
                lenp = &h->legacy_signature_len;
            }
            break;
        default:
            break;
        }
        if (slot) {
            int vt = lua_type(L, -1);
            rd->std_present |= std;
            if (vt == LUA_TTABLE && lwh_rawlen(L, -1) == 1) {
                lua_rawgeti(L, -1, 1);
                lua_replace(L, -2); /* the string stays referenced by the array */
                vt = lua_type(L, -1);
            }
            if (*slot != NULL)
                err = "a signature header is given twice (different letter case)";
            else if (vt == LUA_TTABLE)
                err = "a signature header is repeated (an array of several values)";
            else if (vt != LUA_TSTRING)
                err = "a signature header value is not a string";
            else
                *slot = lua_tolstring(L, -1, lenp);
            if (!err && id_slot && slot == &h->id) {
                lua_pushvalue(L, -1); /* the id string itself, for the info table */
                lua_replace(L, id_slot);
            }
            if (err) {
                *slot = NULL;
                if (std)
                    rd->std_err = err;
                else
                    rd->legacy_err = err;
            }
        }
        lua_pop(L, 1);
    }
}

/* The header error that applies to the scheme that will be checked. */
static const char *lwh_header_error(const lwh_header_read *rd, linqwh_scheme scheme)
{
    if (scheme == LINQWH_SCHEME_STANDARD ||
        (scheme == LINQWH_SCHEME_AUTO && rd->std_present))
        return rd->std_err;
    return rd->legacy_err;
}

/* A finite number in int64 range, truncated; raises otherwise. */
static int64_t lwh_check_i64(lua_State *L, lua_Number n, int arg, const char *what)
{
    if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0))
        luaL_argerror(L, arg, what);
    return (int64_t)n;
}

static void lwh_read_opts(lua_State *L, int first, linqwh_verify_opts *o)
{
    if (lua_type(L, first) == LUA_TNUMBER) {
        lua_Integer sc = lua_tointeger(L, first);
        if (sc < 0 || sc > 2)
            luaL_argerror(L, first, "scheme must be 0, 1 or 2");
        o->scheme = (linqwh_scheme)sc;
    } else {
        o->scheme = (linqwh_scheme)luaL_checkoption(L, first, "auto", lwh_scheme_names);
    }
    o->now = lwh_check_i64(L, luaL_checknumber(L, first + 1), first + 1, "now must be a finite number");
    o->tolerance = lwh_check_i64(L, luaL_optnumber(L, first + 2, -1), first + 2,
                                 "tolerance must be a finite number");
}

/* The failure message: the core's detail, or for an authentic delivery
 * outside the window (r->skew != 0, see linqwh_result) the measured skew. */
static const char *lwh_failure_message(const linqwh_result *r, linqwh_status st,
                                       int64_t tolerance, char *buf, size_t len)
{
    if (r->skew != 0 && r->timestamp < 1000000000000LL && tolerance >= 0) {
        if (r->skew < 0)
            snprintf(buf, len, "timestamp %lld s older than the %lld s tolerance, signature valid: "
                     "check this host's clock", -(long long)r->skew, (long long)tolerance);
        else
            snprintf(buf, len, "timestamp %lld s in the future, beyond the %lld s tolerance, "
                     "signature valid: check this host's clock", (long long)r->skew,
                     (long long)tolerance);
        return buf;
    }
    return r->detail ? r->detail : linqwh_status_reason(st);
}

static void lwh_push_i64(lua_State *L, int64_t v)
{
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/*
 * success: info table { scheme, key_index (1-based), timestamp, id (Standard
 * only) }; failure: nil, reason, message[, skew]. In Lua the skew is this
 * host's clock minus the timestamp (positive: the delivery looks old, this
 * clock is ahead), the opposite sign of linqwh_result.skew, so that err.skew,
 * the receiver's and nginx's log lines all read the same way.
 * h may be NULL (no id to report); id_slot, if not 0, is the stack slot of
 * the id string read from the headers (lwh_read_headers), pushed as it is.
 */
static int lwh_push_result(lua_State *L, linqwh_status st, const linqwh_result *r,
                           const linqwh_headers *h, int64_t tolerance, int id_slot)
{
    if (st != LINQWH_OK) {
        char msg[160];
        lua_pushnil(L);
        lua_pushstring(L, linqwh_status_reason(st));
        lua_pushstring(L, lwh_failure_message(r, st, tolerance, msg, sizeof msg));
        if (r->skew == 0)
            return 3;
        lwh_push_i64(L, -r->skew);
        return 4;
    }
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_SCHEME));
    if (r->scheme == LINQWH_SCHEME_LEGACY) {
        lua_pushvalue(L, lua_upvalueindex(LWH_UV_LEGACY));
    } else {
        lua_pushvalue(L, lua_upvalueindex(LWH_UV_STANDARD));
        if (h && h->id) {
            lua_pushvalue(L, lua_upvalueindex(LWH_UV_ID));
            if (id_slot)
                lua_pushvalue(L, id_slot);
            else
                lua_pushlstring(L, h->id, h->id_len);
            lua_rawset(L, -5);
        }
    }
    lua_rawset(L, -3);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_KEY_INDEX));
    lua_pushinteger(L, (lua_Integer)r->key_index + 1);
    lua_rawset(L, -3);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_TIMESTAMP));
    lwh_push_i64(L, r->timestamp);
    lua_rawset(L, -3);
    return 1;
}

static int lwh_push_header_error(lua_State *L, const char *detail)
{
    lua_pushnil(L);
    lua_pushstring(L, "invalid_headers");
    lua_pushstring(L, detail);
    return 3;
}

/* Reads the headers table at idx and the (scheme, now, tolerance) arguments
 * after it; returns the header error that applies, or NULL. */
static const char *lwh_read_call(lua_State *L, int idx, linqwh_headers *h, linqwh_verify_opts *o)
{
    lwh_header_read rd;
    luaL_checktype(L, idx, LUA_TTABLE);
    lwh_read_opts(L, idx + 1, o);
    lwh_read_headers(L, idx, h, &rd, 0);
    return lwh_header_error(&rd, o->scheme);
}

/* kr:verify_file(path, headers, scheme, now, tolerance) */
static int lwh_l_verify_file(lua_State *L)
{
    linqwh_keyring *kr = lwh_fast_keyring(L);
    const char *path = luaL_checkstring(L, 2);
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    const char *herr;
    linqwh_status st;

    if ((herr = lwh_read_call(L, 3, &h, &o)) != NULL)
        return lwh_push_header_error(L, herr);
    st = linqwh_verify_file(kr, &h, path, &o, &r);
    return lwh_push_result(L, st, &r, &h, o.tolerance, 0);
}

/* kr:stream(headers, scheme, now, tolerance) -> stream | nil, reason, detail */
static int lwh_l_stream(lua_State *L)
{
    linqwh_keyring *kr = lwh_fast_keyring(L);
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    const char *herr;
    lwh_lstream *s;
    linqwh_status st;

    if ((herr = lwh_read_call(L, 2, &h, &o)) != NULL)
        return lwh_push_header_error(L, herr);
    s = lwh_newuserdata(L, sizeof *s);
    s->ctx = NULL;
    s->has_id = h.id != NULL && h.id_len <= LINQWH_MAX_ID_LEN;
    s->id_len = s->has_id ? h.id_len : 0;
    if (s->has_id)
        memcpy(s->id, h.id, h.id_len);
    lwh_setmetatable(L, LWH_STREAM);
    st = linqwh_verify_begin(&s->ctx, kr, &h, &o, &r);
    if (st != LINQWH_OK)
        return lwh_push_result(L, st, &r, NULL, o.tolerance, 0);
    return 1;
}

static int lwh_l_stream_update(lua_State *L)
{
    lwh_lstream *s = luaL_checkudata(L, 1, LWH_STREAM);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (!s->ctx)
        return luaL_error(L, "verify stream is finished or closed");
    if (linqwh_verify_update(s->ctx, data, len) != LINQWH_OK)
        return luaL_error(L, "verify stream: HMAC update failed");
    lua_settop(L, 1);
    return 1;
}

static int lwh_l_stream_finish(lua_State *L)
{
    lwh_lstream *s = luaL_checkudata(L, 1, LWH_STREAM);
    linqwh_result r;
    linqwh_status st;
    if (!s->ctx)
        return luaL_error(L, "verify stream is finished or closed");
    linqwh_headers h;
    st = linqwh_verify_finish(s->ctx, &r);
    linqwh_verify_ctx_free(s->ctx);
    s->ctx = NULL;
    memset(&h, 0, sizeof h);
    if (s->has_id) {
        h.id = s->id;
        h.id_len = s->id_len;
    }
    return lwh_push_result(L, st, &r, &h, -1, 0);
}

static int lwh_l_stream_close(lua_State *L)
{
    lwh_lstream *s = luaL_checkudata(L, 1, LWH_STREAM);
    linqwh_verify_ctx_free(s->ctx);
    s->ctx = NULL;
    return 0;
}

static int lwh_l_stream_tostring(lua_State *L)
{
    lwh_lstream *s = luaL_checkudata(L, 1, LWH_STREAM);
    lua_pushfstring(L, "linqwebhooks.VerifyStream (%s): %p", s->ctx ? "open" : "closed", (void *)s);
    return 1;
}

/* Raises like error(msg, 2) from a Lua function: the message is prefixed
 * with the position of the Lua code that called the running C function
 * (level 1 from inside a C function). */
static int lwh_error2(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    luaL_where(L, 1);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/*
 * The verify method of a verifier object, bound to one keyring and policy
 * (upvalues 1 = keyring userdata, 2..7 = the interned result strings as for
 * the fast methods, 8 = clock function or nil for the system clock, 9 = the
 * error metatable, 10 = "verification", 11..13 = "kind", "reason",
 * "message", 14 = the header-object normaliser
 * (linqwebhooks.headers.normalize) or nil, 15 = lwh_bound: the keyring,
 * scheme, tolerance and clock flag as C values, read once per call). Called as v:verify(body, headers):
 * returns the info table, or nil and an error object. A plain table of
 * headers (no metatable) is read directly; a table with a metatable or a
 * userdata (lua-http headers, anything with :get) goes through the
 * normaliser first. Every Lua call (normaliser, clock) happens before any
 * OpenSSL work, so no Lua error can unwind through OpenSSL.
 */
#define LWH_UV_BCLOCK 8
#define LWH_UV_BERRMT 9
#define LWH_UV_BVERIF 10
#define LWH_UV_BKIND 11
#define LWH_UV_BREASON 12
#define LWH_UV_BMESSAGE 13
#define LWH_UV_BNORM 14
#define LWH_UV_BCONF 15
#define LWH_NBOUND 15

typedef struct lwh_bound {
    lwh_lkeyring *k; /* upvalue 1's memory (the userdata is kept alive by it) */
    linqwh_scheme scheme;
    int64_t tolerance;
    int has_clock;
} lwh_bound;

static int lwh_l_bound_verify(lua_State *L)
{
    const lwh_bound *b = lua_touserdata(L, lua_upvalueindex(LWH_UV_BCONF));
    lwh_lkeyring *k = b->k;
    size_t blen;
    const char *body, *herr;
    lwh_header_read rd;
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    linqwh_status st;

    if (lua_type(L, 2) != LUA_TSTRING)
        return lwh_error2(L, "verifier:verify: argument 'body' must be a string (the raw request body), got %s",
                          luaL_typename(L, 2));
    lua_settop(L, 4); /* slot 4: the webhook-id string, once read */
    {
        int t = lua_type(L, 3);
        /* the common case, a plain table, costs one lua_getmetatable */
        if (t != LUA_TTABLE || lua_getmetatable(L, 3)) {
            if (t == LUA_TTABLE)
                lua_pop(L, 1);
            if ((t == LUA_TTABLE || t == LUA_TUSERDATA) &&
                !lua_isnil(L, lua_upvalueindex(LWH_UV_BNORM))) {
                lua_pushvalue(L, lua_upvalueindex(LWH_UV_BNORM));
                lua_pushvalue(L, 3);
                lua_call(L, 1, 1);
                lua_replace(L, 3);
            }
            if (lua_type(L, 3) != LUA_TTABLE)
                return lwh_error2(L, "verifier:verify: argument 'headers' must be a table, got %s",
                                  luaL_typename(L, 3));
        }
    }
    if (!k->kr)
        return lwh_error2(L, "verifier:verify: the verifier is closed");
    o.tolerance = b->tolerance;
    o.scheme = b->scheme;
    if (!b->has_clock) {
        /* the system clock; not read when the timestamp check is off */
        o.now = o.tolerance >= 0 ? (int64_t)time(NULL) : 0;
    } else {
        lua_pushvalue(L, lua_upvalueindex(LWH_UV_BCLOCK));
        lua_call(L, 0, 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
            return lwh_error2(L, "linq.verifier: clock must return a number, got %s",
                              luaL_typename(L, -1));
        {
            lua_Number t = lua_tonumber(L, -1);
            if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0))
                return lwh_error2(L, "linq.verifier: clock must return a finite number");
            o.now = (int64_t)t;
        }
        lua_pop(L, 1);
    }
    body = lua_tolstring(L, 2, &blen);
    lwh_read_headers(L, 3, &h, &rd, 4);
    if ((herr = lwh_header_error(&rd, o.scheme)) != NULL) {
        st = LINQWH_INVALID_HEADERS;
        r.detail = herr;
        r.skew = 0;
        r.timestamp = 0;
    } else {
        st = linqwh_verify(k->kr, &h, body, blen, &o, &r);
        if (st == LINQWH_OK)
            return lwh_push_result(L, st, &r, &h, o.tolerance, 4);
    }
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_BKIND));
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_BVERIF));
    lua_rawset(L, -3);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_BREASON));
    lua_pushstring(L, linqwh_status_reason(st));
    lua_rawset(L, -3);
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_BMESSAGE));
    {
        char msg[160];
        lua_pushstring(L, lwh_failure_message(&r, st, o.tolerance, msg, sizeof msg));
    }
    lua_rawset(L, -3);
    if (r.skew != 0) {
        lua_pushliteral(L, "skew");
        lwh_push_i64(L, -r.skew);
        lua_rawset(L, -3);
    }
    lua_pushvalue(L, lua_upvalueindex(LWH_UV_BERRMT));
    lua_setmetatable(L, -2);
    return 2;
}

/* bind_verify(keyring, scheme, tolerance, clock|nil, error_mt[, normalize]) -> function */
static int lwh_l_bind_verify(lua_State *L)
{
    lwh_check_keyring(L, 1);
    luaL_checkinteger(L, 2);
    lwh_check_i64(L, luaL_checknumber(L, 3), 3, "tolerance must be a finite number");
    if (!lua_isnil(L, 4))
        luaL_checktype(L, 4, LUA_TFUNCTION);
    luaL_checktype(L, 5, LUA_TTABLE);
    if (!lua_isnoneornil(L, 6))
        luaL_checktype(L, 6, LUA_TFUNCTION);
    lua_settop(L, 6);
    lua_pushvalue(L, 1);
    lwh_push_result_strings(L);
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 5);
    lua_pushliteral(L, "verification");
    lua_pushliteral(L, "kind");
    lua_pushliteral(L, "reason");
    lua_pushliteral(L, "message");
    lua_pushvalue(L, 6);
    {
        lwh_bound *b = lua_newuserdata(L, sizeof *b); /* plain memory, nothing to free */
        lua_Integer sc = lua_tointeger(L, 2);
        if (sc < 0 || sc > 2)
            return luaL_argerror(L, 2, "scheme must be 0, 1 or 2");
        b->k = lua_touserdata(L, 1);
        b->scheme = (linqwh_scheme)sc;
        b->tolerance = (int64_t)lua_tonumber(L, 3);
        b->has_clock = !lua_isnil(L, 4);
    }
    lua_pushcclosure(L, lwh_l_bound_verify, LWH_NBOUND);
    return 1;
}

static int lwh_push_sign_error(lua_State *L, linqwh_status st)
{
    lua_pushnil(L);
    lua_pushstring(L, linqwh_status_reason(st));
    return 2;
}

/* kr:sign_standard(key_index, id, timestamp_string, body) -> "v1,..." */
static int lwh_l_sign_standard(lua_State *L)
{
    linqwh_keyring *kr = lwh_check_keyring(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    size_t idlen, tslen, blen;
    const char *id = luaL_checklstring(L, 3, &idlen);
    const char *ts = luaL_checklstring(L, 4, &tslen);
    const char *body = luaL_checklstring(L, 5, &blen);
    char out[LINQWH_STANDARD_SIG_SIZE];
    linqwh_status st;
    if (k < 1 || (size_t)k > linqwh_keyring_size(kr))
        return luaL_argerror(L, 2, "key index out of range");
    st = linqwh_sign_standard(kr, (size_t)k - 1, id, idlen, ts, tslen, body, blen, out);
    if (st != LINQWH_OK)
        return lwh_push_sign_error(L, st);
    lua_pushstring(L, out);
    return 1;
}

/* kr:sign_legacy(key_index, timestamp_string, body) -> hex */
static int lwh_l_sign_legacy(lua_State *L)
{
    linqwh_keyring *kr = lwh_check_keyring(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    size_t tslen, blen;
    const char *ts = luaL_checklstring(L, 3, &tslen);
    const char *body = luaL_checklstring(L, 4, &blen);
    char out[LINQWH_LEGACY_SIG_SIZE];
    linqwh_status st;
    if (k < 1 || (size_t)k > linqwh_keyring_size(kr))
        return luaL_argerror(L, 2, "key index out of range");
    st = linqwh_sign_legacy(kr, (size_t)k - 1, ts, tslen, body, blen, out);
    if (st != LINQWH_OK)
        return lwh_push_sign_error(L, st);
    lua_pushstring(L, out);
    return 1;
}

/* random_bytes(n) -> string of n bytes from OpenSSL's CSPRNG */
static int lwh_l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    char *p;
    if (n < 0 || n > 65536)
        return luaL_argerror(L, 1, "must be 0 to 65536");
    p = lua_newuserdata(L, (size_t)n + 1); /* scratch, collected */
    if (linqwh_random_bytes(p, (size_t)n) != LINQWH_OK)
        return luaL_error(L, "linqwebhooks: random generator failed");
    lua_pushlstring(L, p, (size_t)n);
    return 1;
}

/* new_secret() -> "whsec_..." (32 random bytes, as Linq issues them) */
static int lwh_l_new_secret(lua_State *L)
{
    char out[LINQWH_SECRET_SIZE];
    if (linqwh_secret_generate(out) != LINQWH_OK)
        return luaL_error(L, "linqwebhooks: random generator failed");
    lua_pushstring(L, out);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

/* base64_encode(s) -> padded standard base64 of s (OpenSSL EVP_EncodeBlock) */
static int lwh_l_base64_encode(lua_State *L)
{
    size_t len, off;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    unsigned char chunk[4 * 1024 + 1];
    luaL_buffinit(L, &b);
    /* 3072 input bytes -> 4096 output chars per step */
    for (off = 0; off < len; off += 3072) {
        size_t n = len - off < 3072 ? len - off : 3072;
        int w = EVP_EncodeBlock(chunk, (const unsigned char *)s + off, (int)n);
        luaL_addlstring(&b, (const char *)chunk, (size_t)w);
    }
    luaL_pushresult(&b);
    return 1;
}

/* sha256_hex(s) -> lowercase hex SHA-256 of s (OpenSSL EVP; bounded store keys) */
static int lwh_l_sha256_hex(lua_State *L)
{
    static const char digits[] = "0123456789abcdef";
    size_t len, i;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_Digest(s, len, md, &n, EVP_sha256(), NULL);
    if (!ok)
        return luaL_error(L, "linqwebhooks: sha256 failed");
    for (i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    lua_pushlstring(L, hex, 2 * (size_t)n);
    return 1;
}

void lwh_verify_open(lua_State *L)
{
    static const luaL_Reg fast_methods[] = {
        { "verify_file", lwh_l_verify_file },
        { "stream", lwh_l_stream },
        { NULL, NULL }
    };
    static const luaL_Reg fast_stream_methods[] = {
        { "finish", lwh_l_stream_finish },
        { NULL, NULL }
    };
    static const luaL_Reg kr_methods[] = {
        { "sign_standard", lwh_l_sign_standard },
        { "sign_legacy", lwh_l_sign_legacy },
        { NULL, NULL }
    };
    static const luaL_Reg kr_meta[] = { { "__tostring", lwh_l_keyring_tostring }, { NULL, NULL } };
    static const luaL_Reg st_methods[] = {
        { "update", lwh_l_stream_update },
        { NULL, NULL }
    };
    static const luaL_Reg st_meta[] = { { "__tostring", lwh_l_stream_tostring }, { NULL, NULL } };
    static const luaL_Reg funcs[] = {
        { "keyring", lwh_l_keyring },
        { "random_bytes", lwh_l_random_bytes },
        { "bind_verify", lwh_l_bind_verify },
        { "new_secret", lwh_l_new_secret },
        { "base64_encode", lwh_l_base64_encode },
        { "sha256_hex", lwh_l_sha256_hex },
        { NULL, NULL }
    };
    lwh_new_class(L, LWH_KEYRING, kr_methods, kr_meta, lwh_l_keyring_close);
    lwh_new_class(L, LWH_STREAM, st_methods, st_meta, lwh_l_stream_close);
    /* closures with the shared upvalues, added to both classes' __index */
    luaL_getmetatable(L, LWH_STREAM);
    lua_getfield(L, -1, "__index");
    luaL_getmetatable(L, LWH_KEYRING);
    lua_getfield(L, -1, "__index");
    lua_pushvalue(L, -2); /* upvalue 1: keyring metatable */
    lwh_push_result_strings(L);
    lwh_setfuncs(L, fast_methods, LWH_NUPVALUES); /* into keyring __index */
    lua_pop(L, 2); /* keyring __index, keyring metatable */
    lua_pushnil(L); /* upvalue 1 unused for streams */
    lwh_push_result_strings(L);
    lwh_setfuncs(L, fast_stream_methods, LWH_NUPVALUES); /* into stream __index */
    lua_pop(L, 2); /* stream __index, stream metatable */
    lwh_setfuncs(L, funcs, 0);
}
