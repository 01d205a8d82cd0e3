/*
 * json.c -- Lua <-> JSON on cJSON.
 *
 * core.json_decode(str)   -> value | nil, message
 * core.json_encode(value) -> string | nil, message
 * core.json_members(text, first, last, names...) -> see below (linqwebhooks.scan)
 * core.json_array_mt      -> the metatable marking a table as a JSON array
 *
 * Ownership: every cJSON tree and every malloc'd buffer lives in a "box"
 * userdata whose __gc frees it, so a Lua error raised while converting
 * (out of memory, stack overflow) cannot leak them. Conversion errors caused
 * by the data itself are reported as nil, message without raising.
 *
 * cJSON keeps strings NUL-terminated and numbers as doubles. Two sound
 * workarounds keep the Lua side exact:
 *  - NUL bytes: when a document contains the escape \u0000 (decode) or a
 *    string holds a NUL byte (encode), strings go through a reversible
 *    byte mapping that cJSON passes through untouched: NUL <-> C0 80 and a
 *    real C0 byte <-> C0 C1 (C0 never occurs in valid UTF-8).
 *  - numbers: cJSON visits numbers in document order, so the decoder walks a
 *    cursor over the parsed text alongside the tree and reads each number's
 *    literal itself: this checks the strict JSON number grammar and, on Lua
 *    5.3+, turns integer literals that fit in 64 bits into exact integers.
 *    Encoding writes numbers as raw text (exact integers, floats with the
 *    shortest of %.15g/%.16g/%.17g that reads back exactly).
 */
#include <cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linqwebhooks.h"
#include "lwh_lua.h"

#define LWH_JSON_MAX_DEPTH 128
/* compared by address on the decode error path */
static const char lwh_msg_depth[] = "nesting deeper than 128 levels";
#define LWH_JSON_ARRAY_MT "linqwebhooks.json.array"
#define LWH_JSON_BOX_MT "linqwebhooks.json.box"

#if LUA_VERSION_NUM >= 503
#define LWH_HAVE_INTEGERS 1
#else
#define LWH_HAVE_INTEGERS 0
#endif

/* Upvalues shared by the JSON functions. */
#define LWH_UV_ARRAY_MT lua_upvalueindex(1)
#define LWH_UV_BOX_MT lua_upvalueindex(2)

/* ------------------------------------------------------------------ box */

typedef struct {
    cJSON *root;
    char *buf;     /* decode: remapped input; encode: printed output */
    char *scratch; /* string remapping */
    size_t scratch_cap;
} lwh_json_box;

static void lwh_box_free(lwh_json_box *b)
{
    if (b->root) {
        cJSON_Delete(b->root);
        b->root = NULL;
    }
    if (b->buf) {
        cJSON_free(b->buf);
        b->buf = NULL;
    }
    if (b->scratch) {
        free(b->scratch);
        b->scratch = NULL;
    }
    b->scratch_cap = 0;
}

static int lwh_box_gc(lua_State *L)
{
    lwh_json_box *b = (lwh_json_box *)lua_touserdata(L, 1);
    if (b)
        lwh_box_free(b);
    return 0;
}

static lwh_json_box *lwh_box_new(lua_State *L)
{
    lwh_json_box *b = (lwh_json_box *)lwh_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    lua_pushvalue(L, LWH_UV_BOX_MT);
    lua_setmetatable(L, -2);
    return b;
}

/* Returns scratch space of at least n bytes, or NULL when out of memory. */
static char *lwh_box_scratch(lwh_json_box *b, size_t n)
{
    if (n > b->scratch_cap) {
        size_t cap = n < 256 ? 256 : n;
        char *p = (char *)malloc(cap);
        if (!p)
            return NULL;
        free(b->scratch);
        b->scratch = p;
        b->scratch_cap = cap;
    }
    return b->scratch;
}

static int lwh_arg_type_error(lua_State *L, int arg, const char *expected)
{
    const char *msg = lua_pushfstring(L, "%s expected, got %s", expected,
                                      luaL_typename(L, arg));
    return luaL_argerror(L, arg, msg);
}

/* --------------------------------------------------------------- decode */

typedef struct {
    lua_State *L;
    lwh_json_box *box;
    const char *text; /* the buffer cJSON parsed */
    size_t len;
    size_t cur;       /* number cursor */
    int remapped;     /* strings use the NUL mapping */
    const char *err;  /* static reason */
    size_t errpos;    /* offset in text, or (size_t)-1 */
} lwh_dec_ctx;

/* Offset in the caller's string for an offset in the (remapped) text. */
static size_t lwh_dec_orig_pos(const lwh_dec_ctx *c, size_t pos)
{
    size_t i, orig = 0;
    if (!c->remapped)
        return pos;
    for (i = 0; i < pos && i < c->len; i++) {
        if ((unsigned char)c->text[i] == 0xC0 && i + 1 < c->len) {
            orig += ((unsigned char)c->text[i + 1] == 0x80) ? 6 : 1;
            i++;
        } else {
            orig++;
        }
    }
    return orig;
}

static int lwh_is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Walks the escapes (cJSON reads a malformed \uXXXX as \u0000, so they are
 * checked here). Sets *has_nul when \u0000 occurs; returns the offset of the
 * first malformed \u escape, or (size_t)-1. Backslashes only occur inside
 * strings in valid JSON, so pairing them from the start is exact there. */
static size_t lwh_scan_escapes(const char *s, size_t len, int *has_nul)
{
    const char *p = s, *end = s + len;
    *has_nul = 0;
    while ((p = (const char *)memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 2 && p[1] == 'u') {
            if (end - p < 6 || !lwh_is_hex((unsigned char)p[2]) || !lwh_is_hex((unsigned char)p[3]) ||
                !lwh_is_hex((unsigned char)p[4]) || !lwh_is_hex((unsigned char)p[5]))
                return (size_t)(p - s);
            if (memcmp(p + 2, "0000", 4) == 0)
                *has_nul = 1;
            p += 6;
        } else {
            p += 2;
        }
        if (p >= end)
            break;
    }
    return (size_t)-1;
}

/* Writes the remapped copy of s into out (capacity 2 * len + 1): inside
 * strings \u0000 -> C0 80; everywhere a C0 byte -> C0 C1. Returns length. */
static size_t lwh_remap_input(const char *s, size_t len, char *out)
{
    size_t i, o = 0;
    int in_string = 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0xC0) {
            out[o++] = (char)0xC0;
            out[o++] = (char)0xC1;
            continue;
        }
        if (in_string) {
            if (ch == '\\') {
                if (len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0) {
                    out[o++] = (char)0xC0;
                    out[o++] = (char)0x80;
                    i += 5;
                    continue;
                }
                out[o++] = (char)ch;
                if (i + 1 < len && (unsigned char)s[i + 1] != 0xC0)
                    out[o++] = s[++i];
                continue;
            }
            if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return o;
}

/* Pushes a string decoded by cJSON, undoing the NUL mapping if active. */
static int lwh_dec_push_string(lwh_dec_ctx *c, const char *s)
{
    size_t n = strlen(s);
    if (c->remapped && memchr(s, 0xC0, n) != NULL) {
        char *out = lwh_box_scratch(c->box, n);
        size_t i, o = 0;
        if (!out) {
            c->err = "out of memory";
            return -1;
        }
        for (i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == 0xC0 && i + 1 < n) {
                out[o++] = ((unsigned char)s[i + 1] == 0x80) ? '\0' : (char)0xC0;
                i++;
            } else {
                out[o++] = (char)ch;
            }
        }
        lua_pushlstring(c->L, out, o);
    } else {
        lua_pushlstring(c->L, s, n);
    }
    return 0;
}

/* Advances the cursor to the next number literal; sets [*start, *end). */
static int lwh_dec_next_number(lwh_dec_ctx *c, size_t *start, size_t *end)
{
    const char *t = c->text;
    size_t i = c->cur, n = c->len;
    while (i < n) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '"') {
            for (i++; i < n; i++) {
                if (t[i] == '\\')
                    i++;
                else if (t[i] == '"')
                    break;
            }
            i++;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            *start = i;
            while (i < n) {
                ch = (unsigned char)t[i];
                if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' ||
                    ch == 'e' || ch == 'E')
                    i++;
                else
                    break;
            }
            *end = i;
            c->cur = i;
            return 0;
        } else {
            i++;
        }
    }
    c->cur = n;
    return -1;
}

/* Checks the RFC 8259 number grammar; sets *is_int for integer literals. */
static int lwh_number_is_valid(const char *s, size_t n, int *is_int)
{
    size_t i = 0;
    *is_int = 1;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        *is_int = 0;
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n;
}

static int lwh_dec_push_number(lwh_dec_ctx *c, const cJSON *item)
{
    size_t start = 0, end = 0;
    int is_int;
    if (lwh_dec_next_number(c, &start, &end) != 0) {
        c->err = "internal error: number not found";
        c->errpos = (size_t)-1;
        return -1;
    }
    if (!lwh_number_is_valid(c->text + start, end - start, &is_int)) {
        c->err = "malformed number";
        c->errpos = start;
        return -1;
    }
#if LWH_HAVE_INTEGERS
    if (is_int) {
        /* exact int64 parse; falls back to the double when out of range */
        const char *s = c->text + start;
        size_t i = 0, n = end - start;
        int neg = 0;
        unsigned long long v = 0, limit;
        if (s[0] == '-') {
            neg = 1;
            i = 1;
        }
        limit = neg ? (unsigned long long)LUA_MAXINTEGER + 1ULL
                    : (unsigned long long)LUA_MAXINTEGER;
        for (; i < n; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (limit - d) / 10ULL)
                break;
            v = v * 10ULL + d;
        }
        if (i == n) {
            lua_Integer r;
            if (neg)
                r = (v == (unsigned long long)LUA_MAXINTEGER + 1ULL)
                        ? LUA_MININTEGER
                        : -(lua_Integer)v;
            else
                r = (lua_Integer)v;
            lua_pushinteger(c->L, r);
            return 0;
        }
    }
#else
    (void)is_int;
#endif
    lua_pushnumber(c->L, (lua_Number)item->valuedouble);
    return 0;
}

static int lwh_dec_value(lwh_dec_ctx *c, const cJSON *item, int depth)
{
    lua_State *L = c->L;
    switch (item->type & 0xFF) {
    case cJSON_NULL:
        lua_pushlightuserdata(L, NULL);
        return 0;
    case cJSON_False:
        lua_pushboolean(L, 0);
        return 0;
    case cJSON_True:
        lua_pushboolean(L, 1);
        return 0;
    case cJSON_Number:
        return lwh_dec_push_number(c, item);
    case cJSON_String:
        return lwh_dec_push_string(c, item->valuestring ? item->valuestring : "");
    case cJSON_Array:
    case cJSON_Object: {
        const cJSON *ch;
        int n = 0, is_array = (item->type & 0xFF) == cJSON_Array;
        if (depth >= LWH_JSON_MAX_DEPTH) {
            c->err = lwh_msg_depth;
            c->errpos = (size_t)-1; /* found by lwh_depth_exceeded_at */
            return -1;
        }
        for (ch = item->child; ch; ch = ch->next)
            n++;
        luaL_checkstack(L, 4, "JSON nesting");
        if (is_array) {
            int i = 0;
            lua_createtable(L, n, 0);
            for (ch = item->child; ch; ch = ch->next) {
                if (lwh_dec_value(c, ch, depth + 1) != 0)
                    return -1;
                lua_rawseti(L, -2, ++i);
            }
            lua_pushvalue(L, LWH_UV_ARRAY_MT);
            lua_setmetatable(L, -2);
        } else {
            lua_createtable(L, 0, n);
            for (ch = item->child; ch; ch = ch->next) {
                if (lwh_dec_push_string(c, ch->string ? ch->string : "") != 0)
                    return -1;
                if (lwh_dec_value(c, ch, depth + 1) != 0)
                    return -1;
                lua_rawset(L, -3);
            }
        }
        return 0;
    }
    default:
        c->err = "unsupported JSON value";
        c->errpos = (size_t)-1;
        return -1;
    }
}

/* Offset in the parsed text of the bracket that opens level
 * LWH_JSON_MAX_DEPTH + 1, looking at the first `upto` bytes, or (size_t)-1.
 * Only called on the error paths, to name the nesting limit and where it was
 * crossed (cJSON's own limit, 1000 levels, only says "invalid JSON"). */
static size_t lwh_depth_exceeded_at(const lwh_dec_ctx *c, size_t upto)
{
    size_t i, depth = 0;
    int in_string = 0;
    if (upto > c->len)
        upto = c->len;
    for (i = 0; i < upto; i++) {
        unsigned char ch = (unsigned char)c->text[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > LWH_JSON_MAX_DEPTH)
                return i;
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
    }
    return (size_t)-1;
}

/* Pushes nil, message and frees the box. pos is an offset in the parsed
 * text (mapped back to the caller's string), LWH_ORIG_POS(p) an offset in the
 * caller's string, or (size_t)-1 for none. */
#define LWH_ORIG_FLAG ((size_t)1 << (sizeof(size_t) * 8 - 1))
#define LWH_ORIG_POS(p) ((p) | LWH_ORIG_FLAG)

static int lwh_dec_fail(lua_State *L, lwh_dec_ctx *c, const char *reason, size_t pos)
{
    lua_pushnil(L);
    if (pos == (size_t)-1) {
        lua_pushfstring(L, "invalid JSON: %s", reason);
    } else {
        char msg[96];
        size_t at = (pos & LWH_ORIG_FLAG) ? (pos & ~LWH_ORIG_FLAG) : lwh_dec_orig_pos(c, pos);
        snprintf(msg, sizeof msg, "invalid JSON at byte %zu%s%s", at + 1, reason ? ": " : "",
                 reason ? reason : "");
        lua_pushstring(L, msg);
    }
    lwh_box_free(c->box);
    return 2;
}

static int lwh_l_json_decode(lua_State *L)
{
    size_t len, i, bad_escape;
    const char *s, *end = NULL;
    int has_nul;
    lwh_dec_ctx c;
    lwh_json_box *box;
    cJSON *root;

    if (lua_type(L, 1) != LUA_TSTRING)
        return lwh_arg_type_error(L, 1, "string");
    s = lua_tolstring(L, 1, &len);
    lua_settop(L, 1);
    box = lwh_box_new(L); /* index 2 */

    memset(&c, 0, sizeof c);
    c.L = L;
    c.box = box;
    c.text = s;
    c.len = len;
    c.errpos = (size_t)-1;

    for (i = 0; i < len && lwh_is_space((unsigned char)s[i]); i++)
        ;
    if (i == len)
        return lwh_dec_fail(L, &c, "empty input", (size_t)-1);

    {
        const char *nul = (const char *)memchr(s, '\0', len);
        if (nul)
            return lwh_dec_fail(L, &c, "NUL byte", LWH_ORIG_POS((size_t)(nul - s)));
    }
    bad_escape = lwh_scan_escapes(s, len, &has_nul);

    if (has_nul) {
        if (len > ((size_t)-1 - 1) / 2) {
            return lwh_dec_fail(L, &c, "input too large", (size_t)-1);
        }
        box->buf = (char *)cJSON_malloc(2 * len + 1);
        if (!box->buf)
            return luaL_error(L, "not enough memory");
        c.len = lwh_remap_input(s, len, box->buf);
        c.text = box->buf;
        c.remapped = 1;
    }

    root = cJSON_ParseWithLengthOpts(c.text, c.len, &end, 0);
    if (!root) {
        size_t pos = (end && end >= c.text) ? (size_t)(end - c.text) : 0;
        size_t deep = lwh_depth_exceeded_at(&c, pos + 1);
        if (bad_escape != (size_t)-1 && lwh_dec_orig_pos(&c, pos) > bad_escape &&
            (deep == (size_t)-1 || lwh_dec_orig_pos(&c, deep) > bad_escape))
            return lwh_dec_fail(L, &c, "invalid \\u escape", LWH_ORIG_POS(bad_escape));
        if (deep != (size_t)-1) /* cJSON stops at its own limit (1000) */
            return lwh_dec_fail(L, &c, lwh_msg_depth, deep);
        return lwh_dec_fail(L, &c, NULL, pos);
    }
    box->root = root;
    if (bad_escape != (size_t)-1)
        return lwh_dec_fail(L, &c, "invalid \\u escape", LWH_ORIG_POS(bad_escape));
    {
        size_t pos = (size_t)(end - c.text);
        while (pos < c.len && lwh_is_space((unsigned char)c.text[pos]))
            pos++;
        if (pos < c.len)
            return lwh_dec_fail(L, &c, "unexpected data after the JSON value", pos);
    }
    if (lwh_dec_value(&c, root, 0) != 0) {
        const char *reason = c.err;
        size_t pos = c.errpos;
        if (reason == lwh_msg_depth)
            pos = lwh_depth_exceeded_at(&c, c.len);
        lua_settop(L, 2);
        return lwh_dec_fail(L, &c, reason, pos);
    }
    lwh_box_free(box);
    return 1;
}

/* --------------------------------------------------------------- encode */

typedef struct {
    lua_State *L;
    lwh_json_box *box;
    int remapped;                            /* some string used the NUL mapping */
    const void *path[LWH_JSON_MAX_DEPTH + 1]; /* tables being encoded */
    char where[160];                         /* location of the error, built on unwind */
    char msg[160];
} lwh_enc_ctx;

static int lwh_enc_error(lwh_enc_ctx *c, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    c->where[0] = '\0';
    return -1;
}

#define LWH_MSG_SPARSE "cannot encode a sparse array (integer keys are not exactly 1..n)"

static void lwh_enc_key_type_error(lwh_enc_ctx *c, lua_State *L, int kidx)
{
    snprintf(c->msg, sizeof c->msg,
             "cannot encode a table key of type %s (keys must be strings or integers)",
             luaL_typename(L, kidx));
    c->where[0] = '\0';
}

/* Prepends a path component ("[3]" or ".key") to c->where. */
static void lwh_enc_where_prepend(lwh_enc_ctx *c, const char *part)
{
    size_t pl = strlen(part), wl = strlen(c->where), cap = sizeof c->where - 1;
    if (pl > cap)
        pl = cap;
    if (pl + wl > cap)
        wl = cap - pl; /* drop the innermost part */
    memmove(c->where + pl, c->where, wl);
    memcpy(c->where, part, pl);
    c->where[pl + wl] = '\0';
}

static void lwh_enc_where_key(lwh_enc_ctx *c, lua_State *L, int kidx)
{
    char part[48];
    if (lua_type(L, kidx) == LUA_TSTRING) {
        size_t n, i, o = 0;
        const char *k = lua_tolstring(L, kidx, &n);
        part[o++] = '.';
        for (i = 0; i < n && o < 36; i++) {
            unsigned char ch = (unsigned char)k[i];
            part[o++] = (ch >= 0x20 && ch < 0x7F) ? (char)ch : '?';
        }
        if (i < n) {
            memcpy(part + o, "...", 3);
            o += 3;
        }
        part[o] = '\0';
    } else if (lua_type(L, kidx) == LUA_TNUMBER) {
        snprintf(part, sizeof part, "[%.14g]", (double)lua_tonumber(L, kidx));
    } else {
        snprintf(part, sizeof part, "[%s]", luaL_typename(L, kidx));
    }
    lwh_enc_where_prepend(c, part);
}

/* Creates a cJSON string for the Lua string at idx, remapping NULs. */
static cJSON *lwh_enc_string(lwh_enc_ctx *c, const char *s, size_t n)
{
    if (memchr(s, '\0', n) || memchr(s, 0xC0, n)) {
        size_t i, o = 0;
        char *out;
        if (n > ((size_t)-1 - 1) / 2)
            return NULL;
        out = lwh_box_scratch(c->box, 2 * n + 1);
        if (!out)
            return NULL;
        for (i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == 0) {
                out[o++] = (char)0xC0;
                out[o++] = (char)0x80;
            } else if (ch == 0xC0) {
                out[o++] = (char)0xC0;
                out[o++] = (char)0xC1;
            } else {
                out[o++] = (char)ch;
            }
        }
        out[o] = '\0';
        c->remapped = 1;
        return cJSON_CreateString(out);
    }
    return cJSON_CreateString(s);
}

/* Formats a finite double so that it reads back exactly. */
static void lwh_format_double(char *buf, size_t size, double d)
{
    int prec;
    char point = '.';
    const struct lconv *lc = localeconv();
    char *p;
    if (lc && lc->decimal_point && lc->decimal_point[0])
        point = lc->decimal_point[0];
    for (prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (point != '.' && (p = strchr(buf, point)) != NULL)
        *p = '.';
}

static cJSON *lwh_enc_number(lwh_enc_ctx *c, lua_State *L, int idx)
{
    char buf[64];
#if LWH_HAVE_INTEGERS
    if (lua_isinteger(L, idx)) {
        snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
        return cJSON_CreateRaw(buf);
    }
#endif
    {
        double d = (double)lua_tonumber(L, idx);
        if (isnan(d) || isinf(d)) {
            lwh_enc_error(c, isnan(d) ? "cannot encode NaN" : "cannot encode an infinite number");
            return NULL;
        }
        lwh_format_double(buf, sizeof buf, d);
        return cJSON_CreateRaw(buf);
    }
}

/* True when the key at idx is an integer (an integral double within
 * +-2^53 on Lua 5.1); stores it in *out. */
static int lwh_key_integer(lua_State *L, int idx, lua_Integer *out)
{
#if LWH_HAVE_INTEGERS
    if (lua_isinteger(L, idx)) {
        *out = lua_tointeger(L, idx);
        return 1;
    }
    return 0;
#else
    lua_Number d;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    d = lua_tonumber(L, idx);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
        d == (lua_Number)(lua_Integer)d) {
        *out = (lua_Integer)d;
        return 1;
    }
    return 0;
#endif
}

static int lwh_enc_value(lwh_enc_ctx *c, int idx, int depth, cJSON **out);

static int lwh_enc_attach(lwh_enc_ctx *c, cJSON *parent, const char *key, size_t klen, cJSON *item)
{
    if (!parent) {
        c->box->root = item;
        return 0;
    }
    if (!key) {
        if (!cJSON_AddItemToArray(parent, item)) {
            cJSON_Delete(item);
            return lwh_enc_error(c, "out of memory");
        }
        return 0;
    }
    {
        /* keys: same NUL mapping as values; cJSON copies the key */
        cJSON *tmp = NULL;
        const char *k = key;
        cJSON_bool ok;
        if (memchr(key, '\0', klen) || memchr(key, 0xC0, klen)) {
            tmp = lwh_enc_string(c, key, klen);
            if (!tmp) {
                cJSON_Delete(item);
                return lwh_enc_error(c, "out of memory");
            }
            k = tmp->valuestring;
        }
        ok = cJSON_AddItemToObject(parent, k, item);
        if (tmp)
            cJSON_Delete(tmp);
        if (!ok) {
            cJSON_Delete(item);
            return lwh_enc_error(c, "out of memory");
        }
    }
    return 0;
}

/* Encodes the table at idx into a new array or object attached to parent. */
static int lwh_enc_table(lwh_enc_ctx *c, int idx, int depth, cJSON *parent, const char *key,
                     size_t klen)
{
    lua_State *L = c->L;
    const void *self = lua_topointer(L, idx);
    size_t n;
    int i, marked = 0;
    cJSON *node;

    if (depth >= LWH_JSON_MAX_DEPTH)
        return lwh_enc_error(c, "cannot encode tables nested deeper than 128 levels");
    for (i = 0; i < depth; i++)
        if (c->path[i] == self)
            return lwh_enc_error(c, "cannot encode a table that contains itself (cycle)");
    c->path[depth] = self;
    luaL_checkstack(L, 6, "JSON nesting");

    if (lua_getmetatable(L, idx)) {
        marked = lua_rawequal(L, -1, LWH_UV_ARRAY_MT);
        lua_pop(L, 1);
    }
    n = lwh_rawlen(L, idx);

    if (n > 0 || marked) {
        /* array: keys must be exactly 1..n */
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_Integer k = 0;
            int is_int = lwh_key_integer(L, -2, &k);
            count++;
            if (!is_int || k < 1 || (size_t)k > n) {
                if (lua_type(L, -2) == LUA_TSTRING) {
                    lwh_enc_error(c, "cannot encode a table mixing array and object keys");
                } else if (is_int) {
                    lwh_enc_error(c, LWH_MSG_SPARSE);
                } else {
                    lwh_enc_key_type_error(c, L, -2);
                }
                return -1;
            }
            lua_pop(L, 1);
        }
        if (count != n)
            return lwh_enc_error(c, LWH_MSG_SPARSE);
        node = cJSON_CreateArray();
        if (!node)
            return lwh_enc_error(c, "out of memory");
        if (lwh_enc_attach(c, parent, key, klen, node) != 0)
            return -1;
        for (i = 1; (size_t)i <= n; i++) {
            char part[32];
            lua_rawgeti(L, idx, i);
            if (lwh_enc_value(c, lua_gettop(L), depth + 1, &node) != 0) {
                snprintf(part, sizeof part, "[%d]", i);
                lwh_enc_where_prepend(c, part);
                return -1;
            }
            lua_pop(L, 1);
        }
        return 0;
    }

    node = cJSON_CreateObject();
    if (!node)
        return lwh_enc_error(c, "out of memory");
    if (lwh_enc_attach(c, parent, key, klen, node) != 0)
        return -1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int top = lua_gettop(L);
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_Integer k;
            if (lwh_key_integer(L, -2, &k)) {
                lwh_enc_error(c, LWH_MSG_SPARSE);
            } else {
                lwh_enc_key_type_error(c, L, -2);
            }
            return -1;
        }
        if (lwh_enc_value(c, top, depth + 1, &node) != 0) {
            lwh_enc_where_key(c, L, top - 1);
            return -1;
        }
        lua_settop(L, top - 1);
    }
    return 0;
}

/* Encodes the value at idx. *parent is the container to attach to (NULL for
 * the root). For object members the key is at idx - 1. */
static int lwh_enc_value(lwh_enc_ctx *c, int idx, int depth, cJSON **parentp)
{
    lua_State *L = c->L;
    cJSON *parent = parentp ? *parentp : NULL;
    const char *key = NULL;
    size_t klen = 0;
    cJSON *item = NULL;

    if (parent && cJSON_IsObject(parent))
        key = lua_tolstring(L, idx - 1, &klen);

    switch (lua_type(L, idx)) {
    case LUA_TTABLE:
        return lwh_enc_table(c, idx, depth, parent, key, klen);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        item = lwh_enc_string(c, s, n);
        if (!item)
            return lwh_enc_error(c, "out of memory");
        break;
    }
    case LUA_TNUMBER:
        item = lwh_enc_number(c, L, idx);
        if (!item)
            return c->msg[0] ? -1 : lwh_enc_error(c, "out of memory");
        break;
    case LUA_TBOOLEAN:
        item = cJSON_CreateBool(lua_toboolean(L, idx));
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            item = cJSON_CreateNull();
            break;
        }
        return lwh_enc_error(c, "cannot encode a light userdata (only json.null)");
    default: {
        char m[80];
        snprintf(m, sizeof m, "cannot encode a %s value", luaL_typename(L, idx));
        return lwh_enc_error(c, m);
    }
    }
    if (!item)
        return lwh_enc_error(c, "out of memory");
    return lwh_enc_attach(c, parent, key, klen, item);
}

static int lwh_l_json_encode(lua_State *L)
{
    lwh_enc_ctx ctx, *c = &ctx; /* plain C data: nothing to free on a Lua error */
    lwh_json_box *box;
    char *out;

    if (lua_isnoneornil(L, 1))
        return lwh_arg_type_error(L, 1, "value");
    lua_settop(L, 1);
    box = lwh_box_new(L); /* index 2 */
    memset(c, 0, sizeof *c);
    c->L = L;
    c->box = box;

    if (lwh_enc_value(c, 1, 0, NULL) != 0) {
        lua_settop(L, 2);
        lwh_box_free(box);
        lua_pushnil(L);
        if (c->where[0])
            lua_pushfstring(L, "%s (at %s)", c->msg,
                            c->where[0] == '.' ? c->where + 1 : c->where);
        else
            lua_pushstring(L, c->msg);
        return 2;
    }
    out = cJSON_PrintUnformatted(box->root);
    if (!out)
        return luaL_error(L, "not enough memory");
    box->buf = out;
    cJSON_Delete(box->root);
    box->root = NULL;

    if (!c->remapped) {
        lua_pushstring(L, out);
    } else {
        luaL_Buffer b;
        const char *p = out;
        luaL_buffinit(L, &b);
        while (*p) {
            const char *q = strchr(p, 0xC0);
            if (!q) {
                luaL_addstring(&b, p);
                break;
            }
            luaL_addlstring(&b, p, (size_t)(q - p));
            if ((unsigned char)q[1] == 0x80)
                luaL_addlstring(&b, "\\u0000", 6);
            else
                luaL_addchar(&b, (char)0xC0);
            p = q[1] ? q + 2 : q + 1;
        }
        luaL_pushresult(&b);
    }
    lwh_box_free(box);
    return 1;
}

/* ------------------------------------------------------------ members */

/*
 * core.json_members(text, first, last, name1, ..., nameN)
 *   -> status, then kind, a, b for each name
 * The Lua face of linqwh_json_members (csrc/ffi.c; linqwebhooks.scan uses it
 * where there is no FFI): scans text:sub(first, last), which should be a
 * JSON object, for the members name1..nameN (N <= 16) without decoding
 * anything. status: 1 valid JSON object, 0 not valid, -1 unsure. kind: 0
 * absent, 1 a string without escapes, 2 any other value; a and b: the
 * 1-based positions in text of the string's content (kind 1) or of the
 * value's text (kind 2), 0 and -1 when absent.
 */
#define LWH_SCAN_MAX_NAMES 16

int linqwh_json_members(const char *text, size_t len, const char *const *names, int n,
                        int64_t *spans, int *kinds);

static int lwh_l_json_members(lua_State *L);

static int lwh_l_json_members(lua_State *L)
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

/* ------------------------------------------------------------ parts text */

/*
 * linqwh_parts_text: event:text() without building Lua tables. text[0..len)
 * is the JSON array of an event's message parts, taken from a scan of
 * linqwh_json_members that answered 1 (so it is strict JSON the decoder
 * accepts). out gets the "value" of every element that is an object whose
 * "type" is the string "text" and whose "value" is a string, joined with
 * "\n" (*outlen bytes, no NUL added): what event:text() computes from the
 * decoded array, a repeated member counting as its last occurrence, as in
 * the decoder. Returns 1; or 0 when the caller must decode instead: not an
 * array, a \u0000 escape (a NUL inside a string is the decoder's business),
 * cJSON out of memory, or out too small (cap >= len always suffices).
 */
LINQWH_API int linqwh_parts_text(const char *text, size_t len, char *out, size_t cap,
                                 size_t *outlen);

/* Whether a JSON text holds the escape \u0000 (an escaped backslash before
 * "u0000" is skipped as such). */
static int lwh_has_escaped_nul(const char *s, size_t len)
{
    const char *p = s, *e = s + len;
    while (e - p >= 2 && (p = memchr(p, '\\', (size_t)(e - p))) != NULL) {
        if (e - p >= 6 && p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0')
            return 1;
        p += 2; /* the backslash and the character it escapes */
    }
    return 0;
}

/* The last member of a cJSON object named name, or NULL. */
static const cJSON *lwh_last_member(const cJSON *obj, const char *name)
{
    const cJSON *ch, *found = NULL;
    for (ch = obj->child; ch; ch = ch->next)
        if (ch->string && strcmp(ch->string, name) == 0)
            found = ch;
    return found;
}

int linqwh_parts_text(const char *text, size_t len, char *out, size_t cap, size_t *outlen)
{
    const char *end = NULL;
    const cJSON *item;
    cJSON *root;
    size_t n = 0;
    int ok = 1, first = 1;

    if (!outlen)
        return 0;
    *outlen = 0;
    if (!text || !out || len < 2 || text[0] != '[' || lwh_has_escaped_nul(text, len))
        return 0;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root || end != text + len || !cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return 0;
    }
    for (item = root->child; item && ok; item = item->next) {
        const cJSON *type, *value;
        size_t vlen, sep;
        if (!cJSON_IsObject(item))
            continue;
        type = lwh_last_member(item, "type");
        value = lwh_last_member(item, "value");
        if (!type || !cJSON_IsString(type) || !type->valuestring || strcmp(type->valuestring, "text") != 0 ||
            !value || !cJSON_IsString(value) || !value->valuestring)
            continue;
        vlen = strlen(value->valuestring);
        sep = first ? 0 : 1;
        if (vlen + sep > cap - n) {
            ok = 0;
            break;
        }
        if (sep)
            out[n++] = '\n';
        memcpy(out + n, value->valuestring, vlen);
        n += vlen;
        first = 0;
    }
    cJSON_Delete(root);
    if (ok)
        *outlen = n;
    return ok;
}

/* core.parts_text(text, first, last) -> string | nil
 * The Lua face of linqwh_parts_text on text:sub(first, last) (linqwebhooks.scan
 * uses it where there is no FFI): nil when the caller must decode instead. */
static int lwh_l_parts_text(lua_State *L)
{
    size_t len, outlen = 0;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_Integer first = luaL_checkinteger(L, 2);
    lua_Integer last = luaL_checkinteger(L, 3);
    size_t n;
    char *out;
    if (first < 1 || last < first - 1 || (size_t)last > len)
        return luaL_argerror(L, 2, "range out of the string");
    n = (size_t)(last - first + 1);
    out = lua_newuserdata(L, n ? n : 1); /* scratch, collected */
    if (!linqwh_parts_text(text + (first - 1), n, out, n, &outlen)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, out, outlen);
    return 1;
}

/* ------------------------------------------------------------------ open */

void lwh_json_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"json_decode", lwh_l_json_decode},
        {"json_encode", lwh_l_json_encode},
        {"json_members", lwh_l_json_members},
        {"parts_text", lwh_l_parts_text},
        {NULL, NULL},
    };
    luaL_newmetatable(L, LWH_JSON_ARRAY_MT);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "json_array_mt");
    lwh_new_class(L, LWH_JSON_BOX_MT, NULL, NULL, lwh_box_gc);
    luaL_getmetatable(L, LWH_JSON_BOX_MT);
    /* stack: module, array_mt, box_mt */
    lwh_setfuncs(L, fns, 2);
}
