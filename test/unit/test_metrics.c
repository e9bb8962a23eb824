/* Unit tests for gateway/core/metrics.h (buckets, classes, protocols),
 * gateway/ops/metrics.c (the text page: sums over workers, cumulative
 * buckets, label escaping, one series per certificate subject) and the
 * admin's routing of GET /metrics (gateway/ops/admin.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/core/err.h"
#include "gateway/core/metrics.h"
#include "gateway/ops/admin.h"
#include "gateway/ops/metrics.h"

static gw_metrics_t workers[2];

/* Worker w's counters of backend name. */
static gw_metrics_backend_t *backend(int w, const char *name)
{
    gw_metrics_backend_t *b = gw_metrics_backend(&workers[w], name);
    assert_non_null(b);
    return b;
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        gw_metrics_init(&workers[i]);
        backend(i, "default");
        backend(i, "a\"b\\c");
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        gw_metrics_free(&workers[i]);
    return 0;
}

/* Renders both workers; the caller frees the page. */
static char *render(const gw_metrics_cert_t *certs, size_t ncerts)
{
    const gw_metrics_t *ws[2] = {&workers[0], &workers[1]};
    gw_metrics_scrape_t s = {ws, 2, certs, ncerts};
    char *page = NULL;
    size_t len = 0;
    assert_int_equal(gw_metrics_render(&s, &page, &len), 0);
    assert_int_equal(strlen(page), len);
    return page;
}

static void assert_line(const char *page, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(page, want) == NULL)
        fail_msg("no line %s in the page", line);
}

static void test_classes_protocols_and_buckets(void **state)
{
    (void)state;
    assert_int_equal(gw_metrics_class(200), 1);
    assert_int_equal(gw_metrics_class(101), 0);
    assert_int_equal(gw_metrics_class(599), 4);
    assert_int_equal(gw_metrics_class(0), GW_M_CLASSES - 1);
    assert_int_equal(gw_metrics_class(600), GW_M_CLASSES - 1);
    assert_int_equal(gw_metrics_protocol("h2"), GW_M_H2);
    assert_int_equal(gw_metrics_protocol("http/1.1"), GW_M_HTTP1);
    assert_int_equal(gw_metrics_protocol(NULL), GW_M_PROTO_NONE);
    assert_int_equal(gw_metrics_protocol("sniff"), GW_M_PROTO_NONE);
    for (size_t i = 1; i < GW_M_BUCKETS; i++)
        assert_true(gw_metrics_bound_ns(i) > gw_metrics_bound_ns(i - 1));
    assert_true(gw_metrics_bound_ns(GW_M_BUCKETS - 1) == UINT64_MAX);

    gw_mhist_t h;
    memset(&h, 0, sizeof(h));
    gw_metrics_observe(&h, 0);
    gw_metrics_observe(&h, 500000); /* exactly 0.5 ms: in le="0.0005" */
    gw_metrics_observe(&h, 500001);
    gw_metrics_observe(&h, 3600ull * 1000000000ull);
    assert_int_equal(atomic_load(&h.buckets[0]), 2);
    assert_int_equal(atomic_load(&h.buckets[1]), 1);
    assert_int_equal(atomic_load(&h.buckets[GW_M_BUCKETS - 1]), 1);
    assert_true(atomic_load(&h.sum_ns) == 1000001ull + 3600ull * 1000000000ull);
}

static void test_page_sums_workers(void **state)
{
    (void)state;
    gw_metrics_inc(&backend(0, "default")->requests[GW_M_H2][1]);
    gw_metrics_add(&backend(1, "default")->requests[GW_M_H2][1], 4);
    gw_metrics_inc(&workers[1].no_backend.requests[GW_M_HTTP1][3]);
    gw_metrics_gauge_add(&backend(0, "default")->conns_idle, 1);
    gw_metrics_gauge_add(&backend(1, "default")->conns_idle, 2);
    /* A backend only worker 1 has (a reload added it there first). */
    gw_metrics_inc(&backend(1, "new")->connects);
    gw_metrics_gauge_add(&workers[1].client_conns[GW_M_PROTO_NONE], 1);
    gw_metrics_inc(&workers[0].errors[GW_E_CONNECT]);
    gw_metrics_inc(&workers[1].errors[GW_E_CONNECT]);
    gw_metrics_config_reload(&workers[0], 0);
    gw_metrics_observe(&workers[0].queue_wait[7], 2000000);  /* 2 ms */
    gw_metrics_observe(&workers[1].queue_wait[7], 20000000); /* 20 ms */
    char *page = render(NULL, 0);
    assert_line(page,
                "h2gw_requests_total{backend=\"default\",code_class=\"2xx\",protocol=\"h2\"} 5");
    assert_line(page,
                "h2gw_requests_total{backend=\"-\",code_class=\"4xx\",protocol=\"http/1.1\"} 1");
    assert_line(page, "h2gw_upstream_connections{backend=\"default\",state=\"idle\"} 3");
    assert_line(page, "h2gw_upstream_connects_total{backend=\"new\"} 1");
    assert_line(page, "h2gw_upstream_connects_total{backend=\"default\"} 0");
    /* One series per name, however many workers have it. */
    const char *first = strstr(page, "h2gw_upstream_connects_total{backend=\"default\"}");
    assert_null(strstr(first + 1, "h2gw_upstream_connects_total{backend=\"default\"}"));
    assert_line(page, "h2gw_client_connections{protocol=\"none\"} 1");
    assert_line(page, "h2gw_errors_total{cause=\"connect_failed\"} 2");
    assert_line(page, "h2gw_errors_total{cause=\"response_timeout\"} 0");
    assert_line(page, "h2gw_config_reloads_total{result=\"failed\"} 1");
    /* Cumulative buckets; the count is the +Inf bucket. */
    assert_line(page, "h2gw_queue_wait_seconds_bucket{urgency=\"7\",le=\"0.001\"} 0");
    assert_line(page, "h2gw_queue_wait_seconds_bucket{urgency=\"7\",le=\"0.0025\"} 1");
    assert_line(page, "h2gw_queue_wait_seconds_bucket{urgency=\"7\",le=\"0.025\"} 2");
    assert_line(page, "h2gw_queue_wait_seconds_bucket{urgency=\"7\",le=\"+Inf\"} 2");
    assert_line(page, "h2gw_queue_wait_seconds_sum{urgency=\"7\"} 0.022000000");
    assert_line(page, "h2gw_queue_wait_seconds_count{urgency=\"7\"} 2");
    assert_line(page, "# TYPE h2gw_requests_total counter");
    assert_line(page, "# TYPE h2gw_queue_wait_seconds histogram");
    /* Every line ends the page with a newline, and no gw_err goes unnamed. */
    assert_int_equal(page[strlen(page) - 1], '\n');
    assert_null(strstr(page, "(null)"));
    free(page);
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    gw_metrics_cert_t certs[] = {
        {"CN=a.test", 1700000000},
        {"CN=x\\\"y\nz", 1800000000},
        {"CN=a.test", 1700000000}, /* the same certificate on another listener */
    };
    char *page = render(certs, 3);
    assert_line(page, "h2gw_upstream_connects_total{backend=\"a\\\"b\\\\c\"} 0");
    assert_line(page,
                "h2gw_tls_certificate_expiry_timestamp_seconds{subject=\"CN=a.test\"} 1700000000");
    assert_line(page,
                "h2gw_tls_certificate_expiry_timestamp_seconds{subject=\"CN=x\\\\\\\"y\\nz\"} "
                "1800000000");
    const char *first = strstr(page, "subject=\"CN=a.test\"");
    assert_non_null(first);
    assert_null(strstr(first + 1, "subject=\"CN=a.test\""));
    free(page);
}

static int always(void *arg, char *why, size_t cap)
{
    (void)arg, (void)why, (void)cap;
    return 1;
}

static int no_page(void *arg, char **body, size_t *len)
{
    (void)arg, (void)body, (void)len;
    return -1;
}

static void test_admin_routes_metrics(void **state)
{
    (void)state;
    char body[300];
    gw_admin_ops_t ops = {.is_live = always, .is_ready = always};
    const char *get = "GET /metrics HTTP/1.1", *post = "POST /metrics HTTP/1.1";
    /* Without a page the path does not exist. */
    assert_int_equal(gw_admin_answer(&ops, get, strlen(get), body, sizeof(body)), 404);
    ops.metrics = no_page; /* gw_admin_answer leaves the page to its caller */
    assert_int_equal(gw_admin_answer(&ops, get, strlen(get), body, sizeof(body)), GW_ADMIN_METRICS);
    const char *query = "GET /metrics?x=1 HTTP/1.0";
    assert_int_equal(gw_admin_answer(&ops, query, strlen(query), body, sizeof(body)),
                     GW_ADMIN_METRICS);
    assert_int_equal(gw_admin_answer(&ops, post, strlen(post), body, sizeof(body)), 405);
    const char *other = "GET /metricsx HTTP/1.1";
    assert_int_equal(gw_admin_answer(&ops, other, strlen(other), body, sizeof(body)), 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_protocols_and_buckets),
        cmocka_unit_test_setup_teardown(test_page_sums_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_values_are_escaped, setup, teardown),
        cmocka_unit_test(test_admin_routes_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
