/* Unit tests for proto/retry.c, proto/chunked.c and gateway/core/err.c: the
 * retry decision, chunk size lines and the one error -> status table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/core/err.h"
#include "proto/chunked.h"
#include "proto/retry.h"

static proto_retry_facts_t base(void)
{
    proto_retry_facts_t f = {.is_idempotent = 1, .is_replayable = 1, .retries_left = 1};
    return f;
}

static void test_server_fault_uses_a_retry(void **state)
{
    (void)state;
    proto_retry_facts_t f = base();
    f.is_server_fault = 1;
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_COUNTED);
    f.retries_left = 0;
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
}

static void test_stale_is_free_a_few_times(void **state)
{
    (void)state;
    proto_retry_facts_t f = base();
    f.is_stale = 1;
    f.retries_left = 0;
    for (uint32_t i = 0; i < PROTO_RETRY_STALE_MAX; i++) {
        f.stale_retries = i;
        assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_FREE);
    }
    f.stale_retries = PROTO_RETRY_STALE_MAX;
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
    f.retries_left = 1;
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_COUNTED);
}

static void test_never_retried(void **state)
{
    (void)state;
    proto_retry_facts_t f = base();
    f.is_server_fault = 1;
    f.is_stale = 1;
    f.is_idempotent = 0; /* a POST once sent */
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
    f = base();
    f.is_server_fault = 1;
    f.is_replayable = 0; /* body bytes gone */
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
    f = base();
    f.is_server_fault = 1;
    f.is_resp_head_sent = 1; /* the client saw a head */
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
    f = base(); /* not the server's fault: a client timeout, a local shortage */
    assert_int_equal(proto_retry_decide(&f), PROTO_RETRY_NO);
}

static void test_error_table(void **state)
{
    (void)state;
    struct {
        gw_err_t err;
        int status;
        int is_server_fault;
    } rows[] = {
        {GW_E_BAD_REQUEST, 400, 0},     {GW_E_BODY_TOO_LARGE, 413, 0},
        {GW_E_HEAD_TOO_LARGE, 431, 0},  {GW_E_CONNECT, 502, 1},
        {GW_E_CONNECT_TIMEOUT, 502, 1}, {GW_E_BAD_RESPONSE, 502, 1},
        {GW_E_CLOSED_EARLY, 502, 1},    {GW_E_RESPONSE_TIMEOUT, 504, 1},
        {GW_E_IO_TIMEOUT, 504, 1},      {GW_E_QUEUE_FULL, 503, 0},
        {GW_E_QUEUE_TIMEOUT, 503, 0},   {GW_E_ALL_DOWN, 503, 0},
        {GW_E_LOCAL, 503, 0},           {GW_E_CLIENT_READ_TIMEOUT, 408, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const gw_err_info_t *info = gw_err_info(rows[i].err);
        assert_int_equal(info->status, rows[i].status);
        assert_int_equal(info->is_server_fault, rows[i].is_server_fault);
        assert_non_null(info->name);
        assert_true(info->rst_code != 0);
    }
    /* A client that stops reading is cancelled, not blamed on the server. */
    assert_int_equal(gw_err_info(GW_E_CLIENT_WRITE_TIMEOUT)->rst_code, 0x8);
    /* Every row is filled. */
    for (int e = 1; e < GW_E_COUNT; e++)
        assert_non_null(gw_err_info((gw_err_t)e)->name);
}

static void test_local_errors_are_not_the_servers(void **state)
{
    (void)state;
    assert_int_equal(gw_err_from_uv(-24 /* EMFILE */, GW_E_CONNECT), GW_E_LOCAL);
    assert_int_equal(gw_err_from_uv(-23 /* ENFILE */, GW_E_CONNECT), GW_E_LOCAL);
    assert_int_equal(gw_err_from_uv(-99 /* EADDRNOTAVAIL */, GW_E_CONNECT), GW_E_LOCAL);
    assert_int_equal(gw_err_from_uv(-111 /* ECONNREFUSED */, GW_E_CONNECT), GW_E_CONNECT);
    assert_false(gw_err_info(GW_E_LOCAL)->is_server_fault);
}

static void test_chunk_size_line(void **state)
{
    (void)state;
    char buf[PROTO_CHUNK_LINE_MAX];
    size_t n = proto_chunk_size_line(buf, 1);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "1\r\n", 3);
    n = proto_chunk_size_line(buf, 0x1a2f);
    assert_memory_equal(buf, "1a2f\r\n", n);
    n = proto_chunk_size_line(buf, SIZE_MAX);
    assert_int_equal(n, 18);
    assert_memory_equal(buf, "ffffffffffffffff\r\n", 18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_fault_uses_a_retry),
        cmocka_unit_test(test_stale_is_free_a_few_times),
        cmocka_unit_test(test_never_retried),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_local_errors_are_not_the_servers),
        cmocka_unit_test(test_chunk_size_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
