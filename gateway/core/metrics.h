/*
 * Metrics: the counters, gauges and histograms of one worker, and the
 * helpers that move them. Every worker has its own gw_metrics_t (in its
 * context, gateway/core/ctx.h); only that worker's thread writes it, so an
 * update is a relaxed atomic load and store (no locked instruction, no
 * lock), and worker 0's admin listener reads every worker's with relaxed
 * loads when /metrics is scraped (gateway/ops/metrics renders them).
 *
 * Label values that are gateway facts (protocol, status class, urgency,
 * error cause) are array indexes here; the names are the renderer's. This
 * header includes no other gateway module, so every module may use it.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Client protocols: requests and streams know theirs; a connection has
 * none until ALPN or the preface sniff decides. */
enum { GW_M_H2, GW_M_HTTP1, GW_M_PROTO_NONE };
#define GW_M_PROTOCOLS 2      /* labels of requests and streams */
#define GW_M_CONN_PROTOCOLS 3 /* connections: also "none" */

/* Status classes 1xx..5xx, and "none" for a request that got no status
 * (refused, or reset before its head). */
#define GW_M_CLASSES 6
#define GW_M_URGENCIES 8   /* RFC 9218 urgency 0..7 */
#define GW_M_ERRORS_MAX 32 /* >= GW_E_COUNT, checked where gw_err is known */
#define GW_M_BUCKETS 17    /* 16 bounds and +Inf */
#define GW_M_NAME_MAX 64   /* a backend name (CFG_NAME_MAX) */

typedef _Atomic uint64_t gw_mcounter_t;
typedef _Atomic int64_t gw_mgauge_t;

/* A histogram of durations: counts per bucket (not cumulative: the
 * renderer adds them up), and their sum in nanoseconds. Its count is the
 * sum of the buckets, so _count and the +Inf bucket always agree. */
typedef struct gw_mhist {
    gw_mcounter_t buckets[GW_M_BUCKETS];
    gw_mcounter_t sum_ns;
} gw_mhist_t;

/* One backend, as one worker sees it, by name: a reload may add, remove
 * or reorder backends, and a backend's counters go on under its name. */
typedef struct gw_metrics_backend {
    /* The worker's list: appended to by its thread (a release store),
     * walked by the scraper (acquire loads); never shortened. */
    struct gw_metrics_backend *_Atomic next;
    char name[GW_M_NAME_MAX];
    gw_mcounter_t requests[GW_M_PROTOCOLS][GW_M_CLASSES];
    gw_mhist_t request_duration;
    gw_mhist_t connect_duration;
    gw_mcounter_t connects, connect_failures, reuses, retries, ejections;
    gw_mcounter_t health_pass, health_fail;
    /* Gauges: written by gateway/backend/pool.c only. */
    gw_mgauge_t queue_length;
    gw_mgauge_t conns_idle, conns_busy, conns_connecting;
} gw_metrics_backend_t;

typedef struct gw_metrics {
    /* Every backend name the worker has had a pool for, in order; and the
     * counters of requests that never got a backend (refused by the
     * frontend before routing). */
    gw_metrics_backend_t *_Atomic backends;
    gw_metrics_backend_t no_backend;
    gw_mhist_t queue_wait[GW_M_URGENCIES];
    gw_mgauge_t client_conns[GW_M_CONN_PROTOCOLS];
    gw_mcounter_t client_conns_total;
    gw_mcounter_t accept_pauses; /* accept failed (out of descriptors): accepting paused */
    gw_mgauge_t client_streams[GW_M_PROTOCOLS];
    gw_mcounter_t received_bytes, sent_bytes; /* client request and response bodies */
    gw_mcounter_t tls_handshakes, tls_handshake_failures, tls_resumptions;
    gw_mcounter_t errors[GW_M_ERRORS_MAX]; /* by gw_err */
    gw_mcounter_t rst_received, rst_sent, flood_refusals;
    gw_mcounter_t config_reloads_ok, config_reloads_failed;
} gw_metrics_t;

/* Sets m to zero. */
void gw_metrics_init(gw_metrics_t *m);

/* The counters of backend name, added to m's list the first time (by the
 * worker's own thread only). Returns NULL when out of memory. */
gw_metrics_backend_t *gw_metrics_backend(gw_metrics_t *m, const char *name);

/* Frees the backends' counters. They must outlive every reader: the
 * process frees them after every worker thread has ended. */
void gw_metrics_free(gw_metrics_t *m);

/* The bucket bounds in nanoseconds, in order; the last bucket is +Inf. */
static inline uint64_t gw_metrics_bound_ns(size_t i)
{
    static const uint64_t bounds_us[GW_M_BUCKETS - 1] = {
        500,    1000,   2500,    5000,    10000,   25000,    50000,    100000,
        250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
    };
    return i < GW_M_BUCKETS - 1 ? bounds_us[i] * 1000 : UINT64_MAX;
}

/* Adds n to a counter only this thread writes. */
static inline void gw_metrics_add(gw_mcounter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void gw_metrics_inc(gw_mcounter_t *c)
{
    gw_metrics_add(c, 1);
}

/* Moves a gauge only this thread writes by delta. */
static inline void gw_metrics_gauge_add(gw_mgauge_t *g, int64_t delta)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static inline void gw_metrics_gauge_set(gw_mgauge_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

static inline void gw_metrics_observe(gw_mhist_t *h, uint64_t ns)
{
    size_t i = 0;
    while (i < GW_M_BUCKETS - 1 && ns > gw_metrics_bound_ns(i))
        i++;
    gw_metrics_inc(&h->buckets[i]);
    gw_metrics_add(&h->sum_ns, ns);
}

/* "h2" or "http/1.1" (the access log's protocol names). */
static inline int gw_metrics_protocol(const char *name)
{
    if (name != NULL && strcmp(name, "h2") == 0)
        return GW_M_H2;
    if (name != NULL && strcmp(name, "http/1.1") == 0)
        return GW_M_HTTP1;
    return GW_M_PROTO_NONE;
}

/* 1xx..5xx are 0..4; anything else (0: no status) is 5. */
static inline int gw_metrics_class(int status)
{
    return status >= 100 && status <= 599 ? status / 100 - 1 : GW_M_CLASSES - 1;
}

/* The configuration reload's outcome (SIGHUP). */
static inline void gw_metrics_config_reload(gw_metrics_t *m, int is_ok)
{
    gw_metrics_inc(is_ok ? &m->config_reloads_ok : &m->config_reloads_failed);
}

#endif
