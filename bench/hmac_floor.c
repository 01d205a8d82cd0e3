/*
 * hmac_floor.c -- the floor for the verify benchmark: what a C program
 * needs at least to check one Standard Webhooks signature with OpenSSL:
 * a pre-keyed HMAC-SHA256 context re-initialised per message, one pass over
 * "{id}.{ts}." and the body, base64 of the MAC, constant-time compare.
 *
 * It also times linqwh_verify() from the public C API on the same body, so
 * the Lua figure can be split into core cost and binding cost.
 *
 * usage: hmac_floor BODYFILE ITERATIONS ROUNDS
 *        -> prints "<floor ns/op> <C API ns/op>" (best round of each)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "linqwebhooks.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    const char *prefix = "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.";
    unsigned char mac[32], enc[45], expect[45];
    size_t maclen, blen;
    long iters, rounds, i, r;
    double best = 1e300;
    unsigned char *body;
    volatile int sink = 0;
    OSSL_PARAM params[2];
    EVP_MAC *m;
    EVP_MAC_CTX *ctx;
    FILE *f;

    if (argc != 4)
        return 2;
    f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    fseek(f, 0, SEEK_END);
    blen = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc(blen + 1);
    if (!body || fread(body, 1, blen, f) != blen)
        return 2;
    fclose(f);
    iters = atol(argv[2]);
    rounds = atol(argv[3]);

    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = EVP_MAC_CTX_new(m);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, key, sizeof key, params))
        return 3;
    memset(expect, 'A', sizeof expect);
    for (r = 0; r < rounds; r++) {
        double t0 = now_ns(), dt;
        for (i = 0; i < iters; i++) {
            EVP_MAC_init(ctx, NULL, 0, NULL);
            EVP_MAC_update(ctx, (const unsigned char *)prefix, strlen(prefix));
            EVP_MAC_update(ctx, body, blen);
            EVP_MAC_final(ctx, mac, &maclen, sizeof mac);
            EVP_EncodeBlock(enc, mac, 32);
            sink += CRYPTO_memcmp(enc, expect, 44) == 0;
        }
        dt = (now_ns() - t0) / (double)iters;
        if (dt < best)
            best = dt;
    }
    {
        /* the same check through the public C API (secret: base64 of key) */
        const char *secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        size_t slen = strlen(secret);
        linqwh_keyring *kr = NULL;
        linqwh_headers h;
        linqwh_verify_opts o = { LINQWH_SCHEME_AUTO, 1614265330, 300 };
        linqwh_result res;
        char sig[LINQWH_STANDARD_SIG_SIZE];
        double cbest = 1e300;
        if (linqwh_keyring_new(&kr, &secret, &slen, 1, NULL, 0) != LINQWH_OK ||
            linqwh_sign_standard(kr, 0, "msg_p5jXN8AQM9LWM0D4loKWxJek", 28, "1614265330", 10,
                                 body, blen, sig) != LINQWH_OK)
            return 4;
        memset(&h, 0, sizeof h);
        h.id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        h.id_len = 28;
        h.timestamp = "1614265330";
        h.timestamp_len = 10;
        h.signature = sig;
        h.signature_len = strlen(sig);
        for (r = 0; r < rounds; r++) {
            double t0 = now_ns(), dt;
            for (i = 0; i < iters; i++)
                sink += linqwh_verify(kr, &h, body, blen, &o, &res) == LINQWH_OK;
            dt = (now_ns() - t0) / (double)iters;
            if (dt < cbest)
                cbest = dt;
        }
        linqwh_keyring_free(kr);
        printf("%.1f %.1f\n", best, cbest);
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    free(body);
    return sink > 2 * iters * rounds ? 1 : 0;
}
