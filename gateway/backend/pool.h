/*
 * A backend: a group of servers behind one name, the queue of exchanges
 * waiting for any of them, load balancing, passive and active health, and
 * DNS re-resolution. Each server has its own keep-alive pool and limit; the
 * connections themselves are gateway/upstream.c's.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "proto/queue.h"
#include "proto/scheduler.h"

struct gw_worker;
struct gw_exchange;
struct gw_upconn;
struct gw_pool;
struct gw_health_check;

typedef struct gw_server {
    struct gw_pool *pool;
    const cfg_server_t *cfg;
    char name[CFG_HOST_MAX + 8]; /* host:port, for logs */
    struct sockaddr_storage addr;
    int has_addr; /* resolved at least once */
    uv_getaddrinfo_t resolve_req;
    int is_resolving;
    int is_awaiting_first_address; /* a name whose first resolution is pending */
    proto_queue_t idle;               /* LIFO: the most recently used is warmest */
    uint32_t nidle;
    uint32_t nconns; /* open or opening; bounded by max_connections */
    uint32_t nbusy;  /* connections carrying an exchange */
    /* passive health */
    uint32_t nfails;     /* consecutive failures */
    uint32_t nejections; /* consecutive ejections: the backoff doubles */
    uint64_t ejected_until_ms;
    /* active health (health_check_path) */
    struct gw_health_check *hc;
    int is_check_down;
    /* smooth weighted round robin (nginx's) */
    int64_t rr_current;
    uint64_t nopened;
} gw_server_t;

typedef struct gw_pool_stats {
    uint64_t requests, retries, queue_full, queue_timeouts, all_down, body_too_large;
} gw_pool_stats_t;

typedef struct gw_pool {
    struct gw_worker *w;
    const cfg_t *cfg;
    const cfg_backend_t *bcfg;
    char name[CFG_NAME_MAX];
    gw_server_t *servers;
    size_t nservers;
    size_t rr_next;           /* tie breaker for least outstanding */
    proto_queue_t all;           /* every open connection, for a drain */
    proto_sched_t sched;         /* exchanges waiting for a connection */
    uv_timer_t queue_timer;   /* fails exchanges waiting over queue_timeout */
    uv_timer_t resolve_timer; /* re-resolves server names */
    struct gw_tls_ctx *tls;   /* HTTPS to the servers (tls = on), else NULL */
    int is_dispatching;
    gw_pool_stats_t stats;
} gw_pool_t;

/* Sets up the group: numeric addresses at once, names through
 * uv_getaddrinfo (the server takes no traffic until resolved), health
 * checks if configured. Returns 0 or a negative uv error. */
int gw_pool_init(gw_pool_t *p, struct gw_worker *w, const cfg_backend_t *bcfg);

/* Queues x and dispatches. Refuses at once with 503 (Retry-After) when the
 * queue is full or every server is down. */
void gw_pool_submit(gw_pool_t *p, struct gw_exchange *x);

/* Gives waiting exchanges to servers with free capacity. */
void gw_pool_dispatch(gw_pool_t *p);

/* Sends x again after the connection u (may be NULL) failed. A stale
 * keep-alive failure goes to a fresh connection of the same server, in u's
 * slot; any other failure goes to another server when one is up. */
void gw_pool_retry(gw_pool_t *p, struct gw_upconn *u, struct gw_exchange *x, int is_stale);

/* Moves a waiting x to its new priority. */
void gw_pool_reprioritize(gw_pool_t *p, struct gw_exchange *x, int urgency, int weight);

/* Takes a waiting x out of the queue (client went away). */
void gw_pool_cancel(gw_pool_t *p, struct gw_exchange *x);

/* Closes idle connections now and busy ones as they finish (drain). */
void gw_pool_close_idle(gw_pool_t *p);

/* Closes every connection, stops timers and health checks, frees memory. */
void gw_pool_close_all(gw_pool_t *p);

/* Frees the servers; after the loop has closed (callbacks may use them). */
void gw_pool_free(gw_pool_t *p);

/* Passive health: how an exchange on s went. A server that fails max_fails
 * times in a row is ejected for a backoff that doubles with each ejection. */
void gw_server_report(gw_server_t *s, int is_ok, const char *why);

/* Active health check verdicts (from gateway/health.c). */
void gw_server_set_check_down(gw_server_t *s, int is_down);

/* 1 when s may take new exchanges now. */
int gw_server_is_up(const gw_server_t *s, uint64_t now_ms);

/* Seconds until some server of p may be up again, for Retry-After (>= 1). */
uint32_t gw_pool_retry_after(const gw_pool_t *p);

#endif
