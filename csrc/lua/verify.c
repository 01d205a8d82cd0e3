/*
 * verify.c -- Lua binding of the keyring, verification, streaming and
 * signing. Lua values are read first, the core is called with plain C data,
 * results are pushed afterwards: no Lua error can unwind through OpenSSL.
 */
#include <string.h>
#include <openssl/crypto.h>
#include "lwh_lua.h"
#include "../linqwebhooks.h"

#define LWH_KEYRING "linqwebhooks.Keyring"
#define LWH_STREAM "linqwebhooks.VerifyStream"

typedef struct { linqwh_keyring *kr; } lwh_lkeyring;
typedef struct { linqwh_verify_ctx *ctx; } lwh_lstream;

static const char *const lwh_scheme_names[] = { "auto", "standard", "legacy", NULL };

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

/* Case-insensitive comparison of a header name with a lowercase name. */
static int lwh_name_is(const char *s, size_t len, const char *lower, size_t llen)
{
    size_t i;
    if (len != llen)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/*
 * Reads the five signature-bearing headers from the table at idx. Returns
 * NULL or a static message for invalid_headers (repeated, array-valued or
 * non-string values). Pointers stay valid while the table is on the stack.
 */
static const char *lwh_read_headers(lua_State *L, int idx, linqwh_headers *h)
{
    static const struct { const char *name; size_t len; size_t off_p, off_l; } names[] = {
        { "webhook-id", 10, offsetof(linqwh_headers, id), offsetof(linqwh_headers, id_len) },
        { "webhook-timestamp", 17, offsetof(linqwh_headers, timestamp), offsetof(linqwh_headers, timestamp_len) },
        { "webhook-signature", 17, offsetof(linqwh_headers, signature), offsetof(linqwh_headers, signature_len) },
        { "x-webhook-timestamp", 19, offsetof(linqwh_headers, legacy_timestamp), offsetof(linqwh_headers, legacy_timestamp_len) },
        { "x-webhook-signature", 19, offsetof(linqwh_headers, legacy_signature), offsetof(linqwh_headers, legacy_signature_len) },
    };
    const char *err = NULL;
    memset(h, 0, sizeof *h);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t klen, j;
            const char *key = lua_tolstring(L, -2, &klen);
            for (j = 0; j < sizeof names / sizeof names[0]; j++) {
                const char **slot;
                size_t *lenp;
                if (!lwh_name_is(key, klen, names[j].name, names[j].len))
                    continue;
                slot = (const char **)((char *)h + names[j].off_p);
                lenp = (size_t *)((char *)h + names[j].off_l);
                if (*slot != NULL)
                    err = "a signature header is given twice (different letter case)";
                else if (lua_type(L, -1) == LUA_TTABLE)
                    err = "a signature header is repeated";
                else if (lua_type(L, -1) != LUA_TSTRING)
                    err = "a signature header value is not a string";
                else
                    *slot = lua_tolstring(L, -1, lenp);
                break;
            }
        }
        lua_pop(L, 1);
    }
    return err;
}

static void lwh_read_opts(lua_State *L, int first, linqwh_verify_opts *o)
{
    o->scheme = (linqwh_scheme)luaL_checkoption(L, first, "auto", lwh_scheme_names);
    o->now = (int64_t)luaL_checknumber(L, first + 1);
    o->tolerance = (int64_t)luaL_optnumber(L, first + 2, -1);
}

/* success: scheme, key_index (1-based), timestamp; failure: nil, reason, detail */
static int lwh_push_result(lua_State *L, linqwh_status st, const linqwh_result *r)
{
    if (st != LINQWH_OK) {
        lua_pushnil(L);
        lua_pushstring(L, linqwh_status_reason(st));
        lua_pushstring(L, r->detail ? r->detail : linqwh_status_reason(st));
        return 3;
    }
    lua_pushstring(L, r->scheme == LINQWH_SCHEME_LEGACY ? "legacy" : "standard");
    lua_pushinteger(L, (lua_Integer)r->key_index + 1);
    lua_pushnumber(L, (lua_Number)r->timestamp);
#if LUA_VERSION_NUM >= 503
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)r->timestamp);
#endif
    return 3;
}

static int lwh_push_header_error(lua_State *L, const char *detail)
{
    lua_pushnil(L);
    lua_pushstring(L, "invalid_headers");
    lua_pushstring(L, detail);
    return 3;
}

/* kr:verify(body, headers, scheme, now, tolerance) */
static int lwh_l_verify(lua_State *L)
{
    linqwh_keyring *kr = lwh_check_keyring(L, 1);
    size_t blen;
    const char *body = luaL_checklstring(L, 2, &blen);
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    const char *herr;
    linqwh_status st;

    luaL_checktype(L, 3, LUA_TTABLE);
    lwh_read_opts(L, 4, &o);
    if ((herr = lwh_read_headers(L, 3, &h)) != NULL)
        return lwh_push_header_error(L, herr);
    st = linqwh_verify(kr, &h, body, blen, &o, &r);
    return lwh_push_result(L, st, &r);
}

/* kr:verify_file(path, headers, scheme, now, tolerance) */
static int lwh_l_verify_file(lua_State *L)
{
    linqwh_keyring *kr = lwh_check_keyring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    const char *herr;
    linqwh_status st;

    luaL_checktype(L, 3, LUA_TTABLE);
    lwh_read_opts(L, 4, &o);
    if ((herr = lwh_read_headers(L, 3, &h)) != NULL)
        return lwh_push_header_error(L, herr);
    st = linqwh_verify_file(kr, &h, path, &o, &r);
    return lwh_push_result(L, st, &r);
}

/* kr:stream(headers, scheme, now, tolerance) -> stream | nil, reason, detail */
static int lwh_l_stream(lua_State *L)
{
    linqwh_keyring *kr = lwh_check_keyring(L, 1);
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r;
    const char *herr;
    lwh_lstream *s;
    linqwh_status st;

    luaL_checktype(L, 2, LUA_TTABLE);
    lwh_read_opts(L, 3, &o);
    if ((herr = lwh_read_headers(L, 2, &h)) != NULL)
        return lwh_push_header_error(L, herr);
    s = lwh_newuserdata(L, sizeof *s);
    s->ctx = NULL;
    lwh_setmetatable(L, LWH_STREAM);
    st = linqwh_verify_begin(&s->ctx, kr, &h, &o);
    if (st != LINQWH_OK) {
        /* re-run the one-shot parser for the detail text */
        memset(&r, 0, sizeof r);
        linqwh_verify(kr, &h, "", 0, &o, &r);
        return lwh_push_result(L, st, &r);
    }
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
    st = linqwh_verify_finish(s->ctx, &r);
    linqwh_verify_ctx_free(s->ctx);
    s->ctx = NULL;
    return lwh_push_result(L, st, &r);
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

void lwh_verify_open(lua_State *L)
{
    static const luaL_Reg kr_methods[] = {
        { "verify", lwh_l_verify },
        { "verify_file", lwh_l_verify_file },
        { "stream", lwh_l_stream },
        { "sign_standard", lwh_l_sign_standard },
        { "sign_legacy", lwh_l_sign_legacy },
        { NULL, NULL }
    };
    static const luaL_Reg kr_meta[] = { { "__tostring", lwh_l_keyring_tostring }, { NULL, NULL } };
    static const luaL_Reg st_methods[] = {
        { "update", lwh_l_stream_update },
        { "finish", lwh_l_stream_finish },
        { NULL, NULL }
    };
    static const luaL_Reg st_meta[] = { { "__tostring", lwh_l_stream_tostring }, { NULL, NULL } };
    static const luaL_Reg funcs[] = {
        { "keyring", lwh_l_keyring },
        { "random_bytes", lwh_l_random_bytes },
        { NULL, NULL }
    };
    lwh_new_class(L, LWH_KEYRING, kr_methods, kr_meta, lwh_l_keyring_close);
    lwh_new_class(L, LWH_STREAM, st_methods, st_meta, lwh_l_stream_close);
    lwh_setfuncs(L, funcs, 0);
}
