/*
 * http.c -- linqwebhooks.http: the libcurl transport for the API client
 * (tooling and plain-Lua hosts; nginx workers never load it).
 *
 *   local http = require "linqwebhooks.http"
 *   http.curl_version -> "8.x.y";  http.sleep(seconds) (blocking)
 *   local h = http.http_client{ timeout_ms = 60000, connect_timeout_ms = 10000,
 *                               ca_file = nil, max_body = 8388608, raw_headers = false,
 *                               proxy = nil }
 *   -- proxy: nil = libcurl's environment (https_proxy, ALL_PROXY, NO_PROXY...),
 *   --   "" = never a proxy, or a proxy URL
 *   local status, headers, body, http_version = h:request(method, url, headers, body, opts)
 *   -- headers: { [lowercased name] = value } (repeated headers joined with ", "),
 *   --   or with raw_headers = true one string of "name:value\n" lines (names
 *   --   lowercased, values trimmed), for callers that parse it lazily
 *   -- opts: { timeout_ms =, connect_timeout_ms = } overrides for this request
 *   -- failure: nil, kind ("timeout" | "connection" | "too_large"), message, detail
 *   --   detail: "tls" (certificate/TLS setup problem: permanent), "not_sent"
 *   --   (failed before the request left: safe to retry) or nothing
 *   h:close()   -- idempotent; also __gc / __close
 *
 * One easy handle per object, reused for every request so connections stay
 * alive. All Lua arguments are read and checked before libcurl is called;
 * the libcurl callbacks only append to C buffers owned by the userdata (no
 * Lua call can happen inside curl_easy_perform), and results are pushed after
 * it returns. Everything allocated for a request hangs off the userdata, so
 * a Lua error (e.g. out of memory while pushing) leaks nothing: the next
 * request or the destroy frees it.
 *
 * curl_global_init runs once, from luaopen_linqwebhooks_http. It is not safe
 * to load the module concurrently from several threads of one process with
 * libcurl builds lacking CURL_VERSION_THREADSAFE (7.84+ has it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include "lwh_lua.h"

#define LWH_HTTP_CLASS "linqwebhooks.HttpClient"
#define LWH_HTTP_DEFAULT_MAX_BODY (8L * 1024 * 1024)
#define LWH_HTTP_MAX_HEADER_BYTES (256L * 1024)
/* longest request header line ("Name: value"), e.g. an 8 KB API key */
#define LWH_HTTP_MAX_REQ_HEADER 16384

typedef struct {
    char *data;
    size_t len, cap;
} lwh_buf;

typedef struct {
    CURL *curl;
    struct curl_slist *req_headers; /* owned; freed before the next request */
    lwh_buf body;                   /* response body */
    lwh_buf hdrs;                   /* "name:value\n" lines, names lowercased */
    int raw_headers;                /* return hdrs as one string, not a table */
    lwh_buf hkey, hnew;             /* request header lines of the last / this request */
    lwh_buf lasturl;                /* options already set on the handle: */
    struct curl_slist *set_headers;
    long set_timeout, set_connect;
    int last_plain_get;
    size_t max_body;
    int too_large;                  /* body cap exceeded during the transfer */
    int hdr_overflow;
    long timeout_ms, connect_timeout_ms;
    int no_body;                    /* HEAD: Content-Length describes no body */
    char errbuf[CURL_ERROR_SIZE];
} lwh_http;

/* Appends n uninitialised bytes; returns a pointer to them (valid until the
 * next append) or NULL. */
static char *lwh_buf_reserve(lwh_buf *b, size_t n)
{
    size_t at = b->len;
    if (n > (size_t)-1 - b->len - 1)
        return NULL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        np = realloc(b->data, cap);
        if (np == NULL)
            return NULL;
        b->data = np;
        b->cap = cap;
    }
    b->len += n;
    b->data[b->len] = '\0';
    return b->data + at;
}

static int lwh_buf_add(lwh_buf *b, const char *p, size_t n)
{
    char *dst = lwh_buf_reserve(b, n);
    if (dst == NULL)
        return -1;
    memcpy(dst, p, n);
    return 0;
}

static void lwh_buf_free(lwh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Keeps the allocation for reuse (keep-alive loops). Large buffers are
 * released so one big response does not pin memory. */
static void lwh_buf_reset(lwh_buf *b)
{
    if (b->cap > 256 * 1024)
        lwh_buf_free(b);
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static size_t lwh_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    lwh_http *h = (lwh_http *)ud;
    size_t n = size * nmemb;
    if (h->body.len + n > h->max_body) {
        h->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (lwh_buf_add(&h->body, ptr, n) != 0)
        return 0;
    return n;
}

static size_t lwh_header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    lwh_http *h = (lwh_http *)ud;
    size_t n = size * nmemb, i, nend, vstart, vend;
    char lower[128];

    /* A new status line starts a new header block (100 Continue, proxy
     * CONNECT): only the last block is kept. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        h->hdrs.len = 0;
        return n;
    }
    for (nend = 0; nend < n && ptr[nend] != ':'; nend++)
        ;
    if (nend == n || nend == 0 || nend >= sizeof lower)
        return n; /* blank line, folded continuation or oversized name: ignored */
    if (h->hdrs.len + n > (size_t)LWH_HTTP_MAX_HEADER_BYTES) {
        h->hdr_overflow = 1;
        return 0;
    }
    vstart = nend + 1;
    while (vstart < n && lwh_is_space(ptr[vstart]))
        vstart++;
    vend = n;
    while (vend > vstart && lwh_is_space(ptr[vend - 1]))
        vend--;
    /* one reservation, then "name:value\n" written in place */
    {
        size_t vl = vend - vstart;
        char *dst = lwh_buf_reserve(&h->hdrs, nend + vl + 2);
        if (dst == NULL)
            return 0;
        for (i = 0; i < nend; i++) {
            char c = ptr[i];
            dst[i] = lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        dst[nend] = ':';
        memcpy(dst + nend + 1, ptr + vstart, vl);
        dst[nend + 1 + vl] = '\n';
    }
    /* Early refusal when the announced length is already over the cap. */
    if (!h->no_body && nend == 14 && memcmp(lower, "content-length", 14) == 0) {
        char num[32];
        size_t vl = vend - vstart;
        if (vl > 0 && vl < sizeof num) {
            char *endp;
            unsigned long long cl;
            memcpy(num, ptr + vstart, vl);
            num[vl] = '\0';
            cl = strtoull(num, &endp, 10);
            if (*endp == '\0' && cl > (unsigned long long)h->max_body) {
                h->too_large = 1;
                return 0;
            }
        }
    }
    return n;
}

static lwh_http *lwh_check_http(lua_State *L)
{
    lwh_http *h = (lwh_http *)luaL_checkudata(L, 1, LWH_HTTP_CLASS);
    if (h->curl == NULL)
        luaL_error(L, "linqwebhooks http client: used after close()");
    return h;
}

static int lwh_http_destroy(lua_State *L)
{
    lwh_http *h = (lwh_http *)luaL_checkudata(L, 1, LWH_HTTP_CLASS);
    if (h->curl) {
        curl_easy_cleanup(h->curl);
        h->curl = NULL;
    }
    if (h->req_headers) {
        curl_slist_free_all(h->req_headers);
        h->req_headers = NULL;
    }
    lwh_buf_free(&h->body);
    lwh_buf_free(&h->hdrs);
    lwh_buf_free(&h->hkey);
    lwh_buf_free(&h->hnew);
    lwh_buf_free(&h->lasturl);
    return 0;
}

static int lwh_http_tostring(lua_State *L)
{
    lwh_http *h = (lwh_http *)luaL_checkudata(L, 1, LWH_HTTP_CLASS);
    if (h->curl)
        lua_pushfstring(L, "%s (%p)", LWH_HTTP_CLASS, (void *)h);
    else
        lua_pushfstring(L, "%s (closed)", LWH_HTTP_CLASS);
    return 1;
}

/* Reads an optional non-negative integer field of the table at idx. */
static long lwh_opt_ms(lua_State *L, int idx, const char *name, long def)
{
    long v = def;
    lua_getfield(L, idx, name);
    if (!lua_isnil(L, -1)) {
        lua_Number n;
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "linqwebhooks http client: option '%s' must be a number", name);
        n = lua_tonumber(L, -1);
        if (!(n >= 0 && n <= 2147483647.0))
            luaL_error(L, "linqwebhooks http client: option '%s' out of range", name);
        v = (long)n;
    }
    lua_pop(L, 1);
    return v;
}

static int lwh_http_new(lua_State *L)
{
    lwh_http *h;
    const char *ca_file = NULL, *proxy = NULL;
    long max_body;
    int raw_headers;
    CURL *c;

    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    else {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    lua_settop(L, 1);
    /* all Lua reads first */
    max_body = lwh_opt_ms(L, 1, "max_body", LWH_HTTP_DEFAULT_MAX_BODY);
    lua_getfield(L, 1, "raw_headers");
    raw_headers = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "ca_file");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "linqwebhooks http client: option 'ca_file' must be a string");
        ca_file = lua_tostring(L, -1); /* kept alive on the stack (index 2) */
    }
    lua_getfield(L, 1, "proxy");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "linqwebhooks http client: option 'proxy' must be a string");
        proxy = lua_tostring(L, -1); /* kept alive on the stack (index 3) */
    }

    h = (lwh_http *)lwh_newuserdata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    h->max_body = (size_t)max_body;
    h->set_timeout = h->set_connect = -1;
    h->raw_headers = raw_headers;
    h->timeout_ms = lwh_opt_ms(L, 1, "timeout_ms", 60000);
    h->connect_timeout_ms = lwh_opt_ms(L, 1, "connect_timeout_ms", 10000);
    if (h->timeout_ms < 1) /* 0 = "never time out" to libcurl */
        h->timeout_ms = 1;
    if (h->connect_timeout_ms < 1)
        h->connect_timeout_ms = 1;
    lwh_setmetatable(L, LWH_HTTP_CLASS);

    c = curl_easy_init();
    if (c == NULL)
        return luaL_error(L, "linqwebhooks http client: curl_easy_init failed");
    h->curl = c; /* owned by the userdata from here on */

    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, lwh_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, lwh_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, (void *)h);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* decoded size is what max_body caps */
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* proxy: nil = libcurl's environment variables (https_proxy, ALL_PROXY,
     * NO_PROXY, ...); "" = never a proxy; else that proxy URL */
    if (proxy != NULL && curl_easy_setopt(c, CURLOPT_PROXY, proxy) != CURLE_OK)
        return luaL_error(L, "linqwebhooks http client: option 'proxy' not supported by this libcurl");
    if (ca_file != NULL && curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) != CURLE_OK)
        return luaL_error(L, "linqwebhooks http client: ca_file not supported by this libcurl");
    return 1;
}

static int lwh_hdr_ok(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

/* The arguments of one h:request call, read from the Lua stack before
 * libcurl is touched. `body` stays anchored at stack index 5. */
typedef struct {
    const char *method, *url, *body;
    size_t ulen, blen;
    long timeout_ms, connect_ms;
    int is_head;
} lwh_http_args;

/* Reads and checks every argument, header table included (raises on bad
 * input; allocates nothing). */
static void lwh_http_read_args(lua_State *L, const lwh_http *h, lwh_http_args *a)
{
    size_t mlen;
    a->method = luaL_checklstring(L, 2, &mlen);
    a->url = luaL_checklstring(L, 3, &a->ulen);
    a->body = NULL;
    a->blen = 0;
    a->timeout_ms = h->timeout_ms;
    a->connect_ms = h->connect_timeout_ms;
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    if (!lua_isnoneornil(L, 5))
        a->body = luaL_checklstring(L, 5, &a->blen);
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        a->timeout_ms = lwh_opt_ms(L, 6, "timeout_ms", a->timeout_ms);
        a->connect_ms = lwh_opt_ms(L, 6, "connect_timeout_ms", a->connect_ms);
        if (a->timeout_ms < 1)
            a->timeout_ms = 1;
        if (a->connect_ms < 1)
            a->connect_ms = 1;
    }
    if (strcmp(a->method, "GET") != 0 && strcmp(a->method, "POST") != 0
        && strcmp(a->method, "PUT") != 0 && strcmp(a->method, "PATCH") != 0
        && strcmp(a->method, "DELETE") != 0 && strcmp(a->method, "HEAD") != 0)
        luaL_argerror(L, 2, "unsupported HTTP method");
    if (a->ulen == 0 || strlen(a->url) != a->ulen)
        luaL_argerror(L, 3, "url is empty or contains a NUL byte");
    a->is_head = strcmp(a->method, "HEAD") == 0;
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4) != 0) {
            size_t kl, vl;
            const char *k, *v;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, 4, "header names and values must be strings");
            k = lua_tolstring(L, -2, &kl);
            v = lua_tolstring(L, -1, &vl);
            if (kl == 0 || memchr(k, ':', kl) != NULL || !lwh_hdr_ok(k, kl) || !lwh_hdr_ok(v, vl))
                luaL_argerror(L, 4, "invalid header name or value (CR, LF, NUL or ':')");
            if (kl + vl + 3 > LWH_HTTP_MAX_REQ_HEADER)
                luaL_argerror(L, 4, "header too long");
            lua_pop(L, 1);
        }
    }
}

/* Builds h->req_headers from the (checked) table at index 4. The lines
 * ("Name: value\0" ...) are collected into hnew; when they equal the
 * previous request's (hkey), the curl_slist is reused: no allocation per
 * request in a keep-alive loop. No Lua error possible (string keys and
 * values only, already checked). Returns 0, or -1 when out of memory. */
static int lwh_http_build_headers(lua_State *L, lwh_http *h)
{
    int oom = 0;
    h->hnew.len = 0;
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4) != 0) {
            size_t kl, vl;
            const char *k = lua_tolstring(L, -2, &kl);
            const char *v = lua_tolstring(L, -1, &vl);
            if (!oom) {
                if (vl == 0) /* curl's syntax for "send this header empty" */
                    oom = lwh_buf_add(&h->hnew, k, kl) || lwh_buf_add(&h->hnew, ";", 2);
                else
                    oom = lwh_buf_add(&h->hnew, k, kl) || lwh_buf_add(&h->hnew, ": ", 2)
                          || lwh_buf_add(&h->hnew, v, vl + 1);
            }
            lua_pop(L, 1);
        }
    }
    /* never wait for 100-continue */
    if (!oom)
        oom = lwh_buf_add(&h->hnew, "Expect:", 8);
    if (!oom && !(h->req_headers != NULL && h->hkey.len == h->hnew.len
                  && memcmp(h->hkey.data, h->hnew.data, h->hnew.len) == 0)) {
        lwh_buf tmp;
        size_t off = 0;
        if (h->req_headers) {
            curl_slist_free_all(h->req_headers);
            h->req_headers = NULL;
        }
        while (!oom && off < h->hnew.len) {
            struct curl_slist *nl = curl_slist_append(h->req_headers, h->hnew.data + off);
            if (nl == NULL)
                oom = 1;
            else
                h->req_headers = nl;
            off += strlen(h->hnew.data + off) + 1;
        }
        tmp = h->hkey;
        h->hkey = h->hnew;
        h->hnew = tmp;
        if (oom && h->req_headers) {
            curl_slist_free_all(h->req_headers);
            h->req_headers = NULL;
        }
    }
    if (oom) {
        h->hkey.len = 0;
        return -1;
    }
    return 0;
}

/* Sets the handle's options for this request, only those that differ from
 * the previous request's (keep-alive loops of identical GETs touch nothing
 * but the handle). libcurl calls only. */
static void lwh_http_set_options(lwh_http *h, const lwh_http_args *a)
{
    CURL *c = h->curl;
    int has_body = a->body != NULL;
    int plain_get = !has_body && strcmp(a->method, "GET") == 0;

    if (h->lasturl.len != a->ulen || memcmp(h->lasturl.data, a->url, a->ulen) != 0) {
        h->lasturl.len = 0;
        if (lwh_buf_add(&h->lasturl, a->url, a->ulen) != 0)
            h->lasturl.len = (size_t)-1 / 2; /* never matches: set every time */
        curl_easy_setopt(c, CURLOPT_URL, a->url);
    }
    if (h->set_headers != h->req_headers) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->req_headers);
        h->set_headers = h->req_headers;
    }
    if (h->set_timeout != a->timeout_ms) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
        h->set_timeout = a->timeout_ms;
    }
    if (h->set_connect != a->connect_ms) {
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, a->connect_ms);
        h->set_connect = a->connect_ms;
    }
    if (!(plain_get && h->last_plain_get)) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
        if (a->is_head) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (!has_body) {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, plain_get ? NULL : a->method);
        } else {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->blen);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body); /* anchored at index 5 */
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                             strcmp(a->method, "POST") == 0 ? NULL : a->method);
        }
    }
    h->last_plain_get = plain_get;
    h->no_body = a->is_head;
}

/* Pushes nil, kind, message[, detail] for a failed transfer. */
static int lwh_http_push_failure(lua_State *L, lwh_http *h, CURLcode rc)
{
    lua_pushnil(L);
    if (h->too_large) {
        lua_pushliteral(L, "too_large");
        lua_pushfstring(L, "response body exceeds the limit of %d bytes", (int)h->max_body);
    } else if (h->hdr_overflow) {
        lua_pushliteral(L, "connection");
        lua_pushfstring(L, "protocol error: the response header block is longer than %d bytes",
                        (int)LWH_HTTP_MAX_HEADER_BYTES);
        lwh_buf_reset(&h->body);
        lua_pushliteral(L, "too_large"); /* a limit: not retried */
        return 4;
    } else if (rc == CURLE_OUT_OF_MEMORY) {
        /* libcurl reports its own line limits (a header line over 100 KB, a
         * chunk-size or trailer line) as out of memory: not retried */
        lua_pushliteral(L, "connection");
        lua_pushfstring(L, "protocol error: a response line over libcurl's limits (%s)",
                        h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
        lwh_buf_reset(&h->body);
        lua_pushliteral(L, "too_large");
        return 4;
    } else {
        lua_pushstring(L, rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connection");
        if (h->errbuf[0])
            lua_pushstring(L, h->errbuf);
        else
            lua_pushstring(L, curl_easy_strerror(rc));
    }
    lwh_buf_reset(&h->body);
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        lua_pushliteral(L, "tls"); /* permanent: retrying cannot help */
        return 4;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        lua_pushliteral(L, "not_sent"); /* failed before the request was sent */
        return 4;
    default:
        return 3;
    }
}

/* Pushes the collected header lines as { [name] = value } (repeated names
 * joined with ", "). */
static void lwh_http_push_header_table(lua_State *L, const lwh_http *h)
{
    size_t off = 0;
    lua_createtable(L, 0, 8);
    while (off < h->hdrs.len) {
        const char *k = h->hdrs.data + off;
        const char *colon = memchr(k, ':', h->hdrs.len - off);
        const char *nl = colon ? memchr(colon, '\n', h->hdrs.len - off - (size_t)(colon - k)) : NULL;
        if (colon == NULL || nl == NULL)
            break;
        off = (size_t)(nl - h->hdrs.data) + 1;
        lua_pushlstring(L, k, (size_t)(colon - k));
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushlstring(L, colon + 1, (size_t)(nl - colon - 1));
        } else { /* repeated header: join as HTTP allows */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, colon + 1, (size_t)(nl - colon - 1));
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
}

/* Pushes status, headers, body, http_version of a completed transfer. */
static int lwh_http_push_result(lua_State *L, lwh_http *h)
{
    long status = 0, httpver = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h->curl, CURLINFO_HTTP_VERSION, &httpver);
    lua_pushinteger(L, (lua_Integer)status);
    if (h->raw_headers)
        lua_pushlstring(L, h->hdrs.data ? h->hdrs.data : "", h->hdrs.len);
    else
        lwh_http_push_header_table(L, h);
    lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
    lua_pushnumber(L, httpver == CURL_HTTP_VERSION_2_0 ? 2.0
                      : httpver == CURL_HTTP_VERSION_1_0 ? 1.0 : 1.1);
    lwh_buf_reset(&h->body);
    return 4;
}

/* h:request(method, url, headers, body, opts): read and check every
 * argument (may raise), build the C request state, perform (no Lua call
 * can happen inside), then push the result. */
static int lwh_http_request(lua_State *L)
{
    lwh_http *h = lwh_check_http(L);
    lwh_http_args a;
    CURLcode rc;

    lwh_http_read_args(L, h, &a);

    /* from here on no Lua error until after perform */
    lwh_buf_reset(&h->body);
    lwh_buf_reset(&h->hdrs);
    h->too_large = 0;
    h->hdr_overflow = 0;
    h->errbuf[0] = '\0';
    if (lwh_http_build_headers(L, h) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "connection");
        lua_pushliteral(L, "out of memory building request headers");
        return 3;
    }
    lwh_http_set_options(h, &a);

    rc = curl_easy_perform(h->curl);

    if (a.body != NULL) /* the body string is only anchored during this call */
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    if (rc != CURLE_OK)
        return lwh_http_push_failure(L, h, rc);
    return lwh_http_push_result(L, h);
}

/* http.sleep(seconds): blocking sleep used between client retries outside
 * nginx (no Lua call can be interrupted by it). */
static int lwh_http_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts, rem;
    if (!(s > 0))
        return 0;
    if (s > 3600)
        s = 3600;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
    return 0;
}

static int lwh_curl_inited = 0;

int luaopen_linqwebhooks_http(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "request", lwh_http_request },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__tostring", lwh_http_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg fns[] = {
        { "http_client", lwh_http_new },
        { "sleep", lwh_http_sleep },
        { NULL, NULL },
    };
    if (!lwh_curl_inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
            lwh_curl_inited = 1;
    }
    lwh_new_class(L, LWH_HTTP_CLASS, methods, meta, lwh_http_destroy);
    lua_newtable(L);
    lwh_setfuncs(L, fns, 0);
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
