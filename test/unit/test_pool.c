/* Unit tests for gateway/backend/pool.c and server.c over a fake transport
 * (test/unit/fake_h1conn.c): connection limits, LIFO reuse, the reuse
 * checklist, dispatch order, dispatch only from the end-of-turn task (never
 * on a caller's stack), server picking, and the ejection rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/backend/pool.h"
#include "test/unit/fake_h1conn.h"

#define MAX_WAITERS 64

typedef struct waiter {
    gw_pool_waiter_t wt;
    gw_h1conn_t *conn;
    gw_server_t *server;
    gw_err_t err;
    int order; /* when it got its connection (1-based), 0: not yet */
} waiter_t;

static gw_ctx_t ctx;
static cfg_t cfg;
static gw_pool_t pool;
static int next_order;
static int depth; /* > 0 while the test itself is calling into the pool */
static int called_on_stack;

static void on_conn(gw_pool_waiter_t *wt, gw_h1conn_t *c, gw_server_t *s)
{
    waiter_t *w = (waiter_t *)wt;
    called_on_stack |= depth > 0;
    w->conn = c;
    w->server = s;
    w->order = ++next_order;
}

static void on_fail(gw_pool_waiter_t *wt, gw_err_t err, const char *why, gw_server_t *s)
{
    (void)why;
    waiter_t *w = (waiter_t *)wt;
    called_on_stack |= depth > 0;
    w->err = err;
    w->server = s;
}

static const gw_pool_waiter_ops_t ops = {on_conn, on_fail, NULL};

static void noop_closed(gw_ctx_t *w)
{
    (void)w;
}

/* A pool for the backend these flags describe. */
static void setup_pool(const char **flags, int nflags)
{
    char *argv[32] = {"h2gw", "--listen", "127.0.0.1:0"};
    int argc = 3;
    for (int i = 0; i < nflags; i++)
        argv[argc++] = (char *)flags[i];
    memset(&cfg, 0, sizeof(cfg));
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(cfg_from_args(&cfg, argc, argv, devnull, devnull), CFG_RUN);
    fclose(devnull);
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(uv_loop_init(&ctx.loop), 0);
    ctx.loop.data = &ctx;
    ctx.cfg = &cfg;
    ctx.on_client_closed = noop_closed;
    proto_queue_init(&ctx.tasks);
    proto_queue_init(&ctx.clients);
    gw_metrics_init(&ctx.metrics);
    assert_int_equal(gw_pool_init(&pool, &ctx, &cfg.backends[0]), 0);
    next_order = 0;
    called_on_stack = 0;
}

/* The metrics gauges mirror the pool's own counters (set_state moves
 * both) and the queue, whatever a test did. */
static void check_gauges(void)
{
    int64_t idle = 0, busy = 0, connecting = 0;
    for (size_t i = 0; i < pool.nservers; i++) {
        idle += pool.servers[i].nidle;
        busy += pool.servers[i].nbusy;
        connecting += pool.servers[i].nconnecting;
    }
    gw_metrics_backend_t *m = pool.metrics;
    assert_ptr_equal(m, gw_metrics_backend(&ctx.metrics, cfg.backends[0].name));
    assert_int_equal(atomic_load(&m->conns_idle), idle);
    assert_int_equal(atomic_load(&m->conns_busy), busy);
    assert_int_equal(atomic_load(&m->conns_connecting), connecting);
    assert_int_equal(atomic_load(&m->queue_length), (int64_t)proto_sched_len(&pool.sched));
}

static void teardown_pool(void)
{
    check_gauges();
    gw_pool_close_all(&pool);
    check_gauges();
    uv_run(&ctx.loop, UV_RUN_NOWAIT);
    gw_pool_free(&pool);
    uv_walk(&ctx.loop, (uv_walk_cb)uv_close, NULL);
    uv_run(&ctx.loop, UV_RUN_DEFAULT);
    uv_loop_close(&ctx.loop);
    cfg_free(&cfg);
    fake_net_free();
    gw_metrics_free(&ctx.metrics);
}

static void submit(waiter_t *w, int urgency)
{
    memset(w, 0, sizeof(*w));
    gw_pool_waiter_init(&w->wt, &ops, w);
    w->wt.sched.urgency = (uint8_t)urgency;
    depth++;
    assert_int_equal(gw_pool_submit(&pool, &w->wt), GW_OK);
    depth--;
}

static void run_turn(void)
{
    while (gw_ctx_run_tasks(&ctx))
        ;
}

static void connect_all_pending(void)
{
    for (size_t i = 0; i < fake_net.nconns; i++) {
        if (fake_net.conns[i]->state == GW_H1CONN_CONNECTING)
            fake_net_connected(fake_net.conns[i], GW_OK);
    }
}

static void release(waiter_t *w, int is_reusable)
{
    depth++;
    gw_pool_release(&pool, w->conn, is_reusable);
    depth--;
    w->conn = NULL;
}

static void test_limit_and_reuse(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend-max-connections", "2"};
    setup_pool(flags, 4);
    waiter_t w[5];
    for (int i = 0; i < 5; i++)
        submit(&w[i], 3);
    assert_int_equal(fake_net.nconnects, 0); /* nothing on the caller's stack */
    run_turn();
    assert_int_equal(fake_net.nconnects, 2);
    assert_int_equal(pool.servers[0].nconnecting, 2);
    connect_all_pending();
    assert_non_null(w[0].conn);
    assert_non_null(w[1].conn);
    assert_null(w[2].conn);
    assert_int_equal(pool.servers[0].nbusy, 2);
    /* A reusable release serves the next waiter from the idle list: no
     * new connection. */
    release(&w[0], 1);
    assert_null(w[2].conn);
    run_turn();
    assert_non_null(w[2].conn);
    assert_int_equal(fake_net.nconnects, 2);
    assert_int_equal(pool.stats.reuses, 1);
    /* Not reusable: closed, and the free slot opens a new connection. */
    release(&w[1], 0);
    assert_int_equal(fake_net.ncloses, 1);
    run_turn();
    assert_int_equal(fake_net.nconnects, 3);
    assert_false(called_on_stack);
    teardown_pool();
}

static void test_lifo_reuse(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend-max-connections", "2"};
    setup_pool(flags, 4);
    waiter_t a, b, c;
    submit(&a, 3);
    submit(&b, 3);
    run_turn();
    connect_all_pending();
    gw_h1conn_t *first = a.conn, *second = b.conn;
    release(&a, 1);
    release(&b, 1); /* the most recently used: warmest */
    assert_int_equal(pool.servers[0].nidle, 2);
    submit(&c, 3);
    run_turn();
    assert_ptr_equal(c.conn, second);
    assert_ptr_not_equal(c.conn, first);
    teardown_pool();
}

static void test_draining_closes_instead_of_reusing(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1"};
    setup_pool(flags, 2);
    waiter_t a;
    submit(&a, 3);
    run_turn();
    connect_all_pending();
    ctx.is_draining = 1;
    release(&a, 1);
    assert_int_equal(fake_net.ncloses, 1);
    assert_int_equal(pool.servers[0].nidle, 0);
    assert_int_equal(pool.servers[0].nconns, 0);
    teardown_pool();
}

static void test_most_urgent_first(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend-max-connections", "1"};
    setup_pool(flags, 4);
    waiter_t hold, lo, mid, hi;
    submit(&hold, 3);
    run_turn();
    connect_all_pending();
    submit(&lo, 6);
    submit(&mid, 3);
    submit(&hi, 0);
    for (int i = 0; i < 3; i++) {
        waiter_t *cur = i == 0 ? &hold : i == 1 ? &hi : &mid;
        release(cur, 1);
        run_turn();
    }
    assert_true(hi.order < mid.order);
    assert_true(mid.order < lo.order);
    teardown_pool();
}

static void test_cancel_while_connecting_keeps_the_connection(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend-max-connections", "1"};
    setup_pool(flags, 4);
    waiter_t a, b;
    submit(&a, 3);
    run_turn();
    assert_int_equal(fake_net.nconnects, 1);
    gw_pool_cancel(&a.wt); /* its client left */
    submit(&b, 3);
    run_turn();
    assert_int_equal(fake_net.nconnects, 1); /* the limit holds */
    connect_all_pending();
    assert_null(a.conn);
    run_turn();
    assert_non_null(b.conn); /* the orphaned connection serves the next */
    assert_int_equal(fake_net.nconnects, 1);
    teardown_pool();
}

static void test_least_outstanding_and_weights(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend", "127.0.0.1:2"};
    setup_pool(flags, 4);
    waiter_t w[8];
    for (int i = 0; i < 8; i++)
        submit(&w[i], 3);
    run_turn();
    assert_int_equal(pool.servers[0].nconnecting, 4);
    assert_int_equal(pool.servers[1].nconnecting, 4);
    teardown_pool();

    const char *rr[] = {"--backend",   "127.0.0.1:1 weight=3", "--backend",
                        "127.0.0.1:2", "--backend-lb",         "round-robin"};
    setup_pool(rr, 6);
    for (int i = 0; i < 8; i++)
        submit(&w[i], 3);
    run_turn();
    assert_int_equal(pool.servers[0].nconnecting, 6);
    assert_int_equal(pool.servers[1].nconnecting, 2);
    teardown_pool();
}

static void test_lone_server_is_never_ejected(void **state)
{
    (void)state;
    const char *flags[] = {"--backend", "127.0.0.1:1", "--backend-max-fails", "1"};
    setup_pool(flags, 4);
    gw_server_t *s = &pool.servers[0];
    uint64_t now = gw_ctx_now_ms(&ctx);
    for (int i = 0; i < 10; i++)
        gw_pool_report(&pool, s, 0, "refused", now);
    assert_int_equal(pool.stats.ejections, 0);
    assert_true(gw_server_is_up(s, now));
    teardown_pool();
}

static void test_ejection_rules(void **state)
{
    (void)state;
    const char *flags[] = {
        "--backend", "127.0.0.1:1",          "--backend", "127.0.0.1:2", "--backend-max-fails",
        "2",         "--backend-eject-time", "1s"};
    setup_pool(flags, 8);
    gw_server_t *a = &pool.servers[0], *b = &pool.servers[1];
    uint64_t now = gw_ctx_now_ms(&ctx);
    gw_pool_report(&pool, a, 0, "x", now);
    gw_pool_report(&pool, a, 0, "x", now);
    assert_int_equal(pool.stats.ejections, 1);
    assert_false(gw_server_is_up(a, now));
    /* Failures of attempts in flight while it was ejected are ignored:
     * no second ejection while the first runs. */
    for (int i = 0; i < 10; i++)
        gw_pool_report(&pool, a, 0, "x", now);
    assert_int_equal(pool.stats.ejections, 1);
    /* 50 %: the other server is never ejected too. */
    for (int i = 0; i < 10; i++)
        gw_pool_report(&pool, b, 0, "x", now);
    assert_int_equal(pool.stats.ejections, 1);
    assert_true(gw_server_is_up(b, now));
    /* Half-open after the ejection: a success started after readmission
     * readmits and resets the backoff. */
    uint64_t later = a->ejected_until_ms;
    assert_true(gw_server_is_up(a, later));
    gw_pool_report(&pool, a, 1, "ok", later);
    assert_false(a->is_ejected);
    assert_int_equal(a->nejections, 0);
    teardown_pool();
}

static void test_half_open_failure_doubles(void **state)
{
    (void)state;
    const char *flags[] = {
        "--backend", "127.0.0.1:1",          "--backend", "127.0.0.1:2", "--backend-max-fails",
        "1",         "--backend-eject-time", "1s"};
    setup_pool(flags, 8);
    gw_server_t *a = &pool.servers[0];
    uint64_t now = gw_ctx_now_ms(&ctx);
    gw_pool_report(&pool, a, 0, "x", now);
    uint64_t first = a->ejected_until_ms - now;
    /* The ejection runs out; uv_now cannot be moved, so the clock is
     * simulated by backdating the end. */
    a->ejected_until_ms = now;
    a->admitted_ms = now;
    gw_pool_report(&pool, a, 0, "x", now);
    assert_int_equal(pool.stats.ejections, 2);
    assert_int_equal(a->ejected_until_ms - now, 2 * first);
    teardown_pool();
}

static void test_local_connect_error_is_not_the_servers(void **state)
{
    (void)state;
    const char *flags[] = {"--backend",   "127.0.0.1:1",         "--backend",
                           "127.0.0.1:2", "--backend-max-fails", "1"};
    setup_pool(flags, 6);
    fake_net.connect_err = GW_E_LOCAL;
    waiter_t a;
    submit(&a, 3);
    run_turn();
    assert_int_equal(a.err, GW_E_LOCAL);
    assert_int_equal(pool.stats.ejections, 0);
    fake_net.connect_err = GW_OK;
    teardown_pool();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_and_reuse),
        cmocka_unit_test(test_lifo_reuse),
        cmocka_unit_test(test_draining_closes_instead_of_reusing),
        cmocka_unit_test(test_most_urgent_first),
        cmocka_unit_test(test_cancel_while_connecting_keeps_the_connection),
        cmocka_unit_test(test_least_outstanding_and_weights),
        cmocka_unit_test(test_lone_server_is_never_ejected),
        cmocka_unit_test(test_ejection_rules),
        cmocka_unit_test(test_half_open_failure_doubles),
        cmocka_unit_test(test_local_connect_error_is_not_the_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
