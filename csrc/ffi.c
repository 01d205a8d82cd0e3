/*
 * ffi.c -- C functions for the LuaJIT FFI path (lua/linqwebhooks/ffi.lua),
 * exported from core.so and liblinqwebhooks.a next to the public API.
 *
 * linqwh_envelope_scan: one pass over a delivery body that finds the
 * top-level members of a Linq event envelope without building anything, so
 * that the dispatcher can route and de-duplicate on event_type / event_id and
 * decode `data` only when a handler reads it.
 *
 * It is a strict RFC 8259 checker (no leniency at all), so that whatever it
 * accepts the full decoder (cJSON + csrc/lua/json.c) accepts too; anything
 * it is not sure of -- a \u escape of a surrogate, nesting deeper than the
 * decoder allows, an escaped top-level key, raw bytes below 0x20, a NUL --
 * makes it answer "unsure" and the caller decodes the whole body as before.
 * The value of the number, string and literal tokens is never computed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "linqwebhooks.h"

#define LWH_ENV_KEYS 8
#define LWH_ENV_MAX_DEPTH 128 /* the decoder's limit (json.c) */

/* The members reported, in this order (spans[2*i], spans[2*i + 1]). */
static const char *const lwh_env_keys[LWH_ENV_KEYS] = {
    "event_type", "event_id", "created_at", "api_version",
    "webhook_version", "trace_id", "partner_id", "data",
};

enum { LWH_SCAN_BAD = 0, LWH_SCAN_OK = 1, LWH_SCAN_UNSURE = -1 };

typedef struct {
    const unsigned char *s;
    size_t n, i;
    int unsure;
} lwh_scan;

static void lwh_ws(lwh_scan *c)
{
    const unsigned char *s = c->s;
    size_t i = c->i, n = c->n;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    c->i = i;
}

static int lwh_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Bytes that end the plain run of a string: '"', '\\' and those below 0x20. */
static int lwh_string_stop(unsigned char ch)
{
    return ch == '"' || ch == '\\' || ch < 0x20;
}

/* Whether one of the 8 bytes of w is '"', '\\' or below 0x20: the "has a
 * zero byte" and "has a byte less than n" tests (x - 0x01..) & ~x & 0x80..,
 * exact for whether any byte matches (which one does not matter: a word that
 * stops goes to the byte loop). */
static int lwh_word_stops(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b, lt = (w - ones * 0x20) & ~w;
    return ((zq | zb | lt) & high) != 0;
}

/* At a '"': skips the string. *escaped is set when it holds an escape. */
static int lwh_string(lwh_scan *c, int *escaped)
{
    *escaped = 0;
    c->i++; /* opening quote */
    while (c->i < c->n) {
        unsigned char ch;
        {
            /* the plain run, in locals: a byte load through c->s could
             * alias c->i, which would keep c->i in memory on every byte */
            const unsigned char *s = c->s;
            size_t i = c->i, n = c->n;
            /* eight bytes at a time while none of them stops the run */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (lwh_word_stops(w))
                    break;
                i += 8;
            }
            while (i < n && !lwh_string_stop(s[i]))
                i++;
            c->i = i;
            if (i >= n)
                break;
            ch = s[i];
        }
        if (ch == '"') {
            c->i++;
            return 1;
        }
        if (ch < 0x20) {
            c->unsure = 1; /* the decoder accepts raw control bytes; not our call */
            return ch != 0;
        }
        if (ch == '\\') {
            *escaped = 1;
            if (c->i + 1 >= c->n)
                return 0;
            ch = c->s[c->i + 1];
            if (ch == 'u') {
                const unsigned char *h = c->s + c->i + 2;
                if (c->i + 6 > c->n || !lwh_hex(h[0]) || !lwh_hex(h[1]) || !lwh_hex(h[2]) ||
                    !lwh_hex(h[3]))
                    return 0;
                if ((h[0] == 'd' || h[0] == 'D') &&
                    (h[1] == '8' || h[1] == '9' || (h[1] >= 'a' && h[1] <= 'f') ||
                     (h[1] >= 'A' && h[1] <= 'F')))
                    c->unsure = 1; /* surrogates: pairing is the decoder's business */
                c->i += 6;
                continue;
            }
            if (ch != '"' && ch != '\\' && ch != '/' && ch != 'b' && ch != 'f' && ch != 'n' &&
                ch != 'r' && ch != 't')
                return 0;
            c->i += 2;
            continue;
        }
        c->i++;
    }
    return 0;
}

static int lwh_digits(lwh_scan *c)
{
    const unsigned char *s = c->s;
    size_t start = c->i, i = c->i, n = c->n;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    c->i = i;
    return i > start;
}

static int lwh_number(lwh_scan *c)
{
    if (c->s[c->i] == '-')
        c->i++;
    if (c->i >= c->n)
        return 0;
    if (c->s[c->i] == '0')
        c->i++;
    else if (!lwh_digits(c))
        return 0;
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        if (!lwh_digits(c))
            return 0;
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (!lwh_digits(c))
            return 0;
    }
    return 1;
}

static int lwh_literal(lwh_scan *c, const char *word, size_t len)
{
    if (c->n - c->i < len || memcmp(c->s + c->i, word, len) != 0)
        return 0;
    c->i += len;
    return 1;
}

static int lwh_value(lwh_scan *c, int depth);

/* At '{' or '[': the whole container. */
static int lwh_container(lwh_scan *c, int depth)
{
    int object = c->s[c->i] == '{';
    unsigned char close = object ? '}' : ']';
    if (depth >= LWH_ENV_MAX_DEPTH) {
        c->unsure = 1;
        return 1; /* the caller stops at unsure */
    }
    c->i++;
    lwh_ws(c);
    if (c->i < c->n && c->s[c->i] == close) {
        c->i++;
        return 1;
    }
    for (;;) {
        if (object) {
            int esc;
            if (c->i >= c->n || c->s[c->i] != '"' || !lwh_string(c, &esc))
                return 0;
            lwh_ws(c);
            if (c->i >= c->n || c->s[c->i] != ':')
                return 0;
            c->i++;
            lwh_ws(c);
        }
        if (!lwh_value(c, depth + 1) || c->unsure)
            return !c->unsure ? 0 : 1;
        lwh_ws(c);
        if (c->i >= c->n)
            return 0;
        if (c->s[c->i] == close) {
            c->i++;
            return 1;
        }
        if (c->s[c->i] != ',')
            return 0;
        c->i++;
        lwh_ws(c);
    }
}

static int lwh_value(lwh_scan *c, int depth)
{
    int esc;
    if (c->i >= c->n)
        return 0;
    switch (c->s[c->i]) {
    case '{':
    case '[':
        return lwh_container(c, depth);
    case '"':
        return lwh_string(c, &esc);
    case 't':
        return lwh_literal(c, "true", 4);
    case 'f':
        return lwh_literal(c, "false", 5);
    case 'n':
        return lwh_literal(c, "null", 4);
    default:
        if (c->s[c->i] == '-' || (c->s[c->i] >= '0' && c->s[c->i] <= '9'))
            return lwh_number(c);
        return 0;
    }
}

/*
 * Scans body (len bytes), which should be a JSON object. For each member in
 * lwh_env_keys order, kinds[k] is 0 when the top level has no such member,
 * 1 when its value is a string without escapes (spans[2k], spans[2k+1] =
 * offset and length of its content, quotes excluded), 2 for any other value
 * (the offset and length of the value's text). A repeated member: the last
 * one counts, as in the decoder. Returns 1 when the body is valid JSON with
 * an object at the top, 0 when it is not valid JSON or not an object, -1
 * when the scan cannot tell (decode the body instead).
 */
LINQWH_API int linqwh_envelope_scan(const char *body, size_t len, int64_t *spans, int *kinds);

/*
 * The same scan for any member names: names[0..n-1] (NUL-terminated), with
 * spans[2n] and kinds[n] as above. For reading a few members of an object
 * held as JSON text (e.g. the parts of an event's data) without decoding the
 * rest.
 */
LINQWH_API int linqwh_json_members(const char *text, size_t len, const char *const *names,
                                   int n, int64_t *spans, int *kinds);

static int lwh_members(const char *body, size_t len, const char *const *names, int nkeys,
                       int64_t *spans, int *kinds);

int linqwh_envelope_scan(const char *body, size_t len, int64_t *spans, int *kinds)
{
    return lwh_members(body, len, lwh_env_keys, LWH_ENV_KEYS, spans, kinds);
}

int linqwh_json_members(const char *text, size_t len, const char *const *names, int n,
                        int64_t *spans, int *kinds)
{
    int k;
    if (!names || n < 0 || n > 64)
        return LWH_SCAN_BAD;
    for (k = 0; k < n; k++)
        if (!names[k])
            return LWH_SCAN_BAD;
    return lwh_members(text, len, names, n, spans, kinds);
}

static int lwh_members(const char *body, size_t len, const char *const *names, int nkeys,
                       int64_t *spans, int *kinds)
{
    lwh_scan c;
    int k;
    size_t klens[64]; /* nkeys <= 64 (linqwh_json_members) */
    if (!body || !spans || !kinds || nkeys > 64)
        return LWH_SCAN_BAD;
    for (k = 0; k < nkeys; k++) {
        kinds[k] = 0;
        spans[2 * k] = spans[2 * k + 1] = 0;
        klens[k] = strlen(names[k]);
    }
    c.s = (const unsigned char *)body;
    c.n = len;
    c.i = 0;
    c.unsure = 0;
    if (len >= 3 && c.s[0] == 0xEF && c.s[1] == 0xBB && c.s[2] == 0xBF)
        return LWH_SCAN_UNSURE; /* the decoder skips a BOM */
    lwh_ws(&c);
    if (c.i >= c.n)
        return LWH_SCAN_BAD;
    if (c.s[c.i] != '{') {
        /* valid JSON that is not an object, or not JSON: the decoder says which */
        return LWH_SCAN_UNSURE;
    }
    c.i++;
    lwh_ws(&c);
    if (c.i < c.n && c.s[c.i] == '}') {
        c.i++;
    } else {
        for (;;) {
            size_t kstart, kend, vstart;
            int esc, slot = -1;
            if (c.i >= c.n || c.s[c.i] != '"')
                return LWH_SCAN_BAD;
            kstart = c.i + 1;
            if (!lwh_string(&c, &esc))
                return c.unsure ? LWH_SCAN_UNSURE : LWH_SCAN_BAD;
            kend = c.i - 1;
            if (esc)
                return LWH_SCAN_UNSURE; /* an escaped name may spell a member we look for */
            for (k = 0; k < nkeys; k++) {
                size_t kl = klens[k];
                if (kend - kstart == kl && memcmp(c.s + kstart, names[k], kl) == 0) {
                    slot = k;
                    break;
                }
            }
            lwh_ws(&c);
            if (c.i >= c.n || c.s[c.i] != ':')
                return LWH_SCAN_BAD;
            c.i++;
            lwh_ws(&c);
            vstart = c.i;
            if (c.i < c.n && c.s[c.i] == '"') {
                if (!lwh_string(&c, &esc))
                    return c.unsure ? LWH_SCAN_UNSURE : LWH_SCAN_BAD;
                if (slot >= 0) {
                    kinds[slot] = esc ? 2 : 1;
                    spans[2 * slot] = (int64_t)(esc ? vstart : vstart + 1);
                    spans[2 * slot + 1] = (int64_t)(esc ? c.i - vstart : c.i - vstart - 2);
                }
            } else {
                if (!lwh_value(&c, 1))
                    return c.unsure ? LWH_SCAN_UNSURE : LWH_SCAN_BAD;
                if (slot >= 0) {
                    kinds[slot] = 2;
                    spans[2 * slot] = (int64_t)vstart;
                    spans[2 * slot + 1] = (int64_t)(c.i - vstart);
                }
            }
            if (c.unsure)
                return LWH_SCAN_UNSURE;
            lwh_ws(&c);
            if (c.i >= c.n)
                return LWH_SCAN_BAD;
            if (c.s[c.i] == '}') {
                c.i++;
                break;
            }
            if (c.s[c.i] != ',')
                return LWH_SCAN_BAD;
            c.i++;
            lwh_ws(&c);
        }
    }
    lwh_ws(&c);
    return c.i == c.n ? LWH_SCAN_OK : LWH_SCAN_BAD;
}
