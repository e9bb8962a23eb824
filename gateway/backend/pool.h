/*
 * A backend: its servers, their connections and the queue of requests
 * waiting for one. The pool owns every backend connection while it
 * connects or idles (idle lists are LIFO: the most recently used is the
 * warmest), applies the keep-alive reuse checklist, keeps the counters
 * (idle, busy, connecting: nobody else writes them) and the servers'
 * health (gateway/backend/server.c), and dispatches waiting requests once
 * per loop turn from the worker's prepare hook, so that no failure, retry
 * or freed connection ever runs another request's code on its own stack.
 *
 * A request waits as a gw_pool_waiter_t. The pool knows nothing else of it:
 * it calls the waiter's ops when a connection is ready for it or when it
 * cannot have one.
 */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "gateway/backend/h1conn.h"
#include "gateway/core/ctx.h"
#include "gateway/core/err.h"
#include "gateway/core/log.h"
#include "gateway/core/metrics.h"
#include "proto/queue.h"
#include "proto/scheduler.h"

struct gw_pool;
struct gw_health_check;
typedef struct gw_pool_waiter gw_pool_waiter_t;

typedef struct gw_server {
    struct gw_pool *pool;
    const cfg_server_t *cfg;
    char name[CFG_HOST_MAX + 8]; /* host:port, for logs */
    struct sockaddr_storage addr;
    int has_addr; /* resolved at least once */
    uv_getaddrinfo_t resolve_req;
    int is_resolving;
    int is_awaiting_first_address; /* a name whose first resolution is pending */
    /* Counters: written by pool.c only. */
    proto_queue_t idle; /* LIFO */
    uint32_t nidle;
    uint32_t nconns;      /* open or opening; bounded by max_connections */
    uint32_t nbusy;       /* carrying a request */
    uint32_t nconnecting; /* opening */
    /* Passive health (server.c): Envoy's outlier detection. */
    uint32_t nfails;           /* consecutive, of attempts since admitted_ms */
    uint32_t nejections;       /* back to back: the backoff doubles */
    uint64_t ejected_until_ms; /* 0: not ejected */
    uint64_t admitted_ms;      /* results of attempts started before are ignored */
    int is_ejected;            /* until the half-open verdict readmits it */
    gw_log_limit_t log_limit;  /* one warning a second about this server */
    /* Active health (health_check_path) */
    struct gw_health_check *hc;
    int is_check_down;
    /* smooth weighted round robin (nginx's) */
    int64_t rr_current;
} gw_server_t;

typedef struct gw_pool_stats {
    uint64_t requests, retries, queue_full, queue_timeouts, all_down, body_too_large;
    uint64_t connects, connect_failures, reuses, ejections;
} gw_pool_stats_t;

typedef struct gw_pool {
    gw_ctx_t *w;
    const cfg_t *cfg;
    const cfg_backend_t *bcfg;
    char name[CFG_NAME_MAX];
    gw_server_t *servers;
    size_t nservers;
    size_t rr_next;             /* tie breaker for least outstanding */
    proto_queue_t all;          /* every open connection */
    proto_sched_t sched;        /* requests waiting for a connection */
    uv_timer_t queue_timer;     /* fails requests waiting over queue_timeout */
    uint64_t queue_deadline_ms; /* when queue_timer fires, while active */
    uv_timer_t resolve_timer;   /* re-resolves server names */
    gw_task_t dispatch_task;    /* dispatch at the end of this loop turn */
    gw_h1conn_cfg_t conn_cfg;
    gw_log_limit_t log_limit; /* warnings not about one server */
    int is_closing;
    int is_retired;      /* replaced by a reload: serves its own exchanges, then goes */
    uint32_t nexchanges; /* exchanges started on this pool and not yet freed */
    gw_pool_stats_t stats;
    gw_metrics_backend_t *metrics; /* this backend's in the worker's metrics */
} gw_pool_t;

/* What the pool tells a waiting request. */
typedef struct gw_pool_waiter_ops {
    /* c (READY, on server s) is the waiter's for one request. It hands it
     * back with gw_pool_release(). */
    void (*on_conn)(gw_pool_waiter_t *wt, gw_h1conn_t *c, gw_server_t *s);
    /* No connection: err says why (queue timeout, every server down, the
     * connect failed: s is then the server, else NULL). The waiter is out
     * of the pool; it may submit itself again. */
    void (*on_fail)(gw_pool_waiter_t *wt, gw_err_t err, const char *why, gw_server_t *s);
    /* The waiter this one depends on (RFC 7540), or NULL. */
    gw_pool_waiter_t *(*parent_of)(gw_pool_waiter_t *wt);
} gw_pool_waiter_ops_t;

struct gw_pool_waiter {
    proto_sched_entry_t sched; /* owner, urgency and weight set by the user */
    const gw_pool_waiter_ops_t *ops;
    gw_pool_t *pool;             /* while submitted */
    const gw_server_t *avoid;    /* a retry prefers another server than this */
    gw_h1conn_t *conn;           /* being opened for this waiter */
    uint64_t attempt_started_ms; /* when it got its connection or started opening one */
    uint64_t queued_ns;          /* uv_hrtime() at its latest submit: the queue wait */
};

void gw_pool_waiter_init(gw_pool_waiter_t *wt, const gw_pool_waiter_ops_t *ops, void *owner);

/* Sets up the backend: numeric addresses at once, names through
 * uv_getaddrinfo, health checks if configured. Returns 0 or a negative uv
 * error. */
int gw_pool_init(gw_pool_t *p, gw_ctx_t *w, const cfg_backend_t *bcfg);

/* Queues wt for a connection. Returns GW_OK, or the reason it cannot wait
 * (queue full, every server down, out of memory): then nothing is queued
 * and no callback runs. Keeps the waiter's queue age on a resubmit. */
gw_err_t gw_pool_submit(gw_pool_t *p, gw_pool_waiter_t *wt);

/* Takes wt out of the pool: out of the queue, or away from the connection
 * being opened for it (which then serves the next waiter). Idempotent. */
void gw_pool_cancel(gw_pool_waiter_t *wt);

/* Moves a waiting wt to its new priority. */
void gw_pool_reprioritize(gw_pool_waiter_t *wt, int urgency, int weight);

/* Takes back a connection from its request: kept idle when is_reusable and
 * the pool is not draining, else closed. */
void gw_pool_release(gw_pool_t *p, gw_h1conn_t *c, int is_reusable);

/* A reused connection of s died before answering: the server most likely
 * closed its idle connections (a restart, its keep-alive timeout), so the
 * ones idle longer are closed too. */
void gw_pool_note_stale(gw_pool_t *p, gw_server_t *s);

/* Passive health: how an attempt on s that started at started_ms went. */
void gw_pool_report(gw_pool_t *p, gw_server_t *s, int is_ok, const char *why, uint64_t started_ms);

/* Seconds until some server of p may be up again, for Retry-After (>= 1). */
uint32_t gw_pool_retry_after(const gw_pool_t *p);

/* 1 when some server may take requests now. */
int gw_pool_is_usable(const gw_pool_t *p);

/* A reload replaced the pool: it takes no new exchanges from the worker
 * (which stops handing it any) but serves those it has, retries included;
 * idle connections close now, busy ones as they finish; health checks and
 * name resolution stop. */
void gw_pool_retire(gw_pool_t *p);

/* 1 when no exchange uses p and it has no connection: a retired pool may
 * then be closed (gw_pool_close_all) and freed. */
int gw_pool_is_unused(const gw_pool_t *p);

/* Closes idle connections now and busy ones as they finish (drain). */
void gw_pool_close_idle(gw_pool_t *p);

/* Fails everything waiting, closes every connection, stops timers and
 * health checks. */
void gw_pool_close_all(gw_pool_t *p);

/* Frees the servers; after the loop has closed (callbacks may use them). */
void gw_pool_free(gw_pool_t *p);

/* ---- servers (server.c) ---- */

/* Sets up s's address (numeric at once, else resolution) and state. */
void gw_server_init(gw_server_t *s, gw_pool_t *p, const cfg_server_t *cfg);

/* Resolves the names of p's servers again (the resolve timer). */
void gw_server_resolve_all(gw_pool_t *p);

/* 1 when s may take new requests now. An ejection that has run out leaves
 * s half-open: usable, and its next result decides. */
int gw_server_is_up(const gw_server_t *s, uint64_t now_ms);

/* Active health check verdicts (from gateway/backend/health.c). */
void gw_server_set_check_down(gw_server_t *s, int is_down);

/* The server the next request goes to among those up with free capacity,
 * preferring any other than avoid. NULL: none. */
gw_server_t *gw_server_pick(gw_pool_t *p, const gw_server_t *avoid);

/* 1 when s has an idle connection or room for a new one. */
int gw_server_has_capacity(const gw_server_t *s);

#endif
