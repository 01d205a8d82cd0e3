/*
 * fuzz_verify.c -- libFuzzer harness over the header parsers, secret
 * parsing and the full verify path (one-shot, streamed, signing).
 *
 * Input layout: byte 0 = flags, then up to 7 fields separated by 0xFF:
 *   id, timestamp, signature, legacy timestamp, legacy signature, body, secret.
 * Flag bits 0-4 say which headers are present, bits 5-6 the scheme, bit 7
 * disables the tolerance. Build and run: `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "linqwebhooks.h"

static linqwh_keyring *kr;

static void lwh_fuzz_init(void)
{
    const char *s[2] = { "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                         "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=" };
    size_t l[2] = { strlen(s[0]), strlen(s[1]) };
    if (linqwh_keyring_new(&kr, s, l, 2, NULL, 0) != LINQWH_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *field[7] = { 0 };
    size_t flen[7] = { 0 }, nf = 0, i, start;
    linqwh_headers h;
    linqwh_verify_opts o;
    linqwh_result r, r2;
    linqwh_status st, st2;
    linqwh_verify_ctx *ctx = NULL;
    uint8_t flags;
    char sig[LINQWH_STANDARD_SIG_SIZE], hex[LINQWH_LEGACY_SIG_SIZE];

    if (!kr)
        lwh_fuzz_init();
    if (size < 1)
        return 0;
    flags = data[0];
    for (start = 1, i = 1; i <= size && nf < 7; i++) {
        if (i == size || data[i] == 0xFF) {
            field[nf] = data + start;
            flen[nf] = i - start;
            nf++;
            start = i + 1;
        }
    }
    memset(&h, 0, sizeof h);
#define SET(bit, f, p, l) if ((flags & (1u << bit)) && nf > f) { h.p = (const char *)field[f]; h.l = flen[f]; }
    SET(0, 0, id, id_len)
    SET(1, 1, timestamp, timestamp_len)
    SET(2, 2, signature, signature_len)
    SET(3, 3, legacy_timestamp, legacy_timestamp_len)
    SET(4, 4, legacy_signature, legacy_signature_len)
#undef SET
    o.scheme = (linqwh_scheme)((flags >> 5) & 3);
    o.now = 1614265330;
    o.tolerance = (flags & 0x80) ? -1 : 300;

    st = linqwh_verify(kr, &h, nf > 5 ? field[5] : (const uint8_t *)"", nf > 5 ? flen[5] : 0, &o, &r);
    if (o.scheme > LINQWH_SCHEME_LEGACY) {
        if (st != LINQWH_INVALID_ARGUMENT)
            abort();
        return 0;
    }
    if (st != LINQWH_OK && r.detail == NULL)
        abort();
    /* a skew only for authentic deliveries outside the window */
    if (r.skew != 0 && st != LINQWH_TIMESTAMP_TOO_OLD && st != LINQWH_TIMESTAMP_TOO_NEW)
        abort();

    /* the streamed path must agree */
    st2 = linqwh_verify_begin(&ctx, kr, &h, &o, &r2);
    if (st2 != LINQWH_OK && r2.detail == NULL)
        abort();
    if (st2 == LINQWH_OK) {
        if (nf > 5) {
            size_t half = flen[5] / 2;
            linqwh_verify_update(ctx, field[5], half);
            linqwh_verify_update(ctx, field[5] + half, flen[5] - half);
        }
        st2 = linqwh_verify_finish(ctx, &r2);
        linqwh_verify_ctx_free(ctx);
    }
    if (st2 != st)
        abort();
    /* a header error reads the same on both paths (the one-shot path parses
     * webhook-signature lazily, the streamed one eagerly) */
    if ((st == LINQWH_INVALID_HEADERS || st == LINQWH_MISSING_HEADERS) && strcmp(r.detail, r2.detail) != 0)
        abort();

    /* signing whatever id/timestamp came in must not misbehave, and what it
     * signs must verify */
    if (nf > 1 && linqwh_sign_standard(kr, 1, (const char *)field[0], flen[0],
                                       (const char *)field[1], flen[1], "", 0, sig) == LINQWH_OK) {
        linqwh_headers sh;
        memset(&sh, 0, sizeof sh);
        sh.id = (const char *)field[0];
        sh.id_len = flen[0];
        sh.timestamp = (const char *)field[1];
        sh.timestamp_len = flen[1];
        sh.signature = sig;
        sh.signature_len = strlen(sig);
        o.scheme = LINQWH_SCHEME_STANDARD;
        o.tolerance = -1;
        if (linqwh_verify(kr, &sh, "", 0, &o, &r) != LINQWH_OK || r.key_index != 1)
            abort();
    }
    if (nf > 1)
        linqwh_sign_legacy(kr, 0, (const char *)field[1], flen[1], "", 0, hex);

    /* secret parsing */
    if (nf > 6) {
        linqwh_keyring *k2 = NULL;
        const char *s = (const char *)field[6];
        char err[128];
        if (linqwh_keyring_new(&k2, &s, &flen[6], 1, err, sizeof err) == LINQWH_OK)
            linqwh_keyring_free(k2);
        else if (k2 != NULL)
            abort();
    }
    return 0;
}
