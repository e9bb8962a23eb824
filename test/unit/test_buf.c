/* Unit tests for proto/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"

#define SEG (16 * 1024)

/* Deterministic bytes so any misplaced copy shows up as a mismatch. */
static void fill(uint8_t *p, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((from + i) * 131 + 7);
}

static void check_bytes(const uint8_t *p, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (uint8_t)((from + i) * 131 + 7));
}

static void test_empty(void **state)
{
    proto_buf_t b;
    proto_slice_t s[2];
    uint8_t out[4];

    (void)state;
    proto_buf_init(&b);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_int_equal(proto_buf_read(&b, out, sizeof(out)), 0);
    assert_int_equal(proto_buf_slices(&b, s, 2), 0);
    assert_int_equal(proto_buf_append(&b, "", 0), 0);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_null(b.head);
    proto_buf_consume(&b, 0);
    proto_buf_free(&b);
}

static void test_append_read_small(void **state)
{
    proto_buf_t b;
    char out[16];

    (void)state;
    proto_buf_init(&b);
    assert_int_equal(proto_buf_append(&b, "hello ", 6), 0);
    assert_int_equal(proto_buf_append(&b, "world", 5), 0);
    assert_int_equal(proto_buf_len(&b), 11);
    assert_int_equal(proto_buf_read(&b, out, 4), 4);
    assert_memory_equal(out, "hell", 4);
    assert_int_equal(proto_buf_len(&b), 7);
    assert_int_equal(proto_buf_read(&b, out, sizeof(out)), 7);
    assert_memory_equal(out, "o world", 7);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_null(b.head); /* emptied segments are freed */
    assert_null(b.tail);
    /* reusable after draining */
    assert_int_equal(proto_buf_append(&b, "x", 1), 0);
    assert_int_equal(proto_buf_len(&b), 1);
    proto_buf_free(&b);
    assert_int_equal(proto_buf_len(&b), 0);
}

static void test_across_segments(void **state)
{
    enum { TOTAL = 3 * SEG + 123 };
    proto_buf_t b;
    uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
    size_t off = 0, got = 0;

    (void)state;
    fill(src, TOTAL, 0);
    proto_buf_init(&b);
    /* Odd-sized appends so boundaries fall mid-append. */
    while (off < TOTAL) {
        size_t n = 1000 + off % 777;
        if (n > TOTAL - off)
            n = TOTAL - off;
        assert_int_equal(proto_buf_append(&b, src + off, n), 0);
        off += n;
    }
    assert_int_equal(proto_buf_len(&b), TOTAL);
    assert_ptr_not_equal(b.head, b.tail);
    /* Reads that straddle segment ends. */
    while (got < TOTAL) {
        size_t n = proto_buf_read(&b, dst + got, 5003);
        assert_true(n > 0);
        got += n;
        assert_int_equal(proto_buf_len(&b), TOTAL - got);
    }
    check_bytes(dst, TOTAL, 0);
    assert_null(b.head);
    proto_buf_free(&b);
    free(src);
    free(dst);
}

static void test_slices(void **state)
{
    proto_buf_t b;
    proto_slice_t s[8];
    uint8_t *src = malloc(2 * SEG + 10);
    size_t n, total = 0;

    (void)state;
    fill(src, 2 * SEG + 10, 0);
    proto_buf_init(&b);
    assert_int_equal(proto_buf_append(&b, src, SEG - 10), 0);
    assert_int_equal(proto_buf_append(&b, src + SEG - 10, SEG + 20), 0);
    n = proto_buf_slices(&b, s, 8);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].len, SEG); /* tail filled before a new segment */
    assert_int_equal(s[1].len, SEG + 10);
    for (size_t i = 0; i < n; i++) {
        check_bytes(s[i].base, s[i].len, total);
        total += s[i].len;
    }
    assert_int_equal(total, proto_buf_len(&b));
    /* max_slices caps the output and nothing is consumed. */
    assert_int_equal(proto_buf_slices(&b, s, 1), 1);
    assert_int_equal(proto_buf_len(&b), 2 * SEG + 10);
    assert_int_equal(proto_buf_slices(&b, s, 0), 0);

    /* A slice stays valid while more is appended. */
    const uint8_t *first = s[0].base;
    assert_int_equal(proto_buf_append(&b, src, 100), 0);
    check_bytes(first, 100, 0);
    proto_buf_free(&b);
    free(src);
}

static void test_consume_partial(void **state)
{
    proto_buf_t b;
    proto_slice_t s[4];
    uint8_t *src = malloc(2 * SEG);

    (void)state;
    fill(src, 2 * SEG, 0);
    proto_buf_init(&b);
    assert_int_equal(proto_buf_append(&b, src, 2 * SEG), 0);
    proto_buf_consume(&b, 10);
    assert_int_equal(proto_buf_len(&b), 2 * SEG - 10);
    assert_int_equal(proto_buf_slices(&b, s, 4), 1);
    check_bytes(s[0].base, s[0].len, 10);

    /* Refill through several segments, then consume across the boundary. */
    assert_int_equal(proto_buf_append(&b, src, SEG), 0);
    proto_buf_consume(&b, 2 * SEG - 10 + 5);
    assert_int_equal(proto_buf_len(&b), SEG - 5);
    assert_int_equal(proto_buf_slices(&b, s, 4), 1);
    check_bytes(s[0].base, s[0].len, 5);
    proto_buf_consume(&b, SEG - 5);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_null(b.head);
    assert_null(b.tail);
    proto_buf_free(&b);
    free(src);
}

static void test_large_append(void **state)
{
    enum { BIG = 1024 * 1024 + 3 };
    proto_buf_t b;
    proto_slice_t s[4];
    uint8_t *src = malloc(BIG);

    (void)state;
    fill(src, BIG, 0);
    proto_buf_init(&b);
    assert_int_equal(proto_buf_append(&b, src, 7), 0);
    assert_int_equal(proto_buf_append(&b, src + 7, BIG - 7), 0);
    assert_int_equal(proto_buf_len(&b), BIG);
    /* The remainder beyond the first segment lands in one piece. */
    assert_int_equal(proto_buf_slices(&b, s, 4), 2);
    assert_int_equal(s[0].len, SEG);
    assert_int_equal(s[1].len, BIG - SEG);
    check_bytes(s[0].base, s[0].len, 0);
    check_bytes(s[1].base, s[1].len, SEG);
    proto_buf_free(&b);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_null(b.head);
    free(src);
}

static void test_free_and_reuse(void **state)
{
    proto_buf_t b;
    uint8_t src[SEG];
    char out[8];

    (void)state;
    fill(src, sizeof(src), 0);
    proto_buf_init(&b);
    for (int i = 0; i < 5; i++)
        assert_int_equal(proto_buf_append(&b, src, sizeof(src)), 0);
    proto_buf_free(&b);
    assert_int_equal(proto_buf_len(&b), 0);
    assert_null(b.head);
    assert_null(b.tail);
    assert_int_equal(proto_buf_append(&b, "abc", 3), 0);
    assert_int_equal(proto_buf_read(&b, out, sizeof(out)), 3);
    assert_memory_equal(out, "abc", 3);
    proto_buf_free(&b);
    proto_buf_free(&b); /* idempotent */
}

/* Moving segments hands bytes over without copying, whole segments only,
 * and both buffers stay consistent. */
static void test_move(void **state)
{
    (void)state;
    proto_buf_t src, dst;
    proto_buf_init(&src);
    proto_buf_init(&dst);
    uint8_t data[70000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (size_t off = 0; off < sizeof(data); off += 7000)
        assert_int_equal(proto_buf_append(&src, data + off, 7000), 0);
    proto_buf_consume(&src, 100); /* the first segment starts mid-way */

    proto_slice_t sl[16];
    size_t n = proto_buf_slices(&src, sl, 16);
    size_t first = sl[0].len;
    /* max_bytes below one segment still moves the first one. */
    assert_int_equal(proto_buf_move(&dst, &src, 1, 8), first);
    assert_int_equal(proto_buf_len(&dst), first);
    assert_int_equal(proto_buf_len(&src), sizeof(data) - 100 - first);
    /* The rest, within a byte budget and a segment count. */
    size_t moved = proto_buf_move(&dst, &src, SIZE_MAX, 1);
    assert_true(moved > 0);
    moved += proto_buf_move(&dst, &src, SIZE_MAX, 100);
    assert_int_equal(proto_buf_len(&src), 0);
    assert_int_equal(proto_buf_slices(&src, sl, 16), 0);
    assert_int_equal(proto_buf_len(&dst), sizeof(data) - 100);
    (void)n;

    uint8_t out[sizeof(data)];
    assert_int_equal(proto_buf_read(&dst, out, sizeof(out)), sizeof(data) - 100);
    assert_memory_equal(out, data + 100, sizeof(data) - 100);
    /* src is usable again after giving everything away. */
    assert_int_equal(proto_buf_append(&src, "x", 1), 0);
    assert_int_equal(proto_buf_len(&src), 1);
    proto_buf_free(&src);
    proto_buf_free(&dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_append_read_small),
        cmocka_unit_test(test_across_segments), cmocka_unit_test(test_slices),
        cmocka_unit_test(test_consume_partial), cmocka_unit_test(test_large_append),
        cmocka_unit_test(test_free_and_reuse),  cmocka_unit_test(test_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
