/* Unit tests for gateway/client/h2_mem.c: nghttp2's allocator, small blocks
 * from malloc and large ones from their own pages, across realloc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/client/h2_mem.h"

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + 1);
}

static void check(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (uint8_t)(i * 7 + 1));
}

static void test_small_and_large(void **state)
{
    (void)state;
    nghttp2_mem *m = gw_h2_mem();
    size_t sizes[] = {1, 100, 16 * 1024 - 1, 16 * 1024, 16394, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = m->malloc(sizes[i], m->mem_user_data);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        fill(p, sizes[i]);
        check(p, sizes[i]);
        m->free(p, m->mem_user_data);
    }
    m->free(NULL, m->mem_user_data);
}

static void test_calloc_is_zeroed(void **state)
{
    (void)state;
    nghttp2_mem *m = gw_h2_mem();
    for (size_t n = 8; n <= 64 * 1024; n *= 8) {
        uint8_t *p = m->calloc(n, 1, m->mem_user_data);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        m->free(p, m->mem_user_data);
    }
    assert_null(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data));
}

static void test_realloc_keeps_bytes_across_the_threshold(void **state)
{
    (void)state;
    nghttp2_mem *m = gw_h2_mem();
    uint8_t *p = m->malloc(1000, m->mem_user_data);
    fill(p, 1000);
    p = m->realloc(p, 40000, m->mem_user_data); /* malloc -> pages */
    assert_non_null(p);
    check(p, 1000);
    fill(p, 40000);
    p = m->realloc(p, 50000, m->mem_user_data); /* pages -> pages */
    check(p, 40000);
    p = m->realloc(p, 500, m->mem_user_data); /* pages -> malloc */
    check(p, 500);
    p = m->realloc(p, 800, m->mem_user_data); /* malloc -> malloc */
    check(p, 500);
    m->free(p, m->mem_user_data);
    p = m->realloc(NULL, 64, m->mem_user_data);
    assert_non_null(p);
    m->free(p, m->mem_user_data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_large),
        cmocka_unit_test(test_calloc_is_zeroed),
        cmocka_unit_test(test_realloc_keeps_bytes_across_the_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
