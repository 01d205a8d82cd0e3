/* lwh_internal.h -- internal declarations of the Lua-free core. */
#ifndef LWH_INTERNAL_H
#define LWH_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include "linqwebhooks.h"
#include "lwh_common.h"

/* EVP_MAC (keyed HMAC contexts) needs OpenSSL 3. */
#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#error "linqwebhooks needs OpenSSL >= 3.0 headers (Debian 12: apt-get install libssl-dev)"
#endif

#define LWH_MAC_LEN 32          /* SHA-256 */
#define LWH_B64_SIG_LEN 44      /* base64 of 32 bytes, padded */
#define LWH_HEX_SIG_LEN 64

struct lwh_key {
    EVP_MAC_CTX *std;     /* pre-keyed with the base64-decoded secret */
    EVP_MAC_CTX *legacy;  /* pre-keyed with the whole secret string */
};

struct linqwh_keyring {
    size_t n;
    struct lwh_key keys[LINQWH_MAX_KEYS];
};

/* Encodes 32 MAC bytes as 44 padded base64 chars (no NUL). */
LWH_HIDDEN void lwh_b64_mac(const unsigned char mac[LWH_MAC_LEN], char out[LWH_B64_SIG_LEN]);
/* Encodes n bytes as 2n lowercase hex chars (no NUL). */
LWH_HIDDEN void lwh_hex(const unsigned char *in, size_t n, char *out);

#endif
