/*
 * linqwebhooks.h -- public C API of the linqwebhooks core.
 *
 * Usable from any C host without Lua: link with -llinqwebhooks (or compile the
 * files under csrc/ that are not under csrc/lua/) plus -lcrypto.
 *
 * Verification of Linq Partner API v3 webhook deliveries:
 *   - Standard Webhooks scheme: headers webhook-id, webhook-timestamp,
 *     webhook-signature ("v1,<base64>" entries separated by single spaces),
 *     HMAC-SHA256 over "{id}.{timestamp}.{body}" keyed with the base64-decoded
 *     secret (after "whsec_").
 *   - Legacy scheme: headers X-Webhook-Timestamp, X-Webhook-Signature (64
 *     lowercase hex chars), HMAC-SHA256 over "{timestamp}.{body}" keyed with the
 *     whole secret string, "whsec_" included.
 *
 * Threads: one-shot verification and signing reuse the keyring's pre-keyed
 * HMAC contexts, so a keyring must not be used by two threads at once (create
 * one per thread: it is cheap). A linqwh_verify_ctx owns copies and is
 * independent of its keyring once begun. No function prints or logs, and no
 * error text ever contains secret material.
 */
#ifndef LINQWEBHOOKS_H
#define LINQWEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LINQWH_API __attribute__((visibility("default")))
#else
#define LINQWH_API
#endif

#define LINQWH_VERSION "0.2.0"

/* Result codes. linqwh_status_reason() gives the stable string for each. */
typedef enum linqwh_status {
    LINQWH_OK = 0,
    LINQWH_MISSING_HEADERS,        /* "missing_headers" */
    LINQWH_INVALID_HEADERS,        /* "invalid_headers": malformed, duplicated or oversized */
    LINQWH_INVALID_TIMESTAMP,      /* "invalid_timestamp" */
    LINQWH_TIMESTAMP_TOO_OLD,      /* "timestamp_too_old" */
    LINQWH_TIMESTAMP_TOO_NEW,      /* "timestamp_too_new" */
    LINQWH_NO_MATCHING_SIGNATURE,  /* "no_matching_signature" */
    LINQWH_INVALID_SECRET,         /* "invalid_secret" (keyring creation, signing) */
    LINQWH_INVALID_ARGUMENT,       /* "invalid_argument" (NULL pointers, bad enum, state) */
    LINQWH_IO_ERROR,               /* "io_error" (verify_file) */
    LINQWH_OUT_OF_MEMORY           /* "out_of_memory" */
} linqwh_status;

typedef enum linqwh_scheme {
    LINQWH_SCHEME_AUTO = 0,   /* Standard if any webhook-* header is present (no fallback), else legacy */
    LINQWH_SCHEME_STANDARD = 1,
    LINQWH_SCHEME_LEGACY = 2
} linqwh_scheme;

/* Limits enforced by the parsers. */
#define LINQWH_MAX_HEADER_LEN     4096  /* any one header value */
#define LINQWH_MAX_SIGNATURES     32    /* entries in webhook-signature */
#define LINQWH_MAX_ID_LEN         256   /* webhook-id */
#define LINQWH_MAX_TIMESTAMP_LEN  19    /* digits */
#define LINQWH_MAX_KEYS           16    /* secrets in one keyring */
#define LINQWH_MIN_KEY_BYTES      16    /* decoded Standard key */
#define LINQWH_MAX_KEY_BYTES      1024

/* Sizes of signing outputs, NUL included. */
#define LINQWH_STANDARD_SIG_SIZE  48    /* "v1," + 44 base64 chars + NUL */
#define LINQWH_LEGACY_SIG_SIZE    65    /* 64 hex chars + NUL */

const char *linqwh_status_reason(linqwh_status st) LINQWH_API;
const char *linqwh_version(void) LINQWH_API;

/* ---- keyring: one or more "whsec_..." secrets, pre-keyed once ---------- */

typedef struct linqwh_keyring linqwh_keyring;

/*
 * Creates a keyring from n secrets (secrets[i] of lens[i] bytes). Each secret
 * must be "whsec_" followed by canonical standard base64 (padding may be
 * omitted) decoding to at least LINQWH_MIN_KEY_BYTES bytes, with no
 * whitespace anywhere. On failure returns a status and, when errbuf is given,
 * a message naming the bad secret by position (never its content).
 */
linqwh_status linqwh_keyring_new(linqwh_keyring **out, const char *const *secrets,
                                 const size_t *lens, size_t n,
                                 char *errbuf, size_t errlen) LINQWH_API;
size_t linqwh_keyring_size(const linqwh_keyring *kr) LINQWH_API;
/* Wipes the key material and frees. NULL is accepted. */
void linqwh_keyring_free(linqwh_keyring *kr) LINQWH_API;

/* ---- verification -------------------------------------------------------- */

/* Header values as received; NULL pointer = header absent. Values are not
 * trimmed or re-formatted: the exact bytes are what is signed. */
typedef struct linqwh_headers {
    const char *id;               size_t id_len;               /* webhook-id */
    const char *timestamp;        size_t timestamp_len;        /* webhook-timestamp */
    const char *signature;        size_t signature_len;        /* webhook-signature */
    const char *legacy_timestamp; size_t legacy_timestamp_len; /* X-Webhook-Timestamp */
    const char *legacy_signature; size_t legacy_signature_len; /* X-Webhook-Signature */
} linqwh_headers;

typedef struct linqwh_verify_opts {
    linqwh_scheme scheme;
    int64_t now;        /* caller's clock, unix seconds */
    int64_t tolerance;  /* seconds, both ways, inclusive; negative disables the check */
} linqwh_verify_opts;

typedef struct linqwh_result {
    linqwh_scheme scheme;  /* STANDARD or LEGACY: the scheme that was checked */
    size_t key_index;      /* 0-based index of the matching secret */
    int64_t timestamp;     /* the signed timestamp */
    int64_t skew;          /* TIMESTAMP_TOO_OLD / TOO_NEW with a VALID signature:
                            * timestamp - now in seconds (negative: the delivery
                            * is older than this host's clock says; positive:
                            * it is ahead of it); 0 in every other case */
    const char *detail;    /* on failure: a static human-readable explanation */
} linqwh_result;

/*
 * One-shot verification of a body held in memory.
 *
 * The signature is checked even when the timestamp is outside the tolerance
 * (the comparison stays constant-time; a stale delivery costs one HMAC, as a
 * fresh one does). A timestamp outside the window is still refused with
 * TIMESTAMP_TOO_OLD / TOO_NEW either way; when the signature is valid,
 * out->skew says by how much the clocks disagree, so that a host whose clock
 * is off can say so (Linq does not retry a 4xx answer: every event would be
 * lost silently). The skew is only reported for authentic deliveries, so it
 * tells an unauthenticated sender nothing.
 */
linqwh_status linqwh_verify(const linqwh_keyring *kr, const linqwh_headers *h,
                            const void *body, size_t body_len,
                            const linqwh_verify_opts *opts,
                            linqwh_result *out) LINQWH_API;

/* Incremental verification: parse headers and check the timestamp in
 * begin (errors are reported there, before any body is read, with their
 * detail in *res when res is not NULL; no skew, as no signature has been
 * checked yet), feed the body in chunks, then finish. The context copies what
 * it needs from the headers. */
typedef struct linqwh_verify_ctx linqwh_verify_ctx;
linqwh_status linqwh_verify_begin(linqwh_verify_ctx **out, const linqwh_keyring *kr,
                                  const linqwh_headers *h,
                                  const linqwh_verify_opts *opts,
                                  linqwh_result *res) LINQWH_API;
linqwh_status linqwh_verify_update(linqwh_verify_ctx *ctx, const void *data,
                                   size_t len) LINQWH_API;
linqwh_status linqwh_verify_finish(linqwh_verify_ctx *ctx, linqwh_result *out) LINQWH_API;
void linqwh_verify_ctx_free(linqwh_verify_ctx *ctx) LINQWH_API;

/* Verifies the body stored in a file, reading it in chunks. Header errors
 * come first; the timestamp window is reported after the signature, as by
 * linqwh_verify (with the skew). */
linqwh_status linqwh_verify_file(const linqwh_keyring *kr, const linqwh_headers *h,
                                 const char *path, const linqwh_verify_opts *opts,
                                 linqwh_result *out) LINQWH_API;

/* ---- signing (tests, emulators, senders) ----------------------------------- */

/* out receives "v1,<base64>" NUL-terminated, signed with key key_index. */
linqwh_status linqwh_sign_standard(const linqwh_keyring *kr, size_t key_index,
                                   const char *id, size_t id_len,
                                   const char *timestamp, size_t timestamp_len,
                                   const void *body, size_t body_len,
                                   char out[LINQWH_STANDARD_SIG_SIZE]) LINQWH_API;
/* out receives 64 lowercase hex chars, NUL-terminated. */
linqwh_status linqwh_sign_legacy(const linqwh_keyring *kr, size_t key_index,
                                 const char *timestamp, size_t timestamp_len,
                                 const void *body, size_t body_len,
                                 char out[LINQWH_LEGACY_SIG_SIZE]) LINQWH_API;

/* A new signing secret as Linq issues them: "whsec_" + padded standard
 * base64 of 32 random bytes, NUL-terminated (emulators, tests). */
#define LINQWH_SECRET_SIZE 51
linqwh_status linqwh_secret_generate(char out[LINQWH_SECRET_SIZE]) LINQWH_API;

/* Fills buf with n cryptographically secure random bytes (OpenSSL RAND_bytes). */
linqwh_status linqwh_random_bytes(void *buf, size_t n) LINQWH_API;

#ifdef __cplusplus
}
#endif
#endif /* LINQWEBHOOKS_H */
