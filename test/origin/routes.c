/*
 * The endpoints of the test origin (README.md lists them). Every handler
 * queues its whole response with the or_out_* calls and ends it with
 * or_conn_end_response(), except /delay (ends when its timer fires) and
 * /bytes (ends when the last batch is queued by or_route_stream_pump).
 */
#include "origin.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OR_PATTERN repeated, so that any offset modulo OR_PATTERN_LEN starts a
 * chunk of OR_STREAM_CHUNK pattern bytes. Referenced by writes, never copied. */
static char g_pattern[OR_STREAM_CHUNK + OR_PATTERN_LEN];
static int g_pattern_ready;

/* Scratch space for bodies whose length must be known before the head. */
static or_buf_t g_scratch;

static const char *pattern_at(uint64_t off)
{
    if (!g_pattern_ready) {
        for (size_t i = 0; i < sizeof g_pattern; i++)
            g_pattern[i] = OR_PATTERN[i % OR_PATTERN_LEN];
        g_pattern_ready = 1;
    }
    return g_pattern + off % OR_PATTERN_LEN;
}

/* ---- scratch buffer ---- */

static void sb_append(const void *p, size_t n)
{
    if (g_scratch.cap - g_scratch.len < n) {
        size_t cap = g_scratch.cap ? g_scratch.cap : 4096;
        while (cap - g_scratch.len < n)
            cap *= 2;
        char *d = realloc(g_scratch.data, cap);
        if (d == NULL) {
            fprintf(stderr, "origin: out of memory\n");
            abort();
        }
        g_scratch.data = d;
        g_scratch.cap = cap;
    }
    memcpy(g_scratch.data + g_scratch.len, p, n);
    g_scratch.len += n;
}

static void sb_str(const char *s)
{
    sb_append(s, strlen(s));
}

static void sb_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sb_printf(const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_append(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string. Control characters, DEL and every byte >= 0x80 become
 * \u00XX of the byte value, so the output is ASCII and always valid JSON
 * (Python: s.encode("latin-1") gives back the bytes). */
static void sb_json_str(const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    sb_append("\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            continue;
        sb_append(p + run, i - run);
        run = i + 1;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            sb_append(esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sb_append(esc, 6);
        }
    }
    sb_append(p + run, n - run);
    sb_append("\"", 1);
}

/* ---- request helpers ---- */

static const char *req_str(const or_conn_t *c, uint32_t off)
{
    return c->req.head.data + off;
}

/* The first header (not trailer) named `name`, or NULL. */
static const or_field_t *req_header(const or_conn_t *c, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < c->req.nfields; i++) {
        const or_field_t *f = &c->req.fields[i];
        if (!f->is_trailer && f->name_len == n &&
            strncasecmp(req_str(c, f->name_off), name, n) == 0)
            return f;
    }
    return NULL;
}

/* Value of query parameter `key` (no decoding), or NULL. */
static const char *req_query(const or_conn_t *c, const char *key, size_t *len)
{
    const char *q = req_str(c, c->req.query_off), *end = q + c->req.query_len;
    size_t klen = strlen(key);

    if (c->req.query_len == 0)
        return NULL;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - q) >= klen && memcmp(q, key, klen) == 0 &&
            (q + klen == pe || q[klen] == '=')) {
            const char *v = q + klen == pe ? pe : q + klen + 1;
            *len = (size_t)(pe - v);
            return v;
        }
        q = amp ? amp + 1 : end;
    }
    return NULL;
}

static int query_is(const or_conn_t *c, const char *key, const char *value)
{
    size_t len;
    const char *v = req_query(c, key, &len);

    return v != NULL && len == strlen(value) && memcmp(v, value, len) == 0;
}

/* Decimal digits only, at most `max`. */
static int parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- response helpers ---- */

static const struct {
    int status;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {421, "Misdirected Request"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

static const char *reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (reasons[i].status == status)
            return reasons[i].text;
    }
    return "Status";
}

/* Status line, `headers` (complete lines), Content-Length unless clen < 0,
 * and the Connection header the request asks for when `is_conn_auto`. */
static void send_head(or_conn_t *c, int status, int64_t clen, const char *headers, int is_conn_auto)
{
    or_out_printf(c, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (headers != NULL)
        or_out_str(c, headers);
    if (clen >= 0)
        or_out_printf(c, "Content-Length: %" PRId64 "\r\n", clen);
    if (is_conn_auto) {
        if (!c->req.is_keep_alive)
            or_out_str(c, "Connection: close\r\n");
        else if (c->req.http_major == 1 && c->req.http_minor == 0)
            or_out_str(c, "Connection: keep-alive\r\n");
    }
    or_out_append(c, "\r\n", 2);
}

static void respond(or_conn_t *c, int status, const char *ctype, const char *body, size_t len)
{
    char hdr[128];

    snprintf(hdr, sizeof hdr, "Content-Type: %s\r\n", ctype);
    send_head(c, status, (int64_t)len, hdr, 1);
    if (!c->req.is_head)
        or_out_append(c, body, len);
    or_conn_end_response(c);
}

static void respond_text(or_conn_t *c, int status, const char *body)
{
    respond(c, status, "text/plain", body, strlen(body));
}

/* Write raw bytes, then close (the response is delimited by the close). */
static void respond_raw_close(or_conn_t *c, const char *raw)
{
    or_out_str(c, raw);
    c->close_mode = OR_CLOSE_GRACEFUL;
    c->resp = OR_RESP_NONE;
}

/* ---- endpoints ---- */

static void do_echo(or_conn_t *c)
{
    const or_request_t *r = &c->req;
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char mdhex[2 * EVP_MAX_MD_SIZE + 1];
    const char *method = llhttp_method_name((llhttp_method_t)r->method);

    if (r->is_hashing && EVP_DigestFinal_ex(c->md, md, &mdlen) != 1)
        mdlen = 0;
    for (unsigned int i = 0; i < mdlen; i++) {
        mdhex[2 * i] = hex[md[i] >> 4];
        mdhex[2 * i + 1] = hex[md[i] & 15];
    }
    mdhex[2 * mdlen] = '\0';

    g_scratch.len = 0;
    sb_str("{\"method\":");
    sb_json_str(method, strlen(method));
    sb_str(",\"target\":");
    sb_json_str(r->head.data, r->url_len);
    sb_printf(",\"version\":\"%u.%u\"", r->http_major, r->http_minor);
    for (int trailers = 0; trailers <= 1; trailers++) {
        int first = 1;
        sb_str(trailers ? "],\"trailers\":[" : ",\"headers\":[");
        for (size_t i = 0; i < r->nfields; i++) {
            const or_field_t *f = &r->fields[i];
            if (f->is_trailer != trailers)
                continue;
            sb_str(first ? "[" : ",[");
            first = 0;
            sb_json_str(req_str(c, f->name_off), f->name_len);
            sb_append(",", 1);
            sb_json_str(req_str(c, f->value_off), f->value_len);
            sb_append("]", 1);
        }
    }
    sb_printf("],\"body_sha256\":\"%s\",\"body_length\":%" PRIu64 ",\"connection_id\":%" PRIu64
              ",\"request_index\":%" PRIu64 "}\n",
              mdhex, r->body_len, c->id, c->nreq);
    respond(c, 200, "application/json", g_scratch.data, g_scratch.len);
}

static void do_bytes(or_conn_t *c)
{
    uint64_t n = c->req.arg;

    c->is_stream_chunked = query_is(c, "chunked", "1");
    if (c->is_stream_chunked)
        send_head(c, 200, -1,
                  "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n", 1);
    else
        send_head(c, 200, (int64_t)n, "Content-Type: application/octet-stream\r\n", 1);
    if (c->req.is_head) {
        or_conn_end_response(c);
        return;
    }
    c->resp = OR_RESP_STREAM;
    c->stream_off = 0;
    c->stream_left = n;
    or_route_stream_pump(c);
}

void or_route_stream_pump(or_conn_t *c)
{
    for (int i = 0; i < OR_STREAM_BATCH && c->stream_left > 0; i++) {
        size_t n = c->stream_left < OR_STREAM_CHUNK ? (size_t)c->stream_left : OR_STREAM_CHUNK;
        if (c->is_stream_chunked)
            or_out_printf(c, "%zx\r\n", n);
        or_out_static(c, pattern_at(c->stream_off), n);
        if (c->is_stream_chunked)
            or_out_append(c, "\r\n", 2);
        c->stream_off += n;
        c->stream_left -= n;
    }
    if (c->stream_left == 0) {
        if (c->is_stream_chunked)
            or_out_str(c, "0\r\n\r\n");
        or_conn_end_response(c);
    }
}

void or_route_delay_fire(or_conn_t *c)
{
    const or_field_t *tag = req_header(c, "x-tag");

    g_scratch.len = 0;
    sb_printf("delayed %" PRIu64, c->req.arg);
    if (tag != NULL) {
        sb_str(" tag=");
        sb_append(req_str(c, tag->value_off), tag->value_len);
    }
    sb_append("\n", 1);
    respond(c, 200, "text/plain", g_scratch.data, g_scratch.len);
}

static void do_chunked(or_conn_t *c)
{
    send_head(c, 200, -1,
              "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
              "Trailer: x-trailer-one, x-checksum\r\n",
              1);
    if (!c->req.is_head)
        or_out_str(c, "6\r\nhello \r\n8\r\nchunked \r\n6\r\nworld\n\r\n"
                      "0\r\nx-trailer-one: 1\r\nx-checksum: abc\r\n\r\n");
    or_conn_end_response(c);
}

static void do_status(or_conn_t *c)
{
    uint64_t n = c->req.arg;
    char body[32];

    if (c->req.route != OR_ROUTE_STATUS || n < 100 || n > 599) {
        respond_text(c, 400, "bad status\n");
        return;
    }
    snprintf(body, sizeof body, "status %u\n", (unsigned)n);
    if (n == 101) {
        /* An upgrade nobody asked for; the connection is useless afterwards. */
        respond_raw_close(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                             "Upgrade: h2gw-test\r\n\r\n");
    } else if (n < 200) {
        /* An interim response, then the final one. */
        or_out_printf(c, "HTTP/1.1 %u %s\r\n\r\n", (unsigned)n, reason((int)n));
        respond_text(c, 200, body);
    } else if (n == 204 || n == 304) {
        /* ?length=K: a Content-Length that announces no body here (RFC 9110
         * 8.6 forbids it in a 204; in a 304 it is the selected size). */
        size_t len;
        const char *v = req_query(c, "length", &len);
        uint64_t clen;
        if (v == NULL || parse_u64(v, len, UINT64_C(1) << 50, &clen) != 0)
            send_head(c, (int)n, -1, NULL, 1);
        else
            send_head(c, (int)n, (int64_t)clen, NULL, 1);
        or_conn_end_response(c);
    } else {
        respond_text(c, (int)n, body);
    }
}

/* N interim 103 responses, each with a preload Link and its index, then a
 * final 200. */
static void do_early_hints(or_conn_t *c)
{
    uint64_t n = c->req.arg;
    char body[32];

    for (uint64_t i = 1; i <= n; i++)
        or_out_printf(c,
                      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                      "X-Hint: %u\r\n\r\n",
                      (unsigned)i);
    snprintf(body, sizeof body, "early hints %u\n", (unsigned)n);
    respond_text(c, 200, body);
}

static void do_close_mid_body(or_conn_t *c)
{
    send_head(c, 200, 100000, "Content-Type: application/octet-stream\r\n", 0);
    if (!c->req.is_head)
        or_out_static(c, pattern_at(0), 1000);
    c->close_mode = OR_CLOSE_GRACEFUL;
}

/* Each is rejected by llhttp 8.1 in its default (strict) mode; the error it
 * gives is noted. Note that llhttp 8.1 accepts `Name : v` for names it does
 * not know, so kind=header uses Content-Length. */
static const struct {
    const char *kind, *raw;
} malformed[] = {
    /* HPE_UNEXPECTED_CONTENT_LENGTH */
    {"te-cl", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello"},
    /* HPE_INVALID_STATUS */
    {"status", "HTTP/1.1 abc OK\r\n\r\n"},
    /* HPE_INVALID_CHUNK_SIZE */
    {"chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
    /* HPE_INVALID_HEADER_TOKEN: space before the colon */
    {"header", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"},
    /* HPE_INVALID_HEADER_TOKEN: no colon */
    {"no-colon", "HTTP/1.1 200 OK\r\nX-No-Colon x\r\nContent-Length: 5\r\n\r\nhello"},
    /* HPE_UNEXPECTED_CONTENT_LENGTH: two different lengths */
    {"dup-cl", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
    /* HPE_INVALID_CONTENT_LENGTH */
    {"bad-cl", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"},
    /* HPE_INVALID_HEADER_TOKEN: bare LF line ends */
    {"lf", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"},
};

static void do_malformed(or_conn_t *c)
{
    const char *raw = malformed[0].raw;

    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        if (query_is(c, "kind", malformed[i].kind)) {
            raw = malformed[i].raw;
            break;
        }
    }
    respond_raw_close(c, raw);
}

static void do_headers(or_conn_t *c)
{
    send_head(c, 200, 8,
              c->req.is_keep_alive ? "Content-Type: text/plain\r\n"
                                     "Connection: keep-alive, x-hop\r\n"
                                     "Keep-Alive: timeout=5\r\n"
                                     "X-Hop: should-be-dropped\r\n"
                                     "Proxy-Connection: keep-alive\r\n"
                                     "Upgrade: h2c\r\n"
                                     "Set-Cookie: a=1; Path=/\r\n"
                                     "Set-Cookie: b=2; Path=/\r\n"
                                     "X-Mixed-Case: Value\r\n"
                                   : "Content-Type: text/plain\r\n"
                                     "Connection: close, x-hop\r\n"
                                     "Keep-Alive: timeout=5\r\n"
                                     "X-Hop: should-be-dropped\r\n"
                                     "Proxy-Connection: keep-alive\r\n"
                                     "Upgrade: h2c\r\n"
                                     "Set-Cookie: a=1; Path=/\r\n"
                                     "Set-Cookie: b=2; Path=/\r\n"
                                     "X-Mixed-Case: Value\r\n",
              0);
    if (!c->req.is_head)
        or_out_str(c, "headers\n");
    or_conn_end_response(c);
}

static void do_stats(or_conn_t *c)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"connections_accepted\":%" PRIu64 ",\"requests\":%" PRIu64
                     ",\"open_connections\":%" PRIu64 "}\n",
                     or_stats.connections_accepted, or_stats.requests, or_stats.open_connections);

    respond(c, 200, "application/json", body, (size_t)n);
}

void or_route_dispatch(or_conn_t *c)
{
    or_request_t *r = &c->req;

    or_stats.requests++;
    switch (r->route) {
    case OR_ROUTE_ECHO:
        do_echo(c);
        break;
    case OR_ROUTE_BYTES:
        do_bytes(c);
        break;
    case OR_ROUTE_DELAY:
        c->resp = OR_RESP_DELAY;
        or_conn_start_timer(c, OR_TIMER_DELAY, r->arg);
        break;
    case OR_ROUTE_CHUNKED:
        do_chunked(c);
        break;
    case OR_ROUTE_STATUS:
        do_status(c);
        break;
    case OR_ROUTE_CLOSE_MID_BODY:
        do_close_mid_body(c);
        break;
    case OR_ROUTE_MALFORMED:
        do_malformed(c);
        break;
    case OR_ROUTE_HEADERS:
        do_headers(c);
        break;
    case OR_ROUTE_CLOSE:
        r->is_keep_alive = 0;
        respond_text(c, 200, "bye\n");
        break;
    case OR_ROUTE_HTTP10:
        respond_raw_close(c, r->is_head ? "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                                          "Content-Length: 7\r\n\r\n"
                                        : "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                                          "Content-Length: 7\r\n\r\nhttp10\n");
        break;
    case OR_ROUTE_CLOSE_DELIMITED:
        respond_raw_close(c, r->is_head ? "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                        : "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                          "close delimited body\n");
        break;
    case OR_ROUTE_CONTINUE:
        respond_text(c, 200, "after continue\n");
        break;
    case OR_ROUTE_STATS:
        do_stats(c);
        break;
    case OR_ROUTE_RESET_STATS:
        or_stats.connections_accepted = 0;
        or_stats.requests = 0;
        respond_text(c, 200, "ok\n");
        break;
    case OR_ROUTE_DROP_IDLE:
        respond_text(c, 200, "ok\n");
        if (c->close_mode == OR_CLOSE_NONE)
            c->close_mode = OR_CLOSE_DROP_IDLE;
        break;
    case OR_ROUTE_EARLY_HINTS:
        do_early_hints(c);
        break;
    case OR_ROUTE_KILL_NEXT:
        or_kill_next = 1;
        respond_text(c, 200, "ok\n");
        break;
    case OR_ROUTE_BAD_ARG:
        respond_text(c, 400, "bad request\n");
        break;
    case OR_ROUTE_NOT_FOUND:
        respond_text(c, 404, "not found\n");
        break;
    }
}

void or_route_global_free(void)
{
    free(g_scratch.data);
    g_scratch = (or_buf_t){0};
}

/* ---- routing ---- */

static const struct {
    const char *path;
    or_route_t route;
} exact_routes[] = {
    {"/chunked", OR_ROUTE_CHUNKED},
    {"/close-mid-body", OR_ROUTE_CLOSE_MID_BODY},
    {"/malformed", OR_ROUTE_MALFORMED},
    {"/headers", OR_ROUTE_HEADERS},
    {"/close", OR_ROUTE_CLOSE},
    {"/http10", OR_ROUTE_HTTP10},
    {"/close-delimited", OR_ROUTE_CLOSE_DELIMITED},
    {"/continue", OR_ROUTE_CONTINUE},
    {"/stats", OR_ROUTE_STATS},
    {"/reset-stats", OR_ROUTE_RESET_STATS},
    {"/drop-idle", OR_ROUTE_DROP_IDLE},
    {"/kill-next", OR_ROUTE_KILL_NEXT},
};

static int has_prefix(const char *p, size_t n, const char *prefix, size_t *plen)
{
    *plen = strlen(prefix);
    return n >= *plen && memcmp(p, prefix, *plen) == 0;
}

static or_route_t route_of(const char *p, size_t n, uint64_t *arg)
{
    size_t k;

    if ((n == 5 && memcmp(p, "/echo", 5) == 0) || has_prefix(p, n, "/echo/", &k))
        return OR_ROUTE_ECHO;
    if (has_prefix(p, n, "/bytes/", &k))
        return parse_u64(p + k, n - k, UINT64_C(1) << 50, arg) == 0 ? OR_ROUTE_BYTES
                                                                    : OR_ROUTE_BAD_ARG;
    if (has_prefix(p, n, "/delay/", &k))
        return parse_u64(p + k, n - k, 3600 * 1000, arg) == 0 ? OR_ROUTE_DELAY : OR_ROUTE_BAD_ARG;
    if (has_prefix(p, n, "/early-hints/", &k))
        return parse_u64(p + k, n - k, 64, arg) == 0 ? OR_ROUTE_EARLY_HINTS : OR_ROUTE_BAD_ARG;
    if (has_prefix(p, n, "/status/", &k)) {
        if (parse_u64(p + k, n - k, 999, arg) != 0)
            *arg = 0; /* answered with 400 */
        return OR_ROUTE_STATUS;
    }
    for (size_t i = 0; i < sizeof exact_routes / sizeof exact_routes[0]; i++) {
        if (strlen(exact_routes[i].path) == n && memcmp(exact_routes[i].path, p, n) == 0)
            return exact_routes[i].route;
    }
    return OR_ROUTE_NOT_FOUND;
}

void or_route_head(or_conn_t *c)
{
    or_request_t *r = &c->req;
    const char *t = r->head.data;
    size_t tl = r->url_len, ps = 0, pe, qe;
    const or_field_t *expect;
    int wants_continue;

    /* absolute-form: skip scheme and authority */
    if (tl > 0 && t[0] != '/') {
        const char *s = memmem(t, tl, "://", 3);
        if (s != NULL) {
            ps = (size_t)(s - t) + 3;
            while (ps < tl && t[ps] != '/' && t[ps] != '?')
                ps++;
        }
    }
    for (pe = ps; pe < tl && t[pe] != '?' && t[pe] != '#'; pe++)
        ;
    r->path_off = (uint32_t)ps;
    r->path_len = (uint32_t)(pe - ps);
    if (pe < tl && t[pe] == '?') {
        for (qe = pe + 1; qe < tl && t[qe] != '#'; qe++)
            ;
        r->query_off = (uint32_t)(pe + 1);
        r->query_len = (uint32_t)(qe - pe - 1);
    }
    r->route = route_of(t + ps, pe - ps, &r->arg);

    if (r->route == OR_ROUTE_ECHO)
        r->is_hashing = or_conn_digest_begin(c) != NULL;

    /* /continue always sends 100 Continue; any other request only when it
     * asks for it and has a body to send. HTTP/1.0 clients never get one. */
    wants_continue = r->route == OR_ROUTE_CONTINUE;
    expect = req_header(c, "expect");
    if (!wants_continue && expect != NULL && expect->value_len == 12 &&
        strncasecmp(req_str(c, expect->value_off), "100-continue", 12) == 0 &&
        ((c->parser.flags & F_CHUNKED) || c->parser.content_length > 0))
        wants_continue = 1;
    if (wants_continue && (r->http_major > 1 || (r->http_major == 1 && r->http_minor >= 1)))
        or_out_str(c, "HTTP/1.1 100 Continue\r\n\r\n");
}
