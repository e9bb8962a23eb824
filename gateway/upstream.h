/*
 * Keep-alive HTTP/1.1 connections to one backend server, pooled. An idle
 * connection is reused last-in first-out; a connection goes back to the
 * pool only after the checklist in on_response_complete() passes.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "gateway/queue.h"
#include "gateway/scheduler.h"
#include "proto/h1_response.h"

struct gw_worker;
struct gw_exchange;

typedef struct gw_pool {
    struct gw_worker *w;
    const cfg_t *cfg;
    const cfg_backend_t *bcfg;
    struct sockaddr_storage addr;
    char name[CFG_HOST_MAX + 8]; /* host:port, for logs */
    gw_queue_t idle;             /* LIFO: the most recently used is warmest */
    gw_queue_t all;              /* every open connection, for a drain */
    gw_sched_t sched;            /* exchanges waiting for a connection */
    uint32_t nconns;             /* open or opening; bounded by max_connections */
    uint32_t nidle;
    uint64_t nopened;
    int is_dispatching;
} gw_pool_t;

enum gw_upconn_state {
    GW_UP_CONNECTING,
    GW_UP_BUSY,
    GW_UP_IDLE,
    GW_UP_CLOSING,
};

typedef struct gw_upconn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect, response and idle timeouts, by state */
    uv_connect_t connect_req;
    uv_write_t wreq;
    uv_buf_t wbuf;           /* owned by the write in flight */
    size_t wbuf_body_bytes;  /* request body bytes in that write */
    gw_pool_t *pool;
    struct gw_exchange *x;   /* borrowed while busy */
    gw_queue_t idle_node;
    gw_queue_t all_node;
    proto_h1_response_t resp;
    int state;
    int nhandles_open;       /* tcp + timer; freed when both closed */
    uint32_t nrequests;      /* exchanges served so far: >0 means a reused connection */
    unsigned is_writing : 1;
    unsigned is_reading : 1;
    unsigned is_read_paused : 1; /* the exchange's response buffer is full */
} gw_upconn_t;

/* Resolves the backend's server (once, at start) and prepares an empty
 * pool. Returns 0 or a negative uv error. */
int gw_pool_init(gw_pool_t *p, struct gw_worker *w, const cfg_backend_t *bcfg);

/* Queues x and dispatches: an idle connection, or a new one while under the
 * limit, takes the next waiting exchange. */
void gw_pool_submit(gw_pool_t *p, struct gw_exchange *x);


/* Moves a waiting x to its new priority. */
void gw_pool_reprioritize(gw_pool_t *p, struct gw_exchange *x, int urgency, int weight);

/* Takes a waiting x out of the queue (client went away). */
void gw_pool_cancel(gw_pool_t *p, struct gw_exchange *x);

/* Closes idle connections now and busy ones as they finish (drain). */
void gw_pool_close_idle(gw_pool_t *p);

/* Closes every connection at once and frees the pool's memory (shutdown). */
void gw_pool_close_all(gw_pool_t *p);

/* Sends x again on a new connection, never a pooled one: the one retry after
 * a reused connection failed. The failed connection (u, may be NULL) is
 * closed and its slot handed to the new one, so the retry never waits
 * behind the queue nor exceeds the limit. */
void gw_pool_retry(gw_pool_t *p, gw_upconn_t *u, struct gw_exchange *x);

/* Writes whatever request bytes of its exchange are pending. */
void gw_upconn_flush(gw_upconn_t *u);

/* The exchange drained its response buffer: read the backend again. */
void gw_upconn_resume_read(gw_upconn_t *u);

/* Closes u without reusing it (its exchange was detached or failed). */
void gw_upconn_close(gw_upconn_t *u);

#endif
