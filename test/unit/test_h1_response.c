/* Unit tests for proto/h1_response.c. Every case is fed whole, byte by byte
 * and in random splits, and must give the same events each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/h1_response.h"

/* ---- event recorder ---- */

typedef struct rec {
    char ev[8192]; /* "H200|name=value...\n", "I103|name=value\n", "B:bytes\n", "T|...\n", "C\n" */
    size_t len;
    int in_body;
    int fail_on;                  /* 'H', 'I', 'B', 'T' or 'C': that callback returns -1 */
    const uint8_t *in_lo, *in_hi; /* the caller's input, to check body pointers */
} rec_t;

static void rec_add(rec_t *r, const char *s, size_t n)
{
    assert_true(r->len + n < sizeof(r->ev));
    memcpy(r->ev + r->len, s, n);
    r->len += n;
    r->ev[r->len] = '\0';
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

static int on_head(void *ud, int status, const proto_header_t *h, size_t n)
{
    rec_t *r = ud;
    char s[16];

    rec_end_body(r);
    snprintf(s, sizeof(s), "H%d", status);
    rec_add(r, s, strlen(s));
    rec_fields(r, h, n);
    return r->fail_on == 'H' ? -1 : 0;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    rec_t *r = ud;

    /* Body bytes are not copied: they point into what was fed. */
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
    rec_add(r, "T", 1);
    rec_fields(r, h, n);
    return r->fail_on == 'T' ? -1 : 0;
}

static int on_complete(void *ud)
{
    rec_t *r = ud;

    rec_end_body(r);
    rec_add(r, "C\n", 2);
    return r->fail_on == 'C' ? -1 : 0;
}

static int on_info(void *ud, int status, const proto_header_t *h, size_t n)
{
    rec_t *r = ud;
    char s[16];

    snprintf(s, sizeof(s), "I%d", status);
    rec_add(r, s, strlen(s));
    rec_fields(r, h, n);
    return r->fail_on == 'I' ? -1 : 0;
}

static const proto_h1_response_cbs_t cbs = {on_head, on_body, on_trailers, on_complete, on_info};

/* ---- driver ---- */

enum split { WHOLE, BYTES, RANDOM, AT }; /* AT: two pieces, cut at byte `seed` */

typedef struct result {
    int rv;          /* first negative result of feed() or finish(), else 0 */
    size_t consumed; /* bytes feed() took in total */
    int can_reuse;
} result_t;

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static result_t drive(proto_h1_response_t *p, rec_t *rec, const char *input, size_t len, int eof,
                      enum split how, uint32_t seed)
{
    result_t res = {0};
    size_t off = 0;

    rec->in_lo = (const uint8_t *)input;
    rec->in_hi = (const uint8_t *)input + len;
    while (off < len) {
        size_t n = len - off;
        ssize_t rv;

        if (how == BYTES)
            n = 1;
        else if (how == RANDOM)
            n = 1 + rng_next(&seed) % (n < 40 ? n : 40);
        else if (how == AT && off < seed)
            n = seed - off;
        rv = proto_h1_response_feed(p, (const uint8_t *)input + off, n);
        if (rv < 0) {
            res.rv = (int)rv;
            break;
        }
        assert_true((size_t)rv <= n);
        off += (size_t)rv;
        if ((size_t)rv < n)
            break; /* the response ended inside this piece */
    }
    res.consumed = off;
    if (res.rv == 0 && eof)
        res.rv = proto_h1_response_finish(p);
    rec_end_body(rec);
    res.can_reuse = proto_h1_response_can_reuse(p);
    return res;
}

typedef struct resp_case {
    const char *label;
    const char *input;
    int is_head;
    int eof;         /* the backend closes after input */
    size_t max_head; /* 0: 4096 */
    const char *events;
    int rv;
    int leftover; /* bytes of input that must stay unconsumed */
    int can_reuse;
} resp_case_t;

static void run_one(const resp_case_t *c, enum split how, uint32_t seed)
{
    proto_h1_response_t p;
    rec_t rec = {0};
    result_t res;
    size_t len = strlen(c->input);

    assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, c->max_head ? c->max_head : 4096), 0);
    proto_h1_response_reset(&p, c->is_head);
    res = drive(&p, &rec, c->input, len, c->eof, how, seed);
    if (strcmp(rec.ev, c->events) != 0 || res.rv != c->rv ||
        (c->rv == 0 && res.consumed != len - (size_t)c->leftover) ||
        res.can_reuse != c->can_reuse) {
        fprintf(stderr,
                "case '%s' (split %d seed %u):\n events [%s]\n   want [%s]\n rv %d want %d, "
                "consumed %zu of %zu (leftover want %d), reuse %d want %d, why %s\n",
                c->label, how, seed, rec.ev, c->events, res.rv, c->rv, res.consumed, len,
                c->leftover, res.can_reuse, c->can_reuse, p.why ? p.why : "-");
        proto_h1_response_free(&p);
        fail();
    }
    if (c->rv != 0)
        assert_non_null(p.why);
    proto_h1_response_free(&p);
}

static void run_cases(const resp_case_t *cases, size_t n)
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

/* ---- cases ---- */

static void test_bodies(void **state)
{
    static const resp_case_t cases[] = {
        {"content-length",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", 0, 0, 0,
         "H200|content-length=5|content-type=text/plain\nB:hello\nC\n", 0, 0, 1},
        {"content-length zero", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H200|content-length=0\nC\n", 0, 0, 1},
        {"chunked with trailers",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n",
         0, 0, 0, "H200|trailer=X-Checksum\nB:hello world\nT|x-checksum=abc|x-other=d\nC\n", 0, 0,
         1},
        {"chunked without trailers",
         "HTTP/1.1 200 OK\r\ntransfer-encoding: "
         "Chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
         0, 0, 0, "H200\nB:abc0123456789\nC\n", 0, 0, 1},
        {"trailers filtered like the head",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
         "Connection: x-gone\r\nX-Gone: 1\r\nKeep-Alive: 1\r\nX-Kept: 2\r\n\r\n",
         0, 0, 0, "H200\nB:x\nT|x-kept=2\nC\n", 0, 0, 1},
        {"close-delimited with finish",
         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body", 0, 1, 0,
         "H200|content-type=text/plain\nB:some body\nC\n", 0, 0, 0},
        {"close-delimited, empty", "HTTP/1.1 200 OK\r\n\r\n", 0, 1, 0, "H200\nC\n", 0, 0, 0},
        {"close-delimited, not closed yet", "HTTP/1.1 200 OK\r\n\r\nabc", 0, 0, 0, "H200\nB:abc\n",
         0, 0, 0},
        {"close-delimited with HTTP/1.0", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nabc", 0,
         1, 0, "H200\nB:abc\nC\n", 0, 0, 0},
        {"extra bytes after content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
         0, 0, 0, "H200|content-length=2\nB:ok\nC\n", 0, 5, 1},
        {"finish after complete is fine", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 1, 0,
         "H200|content-length=1\nB:x\nC\n", 0, 0, 1},
    };

    (void)state;
    RUN(cases);
}

static void test_no_body(void **state)
{
    static const resp_case_t cases[] = {
        {"HEAD with content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", 1, 0, 0,
         "H200|content-length=1234\nC\n", 0, 0, 1},
        {"HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 0, 0,
         "H200\nC\n", 0, 0, 1},
        {"HEAD without length", "HTTP/1.1 200 OK\r\n\r\n", 1, 0, 0, "H200\nC\n", 0, 0, 1},
        {"HEAD with gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1, 0, 0,
         "H200\nC\n", 0, 0, 1},
        {"204", "HTTP/1.1 204 No Content\r\n\r\n", 0, 0, 0, "H204\nC\n", 0, 0, 1},
        {"204 with a length reads no body, and loses the length (RFC 9110 8.6)",
         "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", 0, 0, 0,
         "H204|x-a=1\nC\n", 0, 5, 1},
        {"204 with a zero length", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H204\nC\n", 0, 0, 1},
        {"HEAD answered 204 with a length", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
         1, 0, 0, "H204\nC\n", 0, 0, 1},
        {"304 with a length",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n", 0, 0, 0,
         "H304|content-length=5|etag=\"x\"\nC\n", 0, 0, 1},
        {"304 with chunked", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
         0, 0, "H304\nC\n", 0, 0, 1},
    };

    (void)state;
    RUN(cases);
}

static void test_interim(void **state)
{
    static const resp_case_t cases[] = {
        {"100 then 200",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0,
         "I100\nH200|content-length=2\nB:ok\nC\n", 0, 0, 1},
        {"103 then 200",
         "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Final: 1\r\n\r\n",
         0, 0, 0, "I103|link=</a.css>; rel=preload\nH200|content-length=0|x-final=1\nC\n", 0, 0, 1},
        {"100, 102, 103 then 201",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
         "HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\nHTTP/1.1 201 Created\r\n"
         "Content-Length: 1\r\n\r\nx",
         0, 0, 0, "I100\nI102\nI103|link=<x>\nH201|content-length=1\nB:x\nC\n", 0, 0, 1},
        {"interim with a length has no body",
         "HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
         0, 0, 0, "I103\nH200|content-length=1\nB:x\nC\n", 0, 0, 1},
        {"100 then 200 to HEAD",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 1, 0, 0,
         "I100\nH200|content-length=9\nC\n", 0, 0, 1},
        {"only 100, then close", "HTTP/1.1 100 Continue\r\n\r\n", 0, 1, 0, "I100\n",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"101",
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0,
         0, 0, "", PROTO_E_UNSAFE_RESPONSE, 0, 0},
        {"101 after 100", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n",
         0, 0, 0, "I100\n", PROTO_E_UNSAFE_RESPONSE, 0, 0},
        /* Interim fields are filtered like a head's, and keep-alive in an
         * interim head says nothing about the connection. */
        {"103 with hop-by-hop fields",
         "HTTP/1.1 103 Early Hints\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=1\r\n"
         "Transfer-Encoding: chunked\r\nLink: <a>\r\nLink: <b>\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         0, 0, 0, "I103|link=<a>|link=<b>\nH200|content-length=0\nC\n", 0, 0, 1},
        {"many 103s, each bounded alone",
         "HTTP/1.1 103 Early Hints\r\nLink: <1>\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: "
         "<2>\r\n\r\n"
         "HTTP/1.1 103 Early Hints\r\nLink: <3>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
         0, 0, 64, "I103|link=<1>\nI103|link=<2>\nI103|link=<3>\nH204\nC\n", 0, 0, 1},
        {"103 over the head limit",
         "HTTP/1.1 103 Early Hints\r\nLink: "
         "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         0, 0, 64, "", PROTO_E_TOO_LARGE, 0, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_fields(void **state)
{
    static const resp_case_t cases[] = {
        {"connection-specific removed",
         "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
         "X-Hop: 1\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nTE: trailers\r\n"
         "HTTP2-Settings: x\r\nX-Kept: 2\r\nContent-Length: 0\r\n\r\n",
         0, 0, 0, "H200|x-kept=2|content-length=0\nC\n", 0, 0, 1},
        {"Connection names a field before it is seen",
         "HTTP/1.1 200 OK\r\nX-Early: 1\r\nConnection: x-early\r\nContent-Length: 0\r\n\r\n", 0, 0,
         0, "H200|content-length=0\nC\n", 0, 0, 1},
        {"200 with Upgrade is an ordinary response",
         "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 1\r\n\r\nx", 0,
         0, 0, "H200|content-length=1\nB:x\nC\n", 0, 0, 1},
        {"set-cookie repeats kept in order",
         "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Mid: m\r\nSet-Cookie: b=2; Path=/\r\n"
         "set-cookie: c=3\r\nContent-Length: 0\r\n\r\n",
         0, 0, 0,
         "H200|set-cookie=a=1|x-mid=m|set-cookie=b=2; Path=/|set-cookie=c=3|"
         "content-length=0\nC\n",
         0, 0, 1},
        {"names lowercased, values kept",
         "HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 0\r\nX-UPPER: VaLuE\r\n\r\n", 0, 0, 0,
         "H200|content-length=0|x-upper=VaLuE\nC\n", 0, 0, 1},
        {"whitespace around values removed",
         "HTTP/1.1 200 OK\r\nX-A:   v  w \t\r\nX-B:\tx\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H200|x-a=v  w|x-b=x|content-length=0\nC\n", 0, 0, 1},
        {"empty values", "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank:   \r\nContent-Length: 0\r\n\r\n",
         0, 0, 0, "H200|x-empty=|x-blank=|content-length=0\nC\n", 0, 0, 1},
        {"obs-text kept", "HTTP/1.1 200 OK\r\nX-U: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", 0, 0,
         0, "H200|x-u=caf\xc3\xa9|content-length=0\nC\n", 0, 0, 1},
        {"any reason phrase, or none", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H404|content-length=0\nC\n", 0, 0, 1},
        {"three-digit status above 599", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H999|content-length=0\nC\n", 0, 0, 1},
    };

    (void)state;
    RUN(cases);
}

static void test_reuse(void **state)
{
    static const resp_case_t cases[] = {
        {"HTTP/1.1 default keep-alive", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0,
         "H200|content-length=2\nB:ok\nC\n", 0, 0, 1},
        {"HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0,
         "H200|content-length=2\nB:ok\nC\n", 0, 0, 0},
        {"HTTP/1.0 with keep-alive",
         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0,
         "H200|content-length=2\nB:ok\nC\n", 0, 0, 1},
        {"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
         0, 0, 0, "H200|content-length=2\nB:ok\nC\n", 0, 0, 0},
        {"Connection: Close among others",
         "HTTP/1.1 200 OK\r\nConnection: x-a, Close\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "H200|content-length=0\nC\n", 0, 0, 0},
        {"close-delimited never reused", "HTTP/1.1 200 OK\r\n\r\nabc", 0, 1, 0, "H200\nB:abc\nC\n",
         0, 0, 0},
        {"not complete, not reusable", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, 0, 0,
         "H200|content-length=9\nB:abc\n", 0, 0, 0},
    };

    (void)state;
    RUN(cases);
}

static void test_malformed(void **state)
{
    static const resp_case_t cases[] = {
        {"content-length and chunked",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0,
         0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"chunked and content-length",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 0,
         0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"two content-lengths",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"content-length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx", 0, 0, 0,
         "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"content-length negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"gzip transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", 0, 1, 0,
         "", PROTO_E_UNSAFE_RESPONSE, 0, 0},
        {"gzip then chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_UNSAFE_RESPONSE, 0, 0},
        {"bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", 0, 0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, 0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"bad protocol", "HTTX/1.1 200 OK\r\n\r\n", 0, 0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"bad version", "HTTP/1.7 200 OK\r\n\r\n", 0, 0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"not HTTP at all", "SSH-2.0-OpenSSH\r\n", 0, 0, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"chunk longer than its size",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 0, 0, 0,
         "H200\nB:ab\n", PROTO_E_BAD_RESPONSE, 0, 0},
        {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"obs-fold with tab", "HTTP/1.1 200 OK\r\nX-A: a b\r\n\tc\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"obs-fold in Connection",
         "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n close\r\nContent-Length: 0\r\n\r\n", 0, 0,
         0, "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"CTL in value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n", 0, 0, 0,
         "", PROTO_E_BAD_RESPONSE, 0, 0},
        {"no colon", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"empty name", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"bad name char", "HTTP/1.1 200 OK\r\nX(A): a\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"short content-length body then close", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
         0, 1, 0, "H200|content-length=10\nB:abc\n", PROTO_E_BAD_RESPONSE, 0, 0},
        {"unfinished chunked then close",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, 1, 0, "H200\nB:ab\n",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"chunked without last CRLF then close",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 0, 1, 0, "H200\n",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"head cut short then close", "HTTP/1.1 200 OK\r\nContent-Len", 0, 1, 0, "",
         PROTO_E_BAD_RESPONSE, 0, 0},
        {"nothing then close", "", 0, 1, 0, "", PROTO_E_BAD_RESPONSE, 0, 0},
    };

    (void)state;
    RUN(cases);
}

/*
 * The head waits for the end of the feed() that completed it (or the first
 * body byte): a chunked body whose framing breaks in those same bytes fails
 * with no head handed out, so the gateway can answer 502. Once the head is
 * out, a later break only ends the response.
 */
static void test_head_held_for_framing(void **state)
{
    static const struct {
        const char *label, *head, *rest;
        const char *events_whole, *events_split;
    } cases[] = {
        {"bad first chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         "zz\r\nhello\r\n0\r\n\r\n", "", "H200\n"},
        {"bad chunk extension", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         "5;\x01\r\nhello\r\n0\r\n\r\n", "", "H200\n"},
        {"bad size after a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         "1\r\na\r\nzz\r\n", "H200\nB:a\n", "H200\nB:a\n"},
        {"bad last-chunk trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         "0\r\nX(T): 1\r\n\r\n", "H200\n", "H200\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[256];
        size_t hlen = strlen(cases[i].head);
        size_t len = (size_t)snprintf(in, sizeof(in), "%s%s", cases[i].head, cases[i].rest);

        for (int is_split = 0; is_split <= 1; is_split++) {
            proto_h1_response_t p;
            rec_t rec = {0};
            result_t res;

            assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, 4096), 0);
            /* Whole, or cut right after the head. */
            res = drive(&p, &rec, in, len, 0, is_split ? AT : WHOLE, (uint32_t)hlen);
            if (res.rv != PROTO_E_BAD_RESPONSE ||
                strcmp(rec.ev, is_split ? cases[i].events_split : cases[i].events_whole) != 0)
                fail_msg("case '%s' split %d: rv %d events [%s]", cases[i].label, is_split, res.rv,
                         rec.ev);
            proto_h1_response_free(&p);
        }
    }
}

static void test_limits(void **state)
{
    static char big_field[300], big_reason[300], big_trailer[400], many[2000];
    static resp_case_t cases[] = {
        {"field over the limit", big_field, 0, 0, 128, "", PROTO_E_TOO_LARGE, 0, 0},
        {"reason phrase over the limit", big_reason, 0, 0, 128, "", PROTO_E_TOO_LARGE, 0, 0},
        {"trailers over the limit", big_trailer, 0, 0, 128, "H200\nB:x\n", PROTO_E_TOO_LARGE, 0, 0},
        {"many small fields", many, 0, 0, 256, "", PROTO_E_TOO_LARGE, 0, 0},
        {"just under the limit", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0,
         15 + 2 + 14 + 1 + 4, "H200|content-length=0\nC\n", 0, 0, 1},
        {"just over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0,
         15 + 2 + 14 + 1 + 3, "", PROTO_E_TOO_LARGE, 0, 0},
    };
    size_t n;

    (void)state;
    snprintf(big_field, sizeof(big_field), "HTTP/1.1 200 OK\r\nX-Big: %0200d\r\n\r\n", 0);
    snprintf(big_reason, sizeof(big_reason), "HTTP/1.1 200 %0200d\r\n\r\n", 0);
    snprintf(
        big_trailer, sizeof(big_trailer),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-T: %0200d\r\n\r\n",
        0);
    n = (size_t)snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a:\r\n");
    snprintf(many + n, sizeof(many) - n, "\r\n");
    RUN(cases);
}

/* Outside the table because strlen() would stop at the NUL. */
static void test_nul_in_value(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";

    (void)state;
    for (int how = WHOLE; how <= BYTES; how++) {
        proto_h1_response_t p;
        rec_t rec = {0};
        result_t res;

        assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, 4096), 0);
        res = drive(&p, &rec, in, sizeof(in) - 1, 0, (enum split)how, 0);
        assert_true(res.rv == PROTO_E_BAD_RESPONSE || res.rv == PROTO_E_UNSAFE_RESPONSE);
        assert_string_equal(rec.ev, "");
        proto_h1_response_free(&p);
    }
}

/* ---- sequences on one parser ---- */

static void test_back_to_back(void **state)
{
    static const char first[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none";
    static const char second[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "3\r\ntwo\r\n0\r\nX-T: 1\r\n\r\n";
    static const char third[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    char input[512];
    proto_h1_response_t p;
    rec_t rec = {0};
    ssize_t rv;
    size_t off = 0, len;

    (void)state;
    len = (size_t)snprintf(input, sizeof(input), "%s%s%s", first, second, third);
    rec.in_lo = (const uint8_t *)input;
    rec.in_hi = (const uint8_t *)input + len;
    assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, 4096), 0);

    rv = proto_h1_response_feed(&p, (const uint8_t *)input, len);
    assert_int_equal(rv, strlen(first));
    assert_true(proto_h1_response_can_reuse(&p));
    /* Without a reset nothing more is taken. */
    assert_int_equal(proto_h1_response_feed(&p, (const uint8_t *)input + rv, len - rv), 0);
    off += (size_t)rv;

    proto_h1_response_reset(&p, 0);
    assert_false(proto_h1_response_can_reuse(&p));
    rv = proto_h1_response_feed(&p, (const uint8_t *)input + off, len - off);
    assert_int_equal(rv, strlen(second));
    off += (size_t)rv;
    assert_true(proto_h1_response_can_reuse(&p));

    proto_h1_response_reset(&p, 1);
    rv = proto_h1_response_feed(&p, (const uint8_t *)input + off, len - off);
    assert_int_equal(rv, strlen(third));
    assert_false(proto_h1_response_can_reuse(&p));
    assert_int_equal(proto_h1_response_finish(&p), 0);

    assert_string_equal(rec.ev, "H200|content-length=3\nB:one\nC\n"
                                "H200\nB:two\nT|x-t=1\nC\n"
                                "H204\nC\n");
    proto_h1_response_free(&p);
}

/* A reset after an error gives a working parser again. */
static void test_reset_after_error(void **state)
{
    static const char bad[] = "HTTP/1.1 2x0\r\n\r\n";
    static const char good[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    proto_h1_response_t p;
    rec_t rec = {0};

    (void)state;
    rec.in_lo = (const uint8_t *)good;
    rec.in_hi = (const uint8_t *)good + sizeof(good);
    assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, 4096), 0);
    assert_int_equal(proto_h1_response_feed(&p, (const uint8_t *)bad, strlen(bad)),
                     PROTO_E_BAD_RESPONSE);
    /* The error sticks until reset. */
    assert_int_equal(proto_h1_response_feed(&p, (const uint8_t *)good, strlen(good)),
                     PROTO_E_BAD_RESPONSE);
    assert_int_equal(proto_h1_response_finish(&p), PROTO_E_BAD_RESPONSE);
    proto_h1_response_reset(&p, 0);
    assert_int_equal(proto_h1_response_feed(&p, (const uint8_t *)good, strlen(good)), strlen(good));
    assert_string_equal(rec.ev, "H200|content-length=0\nC\n");
    assert_true(proto_h1_response_can_reuse(&p));
    proto_h1_response_free(&p);
}

static void test_callback_stops(void **state)
{
    static const char in[] = "HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "1\r\na\r\n1\r\nb\r\n0\r\nX-T: 1\r\n\r\n";
    static const struct {
        int fail_on;
        const char *events;
    } cases[] = {
        {'I', "I103|link=<a>\n"},
        {'H', "I103|link=<a>\nH200\n"},
        {'B', "I103|link=<a>\nH200\nB:a\n"},
        {'T', "I103|link=<a>\nH200\nB:ab\nT|x-t=1\n"},
        {'C', "I103|link=<a>\nH200\nB:ab\nT|x-t=1\nC\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int how = WHOLE; how <= BYTES; how++) {
            proto_h1_response_t p;
            rec_t rec = {.fail_on = cases[i].fail_on};
            result_t res;

            assert_int_equal(proto_h1_response_init(&p, &cbs, &rec, 4096), 0);
            res = drive(&p, &rec, in, strlen(in), 0, (enum split)how, 0);
            assert_int_equal(res.rv, PROTO_E_CALLBACK);
            assert_string_equal(rec.ev, cases[i].events);
            assert_false(proto_h1_response_can_reuse(&p));
            proto_h1_response_free(&p);
        }
    }
}

/* The optional callbacks may be left out. */
static void test_null_callbacks(void **state)
{
    static const proto_h1_response_cbs_t only_head = {on_head, NULL, NULL, NULL, NULL};
    static const char in[] = "HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nab\r\n0\r\nX-T: 1\r\n\r\n";
    proto_h1_response_t p;
    rec_t rec = {0};

    (void)state;
    assert_int_equal(proto_h1_response_init(&p, &only_head, &rec, 4096), 0);
    assert_int_equal(proto_h1_response_feed(&p, (const uint8_t *)in, strlen(in)), strlen(in));
    assert_string_equal(rec.ev, "H200\n");
    assert_true(proto_h1_response_can_reuse(&p));
    proto_h1_response_free(&p);
}

static void test_strerror(void **state)
{
    static const int codes[] = {0,
                                PROTO_E_NOMEM,
                                PROTO_E_BAD_REQUEST,
                                PROTO_E_NOT_IMPLEMENTED,
                                PROTO_E_BAD_RESPONSE,
                                PROTO_E_UNSAFE_RESPONSE,
                                PROTO_E_TOO_LARGE,
                                PROTO_E_CALLBACK};

    (void)state;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = proto_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, proto_strerror(codes[j]));
    }
    assert_string_equal(proto_strerror(-1000), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),         cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_interim),        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_reuse),          cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_nul_in_value),
        cmocka_unit_test(test_back_to_back),   cmocka_unit_test(test_reset_after_error),
        cmocka_unit_test(test_callback_stops), cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_strerror),       cmocka_unit_test(test_head_held_for_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
