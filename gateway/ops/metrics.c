#include "gateway/ops/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/err.h"

_Static_assert(GW_E_COUNT <= GW_M_ERRORS_MAX, "gw_metrics_t needs a counter per gw_err");

/* The page as it grows; a failed allocation sticks and fails the render. */
typedef struct page {
    char *data;
    size_t len, cap;
    int is_failed;
} page_t;

static void put(page_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(page_t *p, const char *fmt, ...)
{
    if (p->is_failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p->data + p->len, p->cap - p->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            p->is_failed = 1;
            return;
        }
        if ((size_t)n < p->cap - p->len) {
            p->len += (size_t)n;
            return;
        }
        size_t cap = p->cap * 2;
        while (cap - p->len <= (size_t)n)
            cap *= 2;
        char *data = realloc(p->data, cap);
        if (data == NULL) {
            p->is_failed = 1;
            return;
        }
        p->data = data;
        p->cap = cap;
    }
}

/* A label value as the format wants it: backslash, double quote and line
 * feed escaped. */
static void put_label_value(page_t *p, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            put(p, "\\%c", *v);
        else if (*v == '\n')
            put(p, "\\n");
        else
            put(p, "%c", *v);
    }
}

static void family(page_t *p, const char *name, const char *type, const char *help)
{
    put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- sums over the workers ---- */

/* What one scrape reads: every backend name any worker has counters for
 * (in order of first appearance), and for each the counters of every
 * worker (NULL: that worker never had the backend); the last slot is the
 * requests without a backend, named "-". */
typedef struct view {
    const gw_metrics_scrape_t *s;
    const char **names;
    size_t nnamed;                      /* slots with a backend name */
    const gw_metrics_backend_t **slots; /* [nnamed + 1][nworkers] */
} view_t;

static uint64_t load(const gw_mcounter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int64_t load_gauge(const gw_mgauge_t *g)
{
    return atomic_load_explicit(g, memory_order_relaxed);
}

/* The counter at byte offset off in every worker's gw_metrics_t. */
static uint64_t sum(const view_t *v, size_t off)
{
    uint64_t total = 0;
    for (size_t i = 0; i < v->s->nworkers; i++)
        total += load((const gw_mcounter_t *)((const char *)v->s->workers[i] + off));
    return total;
}

static int64_t sum_gauge(const view_t *v, size_t off)
{
    int64_t total = 0;
    for (size_t i = 0; i < v->s->nworkers; i++)
        total += load_gauge((const gw_mgauge_t *)((const char *)v->s->workers[i] + off));
    return total;
}

/* Worker i's counters of slot b, or NULL. */
static const gw_metrics_backend_t *slot(const view_t *v, size_t b, size_t i)
{
    return v->slots[b * v->s->nworkers + i];
}

/* Slot b's counter at offset off of gw_metrics_backend_t, summed. */
static uint64_t sum_backend(const view_t *v, size_t b, size_t off)
{
    uint64_t total = 0;
    for (size_t i = 0; i < v->s->nworkers; i++) {
        const gw_metrics_backend_t *mb = slot(v, b, i);
        if (mb != NULL)
            total += load((const gw_mcounter_t *)((const char *)mb + off));
    }
    return total;
}

static int64_t sum_backend_gauge(const view_t *v, size_t b, size_t off)
{
    int64_t total = 0;
    for (size_t i = 0; i < v->s->nworkers; i++) {
        const gw_metrics_backend_t *mb = slot(v, b, i);
        if (mb != NULL)
            total += load_gauge((const gw_mgauge_t *)((const char *)mb + off));
    }
    return total;
}

/* One histogram summed over the workers: at(worker) finds it (NULL: the
 * worker has none). */
typedef const gw_mhist_t *(*hist_at_t)(const view_t *v, size_t worker, size_t arg);

static void put_histogram(page_t *p, const view_t *v, const char *name, const char *label,
                          const char *value, hist_at_t at, size_t arg)
{
    uint64_t buckets[GW_M_BUCKETS] = {0}, sum_ns = 0;
    for (size_t i = 0; i < v->s->nworkers; i++) {
        const gw_mhist_t *h = at(v, i, arg);
        if (h == NULL)
            continue;
        for (size_t k = 0; k < GW_M_BUCKETS; k++)
            buckets[k] += load(&h->buckets[k]);
        sum_ns += load(&h->sum_ns);
    }
    /* Cumulative, as the format has it; the count is the +Inf bucket. */
    uint64_t cumulative = 0;
    for (size_t k = 0; k < GW_M_BUCKETS; k++) {
        cumulative += buckets[k];
        put(p, "%s_bucket{%s=\"", name, label);
        put_label_value(p, value);
        if (k < GW_M_BUCKETS - 1)
            put(p, "\",le=\"%g\"} %llu\n", (double)gw_metrics_bound_ns(k) / 1e9,
                (unsigned long long)cumulative);
        else
            put(p, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    }
    put(p, "%s_sum{%s=\"", name, label);
    put_label_value(p, value);
    put(p, "\"} %.9f\n", (double)sum_ns / 1e9);
    put(p, "%s_count{%s=\"", name, label);
    put_label_value(p, value);
    put(p, "\"} %llu\n", (unsigned long long)cumulative);
}

static const gw_mhist_t *request_duration_at(const view_t *v, size_t i, size_t b)
{
    const gw_metrics_backend_t *mb = slot(v, b, i);
    return mb != NULL ? &mb->request_duration : NULL;
}

static const gw_mhist_t *connect_duration_at(const view_t *v, size_t i, size_t b)
{
    const gw_metrics_backend_t *mb = slot(v, b, i);
    return mb != NULL ? &mb->connect_duration : NULL;
}

static const gw_mhist_t *queue_wait_at(const view_t *v, size_t i, size_t u)
{
    return &v->s->workers[i]->queue_wait[u];
}

/* ---- the page ---- */

static const char *const protocol_names[GW_M_CONN_PROTOCOLS] = {"h2", "http/1.1", "none"};
static const char *const class_names[GW_M_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};

/* The backend label of slot b: its name, or "-" for requests that never
 * reached a backend. */
static const char *backend_name(const view_t *v, size_t b)
{
    return b < v->nnamed ? v->names[b] : "-";
}

/* One counter per configured backend. */
static void put_backend_counter(page_t *p, const view_t *v, const char *name, const char *help,
                                size_t off)
{
    family(p, name, "counter", help);
    for (size_t b = 0; b < v->nnamed; b++) {
        put(p, "%s{backend=\"", name);
        put_label_value(p, backend_name(v, b));
        put(p, "\"} %llu\n", (unsigned long long)sum_backend(v, b, off));
    }
}

static void put_counter(page_t *p, const view_t *v, const char *name, const char *help, size_t off)
{
    family(p, name, "counter", help);
    put(p, "%s %llu\n", name, (unsigned long long)sum(v, off));
}

static void put_requests(page_t *p, const view_t *v)
{
    size_t nslots = v->nnamed + 1;
    family(p, "h2gw_requests_total", "counter",
           "Requests ended, by backend (\"-\": none), client protocol and the status class "
           "the client got (\"none\": refused or reset without one).");
    for (size_t b = 0; b < nslots; b++) {
        for (int proto = 0; proto < GW_M_PROTOCOLS; proto++) {
            for (int k = 0; k < GW_M_CLASSES; k++) {
                size_t off = offsetof(gw_metrics_backend_t, requests) +
                             ((size_t)proto * GW_M_CLASSES + (size_t)k) * sizeof(gw_mcounter_t);
                put(p, "h2gw_requests_total{backend=\"");
                put_label_value(p, backend_name(v, b));
                put(p, "\",code_class=\"%s\",protocol=\"%s\"} %llu\n", class_names[k],
                    protocol_names[proto], (unsigned long long)sum_backend(v, b, off));
            }
        }
    }
    family(p, "h2gw_request_duration_seconds", "histogram",
           "Time from a request's head to the end of its exchange, by backend.");
    for (size_t b = 0; b < nslots; b++)
        put_histogram(p, v, "h2gw_request_duration_seconds", "backend", backend_name(v, b),
                      request_duration_at, b);
}

static void put_queue(page_t *p, const view_t *v)
{
    family(p, "h2gw_queue_wait_seconds", "histogram",
           "Time a request waited in its backend's queue for a connection, by the RFC 9218 "
           "urgency it was dispatched at.");
    for (size_t u = 0; u < GW_M_URGENCIES; u++) {
        char value[4];
        snprintf(value, sizeof(value), "%zu", u);
        put_histogram(p, v, "h2gw_queue_wait_seconds", "urgency", value, queue_wait_at, u);
    }
    family(p, "h2gw_queue_length", "gauge", "Requests waiting for a backend connection.");
    for (size_t b = 0; b < v->nnamed; b++) {
        put(p, "h2gw_queue_length{backend=\"");
        put_label_value(p, backend_name(v, b));
        put(p, "\"} %lld\n",
            (long long)sum_backend_gauge(v, b, offsetof(gw_metrics_backend_t, queue_length)));
    }
}

static void put_upstream(page_t *p, const view_t *v)
{
    static const struct {
        const char *name;
        size_t off;
    } states[] = {
        {"idle", offsetof(gw_metrics_backend_t, conns_idle)},
        {"busy", offsetof(gw_metrics_backend_t, conns_busy)},
        {"connecting", offsetof(gw_metrics_backend_t, conns_connecting)},
    };
    family(p, "h2gw_upstream_connections", "gauge",
           "Backend connections, by state (idle in the pool, busy with a request, connecting).");
    for (size_t b = 0; b < v->nnamed; b++) {
        for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
            put(p, "h2gw_upstream_connections{backend=\"");
            put_label_value(p, backend_name(v, b));
            put(p, "\",state=\"%s\"} %lld\n", states[k].name,
                (long long)sum_backend_gauge(v, b, states[k].off));
        }
    }
    family(p, "h2gw_upstream_connect_duration_seconds", "histogram",
           "Time to open a backend connection (TCP, and TLS with tls = on).");
    for (size_t b = 0; b < v->nnamed; b++)
        put_histogram(p, v, "h2gw_upstream_connect_duration_seconds", "backend", backend_name(v, b),
                      connect_duration_at, b);
    put_backend_counter(p, v, "h2gw_upstream_connects_total", "Backend connections opened.",
                        offsetof(gw_metrics_backend_t, connects));
    put_backend_counter(p, v, "h2gw_upstream_connect_failures_total",
                        "Backend connections that failed to open.",
                        offsetof(gw_metrics_backend_t, connect_failures));
    put_backend_counter(p, v, "h2gw_upstream_reuses_total",
                        "Requests sent on an idle keep-alive connection.",
                        offsetof(gw_metrics_backend_t, reuses));
    put_backend_counter(p, v, "h2gw_upstream_retries_total",
                        "Requests tried again after a failed attempt.",
                        offsetof(gw_metrics_backend_t, retries));
    put_backend_counter(p, v, "h2gw_backend_ejections_total",
                        "Servers ejected by passive health checks (outlier detection).",
                        offsetof(gw_metrics_backend_t, ejections));
    family(p, "h2gw_health_checks_total", "counter", "Active health checks, by result.");
    for (size_t b = 0; b < v->nnamed; b++) {
        for (int is_fail = 0; is_fail < 2; is_fail++) {
            size_t off = is_fail ? offsetof(gw_metrics_backend_t, health_fail)
                                 : offsetof(gw_metrics_backend_t, health_pass);
            put(p, "h2gw_health_checks_total{backend=\"");
            put_label_value(p, backend_name(v, b));
            put(p, "\",result=\"%s\"} %llu\n", is_fail ? "fail" : "pass",
                (unsigned long long)sum_backend(v, b, off));
        }
    }
}

static void put_clients(page_t *p, const view_t *v)
{
    family(p, "h2gw_client_connections", "gauge",
           "Open client connections, by protocol (\"none\": not chosen yet: TLS handshake "
           "or preface sniff).");
    for (int k = 0; k < GW_M_CONN_PROTOCOLS; k++)
        put(p, "h2gw_client_connections{protocol=\"%s\"} %lld\n", protocol_names[k],
            (long long)sum_gauge(v, offsetof(gw_metrics_t, client_conns) +
                                        (size_t)k * sizeof(gw_mgauge_t)));
    put_counter(p, v, "h2gw_client_connections_total", "Client connections accepted.",
                offsetof(gw_metrics_t, client_conns_total));
    put_counter(p, v, "h2gw_accept_pauses_total",
                "Times accepting paused because accept failed (out of descriptors or memory).",
                offsetof(gw_metrics_t, accept_pauses));
    family(p, "h2gw_client_streams", "gauge",
           "Open client requests (HTTP/2 streams, HTTP/1.1 requests), by protocol.");
    for (int k = 0; k < GW_M_PROTOCOLS; k++)
        put(p, "h2gw_client_streams{protocol=\"%s\"} %lld\n", protocol_names[k],
            (long long)sum_gauge(v, offsetof(gw_metrics_t, client_streams) +
                                        (size_t)k * sizeof(gw_mgauge_t)));
    put_counter(p, v, "h2gw_received_bytes_total", "Request body bytes received from clients.",
                offsetof(gw_metrics_t, received_bytes));
    put_counter(p, v, "h2gw_sent_bytes_total", "Response body bytes taken by clients.",
                offsetof(gw_metrics_t, sent_bytes));
    put_counter(p, v, "h2gw_flood_refusals_total",
                "Client connections refused over max_connections, and HTTP/2 sessions ended "
                "for flooding.",
                offsetof(gw_metrics_t, flood_refusals));
    put_counter(p, v, "h2gw_rst_stream_received_total", "RST_STREAM frames from clients.",
                offsetof(gw_metrics_t, rst_received));
    put_counter(p, v, "h2gw_rst_stream_sent_total", "RST_STREAM frames sent to clients.",
                offsetof(gw_metrics_t, rst_sent));
}

static void put_tls(page_t *p, const view_t *v)
{
    put_counter(p, v, "h2gw_tls_handshakes_total", "Client TLS handshakes completed.",
                offsetof(gw_metrics_t, tls_handshakes));
    put_counter(p, v, "h2gw_tls_handshake_failures_total",
                "Client TLS handshakes that failed or timed out.",
                offsetof(gw_metrics_t, tls_handshake_failures));
    put_counter(p, v, "h2gw_tls_resumptions_total", "Client TLS handshakes that resumed a session.",
                offsetof(gw_metrics_t, tls_resumptions));
    family(p, "h2gw_tls_certificate_expiry_timestamp_seconds", "gauge",
           "When each certificate served to clients expires (notAfter), by subject.");
    for (size_t i = 0; i < v->s->ncerts; i++) {
        int is_seen = 0;
        for (size_t k = 0; k < i && !is_seen; k++)
            is_seen = strcmp(v->s->certs[k].subject, v->s->certs[i].subject) == 0;
        if (is_seen)
            continue;
        put(p, "h2gw_tls_certificate_expiry_timestamp_seconds{subject=\"");
        put_label_value(p, v->s->certs[i].subject);
        put(p, "\"} %lld\n", (long long)v->s->certs[i].not_after);
    }
}

static void put_errors(page_t *p, const view_t *v)
{
    family(p, "h2gw_errors_total", "counter",
           "Requests that ended in an error, by cause (timeouts by kind; client_gone: the "
           "client left first).");
    for (int e = 1; e < GW_E_COUNT; e++)
        put(p, "h2gw_errors_total{cause=\"%s\"} %llu\n", gw_err_name((gw_err_t)e),
            (unsigned long long)sum(v, offsetof(gw_metrics_t, errors) +
                                           (size_t)e * sizeof(gw_mcounter_t)));
    family(p, "h2gw_config_reloads_total", "counter", "Configuration reloads, by result.");
    put(p, "h2gw_config_reloads_total{result=\"ok\"} %llu\n",
        (unsigned long long)sum(v, offsetof(gw_metrics_t, config_reloads_ok)));
    put(p, "h2gw_config_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)sum(v, offsetof(gw_metrics_t, config_reloads_failed)));
}

/* Gathers the backend names of every worker and their counters. Returns
 * 0 or -1 (out of memory). */
static int view_init(view_t *v, const gw_metrics_scrape_t *s)
{
    size_t cap = 0, n = s->nworkers;
    memset(v, 0, sizeof(*v));
    v->s = s;
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0 counts (an upper bound: names may repeat), pass 1 fills. */
        if (pass == 1) {
            v->names = calloc(cap + 1, sizeof(*v->names));
            v->slots = calloc((cap + 1) * (n > 0 ? n : 1), sizeof(*v->slots));
            if (v->names == NULL || v->slots == NULL)
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const gw_metrics_backend_t *b =
                atomic_load_explicit(&s->workers[i]->backends, memory_order_acquire);
            for (; b != NULL; b = atomic_load_explicit(&b->next, memory_order_acquire)) {
                if (pass == 0) {
                    cap++;
                    continue;
                }
                size_t k = 0;
                while (k < v->nnamed && strcmp(v->names[k], b->name) != 0)
                    k++;
                if (k == v->nnamed) {
                    /* A backend added since pass 0 waits for the next scrape. */
                    if (v->nnamed == cap)
                        continue;
                    v->names[v->nnamed++] = b->name;
                }
                v->slots[k * n + i] = b;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        v->slots[v->nnamed * n + i] = &s->workers[i]->no_backend;
    return 0;
}

static void view_free(view_t *v)
{
    free(v->names);
    free(v->slots);
}

int gw_metrics_render(const gw_metrics_scrape_t *s, char **out, size_t *len)
{
    view_t view;
    page_t p = {.cap = 64 * 1024};
    if (view_init(&view, s) != 0 || (p.data = malloc(p.cap)) == NULL) {
        view_free(&view);
        return -1;
    }
    const view_t *v = &view;
    family(&p, "h2gw_build_info", "gauge", "Always 1; the version is a label.");
    put(&p, "h2gw_build_info{version=\"%s\"} 1\n", H2GW_VERSION);
    put_requests(&p, v);
    put_queue(&p, v);
    put_upstream(&p, v);
    put_clients(&p, v);
    put_tls(&p, v);
    put_errors(&p, v);
    view_free(&view);
    if (p.is_failed) {
        free(p.data);
        return -1;
    }
    *out = p.data;
    *len = p.len;
    return 0;
}
