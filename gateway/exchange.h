/*
 * One proxied request/response. An exchange is owned by its client
 * connection (the frontend); an upstream connection only borrows it while
 * busy, and gw_exchange_detach() clears both links at once.
 */
#ifndef GW_EXCHANGE_H
#define GW_EXCHANGE_H

#include <stdint.h>

#include "proto/queue.h"
#include "proto/scheduler.h"
#include "proto/buf.h"
#include "proto/h1_request.h"
#include "proto/headers.h"
#include "proto/proto.h"

struct gw_worker;
struct gw_pool;
struct gw_server;
struct gw_upconn;
typedef struct gw_exchange gw_exchange_t;

/* How a failure may be handled (gw_exchange_fail flags). */
enum {
    GW_FAIL_RETRY = 1,  /* before any response byte, the server's fault: another
                           server may be tried, using up a retry */
    GW_FAIL_STALE = 2,  /* a reused connection died before any response byte: the
                           pool's fault; a fresh connection is tried for free */
    GW_FAIL_UNSENT = 4, /* with STALE: the first write failed, so the backend
                           provably got none of the request */
};

/* on_fail status for "refused before processing": HTTP/2 answers with
 * RST_STREAM(REFUSED_STREAM), which tells the client it may retry. */
#define GW_STATUS_REFUSED (-1)

/* Request bodies up to this size are kept until the request is sent, so
 * that a failed attempt can be replayed on another server. */
#define GW_REPLAY_MAX (64 * 1024)

/* What the backend side tells the client side. Implemented by h2_client
 * (and by the HTTP/1.1 frontend later). */
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
     * the stream; GW_STATUS_REFUSED: refuse it (retry is safe). */
    void (*on_fail)(gw_exchange_t *x, int status, const char *why);
    /* n request body bytes reached the backend: let the client send more. */
    void (*on_req_body_written)(gw_exchange_t *x, size_t n);
    /* The exchange of x's parent stream (RFC 7540 dependency), or NULL. May
     * be NULL itself for frontends without a dependency tree. */
    gw_exchange_t *(*parent_of)(gw_exchange_t *x);
} gw_frontend_ops_t;

struct gw_exchange {
    struct gw_worker *w;
    const gw_frontend_ops_t *fe;
    void *fe_conn;            /* the frontend's connection object */
    void *fe_req;             /* the frontend's request being read; freed once the head is built */
    int32_t stream_id;        /* for logs and the HTTP/2 frontend */
    const char *client_addr;  /* the client connection's, which outlives x */
    const char *protocol;     /* "h2" or "http/1.1", for the access log */
    proto_queue_t fe_node;       /* in the frontend connection's list of exchanges */
    proto_sched_entry_t sched;   /* while waiting for a connection; owner, urgency and
                                 weight are set by the frontend before start */
    int is_incremental;       /* RFC 9218 i: kept for the client-side send order */
    int has_priority_field;   /* RFC 9218 field present: it decides the urgency */
    int32_t parent_stream_id; /* RFC 7540 dependency, 0 for the root */
    uint16_t weight;          /* RFC 7540 weight, 1..256 */
    struct gw_pool *pool;
    struct gw_upconn *upconn; /* borrowed while busy; NULL otherwise */
    struct gw_server *server; /* the server of the latest attempt, for logs */
    uint32_t retry_after_s;   /* for a 503: when the client may try again */
    uint32_t retries_left;    /* attempts on other servers still allowed */
    uint32_t stale_retries;   /* free retries after stale keep-alive failures */
    uint64_t start_ms;

    /* request */
    proto_h1_head_t head;
    int is_head_method;
    proto_buf_t req_body;       /* received, not yet handed to the backend */
    uint64_t req_body_written;  /* bytes handed to backend writes so far */
    uint64_t req_body_credited; /* bytes the client was told were taken (window) */
    uint64_t req_body_received; /* bytes the client sent so far (for the size limit) */
    proto_buf_t replay;         /* bytes written so far, while replayable */
    unsigned is_replayable : 1; /* the whole body written so far is in replay */
    unsigned is_started : 1;    /* head built and submitted to the pool */
    unsigned is_req_end : 1;    /* the client sent its last body byte */
    unsigned is_req_head_written : 1;
    unsigned is_req_sent : 1; /* head, body and terminator all written */
    unsigned is_retried : 1;

    /* response */
    int resp_status;
    uint64_t resp_bytes;      /* body bytes taken by the client */
    proto_buf_t resp_body;    /* backend bytes not yet taken by the client */
    proto_header_t *trailers; /* one allocation holding fields and bytes */
    size_t ntrailers;
    unsigned is_resp_head_sent : 1;
    unsigned is_resp_done : 1; /* the whole response body is in resp_body */
    unsigned is_failed : 1;
    unsigned is_deferred : 1; /* the frontend's body reader waits for bytes */
};

/* Creates an exchange owned by fe_conn. Returns NULL when out of memory. */
gw_exchange_t *gw_exchange_new(struct gw_worker *w, const gw_frontend_ops_t *fe, void *fe_conn,
                               int32_t stream_id);

/* Frees x: takes it out of the queue, and closes a borrowed upstream
 * connection whose exchange was not finished (its state is unknown). */
void gw_exchange_free(gw_exchange_t *x);

/* Hands x (whose head is built) to its backend's pool. */
void gw_exchange_start(gw_exchange_t *x, struct gw_pool *pool);

/* Request body bytes from the client. Returns 1 when they were taken for the
 * backend (the window reopens through on_req_body_written), 0 when the
 * exchange no longer needs them (the caller reopens the window itself), or
 * PROTO_E_NOMEM. */
int gw_exchange_req_body(gw_exchange_t *x, const uint8_t *data, size_t len);

/* The client finished its request body. */
void gw_exchange_req_end(gw_exchange_t *x);

/* Copies up to max response body bytes for the client, and lets the backend
 * send again once the buffer has drained. Returns the count copied. */
size_t gw_exchange_resp_read(gw_exchange_t *x, uint8_t *dst, size_t max);

/* The frontend learned a new priority for x (PRIORITY_UPDATE, PRIORITY):
 * a waiting x moves in its queue. */
void gw_exchange_reprioritize(gw_exchange_t *x, int urgency, int weight);

/* Body bytes just handed to a backend write: kept for a replay while the
 * body stays under GW_REPLAY_MAX. */
void gw_exchange_note_body_sent(gw_exchange_t *x, const void *data, size_t len);

/* Clears the links between x and its upstream connection. */
void gw_exchange_detach(gw_exchange_t *x);

/* The one exit for a failed exchange. Retries when the flags and the
 * exchange allow it (see can_retry), else tells the frontend: status before
 * the head, a reset after it, or a refusal when nothing reached a backend
 * and the request cannot be replayed. Logs once, with the reason. */
void gw_exchange_fail(gw_exchange_t *x, int status, const char *why, int flags);

/* Called by the upstream side as the response arrives. */
int gw_exchange_on_resp_head(gw_exchange_t *x, int status, const proto_header_t *f, size_t n);
int gw_exchange_on_resp_body(gw_exchange_t *x, const uint8_t *data, size_t len);
int gw_exchange_on_resp_trailers(gw_exchange_t *x, const proto_header_t *f, size_t n);
void gw_exchange_on_resp_done(gw_exchange_t *x);

#endif
