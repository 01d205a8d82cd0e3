/*
 * embed.c -- a C host (no Lua) verifying Linq webhook deliveries with the
 * public header only.
 *
 *   make build/lib/liblinqwebhooks.a
 *   cc -std=c99 -Icsrc -o build/examples/embed examples/embed.c \
 *      build/lib/liblinqwebhooks.a -lcrypto
 *   ./build/examples/embed
 *
 * It checks a delivery signed with Linq's documented example secret
 * (reference vector B), then the same delivery with a tampered body, an old
 * timestamp and the legacy header set. Exits 0 when every check gives the
 * expected result.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "linqwebhooks.h"

static int failures = 0;

static void expect(const char *what, linqwh_status got, linqwh_status want)
{
    int ok = got == want;
    printf("%-44s -> %-22s %s\n", what, linqwh_status_reason(got), ok ? "(as expected)" : "UNEXPECTED");
    if (!ok)
        failures++;
}

int main(void)
{
    /* In a real host these come from the HTTP request and the secret from
     * configuration (e.g. the LINQ_WEBHOOK_SECRET environment variable). */
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE=";
    const char *body =
        "{\"api_version\":\"v3\",\"webhook_version\":\"2026-02-03\","
        "\"event_type\":\"chat.typing_indicator.started\","
        "\"event_id\":\"550e8400-e29b-41d4-a716-446655440000\","
        "\"created_at\":\"2026-02-05T19:31:13.736444093Z\","
        "\"trace_id\":\"8af9171a45022df2eb74ba4e4c83be0f\",\"partner_id\":\"your-partner-id\","
        "\"data\":{\"chat_id\":\"8f392755-6865-4b18-880a-227f9d8b458f\"}}";
    const char *id = "550e8400-e29b-41d4-a716-446655440000";
    const char *ts = "1770319873";
    const char *sig = "v1,eCUsk9EuIaE++/OYithnwFVlswP2DG3QlxyaLAQNSYU=";
    const char *legacy_sig = "29bce46df6597658c443e285ee2ea1c4606d503c8cba04f8d59dc358682af4ee";

    linqwh_keyring *kr = NULL;
    size_t len = strlen(secret);
    char errbuf[128];
    linqwh_status st = linqwh_keyring_new(&kr, &secret, &len, 1, errbuf, sizeof errbuf);
    if (st != LINQWH_OK) {
        fprintf(stderr, "bad secret: %s\n", errbuf);
        return 1;
    }
    printf("linqwebhooks %s: verifying deliveries from C\n", linqwh_version());

    linqwh_headers h;
    memset(&h, 0, sizeof h);
    h.id = id;
    h.id_len = strlen(id);
    h.timestamp = ts;
    h.timestamp_len = strlen(ts);
    h.signature = sig;
    h.signature_len = strlen(sig);

    /* the vector's timestamp is in the past: use it as "now" for the replay window */
    linqwh_verify_opts opts = { LINQWH_SCHEME_AUTO, 1770319873, 300 };
    linqwh_result res;

    st = linqwh_verify(kr, &h, body, strlen(body), &opts, &res);
    expect("standard headers, signed body", st, LINQWH_OK);
    if (st == LINQWH_OK)
        printf("  scheme %s, key #%zu, timestamp %lld\n",
               res.scheme == LINQWH_SCHEME_STANDARD ? "standard" : "legacy",
               res.key_index + 1, (long long)res.timestamp);

    char tampered[512];
    snprintf(tampered, sizeof tampered, "%s", body);
    tampered[strlen(tampered) - 3] = '0'; /* one byte of the chat id */
    st = linqwh_verify(kr, &h, tampered, strlen(tampered), &opts, &res);
    expect("standard headers, tampered body", st, LINQWH_NO_MATCHING_SIGNATURE);

    linqwh_verify_opts later = opts;
    later.now = (int64_t)time(NULL); /* today: the 2026-02-05 delivery is stale */
    st = linqwh_verify(kr, &h, body, strlen(body), &later, &res);
    expect("standard headers, replayed later", st,
           later.now > opts.now + 300 ? LINQWH_TIMESTAMP_TOO_OLD : LINQWH_OK);
    /* the signature is authentic, so the result says how far the clocks
     * disagree (timestamp - now): a host whose clock is off can log it */
    if (res.skew != 0)
        printf("  authentic but %lld s old: %s\n", (long long)-res.skew, res.detail);

    linqwh_headers legacy;
    memset(&legacy, 0, sizeof legacy);
    legacy.legacy_timestamp = ts;
    legacy.legacy_timestamp_len = strlen(ts);
    legacy.legacy_signature = legacy_sig;
    legacy.legacy_signature_len = strlen(legacy_sig);
    st = linqwh_verify(kr, &legacy, body, strlen(body), &opts, &res);
    expect("legacy X-Webhook-* headers, signed body", st, LINQWH_OK);

    /* incremental form: the body arrives in chunks */
    linqwh_verify_ctx *ctx = NULL;
    st = linqwh_verify_begin(&ctx, kr, &h, &opts, &res);
    if (st == LINQWH_OK) {
        size_t n = strlen(body), half = n / 2;
        linqwh_verify_update(ctx, body, half);
        linqwh_verify_update(ctx, body + half, n - half);
        st = linqwh_verify_finish(ctx, &res);
    }
    linqwh_verify_ctx_free(ctx);
    expect("standard headers, body in two chunks", st, LINQWH_OK);

    linqwh_keyring_free(kr);
    if (failures) {
        printf("%d unexpected result(s)\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
