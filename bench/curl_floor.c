/*
 * bench/curl_floor.c -- the floor for bench/client.lua: the same sequential
 * GETs with one reused libcurl easy handle (keep-alive), configured once with
 * the same options and request headers as linqwebhooks' handle, the body
 * collected into a buffer, response headers ignored. No JSON, no Lua.
 *
 * usage: curl_floor URL ITERATIONS ROUNDS ["Header: value" ...]
 * prints one line: "floor_ns <best ns per request over the rounds>"
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

typedef struct {
    char *data;
    size_t len, cap;
} buf;

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    buf *b = (buf *)ud;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        char *np;
        while (cap < b->len + len + 1)
            cap *= 2;
        np = realloc(b->data, cap);
        if (np == NULL)
            return 0;
        b->data = np;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    CURL *c;
    struct curl_slist *hdrs = NULL;
    buf b = { NULL, 0, 0 };
    long iters, rounds, r, i, status = 0;
    double best = 1e300;
    int k;
    static char errbuf[CURL_ERROR_SIZE];

    if (argc < 4) {
        fprintf(stderr, "usage: %s URL ITERATIONS ROUNDS [HEADER...]\n", argv[0]);
        return 2;
    }
    iters = strtol(argv[2], NULL, 10);
    rounds = strtol(argv[3], NULL, 10);
    if (iters < 1 || rounds < 1)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c = curl_easy_init();
    if (c == NULL)
        return 1;
    for (k = 4; k < argc; k++)
        hdrs = curl_slist_append(hdrs, argv[k]);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, argv[1]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)&b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);

    /* warm-up: open the connection */
    for (i = 0; i < 100; i++) {
        b.len = 0;
        if (curl_easy_perform(c) != CURLE_OK)
            return 1;
    }
    for (r = 0; r < rounds; r++) {
        double t0 = now_ns(), dt;
        for (i = 0; i < iters; i++) {
            CURLcode rc;
            b.len = 0;
            rc = curl_easy_perform(c);
            if (rc != CURLE_OK) {
                fprintf(stderr, "curl_floor: %s\n", curl_easy_strerror(rc));
                return 1;
            }
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (status != 200 || b.len == 0) {
                fprintf(stderr, "curl_floor: unexpected status %ld\n", status);
                return 1;
            }
        }
        dt = (now_ns() - t0) / (double)iters;
        if (dt < best)
            best = dt;
    }
    printf("floor_ns %.0f\n", best);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(b.data);
    curl_global_cleanup();
    return 0;
}
