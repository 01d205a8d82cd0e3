/*
 * verify.c -- strict header parsing, timestamp policy, HMAC and comparison
 * for both Linq signature schemes; signing.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "lwh_internal.h"

/* Everything needed from the headers once parsed and checked. */
typedef struct lwh_parsed {
    linqwh_scheme scheme;
    int64_t ts;
    int64_t skew;                 /* ts - now */
    linqwh_status window;         /* LINQWH_OK or TIMESTAMP_TOO_OLD/NEW */
    const char *window_detail;
    char prefix[LINQWH_MAX_ID_LEN + 1 + LINQWH_MAX_TIMESTAMP_LEN + 2];
    size_t prefix_len;            /* "{id}.{ts}." or "{ts}." */
    char tokens[LINQWH_MAX_SIGNATURES][LWH_B64_SIG_LEN];
    size_t ntokens;               /* v1 entries (standard) */
    size_t nunchecked;            /* tokens whose base64 is not checked yet (lazy parse) */
    unsigned char hit[LINQWH_MAX_SIGNATURES]; /* token t matched a key (lwh_compare) */
    char legacy_sig[LWH_HEX_SIG_LEN];
} lwh_parsed;

struct linqwh_verify_ctx {
    lwh_parsed p;
    size_t n;
    EVP_MAC_CTX *macs[LINQWH_MAX_KEYS];
};

/* Byte classes for the hot parsers: base64 symbol value + 1 (0 = not
 * base64), and printable ASCII (0x21..0x7e). */
static const unsigned char lwh_b64val[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

static int lwh_printable(unsigned char c)
{
    return (unsigned char)(c - 0x21) < 0x5e;
}

/* A v1 signature: exactly 44 chars, 43 base64 symbols then '=', and the last
 * symbol's two unused bits zero (the only canonical encoding of 32 bytes). */
static int lwh_valid_v1(const char *s, size_t len)
{
    size_t i;
    unsigned char bad = 0;
    if (len != LWH_B64_SIG_LEN || s[43] != '=')
        return 0;
    for (i = 0; i < 43; i++)
        bad |= (unsigned char)(lwh_b64val[(unsigned char)s[i]] == 0);
    return !bad && ((lwh_b64val[(unsigned char)s[42]] - 1) & 3) == 0;
}

static linqwh_status lwh_parse_ts(const char *s, size_t len, int64_t *out,
                                  const char **detail)
{
    size_t i;
    uint64_t v = 0;
    if (len == 0 || len > LINQWH_MAX_TIMESTAMP_LEN) {
        *detail = "timestamp must be 1 to 19 ASCII digits (unix seconds)";
        return LINQWH_INVALID_TIMESTAMP;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < '0' || c > '9') {
            *detail = "timestamp must be 1 to 19 ASCII digits (unix seconds)";
            return LINQWH_INVALID_TIMESTAMP;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v > (uint64_t)INT64_MAX) {
        *detail = "timestamp out of range";
        return LINQWH_INVALID_TIMESTAMP;
    }
    *out = (int64_t)v;
    return LINQWH_OK;
}

static linqwh_status lwh_check_window(int64_t ts, const linqwh_verify_opts *o,
                                      const char **detail)
{
    if (o->tolerance < 0)
        return LINQWH_OK;
    /* unsigned differences: exact for any pair of int64 values */
    if (ts < o->now && (uint64_t)o->now - (uint64_t)ts > (uint64_t)o->tolerance) {
        *detail = ts >= 1000000000000LL
                      ? "timestamp outside the tolerance window (it looks like milliseconds, not seconds)"
                      : "timestamp is older than the tolerance allows";
        return LINQWH_TIMESTAMP_TOO_OLD;
    }
    if (ts > o->now && (uint64_t)ts - (uint64_t)o->now > (uint64_t)o->tolerance) {
        *detail = ts >= 1000000000000LL
                      ? "timestamp is in the future (it looks like milliseconds, not seconds)"
                      : "timestamp is further in the future than the tolerance allows";
        return LINQWH_TIMESTAMP_TOO_NEW;
    }
    return LINQWH_OK;
}

/* The signed skew ts - now, saturated to [-INT64_MAX, INT64_MAX] (so it
 * can be negated). */
static int64_t lwh_skew(int64_t ts, int64_t now)
{
    if (ts >= now)
        return (uint64_t)ts - (uint64_t)now > (uint64_t)INT64_MAX ? INT64_MAX
                                                                   : (int64_t)((uint64_t)ts - (uint64_t)now);
    return (uint64_t)now - (uint64_t)ts > (uint64_t)INT64_MAX ? -INT64_MAX
                                                               : -(int64_t)((uint64_t)now - (uint64_t)ts);
}

/*
 * webhook-signature: entries "version,signature" separated by single spaces.
 * With lazy set, a usual entry ("v1," + 43 chars + '=', then a space or the
 * end) is taken without checking its 43 chars are base64: the comparison
 * makes that check needless for a token that matches (it equals our own
 * canonical encoding), and linqwh_verify checks the others afterwards and
 * parses again eagerly when one fails, so that the result and the message
 * are those of the eager parse (see lwh_lazy_tokens_ok).
 */
static linqwh_status lwh_parse_sigs(lwh_parsed *p, const char *s, size_t len,
                                    const char **detail, int lazy)
{
    size_t i = 0, count = 0;
    if (len == 0) {
        *detail = "webhook-signature is empty";
        return LINQWH_INVALID_HEADERS;
    }
    while (i <= len) {
        size_t start = i, comma = (size_t)-1, j;
        /* fast path for the usual entry: "v1," + 44 canonical chars, then
         * the end of the header or a space */
        if (len - i >= 3 + LWH_B64_SIG_LEN && s[i] == 'v' && s[i + 1] == '1' && s[i + 2] == ',' &&
            (len - i == 3 + LWH_B64_SIG_LEN || s[i + 3 + LWH_B64_SIG_LEN] == ' ') &&
            (lazy ? s[i + 3 + LWH_B64_SIG_LEN - 1] == '=' : lwh_valid_v1(s + i + 3, LWH_B64_SIG_LEN))) {
            if (++count > LINQWH_MAX_SIGNATURES) {
                *detail = "webhook-signature has too many entries";
                return LINQWH_INVALID_HEADERS;
            }
            p->nunchecked += (size_t)lazy;
            memcpy(p->tokens[p->ntokens++], s + i + 3, LWH_B64_SIG_LEN);
            i += 3 + LWH_B64_SIG_LEN;
            if (i == len)
                break;
            i++;
            if (i == len) {
                *detail = "webhook-signature has an empty entry (extra space)";
                return LINQWH_INVALID_HEADERS;
            }
            continue;
        }
        /* one pass: find the end of the entry, its first comma, and reject
         * control or non-ASCII bytes */
        for (; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == ' ')
                break;
            if (!lwh_printable(c)) {
                *detail = "webhook-signature contains a control or non-ASCII byte";
                return LINQWH_INVALID_HEADERS;
            }
            if (c == ',' && comma == (size_t)-1)
                comma = i;
        }
        if (i == start) {
            *detail = "webhook-signature has an empty entry (extra space)";
            return LINQWH_INVALID_HEADERS;
        }
        if (++count > LINQWH_MAX_SIGNATURES) {
            *detail = "webhook-signature has too many entries";
            return LINQWH_INVALID_HEADERS;
        }
        if (comma == (size_t)-1 || comma == start || comma + 1 == i) {
            *detail = "webhook-signature entry is not \"version,signature\"";
            return LINQWH_INVALID_HEADERS;
        }
        for (j = start; j < comma; j++) {
            unsigned char c = (unsigned char)s[j];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
                *detail = "webhook-signature entry has a malformed version";
                return LINQWH_INVALID_HEADERS;
            }
        }
        if (comma - start == 2 && s[start] == 'v' && s[start + 1] == '1') {
            if (!lwh_valid_v1(s + comma + 1, i - comma - 1)) {
                *detail = "webhook-signature v1 entry is not 44 canonical base64 chars";
                return LINQWH_INVALID_HEADERS;
            }
            memcpy(p->tokens[p->ntokens++], s + comma + 1, LWH_B64_SIG_LEN);
        }
        /* other versions (v1a, v2, ...) are skipped */
        if (i == len)
            break;
        i++; /* the separating space; a trailing one yields an empty entry */
        if (i == len) {
            *detail = "webhook-signature has an empty entry (extra space)";
            return LINQWH_INVALID_HEADERS;
        }
    }
    return LINQWH_OK;
}

static int lwh_present(const char *v)
{
    return v != NULL;
}

static linqwh_status lwh_parse(const linqwh_headers *h, const linqwh_verify_opts *o,
                               lwh_parsed *p, const char **detail, int lazy)
{
    linqwh_status st;
    linqwh_scheme scheme = o->scheme;
    size_t i;

    p->ts = 0;
    p->prefix_len = 0;
    p->ntokens = 0;
    p->nunchecked = 0;
    if (scheme == LINQWH_SCHEME_AUTO)
        scheme = (lwh_present(h->id) || lwh_present(h->timestamp) || lwh_present(h->signature))
                     ? LINQWH_SCHEME_STANDARD : LINQWH_SCHEME_LEGACY;
    p->scheme = scheme;
    if (scheme == LINQWH_SCHEME_STANDARD) {
        if (!h->id || !h->timestamp || !h->signature) {
            *detail = "need webhook-id, webhook-timestamp and webhook-signature";
            return LINQWH_MISSING_HEADERS;
        }
        if (h->id_len > LINQWH_MAX_HEADER_LEN || h->timestamp_len > LINQWH_MAX_HEADER_LEN ||
            h->signature_len > LINQWH_MAX_HEADER_LEN) {
            *detail = "a webhook-* header is longer than 4096 bytes";
            return LINQWH_INVALID_HEADERS;
        }
        if (h->id_len == 0 || h->id_len > LINQWH_MAX_ID_LEN) {
            *detail = "webhook-id must be 1 to 256 bytes";
            return LINQWH_INVALID_HEADERS;
        }
        {
            unsigned char bad = 0;
            for (i = 0; i < h->id_len; i++) {
                unsigned char c = (unsigned char)h->id[i];
                bad |= (unsigned char)(!lwh_printable(c) | (c == '.'));
            }
            if (bad) {
                *detail = "webhook-id must be printable ASCII without '.' or spaces";
                return LINQWH_INVALID_HEADERS;
            }
        }
        if ((st = lwh_parse_ts(h->timestamp, h->timestamp_len, &p->ts, detail)) != LINQWH_OK)
            return st;
        if ((st = lwh_parse_sigs(p, h->signature, h->signature_len, detail, lazy)) != LINQWH_OK)
            return st;
        memcpy(p->prefix, h->id, h->id_len);
        p->prefix[h->id_len] = '.';
        memcpy(p->prefix + h->id_len + 1, h->timestamp, h->timestamp_len);
        p->prefix_len = h->id_len + 1 + h->timestamp_len;
        p->prefix[p->prefix_len++] = '.';
    } else if (scheme == LINQWH_SCHEME_LEGACY) {
        if (!h->legacy_timestamp || !h->legacy_signature) {
            *detail = "need X-Webhook-Timestamp and X-Webhook-Signature";
            return LINQWH_MISSING_HEADERS;
        }
        if (h->legacy_timestamp_len > LINQWH_MAX_HEADER_LEN ||
            h->legacy_signature_len > LINQWH_MAX_HEADER_LEN) {
            *detail = "an X-Webhook-* header is longer than 4096 bytes";
            return LINQWH_INVALID_HEADERS;
        }
        if ((st = lwh_parse_ts(h->legacy_timestamp, h->legacy_timestamp_len, &p->ts, detail)) != LINQWH_OK)
            return st;
        if (h->legacy_signature_len != LWH_HEX_SIG_LEN) {
            *detail = "X-Webhook-Signature must be 64 lowercase hex chars";
            return LINQWH_INVALID_HEADERS;
        }
        for (i = 0; i < LWH_HEX_SIG_LEN; i++) {
            unsigned char c = (unsigned char)h->legacy_signature[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                *detail = "X-Webhook-Signature must be 64 lowercase hex chars";
                return LINQWH_INVALID_HEADERS;
            }
        }
        memcpy(p->legacy_sig, h->legacy_signature, LWH_HEX_SIG_LEN);
        memcpy(p->prefix, h->legacy_timestamp, h->legacy_timestamp_len);
        p->prefix_len = h->legacy_timestamp_len;
        p->prefix[p->prefix_len++] = '.';
    } else {
        *detail = "unknown scheme";
        return LINQWH_INVALID_ARGUMENT;
    }
    /* the window is checked here but reported by the caller: one-shot
     * verification checks the signature first, so that a valid signature
     * with a timestamp outside the window can report the clock skew */
    p->window_detail = NULL;
    p->window = lwh_check_window(p->ts, o, &p->window_detail);
    p->skew = lwh_skew(p->ts, o->now);
    return LINQWH_OK;
}

/* Compares every candidate against every key's MAC without early exit;
 * records in p->hit which tokens matched. */
static linqwh_status lwh_compare(lwh_parsed *p, unsigned char macs[][LWH_MAC_LEN],
                                 size_t n, linqwh_result *out)
{
    size_t k, t, found = 0, index = 0;
    char enc[LWH_HEX_SIG_LEN];

    memset(p->hit, 0, p->ntokens);
    for (k = 0; k < n; k++) {
        size_t hit = 0;
        if (p->scheme == LINQWH_SCHEME_STANDARD) {
            lwh_b64_mac(macs[k], enc);
            for (t = 0; t < p->ntokens; t++) {
                unsigned char m = (unsigned char)(CRYPTO_memcmp(enc, p->tokens[t], LWH_B64_SIG_LEN) == 0);
                p->hit[t] |= m;
                hit |= m;
            }
        } else {
            lwh_hex(macs[k], LWH_MAC_LEN, enc);
            hit = (size_t)(CRYPTO_memcmp(enc, p->legacy_sig, LWH_HEX_SIG_LEN) == 0);
        }
        /* first matching key wins; branch-free selection */
        index |= (size_t)(0 - (hit & (found ^ 1))) & k;
        found |= hit;
    }
    OPENSSL_cleanse(enc, sizeof enc);
    out->scheme = p->scheme;
    out->timestamp = p->ts;
    if (!found) {
        if (p->window != LINQWH_OK) {
            /* stale or early and not authentic: reported as before, no skew */
            out->detail = p->window_detail;
            return p->window;
        }
        out->detail = p->scheme == LINQWH_SCHEME_STANDARD && p->ntokens == 0
                          ? "webhook-signature has no v1 entry"
                          : "no signature matches any secret";
        return LINQWH_NO_MATCHING_SIGNATURE;
    }
    out->key_index = index;
    out->detail = NULL;
    if (p->window != LINQWH_OK) {
        /* authentic, but outside the window: most likely a clock off on
         * one side; the caller can report the measured skew */
        out->skew = p->skew; /* never 0 here: |skew| > tolerance >= 0 */
        out->detail = p->ts >= 1000000000000LL ? p->window_detail
                      : "the signature is valid but the timestamp is outside the tolerance "
                        "window: check this host's clock";
        return p->window;
    }
    return LINQWH_OK;
}

static EVP_MAC_CTX *lwh_key_ctx(const linqwh_keyring *kr, size_t k, linqwh_scheme s)
{
    return s == LINQWH_SCHEME_STANDARD ? kr->keys[k].std : kr->keys[k].legacy;
}

static void lwh_result_init(linqwh_result *out)
{
    out->scheme = LINQWH_SCHEME_AUTO;
    out->key_index = 0;
    out->timestamp = 0;
    out->skew = 0;
    out->detail = NULL;
}

/* After a lazy parse: whether every token that matched no key is canonical
 * base64 (a token that matched equals our own encoding of a MAC). */
static int lwh_lazy_tokens_ok(const lwh_parsed *p)
{
    size_t t;
    int ok = 1;
    if (p->nunchecked == 0)
        return 1;
    for (t = 0; t < p->ntokens; t++)
        if (!p->hit[t])
            ok &= lwh_valid_v1(p->tokens[t], LWH_B64_SIG_LEN);
    return ok;
}

linqwh_status linqwh_verify(const linqwh_keyring *kr, const linqwh_headers *h,
                            const void *body, size_t body_len,
                            const linqwh_verify_opts *opts, linqwh_result *out)
{
    lwh_parsed p;
    unsigned char macs[LINQWH_MAX_KEYS][LWH_MAC_LEN];
    linqwh_status st;
    size_t k, maclen;
    const char *detail = NULL;

    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    lwh_result_init(out);
    if (!kr || !h || !opts || (!body && body_len)) {
        out->detail = "NULL argument";
        return LINQWH_INVALID_ARGUMENT;
    }
    st = lwh_parse(h, opts, &p, &detail, 1);
    if (st != LINQWH_OK) /* a refused header: the eager parse's status and message */
        st = lwh_parse(h, opts, &p, &detail, 0);
    if (st != LINQWH_OK) {
        out->detail = detail;
        return st;
    }
    for (k = 0; k < kr->n; k++) {
        EVP_MAC_CTX *ctx = lwh_key_ctx(kr, k, p.scheme);
        if (!EVP_MAC_init(ctx, NULL, 0, NULL) ||
            !EVP_MAC_update(ctx, (const unsigned char *)p.prefix, p.prefix_len) ||
            (body_len && !EVP_MAC_update(ctx, body, body_len)) ||
            !EVP_MAC_final(ctx, macs[k], &maclen, LWH_MAC_LEN)) {
            OPENSSL_cleanse(macs, sizeof macs);
            out->detail = "HMAC failed";
            return LINQWH_OUT_OF_MEMORY;
        }
    }
    st = lwh_compare(&p, macs, kr->n, out);
    OPENSSL_cleanse(macs, kr->n * LWH_MAC_LEN);
    if (!lwh_lazy_tokens_ok(&p)) {
        /* a malformed entry: report it exactly as the eager parse does */
        lwh_result_init(out);
        st = lwh_parse(h, opts, &p, &detail, 0);
        out->detail = st != LINQWH_OK ? detail : "webhook-signature v1 entry is not 44 canonical base64 chars";
        return st != LINQWH_OK ? st : LINQWH_INVALID_HEADERS;
    }
    return st;
}

/* begin without the window check when defer_window (verify_file: the
 * window is reported after the signature, as by linqwh_verify). */
static linqwh_status lwh_begin(linqwh_verify_ctx **outp, const linqwh_keyring *kr,
                               const linqwh_headers *h, const linqwh_verify_opts *opts,
                               int defer_window, linqwh_result *out)
{
    linqwh_verify_ctx *c;
    linqwh_status st;
    const char *detail = NULL;
    size_t k;
    linqwh_result dummy;

    if (!out)
        out = &dummy;
    lwh_result_init(out);
    if (!outp) {
        out->detail = "NULL argument";
        return LINQWH_INVALID_ARGUMENT;
    }
    *outp = NULL;
    if (!kr || !h || !opts) {
        out->detail = "NULL argument";
        return LINQWH_INVALID_ARGUMENT;
    }
    c = OPENSSL_zalloc(sizeof *c);
    if (!c) {
        out->detail = "out of memory";
        return LINQWH_OUT_OF_MEMORY;
    }
    st = lwh_parse(h, opts, &c->p, &detail, 0);
    if (st == LINQWH_OK && !defer_window && c->p.window != LINQWH_OK) {
        st = c->p.window;
        detail = c->p.window_detail;
    }
    if (st != LINQWH_OK) {
        out->scheme = c->p.scheme;
        out->timestamp = c->p.ts;
        out->detail = detail;
        OPENSSL_clear_free(c, sizeof *c);
        return st;
    }
    for (k = 0; k < kr->n; k++) {
        c->macs[k] = EVP_MAC_CTX_dup(lwh_key_ctx(kr, k, c->p.scheme));
        c->n = k + 1;
        if (!c->macs[k] || !EVP_MAC_init(c->macs[k], NULL, 0, NULL) ||
            !EVP_MAC_update(c->macs[k], (const unsigned char *)c->p.prefix, c->p.prefix_len)) {
            linqwh_verify_ctx_free(c);
            out->detail = "HMAC failed";
            return LINQWH_OUT_OF_MEMORY;
        }
    }
    *outp = c;
    return LINQWH_OK;
}

linqwh_status linqwh_verify_begin(linqwh_verify_ctx **outp, const linqwh_keyring *kr,
                                  const linqwh_headers *h, const linqwh_verify_opts *opts,
                                  linqwh_result *out)
{
    return lwh_begin(outp, kr, h, opts, 0, out);
}

linqwh_status linqwh_verify_update(linqwh_verify_ctx *c, const void *data, size_t len)
{
    size_t k;
    if (!c || (!data && len) || c->n == 0)
        return LINQWH_INVALID_ARGUMENT;
    if (len == 0)
        return LINQWH_OK;
    for (k = 0; k < c->n; k++)
        if (!EVP_MAC_update(c->macs[k], data, len))
            return LINQWH_OUT_OF_MEMORY;
    return LINQWH_OK;
}

linqwh_status linqwh_verify_finish(linqwh_verify_ctx *c, linqwh_result *out)
{
    unsigned char macs[LINQWH_MAX_KEYS][LWH_MAC_LEN];
    size_t k, maclen, n;
    linqwh_status st;

    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    lwh_result_init(out);
    if (!c || c->n == 0) {
        out->detail = "verification context already finished";
        return LINQWH_INVALID_ARGUMENT;
    }
    n = c->n;
    for (k = 0; k < n; k++) {
        if (!EVP_MAC_final(c->macs[k], macs[k], &maclen, LWH_MAC_LEN)) {
            OPENSSL_cleanse(macs, sizeof macs);
            for (; k < n; k++) {
                EVP_MAC_CTX_free(c->macs[k]);
                c->macs[k] = NULL;
            }
            c->n = 0; /* further update/finish calls get INVALID_ARGUMENT */
            out->detail = "HMAC failed";
            return LINQWH_OUT_OF_MEMORY;
        }
        EVP_MAC_CTX_free(c->macs[k]);
        c->macs[k] = NULL;
    }
    c->n = 0;
    st = lwh_compare(&c->p, macs, n, out);
    OPENSSL_cleanse(macs, n * LWH_MAC_LEN);
    return st;
}

void linqwh_verify_ctx_free(linqwh_verify_ctx *c)
{
    size_t k;
    if (!c)
        return;
    for (k = 0; k < c->n; k++)
        EVP_MAC_CTX_free(c->macs[k]);
    OPENSSL_clear_free(c, sizeof *c);
}

linqwh_status linqwh_verify_file(const linqwh_keyring *kr, const linqwh_headers *h,
                                 const char *path, const linqwh_verify_opts *opts,
                                 linqwh_result *out)
{
    linqwh_verify_ctx *c = NULL;
    linqwh_status st;
    unsigned char buf[65536];
    size_t got;
    FILE *f;

    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    lwh_result_init(out);
    if (!kr || !h || !path || !opts) {
        out->detail = "NULL argument";
        return LINQWH_INVALID_ARGUMENT;
    }
    /* headers first, so that their errors come before any I/O error */
    if ((st = lwh_begin(&c, kr, h, opts, 1, out)) != LINQWH_OK)
        return st;
    f = fopen(path, "rb");
    if (!f) {
        linqwh_verify_ctx_free(c);
        out->detail = "cannot open the body file";
        return LINQWH_IO_ERROR;
    }
    while (st == LINQWH_OK && (got = fread(buf, 1, sizeof buf, f)) > 0)
        st = linqwh_verify_update(c, buf, got);
    if (st == LINQWH_OK && ferror(f)) {
        st = LINQWH_IO_ERROR;
        out->detail = "cannot read the body file";
    }
    fclose(f);
    if (st == LINQWH_OK)
        st = linqwh_verify_finish(c, out);
    linqwh_verify_ctx_free(c);
    return st;
}

static linqwh_status lwh_sign(const linqwh_keyring *kr, size_t key_index, linqwh_scheme s,
                              const char *id, size_t id_len, const char *ts, size_t ts_len,
                              const void *body, size_t body_len, unsigned char mac[LWH_MAC_LEN])
{
    EVP_MAC_CTX *ctx;
    size_t maclen, i;
    int64_t tsv;
    const char *detail;

    if (!kr || key_index >= kr->n || !ts || (!body && body_len))
        return LINQWH_INVALID_ARGUMENT;
    if (lwh_parse_ts(ts, ts_len, &tsv, &detail) != LINQWH_OK)
        return LINQWH_INVALID_TIMESTAMP;
    if (s == LINQWH_SCHEME_STANDARD) {
        if (!id || id_len == 0 || id_len > LINQWH_MAX_ID_LEN)
            return LINQWH_INVALID_ARGUMENT;
        for (i = 0; i < id_len; i++)
            if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e || id[i] == '.')
                return LINQWH_INVALID_ARGUMENT;
    }
    ctx = lwh_key_ctx(kr, key_index, s);
    if (!EVP_MAC_init(ctx, NULL, 0, NULL))
        return LINQWH_OUT_OF_MEMORY;
    if (s == LINQWH_SCHEME_STANDARD &&
        (!EVP_MAC_update(ctx, (const unsigned char *)id, id_len) ||
         !EVP_MAC_update(ctx, (const unsigned char *)".", 1)))
        return LINQWH_OUT_OF_MEMORY;
    if (!EVP_MAC_update(ctx, (const unsigned char *)ts, ts_len) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        (body_len && !EVP_MAC_update(ctx, body, body_len)) ||
        !EVP_MAC_final(ctx, mac, &maclen, LWH_MAC_LEN))
        return LINQWH_OUT_OF_MEMORY;
    return LINQWH_OK;
}

linqwh_status linqwh_sign_standard(const linqwh_keyring *kr, size_t key_index,
                                   const char *id, size_t id_len,
                                   const char *timestamp, size_t timestamp_len,
                                   const void *body, size_t body_len,
                                   char out[LINQWH_STANDARD_SIG_SIZE])
{
    unsigned char mac[LWH_MAC_LEN];
    linqwh_status st;
    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    st = lwh_sign(kr, key_index, LINQWH_SCHEME_STANDARD, id, id_len, timestamp,
                  timestamp_len, body, body_len, mac);
    if (st != LINQWH_OK)
        return st;
    memcpy(out, "v1,", 3);
    lwh_b64_mac(mac, out + 3);
    out[3 + LWH_B64_SIG_LEN] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return LINQWH_OK;
}

linqwh_status linqwh_sign_legacy(const linqwh_keyring *kr, size_t key_index,
                                 const char *timestamp, size_t timestamp_len,
                                 const void *body, size_t body_len,
                                 char out[LINQWH_LEGACY_SIG_SIZE])
{
    unsigned char mac[LWH_MAC_LEN];
    linqwh_status st;
    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    st = lwh_sign(kr, key_index, LINQWH_SCHEME_LEGACY, NULL, 0, timestamp, timestamp_len,
                  body, body_len, mac);
    if (st != LINQWH_OK)
        return st;
    lwh_hex(mac, LWH_MAC_LEN, out);
    out[LWH_HEX_SIG_LEN] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return LINQWH_OK;
}
