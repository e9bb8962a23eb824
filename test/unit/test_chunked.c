/* Unit tests for proto/chunked.c: size lines and the last chunk, with and
 * without trailer fields, compared byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/chunked.h"

static void test_size_line(void **state)
{
    static const struct {
        size_t len;
        const char *line;
    } cases[] = {
        {1, "1\r\n"},
        {15, "f\r\n"},
        {16, "10\r\n"},
        {0x1a2f, "1a2f\r\n"},
        {SIZE_MAX, "ffffffffffffffff\r\n"},
    };
    char out[PROTO_CHUNK_LINE_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = proto_chunk_size_line(out, cases[i].len);
        assert_int_equal(n, strlen(cases[i].line));
        assert_memory_equal(out, cases[i].line, n);
    }
}

static void check_last(const proto_header_t *f, size_t n, const char *want)
{
    char out[256];
    size_t size = proto_chunk_last_size(f, n);

    assert_int_equal(size, strlen(want));
    assert_true(size < sizeof(out));
    memset(out, 'X', sizeof(out));
    assert_int_equal(proto_chunk_last_write(out, f, n), size);
    assert_memory_equal(out, want, size);
    assert_int_equal(out[size], 'X'); /* nothing past the promised size */
}

static void test_last_chunk(void **state)
{
    static const proto_header_t grpc[] = {
        {"grpc-status", 11, "0", 1},
        {"grpc-message", 12, "all good", 8},
    };
    static const proto_header_t empty_value[] = {{"x-sum", 5, "", 0}};
    /* Values are written as given, not NUL-terminated. */
    static const proto_header_t cut[] = {{"x-abcdef", 5, "12345", 3}};

    (void)state;
    check_last(NULL, 0, PROTO_CHUNK_LAST);
    check_last(grpc, 2, "0\r\ngrpc-status: 0\r\ngrpc-message: all good\r\n\r\n");
    check_last(empty_value, 1, "0\r\nx-sum: \r\n\r\n");
    check_last(cut, 1, "0\r\nx-abc: 123\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_line),
        cmocka_unit_test(test_last_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
