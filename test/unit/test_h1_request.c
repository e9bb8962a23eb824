/* Unit tests for proto/h1_request.c: table-driven, each case compares the
 * whole head byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/h1_request.h"

#define MAX_FIELDS 8

typedef struct field {
    const char *name, *value;
    size_t value_len; /* 0: strlen(value); set it for values with NUL bytes */
} field_t;

typedef struct req_case {
    const char *label;
    const char *method, *scheme, *authority, *path, *client;
    int has_body;
    field_t fields[MAX_FIELDS];
    int rv;
    const char *head; /* expected head when rv == 0 */
    int is_chunked;
    int64_t content_length;
    int is_idempotent;
} req_case_t;

/* Forwarding tail of the default client 192.0.2.7 over https. */
#define FWD                                                                                        \
    "x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: https\r\n"                                   \
    "forwarded: for=192.0.2.7;proto=https\r\n\r\n"

static int run_case(const req_case_t *c, proto_h1_head_t *out, const char **why)
{
    proto_header_t hs[MAX_FIELDS];
    proto_request_t req = {0};
    size_t n = 0;

    for (; n < MAX_FIELDS && c->fields[n].name != NULL; n++) {
        hs[n].name = c->fields[n].name;
        hs[n].name_len = strlen(c->fields[n].name);
        hs[n].value = c->fields[n].value;
        hs[n].value_len =
            c->fields[n].value_len ? c->fields[n].value_len : strlen(c->fields[n].value);
    }
    req.method = c->method ? c->method : "GET";
    req.method_len = strlen(req.method);
    req.scheme = c->scheme ? c->scheme : "https";
    req.scheme_len = strlen(req.scheme);
    if (c->authority != NULL && strcmp(c->authority, "-") == 0) {
        req.authority = NULL; /* "-": the client sent no :authority */
    } else {
        req.authority = c->authority ? c->authority : "example.com";
        req.authority_len = strlen(req.authority);
    }
    req.path = c->path ? c->path : "/";
    req.path_len = strlen(req.path);
    req.headers = hs;
    req.nheaders = n;
    req.client_addr = c->client ? c->client : "192.0.2.7";
    req.has_body = c->has_body;
    return proto_h1_request_build(&req, out, why);
}

static void check_cases(const req_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const req_case_t *c = &cases[i];
        proto_h1_head_t out;
        const char *why = NULL;
        int rv = run_case(c, &out, &why);

        if (rv != c->rv) {
            fprintf(stderr, "case '%s': rv %d, want %d (why: %s)\n", c->label, rv, c->rv,
                    why ? why : "-");
            fail();
        }
        if (rv != 0) {
            assert_null(out.data);
            assert_non_null(why);
            continue;
        }
        if (out.len != strlen(c->head) || memcmp(out.data, c->head, out.len) != 0) {
            fprintf(stderr, "case '%s':\n got: [%.*s]\nwant: [%s]\n", c->label, (int)out.len,
                    out.data, c->head);
            fail();
        }
        assert_int_equal(out.is_chunked, c->is_chunked);
        assert_int_equal(out.content_length, c->content_length);
        assert_int_equal(out.is_idempotent, c->is_idempotent);
        proto_h1_head_free(&out);
        assert_null(out.data);
    }
}

#define CHECK(cases) check_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void test_request_line(void **state)
{
    static const req_case_t cases[] = {
        {.label = "simple get",
         .path = "/a/b?c=d&e=%20",
         .head = "GET /a/b?c=d&e=%20 HTTP/1.1\r\nhost: example.com\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "options star",
         .method = "OPTIONS",
         .path = "*",
         .head = "OPTIONS * HTTP/1.1\r\nhost: example.com\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "extension method",
         .method = "PROPFIND",
         .head = "PROPFIND / HTTP/1.1\r\nhost: example.com\r\n" FWD,
         .content_length = -1},
        {.label = "star is only for OPTIONS", .path = "*", .rv = PROTO_E_BAD_REQUEST},
        {.label = "no leading slash", .path = "a/b", .rv = PROTO_E_BAD_REQUEST},
        {.label = "absolute form", .path = "http://x/", .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty path", .path = "", .rv = PROTO_E_BAD_REQUEST},
        {.label = "space in path", .path = "/a b", .rv = PROTO_E_BAD_REQUEST},
        {.label = "tab in path", .path = "/a\tb", .rv = PROTO_E_BAD_REQUEST},
        {.label = "CTL in path", .path = "/a\x01", .rv = PROTO_E_BAD_REQUEST},
        {.label = "CR LF in path", .path = "/a\r\nX: y", .rv = PROTO_E_BAD_REQUEST},
        {.label = "DEL in path", .path = "/a\x7f", .rv = PROTO_E_BAD_REQUEST},
        /* Found by fuzz_h1_request: HTTP/1.1 readers refuse a fragment. */
        {.label = "fragment in path", .path = "/a#frag", .rv = PROTO_E_BAD_REQUEST},
        {.label = "fragment only", .path = "/#", .rv = PROTO_E_BAD_REQUEST},
        {.label = "obs-text in path", .path = "/caf\xc3\xa9", .rv = PROTO_E_BAD_REQUEST},
        {.label = "high byte in query", .path = "/a?\x91", .rv = PROTO_E_BAD_REQUEST},
        /* Found by fuzz_h1_request: a strict backend refuses the whole head. */
        {.label = "CTL in value",
         .fields = {{"x-a", "a\x01"
                            "b"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "DEL in cookie", .fields = {{"cookie", "a=\x7f"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "method not a token", .method = "GE T", .rv = PROTO_E_BAD_REQUEST},
        {.label = "method with slash", .method = "G/T", .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty method", .method = "", .rv = PROTO_E_BAD_REQUEST},
        {.label = "CONNECT", .method = "CONNECT", .rv = PROTO_E_NOT_IMPLEMENTED},
        /* Outside llhttp's table: the HTTP/1.1 frontend answers 501, so do we. */
        {.label = "QUERY", .method = "QUERY", .rv = PROTO_E_NOT_IMPLEMENTED},
        {.label = "BAN", .method = "BAN", .rv = PROTO_E_NOT_IMPLEMENTED},
        {.label = "RTSP's DESCRIBE", .method = "DESCRIBE", .rv = PROTO_E_NOT_IMPLEMENTED},
        {.label = "lowercase get", .method = "get", .rv = PROTO_E_NOT_IMPLEMENTED},
        {.label = "M-SEARCH is known",
         .method = "M-SEARCH",
         .head = "M-SEARCH / HTTP/1.1\r\nhost: example.com\r\n" FWD,
         .content_length = -1},
        {.label = "bad scheme", .scheme = "ht tp", .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty scheme", .scheme = "", .rv = PROTO_E_BAD_REQUEST},
    };

    (void)state;
    CHECK(cases);
}

static void test_host(void **state)
{
    static const req_case_t cases[] = {
        {.label = "no authority, host field",
         .authority = "-",
         .fields = {{"accept", "*/*"}, {"host", "h.example:8443"}},
         .head = "GET / HTTP/1.1\r\nhost: h.example:8443\r\naccept: */*\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "host equal to authority, other case",
         .authority = "Example.COM",
         .fields = {{"host", "example.com"}},
         .head = "GET / HTTP/1.1\r\nhost: Example.COM\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "ipv6 authority",
         .authority = "[2001:db8::1]:8443",
         .head = "GET / HTTP/1.1\r\nhost: [2001:db8::1]:8443\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "conflicting host",
         .fields = {{"host", "evil.example"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "neither", .authority = "-", .rv = PROTO_E_BAD_REQUEST},
        {.label = "two hosts",
         .authority = "-",
         .fields = {{"host", "a"}, {"host", "a"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty authority", .authority = "", .rv = PROTO_E_BAD_REQUEST},
        {.label = "userinfo", .authority = "u@example.com", .rv = PROTO_E_BAD_REQUEST},
        {.label = "space in authority", .authority = "a b", .rv = PROTO_E_BAD_REQUEST},
        {.label = "slash in authority", .authority = "a/b", .rv = PROTO_E_BAD_REQUEST},
        {.label = "bad host field",
         .authority = "-",
         .fields = {{"host", "a/b"}},
         .rv = PROTO_E_BAD_REQUEST},
    };

    (void)state;
    CHECK(cases);
}

static void test_fields(void **state)
{
    static const req_case_t cases[] = {
        {.label = "order kept, cookie at first crumb",
         .fields = {{"accept", "*/*"},
                    {"cookie", "a=1"},
                    {"user-agent", "t"},
                    {"cookie", "b=2"},
                    {"cookie", "c=3"},
                    {"x-end", "1"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\n"
                 "cookie: a=1; b=2; c=3\r\nuser-agent: t\r\nx-end: 1\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "empty cookie crumbs skipped",
         .fields = {{"cookie", ""}, {"cookie", "a=1"}, {"cookie", ""}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\ncookie: a=1\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "connection-specific dropped",
         .fields = {{"connection", "keep-alive, x-hop"},
                    {"keep-alive", "timeout=5"},
                    {"proxy-connection", "keep-alive"},
                    {"transfer-encoding", "chunked"},
                    {"upgrade", "websocket"},
                    {"http2-settings", "AAA"},
                    {"x-hop", "1"},
                    {"x-kept", "2"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-kept: 2\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "te trailers kept, others dropped",
         .fields = {{"te", "gzip"}, {"te", "Trailers"}, {"te", "trailers, deflate"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nte: Trailers\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "empty value and obs-text kept",
         .fields = {{"x-empty", ""}, {"x-utf8", "caf\xc3\xa9"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-empty: \r\nx-utf8: caf\xc3\xa9\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "uppercase name", .fields = {{"X-Foo", "1"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "space in name", .fields = {{"x foo", "1"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "colon in name", .fields = {{"x:foo", "1"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "pseudo in list", .fields = {{":path", "/"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty name", .fields = {{"", "1"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "CR in value", .fields = {{"x", "a\rb"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "LF in value", .fields = {{"x", "a\nb"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "NUL in value", .fields = {{"x", "a\0b", 3}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "leading space", .fields = {{"x", " a"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "trailing tab", .fields = {{"x", "a\t"}}, .rv = PROTO_E_BAD_REQUEST},
        {.label = "bad value in a dropped field still refused",
         .fields = {{"keep-alive", "a\r\nx: y"}},
         .rv = PROTO_E_BAD_REQUEST},
    };

    (void)state;
    CHECK(cases);
}

static void test_content_length(void **state)
{
    static const req_case_t cases[] = {
        {.label = "post with length",
         .method = "POST",
         .has_body = 1,
         .fields = {{"content-type", "text/plain"}, {"content-length", "5"}},
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\ncontent-type: text/plain\r\n"
                 "content-length: 5\r\n" FWD,
         .content_length = 5},
        {.label = "repeats agree, collapsed",
         .method = "PUT",
         .has_body = 1,
         .fields = {{"content-length", "42"}, {"content-length", "42"}},
         .head = "PUT / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 42\r\n" FWD,
         .content_length = 42,
         .is_idempotent = 1},
        {.label = "leading zeros normalised",
         .method = "POST",
         .has_body = 1,
         .fields = {{"content-length", "007"}},
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 7\r\n" FWD,
         .content_length = 7},
        {.label = "largest",
         .method = "POST",
         .has_body = 1,
         .fields = {{"content-length", "9223372036854775807"}},
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\n"
                 "content-length: 9223372036854775807\r\n" FWD,
         .content_length = INT64_MAX},
        {.label = "zero without body",
         .fields = {{"content-length", "0"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 0\r\n" FWD,
         .content_length = 0,
         .is_idempotent = 1},
        {.label = "body without length goes chunked",
         .method = "POST",
         .has_body = 1,
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n" FWD,
         .is_chunked = 1,
         .content_length = -1},
        {.label = "incoming transfer-encoding never trusted",
         .method = "POST",
         .has_body = 1,
         .fields = {{"transfer-encoding", "gzip, chunked"}},
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n" FWD,
         .is_chunked = 1,
         .content_length = -1},
        {.label = "get with body goes chunked",
         .has_body = 1,
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n" FWD,
         .is_chunked = 1,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "post without body gets zero",
         .method = "POST",
         .head = "POST / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 0\r\n" FWD,
         .content_length = 0},
        {.label = "patch without body gets zero",
         .method = "PATCH",
         .head = "PATCH / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 0\r\n" FWD,
         .content_length = 0},
        {.label = "get without body gets nothing",
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\n" FWD,
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "different repeats",
         .method = "POST",
         .has_body = 1,
         .fields = {{"content-length", "5"}, {"content-length", "6"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "list",
         .has_body = 1,
         .fields = {{"content-length", "5, 5"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "plus",
         .has_body = 1,
         .fields = {{"content-length", "+5"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "minus",
         .has_body = 1,
         .fields = {{"content-length", "-1"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "empty",
         .has_body = 1,
         .fields = {{"content-length", ""}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "hex",
         .has_body = 1,
         .fields = {{"content-length", "0x10"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "inner space",
         .has_body = 1,
         .fields = {{"content-length", "1 0"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "overflow",
         .has_body = 1,
         .fields = {{"content-length", "9223372036854775808"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "huge overflow",
         .has_body = 1,
         .fields = {{"content-length", "99999999999999999999999"}},
         .rv = PROTO_E_BAD_REQUEST},
        {.label = "length but END_STREAM",
         .method = "POST",
         .fields = {{"content-length", "5"}},
         .rv = PROTO_E_BAD_REQUEST},
    };

    (void)state;
    CHECK(cases);
}

static void test_forwarding(void **state)
{
    static const req_case_t cases[] = {
        {.label = "xff merged and appended",
         .fields = {{"x-forwarded-for", "198.51.100.1"},
                    {"accept", "*/*"},
                    {"x-forwarded-for", "198.51.100.2, 198.51.100.3"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\n"
                 "x-forwarded-for: 198.51.100.1, 198.51.100.2, 198.51.100.3, 192.0.2.7\r\n"
                 "x-forwarded-proto: https\r\nforwarded: for=192.0.2.7;proto=https\r\n\r\n",
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "xfp replaced, forwarded appended",
         .scheme = "http",
         .fields = {{"x-forwarded-proto", "https"}, {"forwarded", "for=198.51.100.1;proto=https"}},
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-forwarded-for: 192.0.2.7\r\n"
                 "x-forwarded-proto: http\r\n"
                 "forwarded: for=198.51.100.1;proto=https, for=192.0.2.7;proto=http\r\n\r\n",
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "ipv6 client quoted",
         .client = "2001:db8::7",
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-forwarded-for: 2001:db8::7\r\n"
                 "x-forwarded-proto: https\r\nforwarded: for=\"[2001:db8::7]\";proto=https\r\n\r\n",
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "loopback v6",
         .client = "::1",
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-forwarded-for: ::1\r\n"
                 "x-forwarded-proto: https\r\nforwarded: for=\"[::1]\";proto=https\r\n\r\n",
         .content_length = -1,
         .is_idempotent = 1},
        {.label = "unusable client address",
         .client = "1.2.3.4\r\nx: y",
         .head = "GET / HTTP/1.1\r\nhost: example.com\r\nx-forwarded-for: unknown\r\n"
                 "x-forwarded-proto: https\r\nforwarded: for=unknown;proto=https\r\n\r\n",
         .content_length = -1,
         .is_idempotent = 1},
    };

    (void)state;
    CHECK(cases);
}

static void test_idempotent_flag(void **state)
{
    static const struct {
        const char *method;
        int is_idempotent;
    } cases[] = {{"GET", 1},    {"HEAD", 1}, {"OPTIONS", 1}, {"TRACE", 1}, {"PUT", 1},
                 {"DELETE", 1}, {"POST", 0}, {"PATCH", 0},   {"LOCK", 0}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_case_t c = {.method = cases[i].method};
        proto_h1_head_t out;

        assert_int_equal(run_case(&c, &out, NULL), 0);
        assert_int_equal(out.is_idempotent, cases[i].is_idempotent);
        proto_h1_head_free(&out);
    }
}

static void test_why_optional(void **state)
{
    req_case_t c = {.path = "nope"};
    proto_h1_head_t out;

    (void)state;
    assert_int_equal(run_case(&c, &out, NULL), PROTO_E_BAD_REQUEST);
    assert_null(out.data);
    proto_h1_head_free(&out); /* harmless on an empty head */
}

/* Many fields: the head grows past its first allocation intact. */
static void test_large_head(void **state)
{
    enum { N = 300 };
    static char names[N][16];
    static char value[1000];
    proto_header_t hs[N];
    proto_request_t req = {.method = "GET",
                           .method_len = 3,
                           .scheme = "http",
                           .scheme_len = 4,
                           .authority = "a",
                           .authority_len = 1,
                           .path = "/",
                           .path_len = 1,
                           .client_addr = "10.0.0.1"};
    proto_h1_head_t out;

    (void)state;
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "x-f%d", i);
        hs[i] = (proto_header_t){names[i], strlen(names[i]), value, sizeof(value)};
    }
    req.headers = hs;
    req.nheaders = N;
    assert_int_equal(proto_h1_request_build(&req, &out, NULL), 0);
    assert_true(out.len > N * sizeof(value));
    assert_memory_equal(out.data + out.len - 4, "\r\n\r\n", 4);
    assert_non_null(memmem(out.data, out.len, "\r\nx-f299: vvv", 13));
    proto_h1_head_free(&out);
}

/* Gateway-added fields (the verified client certificate subject): appended
 * last, and a client's own field of that name never gets through. */
static void test_extra_fields(void **state)
{
    (void)state;
    proto_header_t hs[] = {
        {"x-client-subject", 16, "CN=forged", 9},
        {"accept", 6, "*/*", 3},
    };
    proto_header_t extra[] = {{"x-client-subject", 16, "CN=alice,O=Example", 18}};
    proto_request_t req = {
        .method = "GET",
        .method_len = 3,
        .scheme = "https",
        .scheme_len = 5,
        .authority = "example.com",
        .authority_len = 11,
        .path = "/",
        .path_len = 1,
        .headers = hs,
        .nheaders = 2,
        .client_addr = "192.0.2.7",
        .extra = extra,
        .nextra = 1,
    };
    proto_h1_head_t out;
    assert_int_equal(proto_h1_request_build(&req, &out, NULL), 0);
    static const char want[] = "GET / HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\n"
                               "x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: https\r\n"
                               "forwarded: for=192.0.2.7;proto=https\r\n"
                               "x-client-subject: CN=alice,O=Example\r\n\r\n";
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
    proto_h1_head_free(&out);

    /* No certificate: the field is only stripped. */
    extra[0].value_len = 0;
    assert_int_equal(proto_h1_request_build(&req, &out, NULL), 0);
    assert_null(memmem(out.data, out.len, "x-client-subject", 16));
    proto_h1_head_free(&out);

    /* A value that cannot go on an HTTP/1.1 line is refused. */
    extra[0].value = "CN=a\r\nx: y";
    extra[0].value_len = 11;
    assert_int_equal(proto_h1_request_build(&req, &out, NULL), PROTO_E_BAD_REQUEST);
}

/* ---- request trailers ---- */

typedef struct pair {
    const char *name, *value;
} pair_t;

typedef struct trailer_case {
    const char *label;
    pair_t in[MAX_FIELDS];
    const char *reserved;
    size_t max_list;  /* 0: 4096 */
    int rv;           /* count kept, or the error */
    const char *kept; /* "name=value|..." of the fields kept */
} trailer_case_t;

static void run_trailers(const trailer_case_t *c)
{
    proto_header_t in[MAX_FIELDS], out[MAX_FIELDS];
    size_t n = 0;
    const char *why = NULL;
    char got[512] = "";

    for (; n < MAX_FIELDS && c->in[n].name != NULL; n++) {
        in[n] = (proto_header_t){c->in[n].name, strlen(c->in[n].name), c->in[n].value,
                                 strlen(c->in[n].value)};
    }
    int rv =
        proto_h1_request_trailers(in, n, c->reserved, c->max_list ? c->max_list : 4096, out, &why);
    for (int i = 0; i < rv; i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof(got) - len, "%s%.*s=%.*s", i ? "|" : "", (int)out[i].name_len,
                 out[i].name, (int)out[i].value_len, out[i].value);
    }
    if (rv != c->rv || (rv >= 0 && strcmp(got, c->kept) != 0) || (rv < 0 && why == NULL)) {
        fprintf(stderr, "case '%s': rv %d want %d, kept [%s] want [%s]\n", c->label, rv, c->rv, got,
                c->kept ? c->kept : "");
        fail();
    }
}

static void test_trailers(void **state)
{
    static const trailer_case_t cases[] = {
        {"none", {{NULL}}, NULL, 0, 0, ""},
        {"grpc",
         {{"grpc-status", "0"}, {"grpc-message", "ok"}},
         NULL,
         0,
         2,
         "grpc-status=0|grpc-message=ok"},
        {"empty value kept", {{"x-sum", ""}}, NULL, 0, 1, "x-sum="},
        {"head-only and hop-by-hop dropped",
         {{"connection", "close"},
          {"transfer-encoding", "chunked"},
          {"content-length", "5"},
          {"host", "evil"},
          {"te", "trailers"},
          {"trailer", "x"},
          {"x-checksum", "abc"}},
         NULL,
         0,
         1,
         "x-checksum=abc"},
        {"forwarding fields dropped",
         {{"x-forwarded-for", "6.6.6.6"},
          {"x-forwarded-proto", "https"},
          {"forwarded", "for=1"},
          {"via", "1.1 x"},
          {"x-ok", "1"}},
         NULL,
         0,
         1,
         "x-ok=1"},
        {"the vouched-for field dropped",
         {{"x-client-cert", "CN=forged"}, {"x-ok", "1"}},
         "X-Client-Cert",
         0,
         1,
         "x-ok=1"},
        {"pseudo-field", {{":status", "200"}}, NULL, 0, PROTO_E_BAD_REQUEST, NULL},
        {"uppercase name", {{"X-Sum", "1"}}, NULL, 0, PROTO_E_BAD_REQUEST, NULL},
        {"not a token", {{"x sum", "1"}}, NULL, 0, PROTO_E_BAD_REQUEST, NULL},
        {"CR in value", {{"x-sum", "a\rb"}}, NULL, 0, PROTO_E_BAD_REQUEST, NULL},
        {"leading space in value", {{"x-sum", " a"}}, NULL, 0, PROTO_E_BAD_REQUEST, NULL},
        /* 5 + 1 + 32 = 38 per field: two fit in 76, not in 75. */
        {"list size fits", {{"x-aaa", "1"}, {"x-bbb", "2"}}, NULL, 76, 2, "x-aaa=1|x-bbb=2"},
        {"list size over", {{"x-aaa", "1"}, {"x-bbb", "2"}}, NULL, 75, PROTO_E_TOO_LARGE, NULL},
        {"dropped fields count too",
         {{"host", "1"}, {"x-bbb", "2"}},
         NULL,
         70,
         PROTO_E_TOO_LARGE,
         NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_trailers(&cases[i]);
    /* A NUL in a value; why is optional. */
    proto_header_t nul = {"x-sum", 5, "a\0b", 3}, out[1];
    assert_int_equal(proto_h1_request_trailers(&nul, 1, NULL, 4096, out, NULL),
                     PROTO_E_BAD_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_line), cmocka_unit_test(test_host),
        cmocka_unit_test(test_fields),       cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_forwarding),   cmocka_unit_test(test_idempotent_flag),
        cmocka_unit_test(test_why_optional), cmocka_unit_test(test_large_head),
        cmocka_unit_test(test_extra_fields), cmocka_unit_test(test_trailers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
