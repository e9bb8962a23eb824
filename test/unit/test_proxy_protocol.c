/* Unit tests for proto/proxy_protocol.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "proto/proxy_protocol.h"

/* A literal with its length, so cases may hold embedded NULs. */
#define S(lit) lit, (sizeof(lit) - 1)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The v2 signature, then ver_cmd, fam and length bytes follow in each case. */
#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

/* Application bytes that may follow a header in the same read. */
static const char app_bytes[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET / HTTP/1.1\r\n";

typedef struct valid_case {
    const char *name;
    const char *data;
    size_t len; /* the whole header, and nothing after it */
    int is_local;
    int family;
    const char *src_addr;
    uint16_t src_port;
    const char *dst_addr;
    uint16_t dst_port;
} valid_case_t;

typedef struct invalid_case {
    const char *name;
    const char *data;
    size_t len;
    size_t err_at; /* the shortest prefix that returns -1; shorter ones return 0 */
} invalid_case_t;

/* Parses len bytes of data from a heap copy of exactly that size, so ASan
 * reports any read past len. */
static int parse_copy(const char *data, size_t len, proto_proxy_info_t *out)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, data, len);
    rc = proto_proxy_parse(len > 0 ? copy : NULL, len, out);
    free(copy);
    return rc;
}

static void check_info(const valid_case_t *c, const proto_proxy_info_t *info)
{
    assert_int_equal(info->is_local, c->is_local);
    if (c->is_local)
        return;
    assert_int_equal(info->family, c->family);
    assert_string_equal(info->src_addr, c->src_addr);
    assert_int_equal(info->src_port, c->src_port);
    assert_string_equal(info->dst_addr, c->dst_addr);
    assert_int_equal(info->dst_port, c->dst_port);
}

/*
 * The whole header parses to its length and fields; every shorter prefix
 * needs more; the header followed by application bytes still returns the
 * header's length.
 */
static void run_valid(const valid_case_t *c)
{
    proto_proxy_info_t info;
    char *joined = malloc(c->len + sizeof(app_bytes));
    int rc;

    memset(&info, 0, sizeof(info));
    rc = parse_copy(c->data, c->len, &info);
    if (rc != (int)c->len)
        print_error("case %s: got %d, want %zu\n", c->name, rc, c->len);
    assert_int_equal(rc, (int)c->len);
    check_info(c, &info);

    for (size_t k = 0; k < c->len; k++) {
        rc = parse_copy(c->data, k, &info);
        if (rc != 0)
            print_error("case %s: prefix %zu got %d, want 0\n", c->name, k, rc);
        assert_int_equal(rc, 0);
    }

    assert_non_null(joined);
    memcpy(joined, c->data, c->len);
    memcpy(joined + c->len, app_bytes, sizeof(app_bytes) - 1);
    for (size_t extra = 1; extra < sizeof(app_bytes); extra++) {
        memset(&info, 0, sizeof(info));
        assert_int_equal(parse_copy(joined, c->len + extra, &info), (int)c->len);
        check_info(c, &info);
    }
    free(joined);
}

/* Every prefix shorter than err_at needs more; err_at and every longer one are refused. */
static void run_invalid(const invalid_case_t *c)
{
    proto_proxy_info_t info;

    assert_true(c->err_at >= 1 && c->err_at <= c->len);
    for (size_t k = 0; k <= c->len; k++) {
        int want = k < c->err_at ? 0 : -1;
        int rc = parse_copy(c->data, k, &info);

        if (rc != want)
            print_error("case %s: prefix %zu got %d, want %d\n", c->name, k, rc, want);
        assert_int_equal(rc, want);
    }
}

static void test_v1_valid(void **state)
{
    static const valid_case_t cases[] = {
        {"tcp4", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 0, AF_INET, "1.2.3.4", 1111,
         "5.6.7.8", 2222},
        {"tcp4 extremes", S("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n"), 0, AF_INET,
         "255.255.255.255", 65535, "0.0.0.0", 0},
        {"tcp4 leading zero ports", S("PROXY TCP4 10.0.0.1 10.0.0.2 00080 0443\r\n"), 0, AF_INET,
         "10.0.0.1", 80, "10.0.0.2", 443},
        {"tcp6", S("PROXY TCP6 2001:db8::1 2001:db8::2 1111 2222\r\n"), 0, AF_INET6, "2001:db8::1",
         1111, "2001:db8::2", 2222},
        {"tcp6 canonicalized", S("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:192.0.2.1 1 2\r\n"), 0,
         AF_INET6, "2001:db8::1", 1, "::ffff:192.0.2.1", 2},
        {"tcp6 longest",
         S("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
         0, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535},
        {"unknown bare", S("PROXY UNKNOWN\r\n"), 1, 0, NULL, 0, NULL, 0},
        {"unknown with addresses", S("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1111 2222\r\n"), 1, 0, NULL, 0,
         NULL, 0},
        {"unknown anything", S("PROXY UNKNOWN \x01 garbage \x00\xff\r\n"), 1, 0, NULL, 0, NULL, 0},
        {"unknown 107 bytes",
         S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
         1, 0, NULL, 0, NULL, 0},
    };

    (void)state;
    assert_int_equal(cases[COUNT(cases) - 1].len, 107);
    for (size_t i = 0; i < COUNT(cases); i++)
        run_valid(&cases[i]);
}

static void test_v1_invalid(void **state)
{
    static const invalid_case_t cases[] = {
        {"bad family", S("PROXY TCP5 1.2.3.4 5.6.7.8 1111 2222\r\n"), 10},
        {"lower-case family", S("PROXY tcp4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 7},
        {"udp family", S("PROXY UDP4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 8},
        {"double space", S("PROXY  TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 7},
        {"no space after PROXY", S("PROXYTCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 6},
        {"family without addresses", S("PROXY TCP4\r\n"), 11},
        {"unknown glued", S("PROXY UNKNOWNX\r\n"), 14},
        {"bad ipv4 octet", S("PROXY TCP4 1.2.3.256 5.6.7.8 1111 2222\r\n"), 21},
        {"short ipv4", S("PROXY TCP4 1.2.3 5.6.7.8 1111 2222\r\n"), 17},
        {"ipv4 too long", S("PROXY TCP4 1.2.3.4444444444444 5.6.7.8 1 2\r\n"), 27},
        {"ipv6 under TCP4", S("PROXY TCP4 2001:db8::1 5.6.7.8 1111 2222\r\n"), 16},
        {"ipv4 under TCP6", S("PROXY TCP6 1.2.3.4 ::1 1111 2222\r\n"), 19},
        {"bad ipv6", S("PROXY TCP6 2001:db8:::1 ::1 1111 2222\r\n"), 24},
        {"bad dst", S("PROXY TCP4 1.2.3.4 5.6.7 1111 2222\r\n"), 25},
        {"empty address", S("PROXY TCP4  5.6.7.8 1111 2222\r\n"), 12},
        {"src port over 65535", S("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2222\r\n"), 32},
        {"dst port over 65535", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 70000\r\n"), 37},
        {"port six digits", S("PROXY TCP4 1.2.3.4 5.6.7.8 000001 2222\r\n"), 33},
        {"negative port", S("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2222\r\n"), 28},
        {"empty port", S("PROXY TCP4 1.2.3.4 5.6.7.8  2222\r\n"), 28},
        {"missing dst port", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n"), 32},
        {"trailing space", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222 \r\n"), 37},
        {"extra field", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222 3333\r\n"), 37},
        {"lf only", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\n"), 37},
        {"cr without lf", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\rX"), 38},
        {"cr cr lf", S("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\r\n"), 38},
        {"unknown lf only", S("PROXY UNKNOWN\n"), 14},
        {"unknown lf in rest", S("PROXY UNKNOWN foo\nbar\r\n"), 18},
        {"unknown cr without lf", S("PROXY UNKNOWN foo\rbar\r\n"), 19},
        {"unknown 108 bytes",
         S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655350\r\n"),
         107},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_invalid(&cases[i]);
}

/* A line that never ends within 107 bytes is refused at 107, wherever it would have ended. */
static void test_v1_no_crlf(void **state)
{
    char line[300];
    invalid_case_t c = {"no crlf", line, 0, 107};

    (void)state;
    memcpy(line, "PROXY UNKNOWN ", 14);
    memset(line + 14, 'a', sizeof(line) - 14);
    c.len = sizeof(line);
    run_invalid(&c);

    /* CRLF just past the limit: refused as soon as 107 bytes are in. */
    memcpy(line + 106, "\r\n", 2);
    c.len = 108;
    run_invalid(&c);
}

static void test_v2_valid(void **state)
{
    static const valid_case_t cases[] = {
        {"proxy tcp4",
         S(SIG "\x21\x11\x00\x0C"
               "\x01\x02\x03\x04"
               "\x05\x06\x07\x08"
               "\x04\x57\x08\xAE"),
         0, AF_INET, "1.2.3.4", 1111, "5.6.7.8", 2222},
        {"proxy udp4",
         S(SIG "\x21\x12\x00\x0C"
               "\xC0\x00\x02\x01"
               "\xC0\x00\x02\x02"
               "\xFF\xFF\x00\x00"),
         0, AF_INET, "192.0.2.1", 65535, "192.0.2.2", 0},
        {"proxy tcp4 with tlvs",
         S(SIG "\x21\x11\x00\x1A"
               "\x01\x02\x03\x04"
               "\x05\x06\x07\x08"
               "\x04\x57\x08\xAE"
               "\x01\x00\x02"
               "h2"
               "\x04\x00\x03\x00\x00\x00"
               "\x05\x00\x00"),
         0, AF_INET, "1.2.3.4", 1111, "5.6.7.8", 2222},
        {"proxy tcp6",
         S(SIG "\x21\x21\x00\x24"
               "\x20\x01\x0D\xB8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
               "\x20\x01\x0D\xB8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
               "\x04\x57\x08\xAE"),
         0, AF_INET6, "2001:db8::1", 1111, "2001:db8::2", 2222},
        {"proxy tcp6 with tlvs",
         S(SIG "\x21\x21\x00\x2B"
               "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF\xC0\x00\x02\x01"
               "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
               "\x00\x50\x01\xBB"
               "\x01\x00\x04"
               "h2c!"),
         0, AF_INET6, "::ffff:192.0.2.1", 80, "::1", 443},
        {"proxy udp6",
         S(SIG "\x21\x22\x00\x24"
               "\x20\x01\x0D\xB8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
               "\x20\x01\x0D\xB8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
               "\x00\x01\x00\x02"),
         0, AF_INET6, "2001:db8::1", 1, "2001:db8::2", 2},
        {"local", S(SIG "\x20\x00\x00\x00"), 1, 0, NULL, 0, NULL, 0},
        {"local with addresses",
         S(SIG "\x20\x11\x00\x0C"
               "\x01\x02\x03\x04"
               "\x05\x06\x07\x08"
               "\x04\x57\x08\xAE"),
         1, 0, NULL, 0, NULL, 0},
        {"local ignores family", S(SIG "\x20\xFF\x00\x02\xAB\xCD"), 1, 0, NULL, 0, NULL, 0},
        {"proxy unspec", S(SIG "\x21\x00\x00\x00"), 1, 0, NULL, 0, NULL, 0},
        {"proxy unspec with tlv", S(SIG "\x21\x00\x00\x03\x04\x00\x00"), 1, 0, NULL, 0, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_valid(&cases[i]);
}

/* A v2 header with the given ver_cmd, fam and body length; the body is zeros. */
static size_t build_v2(uint8_t *buf, uint8_t ver_cmd, uint8_t fam, size_t body_len)
{
    memcpy(buf, SIG, 12);
    buf[12] = ver_cmd;
    buf[13] = fam;
    buf[14] = (uint8_t)(body_len >> 8);
    buf[15] = (uint8_t)body_len;
    memset(buf + 16, 0, body_len);
    return 16 + body_len;
}

static void test_v2_unix_and_sizes(void **state)
{
    static uint8_t buf[PROTO_PROXY_MAX_HEADER];
    valid_case_t v = {NULL, (const char *)buf, 0, 1, 0, NULL, 0, NULL, 0};

    (void)state;
    v.name = "unix stream";
    v.len = build_v2(buf, 0x21, 0x31, 216);
    memcpy(buf + 16, "/run/lb.sock", 12);
    run_valid(&v);

    v.name = "unix datagram with tlv";
    v.len = build_v2(buf, 0x21, 0x32, 216 + 5);
    buf[16 + 216] = 0x04; /* NOOP TLV, 2 bytes of value */
    buf[16 + 218] = 0x02;
    run_valid(&v);

    v.name = "longest header";
    v.len = build_v2(buf, 0x21, 0x11, PROTO_PROXY_MAX_HEADER - 16);
    buf[16] = 10;
    buf[20] = 10;
    buf[23] = 1;
    buf[24] = 0x01; /* src port 256 */
    buf[27] = 0x02; /* dst port 2 */
    v.is_local = 0;
    v.family = AF_INET;
    v.src_addr = "10.0.0.0";
    v.src_port = 256;
    v.dst_addr = "10.0.0.1";
    v.dst_port = 2;
    assert_int_equal(v.len, PROTO_PROXY_MAX_HEADER);
    run_valid(&v);
}

static void test_v2_invalid(void **state)
{
    static const invalid_case_t cases[] = {
        {"bad signature", S("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0D"), 12},
        {"bad signature early", S("\x0D\x0A\x0D\x0A\x01"), 5},
        {"version 1", S(SIG "\x11\x11\x00\x0C"), 13},
        {"version 3", S(SIG "\x31\x11\x00\x0C"), 13},
        {"version 0", S(SIG "\x01\x11\x00\x0C"), 13},
        {"command 2", S(SIG "\x22\x11\x00\x0C"), 13},
        {"command 15", S(SIG "\x2F\x11\x00\x0C"), 13},
        {"family 4", S(SIG "\x21\x41\x00\x0C"), 14},
        {"transport 3", S(SIG "\x21\x13\x00\x0C"), 14},
        {"transport 0 with inet", S(SIG "\x21\x10\x00\x0C"), 14},
        {"tcp4 too short",
         S(SIG "\x21\x11\x00\x0B"
               "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08"),
         16},
        {"tcp4 empty", S(SIG "\x21\x11\x00\x00"), 16},
        {"tcp6 with inet length",
         S(SIG "\x21\x21\x00\x0C"
               "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xAE"),
         16},
        {"tcp6 one short", S(SIG "\x21\x21\x00\x23"), 16},
        {"unix with inet length", S(SIG "\x21\x31\x00\x0C"), 16},
        {"unix one short", S(SIG "\x21\x31\x00\xD7"), 16},
        {"over max", S(SIG "\x21\x11\x03\xF1"), 16},
        {"max length", S(SIG "\x21\x11\xFF\xFF"), 16},
        {"local over max", S(SIG "\x20\x00\x03\xF1"), 16},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_invalid(&cases[i]);
}

/* A client that skips the PROXY header is refused on the first byte that gives it away. */
static void test_not_proxy(void **state)
{
    static const invalid_case_t cases[] = {
        {"http/1.1", S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1},
        {"tls client hello", S("\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03"), 1},
        {"h2 preface", S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 3},
        {"nul", S("\x00PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 1},
        {"space", S(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 1},
        {"lower case", S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 1},
        {"blank line", S("\r\nGET / HTTP/1.1\r\n"), 3},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_invalid(&cases[i]);
}

static void test_empty(void **state)
{
    proto_proxy_info_t info;

    (void)state;
    assert_int_equal(proto_proxy_parse(NULL, 0, &info), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),          cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v1_no_crlf),        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v2_unix_and_sizes), cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_not_proxy),         cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
