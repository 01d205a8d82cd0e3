/*
 * keyring.c -- parsing of "whsec_" secrets and the pre-keyed HMAC contexts.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "lwh_internal.h"

static const char lwh_prefix[] = "whsec_";
#define LWH_PREFIX_LEN (sizeof lwh_prefix - 1)

static int lwh_is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static void lwh_seterr(char *errbuf, size_t errlen, size_t idx, const char *what)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "secret #%zu: %s", idx + 1, what);
}

/*
 * Decodes the base64 part of a secret into key (capacity LINQWH_MAX_KEY_BYTES).
 * Canonical form is required: only the standard alphabet, '=' only as final
 * padding, and re-encoding the result must give back the (padded) input.
 */
static linqwh_status lwh_decode_secret(const char *s, size_t len, unsigned char *key,
                                       size_t *keylen, const char **why)
{
    char padded[((LINQWH_MAX_KEY_BYTES + 2) / 3) * 4 + 4 + 1];
    unsigned char check[sizeof padded];
    size_t body = len, pads = 0, i, plen;
    int n;

    while (body > 0 && s[body - 1] == '=') {
        body--;
        pads++;
    }
    if (body == 0) {
        *why = "empty key after whsec_";
        return LINQWH_INVALID_SECRET;
    }
    for (i = 0; i < body; i++) {
        if (!lwh_is_b64((unsigned char)s[i])) {
            *why = "not base64 after whsec_ (standard alphabet, no whitespace)";
            return LINQWH_INVALID_SECRET;
        }
    }
    if (body % 4 == 1 || pads > 2 || (pads > 0 && (body + pads) % 4 != 0)) {
        *why = "not canonical base64 after whsec_ (bad length or padding)";
        return LINQWH_INVALID_SECRET;
    }
    if (body > (LINQWH_MAX_KEY_BYTES * 4 + 2) / 3) { /* 1366 symbols = 1024 bytes */
        *why = "key longer than 1024 bytes";
        return LINQWH_INVALID_SECRET;
    }
    memcpy(padded, s, body);
    plen = body;
    while (plen % 4)
        padded[plen++] = '=';
    padded[plen] = '\0';
    pads = plen - body;
    n = EVP_DecodeBlock(key, (const unsigned char *)padded, (int)plen);
    if (n < 0) {
        *why = "not base64 after whsec_";
        return LINQWH_INVALID_SECRET;
    }
    *keylen = (size_t)n - pads;
    /* canonical: unused low bits of the last symbol must be zero */
    n = EVP_EncodeBlock(check, key, (int)*keylen);
    if (n != (int)plen || CRYPTO_memcmp(check, padded, plen) != 0) {
        OPENSSL_cleanse(check, sizeof check);
        OPENSSL_cleanse(padded, sizeof padded);
        *why = "not canonical base64 after whsec_";
        return LINQWH_INVALID_SECRET;
    }
    OPENSSL_cleanse(check, sizeof check);
    OPENSSL_cleanse(padded, sizeof padded);
    if (*keylen < LINQWH_MIN_KEY_BYTES) {
        *why = "key shorter than 16 bytes";
        return LINQWH_INVALID_SECRET;
    }
    return LINQWH_OK;
}

static EVP_MAC_CTX *lwh_mac_new(EVP_MAC *mac, const void *key, size_t keylen)
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (!ctx)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, key, keylen, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static linqwh_status lwh_check_secret(const char *s, size_t len, const char **why)
{
    size_t i;
    if (len == 0) {
        *why = "empty";
        return LINQWH_INVALID_SECRET;
    }
    if (lwh_is_space((unsigned char)s[0]) || lwh_is_space((unsigned char)s[len - 1])) {
        *why = "leading or trailing whitespace (copy the secret exactly)";
        return LINQWH_INVALID_SECRET;
    }
    if (len < LWH_PREFIX_LEN || memcmp(s, lwh_prefix, LWH_PREFIX_LEN) != 0) {
        *why = "must start with whsec_";
        return LINQWH_INVALID_SECRET;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '\0') {
            *why = "contains a NUL byte";
            return LINQWH_INVALID_SECRET;
        }
    }
    return LINQWH_OK;
}

linqwh_status linqwh_keyring_new(linqwh_keyring **out, const char *const *secrets,
                                 const size_t *lens, size_t n,
                                 char *errbuf, size_t errlen)
{
    linqwh_keyring *kr;
    EVP_MAC *mac;
    unsigned char key[LINQWH_MAX_KEY_BYTES + 3];
    size_t i, keylen = 0;
    linqwh_status st = LINQWH_OK;
    const char *why = NULL;

    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!out || !secrets || !lens) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "NULL argument");
        return LINQWH_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (n == 0 || n > LINQWH_MAX_KEYS) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "need 1 to %d secrets", LINQWH_MAX_KEYS);
        return LINQWH_INVALID_SECRET;
    }
    for (i = 0; i < n; i++) {
        if (!secrets[i]) {
            lwh_seterr(errbuf, errlen, i, "NULL");
            return LINQWH_INVALID_ARGUMENT;
        }
        st = lwh_check_secret(secrets[i], lens[i], &why);
        if (st == LINQWH_OK)
            st = lwh_decode_secret(secrets[i] + LWH_PREFIX_LEN, lens[i] - LWH_PREFIX_LEN,
                                   key, &keylen, &why);
        OPENSSL_cleanse(key, sizeof key);
        if (st != LINQWH_OK) {
            lwh_seterr(errbuf, errlen, i, why);
            return st;
        }
    }
    kr = OPENSSL_zalloc(sizeof *kr);
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!kr || !mac) {
        OPENSSL_free(kr);
        EVP_MAC_free(mac);
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "out of memory or no HMAC in OpenSSL");
        return LINQWH_OUT_OF_MEMORY;
    }
    for (i = 0; i < n; i++) {
        why = NULL;
        lwh_decode_secret(secrets[i] + LWH_PREFIX_LEN, lens[i] - LWH_PREFIX_LEN, key,
                          &keylen, &why);
        kr->keys[i].std = lwh_mac_new(mac, key, keylen);
        kr->keys[i].legacy = lwh_mac_new(mac, secrets[i], lens[i]);
        OPENSSL_cleanse(key, sizeof key);
        kr->n = i + 1;
        if (!kr->keys[i].std || !kr->keys[i].legacy) {
            linqwh_keyring_free(kr);
            EVP_MAC_free(mac);
            if (errbuf && errlen)
                snprintf(errbuf, errlen, "out of memory");
            return LINQWH_OUT_OF_MEMORY;
        }
    }
    EVP_MAC_free(mac);
    *out = kr;
    return LINQWH_OK;
}

size_t linqwh_keyring_size(const linqwh_keyring *kr)
{
    return kr ? kr->n : 0;
}

void linqwh_keyring_free(linqwh_keyring *kr)
{
    size_t i;
    if (!kr)
        return;
    for (i = 0; i < kr->n; i++) {
        EVP_MAC_CTX_free(kr->keys[i].std);
        EVP_MAC_CTX_free(kr->keys[i].legacy);
    }
    OPENSSL_clear_free(kr, sizeof *kr);
}

linqwh_status linqwh_random_bytes(void *buf, size_t n)
{
    if (!buf && n)
        return LINQWH_INVALID_ARGUMENT;
    if (n > (size_t)0x7fffffff)
        return LINQWH_INVALID_ARGUMENT;
    return RAND_bytes(buf, (int)n) == 1 ? LINQWH_OK : LINQWH_OUT_OF_MEMORY;
}

linqwh_status linqwh_secret_generate(char out[LINQWH_SECRET_SIZE])
{
    unsigned char key[32];
    if (!out)
        return LINQWH_INVALID_ARGUMENT;
    if (RAND_bytes(key, sizeof key) != 1)
        return LINQWH_OUT_OF_MEMORY;
    memcpy(out, lwh_prefix, LWH_PREFIX_LEN);
    EVP_EncodeBlock((unsigned char *)out + LWH_PREFIX_LEN, key, sizeof key); /* 44 chars + NUL */
    OPENSSL_cleanse(key, sizeof key);
    return LINQWH_OK;
}

void lwh_b64_mac(const unsigned char mac[LWH_MAC_LEN], char out[LWH_B64_SIG_LEN])
{
    unsigned char tmp[LWH_B64_SIG_LEN + 1];
    EVP_EncodeBlock(tmp, mac, LWH_MAC_LEN);
    memcpy(out, tmp, LWH_B64_SIG_LEN);
}

void lwh_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

const char *linqwh_version(void)
{
    return LINQWH_VERSION;
}

const char *linqwh_status_reason(linqwh_status st)
{
    switch (st) {
    case LINQWH_OK: return "ok";
    case LINQWH_MISSING_HEADERS: return "missing_headers";
    case LINQWH_INVALID_HEADERS: return "invalid_headers";
    case LINQWH_INVALID_TIMESTAMP: return "invalid_timestamp";
    case LINQWH_TIMESTAMP_TOO_OLD: return "timestamp_too_old";
    case LINQWH_TIMESTAMP_TOO_NEW: return "timestamp_too_new";
    case LINQWH_NO_MATCHING_SIGNATURE: return "no_matching_signature";
    case LINQWH_INVALID_SECRET: return "invalid_secret";
    case LINQWH_INVALID_ARGUMENT: return "invalid_argument";
    case LINQWH_IO_ERROR: return "io_error";
    case LINQWH_OUT_OF_MEMORY: return "out_of_memory";
    }
    return "unknown";
}
