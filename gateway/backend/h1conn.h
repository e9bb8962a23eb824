/*
 * One keep-alive HTTP/1.1 connection to a backend server: connect, write
 * the request, parse the response, and go back to its server's idle list
 * only after the checklist in on_response_complete() passes. Which exchange
 * a connection carries, and when, is gateway/backend.c's decision.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stdint.h>
#include <uv.h>

#include "gateway/backend/pool.h"
#include "proto/queue.h"
#include "gateway/tls/tls.h"
#include "proto/buf.h"
#include "proto/h1_response.h"

struct gw_exchange;

/* Pieces of one request write: head, up to GW_WRITE_IOV_MAX - 3 body
 * segments, chunk framing. */
#define GW_WRITE_IOV_MAX 40

enum gw_upconn_state {
    GW_UP_CONNECTING,
    GW_UP_BUSY,
    GW_UP_IDLE,
    GW_UP_CLOSING,
};

typedef struct gw_upconn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect, response, io and idle timeouts, by state */
    uv_connect_t connect_req;
    uv_write_t wreq;
    uv_buf_t wbufs[GW_WRITE_IOV_MAX]; /* the request write being sent */
    size_t nwbufs;
    char *wbuf_alloc;       /* its head (or sealed records), freed when it completes */
    proto_buf_t wbody;      /* its body segments, moved from the exchange */
    size_t wbuf_body_bytes; /* request body bytes in that write */
    gw_server_t *server;
    struct gw_exchange *x; /* borrowed while busy */
    proto_queue_t idle_node;
    proto_queue_t all_node;
    proto_queue_t dirty_node; /* request bytes to write at the end of this loop turn */
    proto_h1_response_t resp;
    int state;
    int nhandles_open;        /* tcp + timer; freed when both closed */
    uint32_t nrequests;       /* exchanges completed: > 0 means a reused connection */
    uint64_t idle_timeout_ms; /* lowered by the backend's Keep-Alive: timeout */
    gw_tls_conn_t tls;        /* HTTPS backends (the pool has a TLS context) */
    unsigned is_writing : 1;
    unsigned is_reading : 1;
    unsigned is_read_paused : 1; /* the exchange's response buffer is full */
    unsigned is_busy_counted : 1;
    unsigned is_tls : 1;
    unsigned is_eof_pending : 1; /* ended while a write was in flight: on_write decides */
} gw_upconn_t;

/* Opens a new connection to s that carries x once connected (counted in
 * s->nconns at once). */
void gw_upconn_open(gw_server_t *s, struct gw_exchange *x);

/* Gives an idle connection (already off its idle list) exchange x. */
void gw_upconn_assign(gw_upconn_t *u, struct gw_exchange *x);

/* Writes whatever request bytes of its exchange are pending. */
void gw_upconn_flush(gw_upconn_t *u);

/* Asks for a flush at the end of this loop turn, so that all the body
 * bytes one client read brought go out in one write. */
void gw_upconn_mark_dirty(gw_upconn_t *u);

/* Flushes every connection of the worker marked dirty (prepare hook). */
void gw_upconn_flush_all(proto_queue_t *dirty);

/* The exchange drained its response buffer: read the backend again. */
void gw_upconn_resume_read(gw_upconn_t *u);

/* Closes u without reusing it; the freed slot goes to waiting exchanges. */
void gw_upconn_close(gw_upconn_t *u);

/* Closes u without dispatching: the caller opens a replacement at once. */
void gw_upconn_close_keep_slot(gw_upconn_t *u);

#endif
