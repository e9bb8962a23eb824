/* Unit tests for proto/upgrade.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/upgrade.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void test_is_websocket(void **state)
{
    (void)state;
    proto_header_t yes[] = {H("host", "a"), H("connection", "keep-alive, Upgrade"),
                            H("upgrade", "WebSocket")};
    proto_header_t no_conn[] = {H("upgrade", "websocket")};
    proto_header_t other[] = {H("upgrade", "h2c"), H("connection", "upgrade")};
    assert_true(proto_upgrade_is_websocket("GET", 3, yes, 3, 0));
    assert_false(proto_upgrade_is_websocket("GET", 3, yes, 3, 1)); /* a body */
    assert_false(proto_upgrade_is_websocket("POST", 4, yes, 3, 0));
    assert_false(proto_upgrade_is_websocket("GET", 3, no_conn, 1, 0));
    assert_false(proto_upgrade_is_websocket("GET", 3, other, 2, 0));
    assert_false(proto_upgrade_is_websocket("GET", 3, NULL, 0, 0));
}

static void test_key(void **state)
{
    (void)state;
    /* RFC 6455 4.1's example nonce "the sample nonce". */
    char key[PROTO_UPGRADE_KEY_LEN + 1];
    proto_upgrade_key((const uint8_t *)"the sample nonce", key);
    assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
    uint8_t zeros[16] = {0}, ff[16];
    memset(ff, 0xff, sizeof(ff));
    proto_upgrade_key(zeros, key);
    assert_string_equal(key, "AAAAAAAAAAAAAAAAAAAAAA==");
    proto_upgrade_key(ff, key);
    assert_string_equal(key, "/////////////////////w==");
}

static const proto_header_t *find(const proto_request_t *r, const char *name)
{
    for (size_t i = 0; i < r->nextra; i++) {
        if (r->extra[i].name_len == strlen(name) &&
            memcmp(r->extra[i].name, name, strlen(name)) == 0)
            return &r->extra[i];
    }
    return NULL;
}

static void test_request_fields(void **state)
{
    (void)state;
    proto_header_t mtls = H("x-client-cert", "CN=a");
    proto_header_t hdrs[] = {H("sec-websocket-protocol", "chat")};
    proto_request_t req = {.method = "CONNECT",
                           .method_len = 7,
                           .headers = hdrs,
                           .nheaders = 1,
                           .extra = &mtls,
                           .nextra = 1,
                           .has_body = 1};
    proto_header_t extra[1 + PROTO_UPGRADE_EXTRA_MAX];
    assert_int_equal(
        proto_upgrade_request(&req, extra, 1 + PROTO_UPGRADE_EXTRA_MAX, "dGhlIHNhbXBsZSBub25jZQ=="),
        0);
    assert_int_equal(req.method_len, 3);
    assert_memory_equal(req.method, "GET", 3);
    assert_false(req.has_body);
    assert_int_equal(req.nextra, 5);
    assert_non_null(find(&req, "x-client-cert"));
    assert_memory_equal(find(&req, "upgrade")->value, "websocket", 9);
    assert_memory_equal(find(&req, "connection")->value, "upgrade", 7);
    assert_memory_equal(find(&req, "sec-websocket-key")->value, "dGhlIHNhbXBsZSBub25jZQ==", 24);
    assert_memory_equal(find(&req, "sec-websocket-version")->value, "13", 2);

    /* An HTTP/1.1 client's own key and version go through as they are. */
    proto_header_t h1[] = {H("sec-websocket-key", "x"), H("sec-websocket-version", "13")};
    proto_request_t r1 = {.method = "GET", .method_len = 3, .headers = h1, .nheaders = 2};
    assert_int_equal(proto_upgrade_request(&r1, extra, 1 + PROTO_UPGRADE_EXTRA_MAX, NULL), 0);
    assert_int_equal(r1.nextra, 2);
    assert_null(find(&r1, "sec-websocket-key"));
    assert_null(find(&r1, "sec-websocket-version"));

    proto_request_t r2 = {.method = "GET", .method_len = 3};
    assert_int_equal(proto_upgrade_request(&r2, extra, 3, NULL), PROTO_E_NOMEM);
}

/* Feeds a head whole and in every split, as bytes arrive. */
static ssize_t parse(const char *text, int *status, proto_header_t *f, size_t max, size_t *n,
                     char **copy)
{
    size_t len = strlen(text);
    const char *blank = strstr(text, "\r\n\r\n");
    size_t head_len = blank != NULL ? (size_t)(blank - text) + 4 : len;
    for (size_t cut = 0; cut < head_len; cut++) {
        char *part = malloc(cut + 1);
        memcpy(part, text, cut);
        size_t k = 0;
        int st = 0;
        ssize_t rv = proto_upgrade_parse_head(part, cut, &st, f, max, &k);
        /* An incomplete head is never complete, though it may already be
         * known to be bad. */
        assert_true(rv <= 0);
        free(part);
    }
    *copy = malloc(len + 1);
    memcpy(*copy, text, len + 1);
    return proto_upgrade_parse_head(*copy, len, status, f, max, n);
}

static void test_parse_head(void **state)
{
    (void)state;
    proto_header_t f[8];
    size_t n = 0;
    int status = 0;
    char *copy;
    const char *ok =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection:  Upgrade \r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\nrest";
    ssize_t rv = parse(ok, &status, f, 8, &n, &copy);
    assert_int_equal(rv, (ssize_t)(strlen(ok) - 4));
    assert_int_equal(status, 101);
    assert_int_equal(n, 3);
    assert_memory_equal(f[0].name, "upgrade", 7);
    assert_int_equal(f[1].value_len, 7);
    assert_memory_equal(f[1].value, "Upgrade", 7);
    assert_memory_equal(f[2].name, "sec-websocket-accept", 20);
    free(copy);

    static const char *const bad[] = {
        "HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n", /* bare LF */
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n folded\r\n\r\n",
        "HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 101 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 101 OK\r\nX: a\x01b\r\n\r\n",
        "HTTP/2.0 101 OK\r\n\r\n",
        "HTTP/1.1 1x1 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *c = strdup(bad[i]);
        assert_true(proto_upgrade_parse_head(c, strlen(c), &status, f, 8, &n) < 0);
        free(c);
    }
    char *many = strdup("HTTP/1.1 101 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n");
    assert_int_equal(proto_upgrade_parse_head(many, strlen(many), &status, f, 2, &n),
                     PROTO_E_TOO_LARGE);
    free(many);
}

static void test_status(void **state)
{
    (void)state;
    int status = 0;
    assert_int_equal(proto_upgrade_status("HTTP/1.1 40", 11, &status), 0);
    assert_int_equal(proto_upgrade_status("HTTP/1.1 403 Forbidden\r\n", 24, &status), 1);
    assert_int_equal(status, 403);
    assert_int_equal(proto_upgrade_status("HTTP/1.0 200\r\n", 14, &status), 1);
    assert_int_equal(status, 200);
    assert_int_equal(proto_upgrade_status("HTTX", 4, &status), PROTO_E_BAD_RESPONSE);
    assert_int_equal(proto_upgrade_status("HTTP/1.1 2000 x\r\n", 17, &status),
                     PROTO_E_BAD_RESPONSE);
}

static void test_filter_101(void **state)
{
    (void)state;
    proto_header_t in[] = {H("upgrade", "websocket"),      H("connection", "upgrade"),
                           H("sec-websocket-accept", "x"), H("sec-websocket-protocol", "chat"),
                           H("keep-alive", "timeout=5"),   H("content-length", "0"),
                           H("set-cookie", "a=1")};
    proto_header_t out[7];
    size_t n = proto_upgrade_filter_101(in, 7, out, 1);
    assert_int_equal(n, 2);
    assert_memory_equal(out[0].name, "sec-websocket-protocol", 22);
    assert_memory_equal(out[1].name, "set-cookie", 10);
    n = proto_upgrade_filter_101(in, 7, out, 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out[0].name, "upgrade", 7);
    assert_memory_equal(out[1].name, "connection", 10);
    assert_memory_equal(out[2].name, "sec-websocket-accept", 20);
}

static void test_accept_pieces(void **state)
{
    (void)state;
    const char head[] = "GET /ws HTTP/1.1\r\nhost: a\r\nsec-websocket-keyx: no\r\n"
                        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nupgrade: websocket\r\n\r\n";
    size_t len = 0;
    const char *key = proto_upgrade_head_key(head, sizeof(head) - 1, &len);
    assert_non_null(key);
    assert_int_equal(len, 24);
    assert_memory_equal(key, "dGhlIHNhbXBsZSBub25jZQ==", 24);
    assert_null(proto_upgrade_head_key("GET / HTTP/1.1\r\nhost: a\r\n\r\n", 29, &len));

    char in[64];
    size_t n = proto_upgrade_accept_input(key, len, in, sizeof(in));
    assert_int_equal(n, 24 + 36);
    assert_memory_equal(in, "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11", n);
    assert_int_equal(proto_upgrade_accept_input(key, len, in, 59), 0);

    proto_header_t f[] = {H("upgrade", "websocket"), H("sec-websocket-accept", "x=")};
    const char *v = proto_upgrade_field(f, 2, "sec-websocket-accept", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_null(proto_upgrade_field(f, 2, "connection", &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_websocket),   cmocka_unit_test(test_key),
        cmocka_unit_test(test_request_fields), cmocka_unit_test(test_parse_head),
        cmocka_unit_test(test_status),         cmocka_unit_test(test_filter_101),
        cmocka_unit_test(test_accept_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
