/*
 * One proxied request and its response: the layer between the client side
 * and the backend side. An exchange is owned by its client connection (the
 * frontend); it waits in its backend's pool, borrows one backend connection
 * per attempt, decides retries (proto/retry), turns every failure into one
 * gw_err (gateway/core/err: status before the head, reset after it), and is
 * the only caller of the frontend's ops.
 */
#ifndef GW_EXCHANGE_H
#define GW_EXCHANGE_H

#include <stdint.h>

#include "gateway/backend/pool.h"
#include "gateway/backend/tunnel.h"
#include "gateway/core/ctx.h"
#include "gateway/core/err.h"
#include "proto/buf.h"
#include "proto/h1_request.h"
#include "proto/headers.h"
#include "proto/proto.h"
#include "proto/queue.h"

typedef struct gw_exchange gw_exchange_t;

/* on_fail status for "refused before processing": HTTP/2 answers with
 * RST_STREAM(REFUSED_STREAM), which tells the client it may retry. */
#define GW_STATUS_REFUSED (-1)

/* Interim (1xx) responses relayed to the client per exchange; the
 * backend's later ones are dropped. */
#define GW_INFO_MAX 8

/* Request bodies up to this size are kept until the request is sent, so
 * that a failed attempt can be replayed on another server. */
#define GW_REPLAY_MAX (64 * 1024)

enum gw_exchange_state {
    GW_X_NEW,        /* the frontend is reading the request head */
    GW_X_QUEUED,     /* waiting in the pool */
    GW_X_CONNECTING, /* a connection is being opened for it */
    GW_X_SENDING,    /* writing the request (the response may start meanwhile) */
    GW_X_RECEIVING,  /* request sent, response arriving */
    GW_X_DONE,       /* the whole response is in resp_body */
    GW_X_FAILED,
};

const char *gw_exchange_state_str(int state);

/* What the exchange tells the client side. Implemented by both frontends. */
typedef struct gw_frontend_ops {
    /* The final response head arrived. Fields are valid during the call only.
     * has_body is 0 when the response cannot have content (HEAD, 204, 304,
     * Content-Length: 0). Returns 0, or negative to fail the exchange. */
    int (*on_head)(gw_exchange_t *x, int status, const proto_header_t *fields, size_t n,
                   int has_body);
    /* Body bytes were appended to x->resp_body or x->is_resp_done was set. */
    void (*on_body)(gw_exchange_t *x);
    /* The exchange failed. status > 0: answer with that status (the head
     * was not sent; x->retry_after_s > 0 adds Retry-After); status 0: reset
     * the stream with rst_code; GW_STATUS_REFUSED: refuse it (retry is
     * safe). */
    void (*on_fail)(gw_exchange_t *x, int status, uint32_t rst_code, const char *why);
    /* Optional: an interim response (1xx; never 100 or 101) from the
     * backend, at most GW_INFO_MAX per exchange, before on_head. Fields are
     * valid during the call only. Returns 0, or negative to fail the
     * exchange; a frontend that cannot relay it (HTTP/1.0) returns 0. */
    int (*on_info)(gw_exchange_t *x, int status, const proto_header_t *fields, size_t n);
    /* n request body bytes reached the backend: let the client send more. */
    void (*on_req_body_written)(gw_exchange_t *x, size_t n);
    /* The exchange of x's parent stream (RFC 7540 dependency), or NULL. May
     * be NULL itself for frontends without a dependency tree. */
    gw_exchange_t *(*parent_of)(gw_exchange_t *x);
    /* "h2" or "http/1.1": the client protocol, for the open-streams gauge. */
    const char *protocol;
} gw_frontend_ops_t;

struct gw_exchange {
    gw_ctx_t *w;
    const gw_frontend_ops_t *fe;
    void *fe_conn;           /* the frontend's connection object */
    void *fe_req;            /* the frontend's request being read; freed once the head is built */
    int32_t stream_id;       /* for logs and the HTTP/2 frontend */
    const char *client_addr; /* the client connection's, which outlives x */
    const char *protocol;    /* "h2" or "http/1.1", for the access log */
    int client_port;
    const char *tls_version; /* the client connection's (NULL: cleartext) */
    const char *sni;
    proto_queue_t fe_node;    /* in the frontend connection's list of exchanges */
    gw_pool_waiter_t wait;    /* in the pool; wait.sched's urgency and weight are
                                 set by the frontend before start */
    int is_incremental;       /* RFC 9218 i: kept for the client-side send order */
    int has_priority_field;   /* RFC 9218 field present: it decides the urgency */
    int32_t parent_stream_id; /* RFC 7540 dependency, 0 for the root */
    uint16_t weight;          /* RFC 7540 weight, 1..256 */
    int state;                /* enum gw_exchange_state */
    gw_err_t err;             /* why it failed */
    gw_pool_t *pool;          /* its backend, set by the frontend before start */
    gw_h1conn_t *conn;        /* borrowed while SENDING or RECEIVING */
    gw_tunnel_t *tunnel;      /* an upgraded request's own connection (gateway/upgrade.c); owned */
    gw_server_t *server;      /* the server of the latest attempt, for logs */
    uint64_t attempt_ms;      /* when the latest attempt got its connection */
    uint32_t retry_after_s;   /* for a 503: when the client may try again */
    uint32_t retries_left;    /* attempts on other servers still allowed */
    uint32_t stale_retries;   /* free retries after stale keep-alive failures */
    uint32_t nretries;        /* attempts after the first, for the access log */
    uint64_t queued_ms;       /* when it first waited for a connection; 0: never */
    int64_t wait_ms;          /* until its first connection; -1: none yet */
    uint64_t start_ms;
    uint64_t start_ns;    /* uv_hrtime(), for the duration histogram */
    int metrics_protocol; /* the open-streams gauge this exchange counts in */

    /* request */
    proto_h1_head_t head;
    int is_head_method;
    proto_buf_t req_body;         /* received, not yet handed to the backend */
    uint64_t req_body_acked;      /* bytes of this attempt that reached the socket */
    uint64_t req_body_credited;   /* bytes the client was told were taken (window) */
    uint64_t req_body_received;   /* bytes the client sent so far (for the size limit) */
    uint64_t req_body_taken;      /* bytes handed to this attempt's connection */
    proto_buf_t replay;           /* those bytes, while replayable */
    proto_header_t *req_trailers; /* for the last chunk: one allocation, fields and bytes */
    size_t nreq_trailers;
    unsigned is_replayable : 1; /* every body byte handed over is in replay */
    unsigned is_started : 1;    /* head built and given to the pool */
    unsigned is_req_end : 1;    /* the client sent its last body byte */
    unsigned is_conn_reused : 1;
    unsigned is_upgrade : 1; /* carried by a tunnel (gateway/upgrade.c), not the pool */

    /* response */
    int resp_status;          /* what the client got (the gateway's own status too) */
    uint64_t resp_bytes;      /* body bytes taken by the client */
    proto_buf_t resp_body;    /* backend bytes not yet taken by the client */
    proto_header_t *trailers; /* one allocation holding fields and bytes */
    size_t ntrailers;
    unsigned ninfo; /* interim responses relayed (GW_INFO_MAX + 1: the rest dropped) */
    unsigned is_resp_head_sent : 1;
    unsigned is_resp_done : 1; /* the whole response body is in resp_body */
    unsigned is_failed : 1;
    unsigned is_refused : 1;
    unsigned is_error_reply : 1; /* the gateway answered with its own status */
    unsigned is_deferred : 1;    /* the frontend's body reader waits for bytes */
    unsigned is_resp_paused : 1; /* the backend connection's reading is paused for us */
};

/* Creates an exchange owned by fe_conn. Returns NULL when out of memory. */
gw_exchange_t *gw_exchange_new(gw_ctx_t *w, const gw_frontend_ops_t *fe, void *fe_conn,
                               int32_t stream_id);

/* Writes x's access-log line and frees it; a borrowed backend connection
 * whose exchange was not finished is closed (its state is unknown), a
 * connection being opened for it serves the next request. */
void gw_exchange_free(gw_exchange_t *x);

/* Hands x (whose head is built) to its backend's pool. */
void gw_exchange_start(gw_exchange_t *x, gw_pool_t *pool);

/* Request body bytes from the client (an upgraded request's: tunnel
 * bytes, with no size limit). Returns 1 when they were taken for the
 * backend (the window reopens through on_req_body_written), 0 when the
 * exchange no longer needs them (the caller reopens the window itself), or
 * PROTO_E_NOMEM. */
int gw_exchange_req_body(gw_exchange_t *x, const uint8_t *data, size_t len);

/* The client sent request trailers (before gw_exchange_req_end). They are
 * checked with the head's rules (proto_h1_request_trailers; reserved_name
 * is the field the gateway vouches for, or NULL) and kept for the backend's
 * chunked last chunk. A request sent with Content-Length cannot carry them
 * in HTTP/1.1: they are dropped (logged at debug). Invalid or too large
 * ones fail the exchange (400, 431, or a reset after the response head).
 * Returns 0 or PROTO_E_NOMEM. */
int gw_exchange_req_trailers(gw_exchange_t *x, const proto_header_t *f, size_t n,
                             const char *reserved_name);

/* The client finished its request body. */
void gw_exchange_req_end(gw_exchange_t *x);

/* Copies up to max response body bytes for the client, and lets the backend
 * send again once the buffer has drained. Returns the count copied. */
size_t gw_exchange_resp_read(gw_exchange_t *x, uint8_t *dst, size_t max);

/* The frontend learned a new priority for x (PRIORITY_UPDATE, PRIORITY):
 * a waiting x moves in its queue. */
void gw_exchange_reprioritize(gw_exchange_t *x, int urgency, int weight);

/* Fails x before it reached the pool (a bad request, a limit): the
 * frontend hears on_fail with err's status. */
void gw_exchange_fail(gw_exchange_t *x, gw_err_t err, const char *why);

#endif
