/* Unit tests for gateway/client/h2_mem.c: a session's allocator, small
 * blocks from malloc and large ones from their own pages, across realloc,
 * and what an idle session gives back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
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
    assert_int_equal(hm.nmapped, 0);
}

static void test_calloc_is_zeroed(void **state)
{
    (void)state;
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
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
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
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
    assert_int_equal(hm.nmapped, 0);
}

/* Pages resident in [p, p + len). */
static size_t resident(void *p, size_t len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
    unsigned char vec[64];
    assert_true(len / pg <= sizeof(vec));
    assert_int_equal(mincore(p, len, vec), 0);
    for (size_t i = 0; i < (len + pg - 1) / pg; i++)
        n += vec[i] & 1;
    return n;
}

static void test_release_gives_back_zero_pages_only(void **state)
{
    (void)state;
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    /* A zero-filled table of four pages: the first and third written,
     * the first cleared again (an emptied stream map). */
    uint8_t *t = m->calloc(4 * pg / 16, 16, m->mem_user_data);
    assert_non_null(t);
    assert_int_equal((uintptr_t)t % pg, 0);
    assert_int_equal(hm.nmapped, 1);
    assert_int_equal(resident(t, 4 * pg), 0);
    t[10] = 1;
    t[2 * pg + 5] = 7;
    t[10] = 0;
    assert_int_equal(resident(t, 4 * pg), 2);
    gw_h2_mem_release(&hm);
    assert_int_equal(resident(t, 4 * pg), 1);
    for (size_t i = 0; i < 4 * pg; i++)
        assert_int_equal(t[i], i == 2 * pg + 5 ? 7 : 0);
    m->free(t, m->mem_user_data);
    /* A small zeroed block is not worth pages of its own. */
    void *s = m->calloc(1, pg - 1, m->mem_user_data);
    assert_int_equal(hm.nmapped, 0);
    m->free(s, m->mem_user_data);
}

static void test_release_empties_the_frame_buffer(void **state)
{
    (void)state;
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
    gw_h2_mem_begin_session(&hm);
    uint8_t *fb = m->realloc(NULL, 16394, m->mem_user_data); /* as nghttp2_buf_init2 does */
    uint8_t *map = m->calloc(256, 16, m->mem_user_data);
    gw_h2_mem_end_session(&hm);
    uint8_t *later = m->malloc(20000, m->mem_user_data);
    assert_int_equal(hm.nmapped, 3);
    fill(fb, 100);
    fill(later, 20000);
    map[3] = 1;
    gw_h2_mem_release(&hm);
    assert_int_equal(resident(fb, 16394), 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(fb[i], 0);
    check(later, 20000); /* allocated after creation: kept */
    assert_int_equal(map[3], 1);
    assert_int_equal(resident(map, 256 * 16), 1);
    m->free(fb, m->mem_user_data);
    m->free(map, m->mem_user_data);
    m->free(later, m->mem_user_data);
    assert_int_equal(hm.nmapped, 0);
}

static void test_registry_full_falls_back_to_malloc(void **state)
{
    (void)state;
    gw_h2_mem_t hm;
    gw_h2_mem_init(&hm);
    nghttp2_mem *m = gw_h2_mem_get(&hm);
    uint8_t *p[GW_H2_MEM_MAX_MAPPED + 2];
    for (size_t i = 0; i < GW_H2_MEM_MAX_MAPPED + 2; i++) {
        p[i] = m->malloc(20000, m->mem_user_data);
        assert_non_null(p[i]);
        fill(p[i], 20000);
    }
    assert_int_equal(hm.nmapped, GW_H2_MEM_MAX_MAPPED);
    /* A malloc'd large block grows by realloc; freeing a mapping makes room. */
    m->free(p[0], m->mem_user_data);
    p[0] = m->realloc(p[GW_H2_MEM_MAX_MAPPED + 1], 40000, m->mem_user_data);
    check(p[0], 20000);
    assert_int_equal(hm.nmapped, GW_H2_MEM_MAX_MAPPED);
    for (size_t i = 0; i <= GW_H2_MEM_MAX_MAPPED; i++)
        m->free(p[i], m->mem_user_data);
    assert_int_equal(hm.nmapped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_large),
        cmocka_unit_test(test_calloc_is_zeroed),
        cmocka_unit_test(test_realloc_keeps_bytes_across_the_threshold),
        cmocka_unit_test(test_release_gives_back_zero_pages_only),
        cmocka_unit_test(test_release_empties_the_frame_buffer),
        cmocka_unit_test(test_registry_full_falls_back_to_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
