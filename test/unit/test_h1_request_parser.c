/* Unit tests for proto/h1_request_parser.c. Every case is fed whole, byte by
 * byte, in random splits and cut in two at every position, and must give the
 * same events each time. Inputs may hold several pipelined requests: the
 * driver resets the parser after each one, as the HTTP/1.1 frontend does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/h1_request_parser.h"
#include "proto/h1_start.h"

/* ---- event recorder ---- */

typedef struct rec {
    char ev[8192]; /* "HGET / a=x v1 K|name=value...\n", "B:bytes\n", "T|n=v\n", "C\n" */
    size_t len;
    int in_body;
    int fail_on;                  /* 'H', 'B', 'T' or 'C': that callback returns -1 */
    const uint8_t *in_lo, *in_hi; /* the caller's input, to check body pointers */
} rec_t;

static void rec_add(rec_t *r, const char *s, size_t n)
{
    assert_true(r->len + n < sizeof(r->ev));
    memcpy(r->ev + r->len, s, n);
    r->len += n;
    r->ev[r->len] = '\0';
}

static void rec_str(rec_t *r, const char *s)
{
    rec_add(r, s, strlen(s));
}

static void rec_end_body(rec_t *r)
{
    if (r->in_body)
        rec_add(r, "\n", 1);
    r->in_body = 0;
}

static void rec_fields(rec_t *r, const proto_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rec_add(r, "|", 1);
        rec_add(r, h[i].name, h[i].name_len);
        rec_add(r, "=", 1);
        rec_add(r, h[i].value, h[i].value_len);
    }
    rec_add(r, "\n", 1);
}

static int on_head(void *ud, const proto_h1_req_head_t *h)
{
    rec_t *r = ud;
    static const struct {
        unsigned flag;
        char c;
    } letters[] = {
        {PROTO_H1_REQ_HAS_BODY, 'B'},        {PROTO_H1_REQ_CHUNKED, 'C'},
        {PROTO_H1_REQ_EXPECT_CONTINUE, 'E'}, {PROTO_H1_REQ_UPGRADE_H2C, 'U'},
        {PROTO_H1_REQ_KEEP_ALIVE, 'K'},      {PROTO_H1_REQ_ABSOLUTE_FORM, 'A'},
    };
    char s[64];

    rec_end_body(r);
    rec_str(r, "H");
    rec_add(r, h->method, h->method_len);
    rec_str(r, " ");
    rec_add(r, h->path, h->path_len);
    rec_str(r, " a=");
    if (h->authority != NULL)
        rec_add(r, h->authority, h->authority_len);
    else
        rec_str(r, "-");
    snprintf(s, sizeof(s), " v%d ", h->http_minor);
    rec_str(r, s);
    for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
        if (h->flags & letters[i].flag)
            rec_add(r, &letters[i].c, 1);
    }
    if (h->flags & PROTO_H1_REQ_UPGRADE_H2C) {
        rec_str(r, " s=");
        rec_add(r, h->http2_settings, h->http2_settings_len);
    }
    if (h->content_length >= 0) {
        snprintf(s, sizeof(s), " cl=%lld", (long long)h->content_length);
        rec_str(r, s);
    }
    /* The target is always what was received. */
    assert_true(h->target_len > 0);
    rec_fields(r, h->headers, h->nheaders);
    return r->fail_on == 'H' ? -1 : 0;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    rec_t *r = ud;

    assert_true(data >= r->in_lo && data + len <= r->in_hi);
    if (!r->in_body)
        rec_add(r, "B:", 2);
    r->in_body = 1;
    rec_add(r, (const char *)data, len);
    return r->fail_on == 'B' ? -1 : 0;
}

static int on_trailers(void *ud, const proto_header_t *h, size_t n)
{
    rec_t *r = ud;

    rec_end_body(r);
    rec_str(r, "T");
    rec_fields(r, h, n);
    return r->fail_on == 'T' ? -1 : 0;
}

static int on_complete(void *ud)
{
    rec_t *r = ud;

    rec_end_body(r);
    rec_str(r, "C\n");
    return r->fail_on == 'C' ? -1 : 0;
}

static const proto_h1_req_cbs_t cbs = {on_head, on_body, on_trailers, on_complete};

/* ---- driver ---- */

enum split { WHOLE, BYTES, RANDOM, AT }; /* AT: two pieces, cut at byte `seed` */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

typedef struct result {
    int rv;        /* first negative result of feed(), else 0 */
    int nrequests; /* requests completed */
    int is_idle;   /* the parser holds no partial request at the end */
} result_t;

/* Feeds the input in pieces; after every complete request, resets the
 * parser and feeds the rest of the piece, like the frontend does. */
static result_t drive(proto_h1_req_parser_t *p, rec_t *rec, const char *input, size_t len,
                      enum split how, uint32_t seed)
{
    result_t res = {0};
    size_t off = 0;

    rec->in_lo = (const uint8_t *)input;
    rec->in_hi = (const uint8_t *)input + len;
    while (off < len && res.rv == 0) {
        size_t n = len - off;

        if (how == BYTES)
            n = 1;
        else if (how == RANDOM)
            n = 1 + rng_next(&seed) % (n < 40 ? n : 40);
        else if (how == AT && off < seed)
            n = seed - off;
        while (n > 0) {
            ssize_t rv = proto_h1_req_parser_feed(p, (const uint8_t *)input + off, n);
            if (rv < 0) {
                res.rv = (int)rv;
                break;
            }
            assert_true((size_t)rv <= n);
            off += (size_t)rv;
            n -= (size_t)rv;
            if (p->is_complete) {
                res.nrequests++;
                proto_h1_req_parser_reset(p);
            } else {
                assert_int_equal(n, 0); /* an unfinished request takes everything */
            }
        }
    }
    rec_end_body(rec);
    res.is_idle = proto_h1_req_parser_is_idle(p);
    return res;
}

typedef struct req_case {
    const char *label;
    const char *input;
    const char *events;
    int rv;
    size_t max_head; /* 0: 4096 */
} req_case_t;

static void run_one(const req_case_t *c, enum split how, uint32_t seed)
{
    proto_h1_req_parser_t p;
    rec_t rec = {0};
    result_t res;
    size_t len = strlen(c->input);

    assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, c->max_head ? c->max_head : 4096), 0);
    res = drive(&p, &rec, c->input, len, how, seed);
    if (strcmp(rec.ev, c->events) != 0 || res.rv != c->rv || (c->rv == 0 && !res.is_idle)) {
        fprintf(stderr,
                "case '%s' (split %d seed %u):\n events [%s]\n   want [%s]\n rv %d want %d, "
                "idle %d, why %s\n",
                c->label, how, seed, rec.ev, c->events, res.rv, c->rv, res.is_idle,
                p.why ? p.why : "-");
        proto_h1_req_parser_free(&p);
        fail();
    }
    if (c->rv != 0)
        assert_non_null(p.why);
    proto_h1_req_parser_free(&p);
}

static void run_cases(const req_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        run_one(&cases[i], WHOLE, 0);
        run_one(&cases[i], BYTES, 0);
        for (uint32_t seed = 1; seed <= 25; seed++)
            run_one(&cases[i], RANDOM, seed * 2654435761u);
        for (uint32_t at = 1; at < strlen(cases[i].input); at++)
            run_one(&cases[i], AT, at);
    }
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))
#define BAD PROTO_E_BAD_REQUEST
#define NOTIMPL PROTO_E_NOT_IMPLEMENTED

/* ---- accepted requests ---- */

static void test_basic(void **state)
{
    static const req_case_t cases[] = {
        {"GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HGET / a=x v1 K|host=x\nC\n", 0, 0},
        {"HEAD", "HEAD /a?b HTTP/1.1\r\nHost: x:8080\r\nAccept: */*\r\n\r\n",
         "HHEAD /a?b a=x:8080 v1 K|host=x:8080|accept=*/*\nC\n", 0, 0},
        {"content-length body", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
         "HPOST /p a=x v1 BK cl=5|host=x|content-length=5\nB:hello\nC\n", 0, 0},
        {"content-length zero", "PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
         "HPUT /p a=x v1 K cl=0|host=x|content-length=0\nC\n", 0, 0},
        {"chunked with trailers",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:hello world\n"
         "T|x-checksum=abc|x-other=d\nC\n",
         0, 0},
        {"chunked without trailers, any case",
         "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n"
         "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=Chunked\nB:abc0123456789\nC\n", 0, 0},
        {"chunked, empty",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nC\n", 0, 0},
        {"names lowercased, values trimmed",
         "GET / HTTP/1.1\r\nHOST: x\r\nX-A:   v  w \t\r\nX-Empty:\r\nX-Blank:   \r\n"
         "X-U: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n",
         "HGET / a=x v1 K|host=x|x-a=v  w|x-empty=|x-blank=|x-u=caf\xc3\xa9|x-tab=a\tb\nC\n", 0, 0},
        {"empty lines before the request line", "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
         "HGET / a=x v1 K|host=x\nC\n", 0, 0},
        {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "HOPTIONS * a=x v1 K|host=x\nC\n", 0,
         0},
        {"methods llhttp knows",
         "DELETE /d HTTP/1.1\r\nHost: x\r\n\r\nPATCH /p HTTP/1.1\r\nHost: x\r\n\r\n",
         "HDELETE /d a=x v1 K|host=x\nC\nHPATCH /p a=x v1 K|host=x\nC\n", 0, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_keep_alive(void **state)
{
    static const req_case_t cases[] = {
        {"HTTP/1.1 default", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HGET / a=x v1 K|host=x\nC\n", 0,
         0},
        {"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "HGET / a=x v1 |host=x|connection=close\nC\n", 0, 0},
        {"HTTP/1.1 close among others",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: x-a, Close\r\n\r\n",
         "HGET / a=x v1 |host=x|connection=x-a, Close\nC\n", 0, 0},
        {"HTTP/1.0 default", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", "HGET / a=x v0 |host=x\nC\n", 0,
         0},
        {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n",
         "HGET / a=x v0 K|host=x|connection=Keep-Alive\nC\n", 0, 0},
        {"HTTP/1.0 keep-alive and close",
         "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n",
         "HGET / a=x v0 |host=x|connection=keep-alive, close\nC\n", 0, 0},
        {"HTTP/1.0 without host", "GET / HTTP/1.0\r\n\r\n", "HGET / a=- v0 \nC\n", 0, 0},
        {"HTTP/1.0 with a body", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab",
         "HPOST / a=- v0 B cl=2|content-length=2\nB:ab\nC\n", 0, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_expect(void **state)
{
    static const req_case_t cases[] = {
        {"100-continue with a body",
         "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nab",
         "HPOST / a=x v1 BEK cl=2|host=x|expect=100-Continue|content-length=2\nB:ab\nC\n", 0, 0},
        {"100-continue with chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
         "1\r\na\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCEK|host=x|expect=100-continue|transfer-encoding=chunked\nB:a\nC\n", 0,
         0},
        {"100-continue without a body", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
         "HGET / a=x v1 K|host=x|expect=100-continue\nC\n", 0, 0},
        {"100-continue in HTTP/1.0 is ignored",
         "POST / HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na",
         "HPOST / a=x v0 B cl=1|host=x|expect=100-continue|content-length=1\nB:a\nC\n", 0, 0},
        {"other expectation",
         "POST / HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 1\r\n\r\na",
         "HPOST / a=x v1 BK cl=1|host=x|expect=something|content-length=1\nB:a\nC\n", 0, 0},
    };

    (void)state;
    RUN(cases);
}

#define H2C_HEAD "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"

static void test_upgrade(void **state)
{
    static const req_case_t cases[] = {
        {"h2c", "GET / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
         "HGET / a=x v1 UK s=AAMAAABkAAQAAP__|host=x|connection=Upgrade, HTTP2-Settings|"
         "upgrade=h2c|http2-settings=AAMAAABkAAQAAP__\nC\n",
         0, 0},
        {"h2c among other protocols, any case",
         "GET / HTTP/1.1\r\nHost: x\r\nconnection: http2-settings\r\nConnection: upgrade\r\n"
         "Upgrade: websocket, H2C\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
         "HGET / a=x v1 UK s=AAMAAABk|host=x|connection=http2-settings|connection=upgrade|"
         "upgrade=websocket, H2C|http2-settings=AAMAAABk\nC\n",
         0, 0},
        {"empty settings are not an upgrade",
         "GET / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings:\r\n\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c|"
         "http2-settings=\nC\n",
         0, 0},
        {"with a body: served as HTTP/1.1",
         "POST / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings: AAMAAABk\r\n"
         "Content-Length: 2\r\n\r\nab",
         "HPOST / a=x v1 BK cl=2|host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c|"
         "http2-settings=AAMAAABk|content-length=2\nB:ab\nC\n",
         0, 0},
        {"no HTTP2-Settings", "GET / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c\nC\n", 0, 0},
        {"two HTTP2-Settings",
         "GET / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings: AAMAAABk\r\n"
         "HTTP2-Settings: AAMAAABk\r\n\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c|"
         "http2-settings=AAMAAABk|http2-settings=AAMAAABk\nC\n",
         0, 0},
        {"Connection does not name HTTP2-Settings",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
         "HTTP2-Settings: AAMAAABk\r\n\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade|upgrade=h2c|http2-settings=AAMAAABk\nC\n", 0,
         0},
        {"not base64url",
         "GET / HTTP/1.1\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings: AAMA+/Bk\r\n\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c|"
         "http2-settings=AAMA+/Bk\nC\n",
         0, 0},
        {"HTTP/1.0 cannot upgrade",
         "GET / HTTP/1.0\r\nHost: x\r\n" H2C_HEAD "HTTP2-Settings: AAMAAABk\r\n\r\n",
         "HGET / a=x v0 |host=x|connection=Upgrade, HTTP2-Settings|upgrade=h2c|"
         "http2-settings=AAMAAABk\nC\n",
         0, 0},
        {"websocket is no h2c upgrade; the next request parses",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
         "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
         "HGET / a=x v1 K|host=x|connection=Upgrade|upgrade=websocket\nC\n"
         "HGET /2 a=x v1 K|host=x\nC\n",
         0, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_targets(void **state)
{
    static const req_case_t cases[] = {
        {"absolute-form: authority from the URI",
         "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: other\r\n\r\n",
         "HGET /a?b a=example.com:8080 v1 KA|host=other\nC\n", 0, 0},
        {"absolute-form https, any case, empty path",
         "GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
         "HGET / a=example.com v1 KA|host=example.com\nC\n", 0, 0},
        {"absolute-form with query and empty path",
         "GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
         "HGET /?q=1 a=example.com v1 KA|host=example.com\nC\n", 0, 0},
        {"absolute-form OPTIONS with empty path",
         "OPTIONS http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
         "HOPTIONS * a=example.com v1 KA|host=example.com\nC\n", 0, 0},
        {"absolute-form in HTTP/1.0 without Host", "GET http://e.com/x HTTP/1.0\r\n\r\n",
         "HGET /x a=e.com v0 A\nC\n", 0, 0},
        {"ftp URI", "GET ftp://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"userinfo", "GET http://user@example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"empty authority", "GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"authority-form without CONNECT", "GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n", "",
         BAD, 0},
        {"asterisk without OPTIONS", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"fragment", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "",
         PROTO_E_NOT_IMPLEMENTED, 0},
        {"tab in target", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
    };

    (void)state;
    RUN(cases);
}

/* ---- smuggling and ambiguity ---- */

static void test_framing(void **state)
{
    static const req_case_t cases[] = {
        {"content-length and transfer-encoding",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n",
         "", BAD, 0},
        {"transfer-encoding and content-length",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
         "0\r\n\r\n",
         "", BAD, 0},
        {"equal content-lengths",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "", BAD,
         0},
        {"different content-lengths",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "",
         BAD, 0},
        {"content-length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", "",
         BAD, 0},
        {"content-length sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", "",
         BAD, 0},
        {"content-length negative", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "",
         BAD, 0},
        {"content-length not a number", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
         "", BAD, 0},
        {"content-length empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", "", BAD,
         0},
        {"content-length overflow",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", "", BAD,
         0},
        {"transfer-encoding gzip",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", "", BAD, 0},
        {"transfer-encoding gzip, chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "",
         PROTO_E_NOT_IMPLEMENTED, 0},
        {"transfer-encoding gzip then chunked on two lines",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
         "\r\n0\r\n\r\n",
         "", PROTO_E_NOT_IMPLEMENTED, 0},
        {"transfer-encoding chunked, gzip",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", "", BAD,
         0},
        {"transfer-encoding chunked twice",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "",
         BAD, 0},
        {"transfer-encoding chunked on two lines",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n"
         "\r\n0\r\n\r\n",
         "", BAD, 0},
        {"transfer-encoding with parameters",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", "", BAD,
         0},
        {"transfer-encoding empty", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", "",
         BAD, 0},
        {"transfer-encoding in HTTP/1.0",
         "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", BAD, 0},
        {"bad chunk size after the head",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"chunk longer than its size",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:ab\n", BAD, 0},
        {"chunk size with space",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_line_ends(void **state)
{
    static const req_case_t cases[] = {
        {"bare LF everywhere", "GET / HTTP/1.1\nHost: x\n\n", "", BAD, 0},
        {"bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", "", BAD, 0},
        {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: x\r\n\n", "", BAD, 0},
        {"bare LF ending a field", "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "", BAD, 0},
        {"bare LF ending an empty field", "GET / HTTP/1.1\r\nHost: x\r\nX:\n\r\n", "", BAD, 0},
        {"bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"bare LF in chunk size",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"bare LF after chunk data",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:abc\n", BAD, 0},
        {"bare LF after last chunk",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:abc\n", BAD, 0},
        {"bare LF ending the trailers",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:abc\n", BAD, 0},
        {"bare LF after a trailer field",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
         "X: y\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:abc\n", BAD, 0},
        {"bare LF after the trailers",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
         "X: y\r\n\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:abc\n", BAD, 0},
        {"bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "", BAD, 0},
        {"bare CR ending a field", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", "", BAD, 0},
        {"bare CR after the request line", "GET / HTTP/1.1\rHost: x\r\n\r\n", "", BAD, 0},
        {"bare CR in chunk size",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\rabc\r\n0\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "", BAD, 0},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", "", BAD, 0},
        {"obs-fold of an empty value", "GET / HTTP/1.1\r\nHost: x\r\nX-A:\r\n b\r\n\r\n", "", BAD,
         0},
        {"obs-fold in Content-Length",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n 0\r\n\r\n0123456789", "", BAD, 0},
        {"obs-fold in Transfer-Encoding",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n", "",
         BAD, 0},
        {"obs-fold in trailers",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n "
         "b\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"obs-fold of an empty trailer",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T:\r\n b\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"obs-fold of a trailer with tab",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: "
         "a\r\n\t\tb\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"trailer values with inner whitespace are no fold",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T:  a  b\r\n"
         "X-U:\t\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nT|x-t=a  b|x-u=\nC\n", 0, 0},
        {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", "", BAD, 0},
        {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"two spaces before the version", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"space after the version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "", BAD, 0},
        {"space before the method", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"tab as separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"HTTP/0.9 style", "GET /\r\n\r\n", "", BAD, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_fields(void **state)
{
    static const req_case_t cases[] = {
        {"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", "", BAD, 0},
        {"space before colon in Content-Length",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "", BAD, 0},
        {"space before colon in Transfer-Encoding",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "", BAD, 0},
        {"tab before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A\t: a\r\n\r\n", "", BAD, 0},
        {"no colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n", "", BAD, 0},
        {"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", "", BAD, 0},
        {"bad name char", "GET / HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n", "", BAD, 0},
        {"non-ASCII name", "GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: a\r\n\r\n", "", BAD, 0},
        {"CTL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", "", BAD, 0},
        {"ESC in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x1b[0m\r\n\r\n", "", BAD, 0},
        {"DEL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", "", BAD, 0},
        {"CTL in a trailer",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\x02\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"space before colon in a trailer",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T : a\r\n\r\n",
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n", BAD, 0},
        {"no host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", "", BAD, 0},
        {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "", BAD, 0},
        {"two equal hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "", BAD, 0},
        {"two hosts in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "", BAD, 0},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"garbage in the method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"method cut by CR", "FOO\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"known method, bad version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "", BAD, 0},
    };

    (void)state;
    RUN(cases);
}

/* A method outside llhttp's table is a token the gateway does not
 * implement: 501, whatever follows and however the bytes are split. */
static void test_unknown_method(void **state)
{
    static const req_case_t cases[] = {
        {"unknown method", "FOO / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"QUERY", "QUERY /q HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", "", NOTIMPL, 0},
        {"BAN", "BAN /cache HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"lowercase method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"a known method's prefix", "GETX / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"RTSP's DESCRIBE", "DESCRIBE / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"PRI outside the preface", "PRI / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"after empty lines", "\r\n\r\nQUERY / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL, 0},
        {"a token longer than any method",
         "X-VERY-LONG-EXTENSION-METHOD-NAME-0123456789 / HTTP/1.1\r\nHost: x\r\n\r\n", "", NOTIMPL,
         0},
        {"unknown method after a request",
         "GET / HTTP/1.1\r\nHost: x\r\n\r\nQUERY / HTTP/1.1\r\nHost: x\r\n\r\n",
         "HGET / a=x v1 K|host=x\nC\n", NOTIMPL, 0},
        {"tchar but cut by a bad byte", "QUE(RY / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"a token that never ends is bounded by the head limit",
         "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "",
         PROTO_E_TOO_LARGE, 64},
        /* The bytes llhttp took before the method get the raw checks first
         * (found by fuzz_h1_request_parser: "\nOG" whole or byte by byte). */
        {"bare LF before an unknown method", "\nOG / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
        {"bare CR before an unknown method", "\rOG / HTTP/1.1\r\nHost: x\r\n\r\n", "", BAD, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_limits(void **state)
{
    static char big_field[400], big_target[400], big_trailer[400], many[2000];
    static req_case_t cases[] = {
        {"field over the limit", big_field, "", PROTO_E_TOO_LARGE, 128},
        {"target over the limit", big_target, "", PROTO_E_TOO_LARGE, 128},
        {"trailers over the limit", big_trailer,
         "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:x\n", PROTO_E_TOO_LARGE, 128},
        {"many small fields", many, "", PROTO_E_TOO_LARGE, 256},
        {"just under the limit", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HGET / a=x v1 K|host=x\nC\n",
         0, 20 + 1 + 4 + 1 + 4},
        {"just over the limit", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", PROTO_E_TOO_LARGE,
         20 + 1 + 4 + 1 + 3},
    };
    size_t n;

    (void)state;
    snprintf(big_field, sizeof(big_field), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %0200d\r\n\r\n", 0);
    snprintf(big_target, sizeof(big_target), "GET /%0200d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    snprintf(big_trailer, sizeof(big_trailer),
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
             "X-T: %0200d\r\n\r\n",
             0);
    n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a:\r\n");
    snprintf(many + n, sizeof(many) - n, "\r\n");
    RUN(cases);
}

/* Outside the table because strlen() would stop at the NUL. */
static void test_nul(void **state)
{
    static const char in_value[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    static const char in_target[] = "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char in_body[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na\0b";
    const char *inputs[] = {in_value, in_target};
    size_t lens[] = {sizeof(in_value) - 1, sizeof(in_target) - 1};

    (void)state;
    for (int how = WHOLE; how <= BYTES; how++) {
        for (size_t i = 0; i < 2; i++) {
            proto_h1_req_parser_t p;
            rec_t rec = {0};
            result_t res;

            assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 4096), 0);
            res = drive(&p, &rec, inputs[i], lens[i], (enum split)how, 0);
            assert_int_equal(res.rv, PROTO_E_BAD_REQUEST);
            assert_string_equal(rec.ev, "");
            proto_h1_req_parser_free(&p);
        }
        /* A NUL in the body is just a byte. */
        {
            proto_h1_req_parser_t p;
            rec_t rec = {0};
            result_t res;

            assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 4096), 0);
            res = drive(&p, &rec, in_body, sizeof(in_body) - 1, (enum split)how, 0);
            assert_int_equal(res.rv, 0);
            assert_int_equal(res.nrequests, 1);
            assert_int_equal(rec.len, strlen("HPOST / a=x v1 BK cl=3|host=x|content-length=3\nB:") +
                                          3 + strlen("\nC\n"));
            proto_h1_req_parser_free(&p);
        }
    }
}

/* ---- pipelining ---- */

static void test_pipelined(void **state)
{
    static const req_case_t cases[] = {
        {"three requests in one buffer",
         "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
         "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
         "POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n",
         "HGET /1 a=x v1 K|host=x\nC\n"
         "HPOST /2 a=x v1 BK cl=3|host=x|content-length=3\nB:abc\nC\n"
         "HPOST /3 a=x v1 BCK|host=x|transfer-encoding=chunked\nB:de\nC\n",
         0, 0},
        {"a body that looks like a request stays a body",
         "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\n"
         "GET /evil HTTP/1.1\r\nHost: x\r\n"
         "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
         "HPOST /1 a=x v1 BK cl=29|host=x|content-length=29\nB:GET /evil HTTP/1.1\r\nHost: "
         "x\r\n\nC\n"
         "HGET /2 a=x v1 K|host=x\nC\n",
         0, 0},
        {"HEAD then GET", "HEAD /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
         "HHEAD /1 a=x v1 K|host=x\nC\nHGET /2 a=x v1 K|host=x\nC\n", 0, 0},
        {"good then smuggled",
         "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
         "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         "HGET /1 a=x v1 K|host=x\nC\n", BAD, 0},
        {"trailers then the next request",
         "POST /1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: "
         "1\r\n\r\n"
         "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
         "HPOST /1 a=x v1 BCK|host=x|transfer-encoding=chunked\nB:a\nT|x-t=1\nC\n"
         "HGET /2 a=x v1 K|host=x\nC\n",
         0, 0},
    };

    (void)state;
    RUN(cases);
}

/* feed() stops at the end of each request and takes nothing more until a
 * reset. */
static void test_stops_after_each_request(void **state)
{
    static const char first[] = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char second[] = "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz";
    char input[256];
    proto_h1_req_parser_t p;
    rec_t rec = {0};
    size_t len = (size_t)snprintf(input, sizeof(input), "%s%s", first, second);
    ssize_t rv;

    (void)state;
    rec.in_lo = (const uint8_t *)input;
    rec.in_hi = (const uint8_t *)input + len;
    assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 4096), 0);
    assert_true(proto_h1_req_parser_is_idle(&p));
    rv = proto_h1_req_parser_feed(&p, (const uint8_t *)input, len);
    assert_int_equal(rv, strlen(first));
    assert_false(proto_h1_req_parser_is_idle(&p));
    assert_int_equal(proto_h1_req_parser_feed(&p, (const uint8_t *)input + rv, len - rv), 0);
    assert_string_equal(rec.ev, "HGET /1 a=x v1 K|host=x\nC\n");
    proto_h1_req_parser_reset(&p);
    assert_true(proto_h1_req_parser_is_idle(&p));
    assert_int_equal(proto_h1_req_parser_feed(&p, (const uint8_t *)input + rv, len - rv),
                     strlen(second));
    assert_string_equal(rec.ev, "HGET /1 a=x v1 K|host=x\nC\n"
                                "HPOST /2 a=x v1 BK cl=1|host=x|content-length=1\nB:z\nC\n");
    proto_h1_req_parser_free(&p);
}

static void test_reset_after_error(void **state)
{
    static const char bad[] = "GET / HTTP/1.1\nHost: x\r\n\r\n";
    static const char good[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    proto_h1_req_parser_t p;
    rec_t rec = {0};

    (void)state;
    assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 4096), 0);
    assert_int_equal(proto_h1_req_parser_feed(&p, (const uint8_t *)bad, strlen(bad)),
                     PROTO_E_BAD_REQUEST);
    assert_string_equal(p.why, "bare LF in request head");
    /* The error sticks until reset. */
    assert_int_equal(proto_h1_req_parser_feed(&p, (const uint8_t *)good, strlen(good)),
                     PROTO_E_BAD_REQUEST);
    proto_h1_req_parser_reset(&p);
    assert_int_equal(proto_h1_req_parser_feed(&p, (const uint8_t *)good, strlen(good)),
                     strlen(good));
    assert_string_equal(rec.ev, "HGET / a=x v1 K|host=x\nC\n");
    proto_h1_req_parser_free(&p);
}

static void test_callback_stops(void **state)
{
    static const char in[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "1\r\na\r\n1\r\nb\r\n0\r\nX-T: 1\r\n\r\n";
    static const struct {
        int fail_on;
        const char *events;
    } cases[] = {
        {'H', "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\n"},
        {'B', "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:a\n"},
        {'T', "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:ab\nT|x-t=1\n"},
        {'C', "HPOST / a=x v1 BCK|host=x|transfer-encoding=chunked\nB:ab\nT|x-t=1\nC\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int how = WHOLE; how <= BYTES; how++) {
            proto_h1_req_parser_t p;
            rec_t rec = {.fail_on = cases[i].fail_on};
            result_t res;

            assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 4096), 0);
            res = drive(&p, &rec, in, strlen(in), (enum split)how, 0);
            assert_int_equal(res.rv, PROTO_E_CALLBACK);
            assert_string_equal(rec.ev, cases[i].events);
            proto_h1_req_parser_free(&p);
        }
    }
}

/* More fields than fit the stack array. */
static void test_many_fields(void **state)
{
    static char in[8192], want[8192];
    size_t n, w;
    proto_h1_req_parser_t p;
    rec_t rec = {0};
    result_t res;

    (void)state;
    n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: x\r\n");
    w = (size_t)snprintf(want, sizeof(want), "HGET / a=x v1 K|host=x");
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: %d\r\n", i, i);
        w += (size_t)snprintf(want + w, sizeof(want) - w, "|x-%d=%d", i, i);
    }
    snprintf(in + n, sizeof(in) - n, "\r\n");
    snprintf(want + w, sizeof(want) - w, "\nC\n");
    assert_int_equal(proto_h1_req_parser_init(&p, &cbs, &rec, 65536), 0);
    res = drive(&p, &rec, in, strlen(in), RANDOM, 7);
    assert_int_equal(res.rv, 0);
    assert_string_equal(rec.ev, want);
    proto_h1_req_parser_free(&p);
}

static void test_base64url(void **state)
{
    static const struct {
        const char *in;
        const char *out;
        size_t out_len;
        int ok;
    } cases[] = {
        {"", "", 0, 1},
        {"AAMAAABkAAQAAP__", "\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff", 12, 1},
        {"AAMAAABk", "\x00\x03\x00\x00\x00\x64", 6, 1},
        {"YQ", "a", 1, 1},
        {"YQ==", "a", 1, 1},
        {"YWI", "ab", 2, 1},
        {"YWJj", "abc", 3, 1},
        {"-_-_", "\xfb\xff\xbf", 3, 1},
        {"Y", NULL, 0, 0},
        {"YW+j", NULL, 0, 0},
        {"YW/j", NULL, 0, 0},
        {"YW j", NULL, 0, 0},
    };
    uint8_t out[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ssize_t n = proto_h1_base64url_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        if (!cases[i].ok) {
            assert_int_equal(n, -1);
            continue;
        }
        assert_int_equal(n, cases[i].out_len);
        assert_memory_equal(out, cases[i].out, cases[i].out_len);
    }
    /* Too small an output buffer is refused, not overrun. */
    assert_int_equal(proto_h1_base64url_decode("YWJj", 4, out, 2), -1);
}

/* The sniffer's question: may these first bytes be an HTTP/1.x request?
 * Each case is also asked split in two at every position. */
static void test_request_line_plausible(void **state)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\r\n", 1},
        {"GET / HTTP/1.0\r\n", 1},
        {"\r\nGET / HTTP/1.1\r\n", 1},
        {"QUERY /q HTTP/1.1\r\nHost: a\r\n", 1},
        {"GET  /echo HTTP/1.1\r\n", 1}, /* malformed: the parser answers 400 */
        {"GET /echo HTTP/2.0\r\n", 1},  /* likewise */
        {"GET /echo HTTP/1.1\n", 1},
        {"GET /a-long-target-not-finished", 1}, /* not settled: benefit of the doubt */
        {"GET", 1},
        {"", 1},
        {"INVALID CONNECTION PREFACE\r\n\r\n", 0}, /* h2spec 3.5 #2 */
        {"GET /\r\n", 0},                          /* HTTP/0.9 */
        {"\x16\x03\x01\x02", 0},                   /* TLS on the cleartext port */
        {"G(T / HTTP/1.1\r\n", 0},
        {"\r\n\r\n\x01", 0},
        {"GET\r\n", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *in = (const uint8_t *)cases[i].in;
        size_t len = strlen(cases[i].in);
        for (size_t cut = 0; cut <= len; cut++) {
            int got = proto_h1_request_line_plausible(in, cut, in + cut, len - cut);
            if (got != cases[i].want)
                fail_msg("case %zu cut %zu: got %d", i, cut, got);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_stops_after_each_request),
        cmocka_unit_test(test_reset_after_error),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_request_line_plausible),
        cmocka_unit_test(test_unknown_method),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
