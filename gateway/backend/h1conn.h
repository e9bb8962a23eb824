/*
 * One HTTP/1.1 connection to one backend server, carrying one request at a
 * time: connect (and TLS), write a request head and a body pulled from its
 * user, parse the response with proto/h1_response, and report head, body,
 * trailers, the end or an error through a callback table. It knows nothing
 * of exchanges, clients, pools or schedulers (h2o's http1client.c shape):
 * the pool owns it while it connects or idles, a user borrows it for one
 * request, and health checks use it the same way.
 */
#ifndef GW_H1CONN_H
#define GW_H1CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "gateway/core/ctx.h"
#include "gateway/core/err.h"
#include "gateway/tls/tls_conn.h"
#include "proto/buf.h"
#include "proto/h1_response.h"
#include "proto/queue.h"

/* Pieces of one request write: head, up to GW_H1CONN_IOV_MAX - 3 body
 * segments, chunk framing. */
#define GW_H1CONN_IOV_MAX 40

typedef struct gw_h1conn gw_h1conn_t;

/* Settings shared by the connections to one backend; must outlive them. */
typedef struct gw_h1conn_cfg {
    uint64_t connect_timeout_ms;  /* connect and TLS handshake */
    uint64_t response_timeout_ms; /* request sent -> whole response head */
    uint64_t io_timeout_ms;       /* silence mid-response, or a write the backend does not take */
    uint64_t read_stall_ms;       /* the user has no request body bytes for this long */
    uint64_t write_stall_ms;      /* reading paused by the user for this long */
    size_t max_head_size;
    gw_tls_ctx_t *tls; /* HTTPS to the server, else NULL */
    const char *tls_sni;
    int tls_verify;
} gw_h1conn_cfg_t;

/* What the owner (the pool, a health check) hears. */
typedef struct gw_h1conn_owner_ops {
    /* The connection is up (TLS included; err GW_OK) or could not be made.
     * After a failure the owner closes it. */
    void (*on_connected)(gw_h1conn_t *c, gw_err_t err, const char *why);
    /* An idle connection ended: the server closed it, sent bytes out of
     * turn, or the idle timeout passed. The owner closes it. */
    void (*on_idle_end)(gw_h1conn_t *c, const char *why);
} gw_h1conn_owner_ops_t;

/* How a request failed, for the user's retry decision. */
typedef struct gw_h1conn_fail {
    gw_err_t err;
    const char *why;              /* for logs; valid during the call */
    unsigned is_reused : 1;       /* the connection had carried a request before */
    unsigned is_resp_started : 1; /* some response byte arrived */
    unsigned is_unsent : 1;       /* provably no request byte reached the server */
} gw_h1conn_fail_t;

/* What the user of one request hears, with its ud. Returning negative from
 * on_head, on_body or on_trailers fails the request (GW_E_FRONTEND). */
typedef struct gw_h1conn_req_ops {
    int (*on_head)(void *ud, int status, const proto_header_t *f, size_t n);
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    int (*on_trailers)(void *ud, const proto_header_t *f, size_t n);
    /* The response is complete; the connection no longer knows ud. The
     * user hands it back to its owner, which may reuse it when
     * is_reusable (keep-alive allowed, request fully sent, nothing extra). */
    void (*on_done)(void *ud, int is_reusable);
    /* The request failed; the connection no longer knows ud and must be
     * closed by its owner. */
    void (*on_error)(void *ud, const gw_h1conn_fail_t *fail);
    /* The body source: moves up to max bytes (in at most max_segs segments)
     * of request body into dst and sets *is_end once the last byte is in.
     * Returns the bytes moved. */
    size_t (*take_body)(void *ud, proto_buf_t *dst, size_t max, size_t max_segs, int *is_end);
    /* n request body bytes reached the socket. */
    void (*on_body_written)(void *ud, size_t n);
    /* Optional: an interim response (1xx but 101) came before the final
     * head; fields valid during the call only. */
    int (*on_info)(void *ud, int status, const proto_header_t *f, size_t n);
    /* Optional, chunked requests only: called once, after take_body set
     * *is_end, for the trailer fields of the last chunk. Returns their
     * count (0: none) and points *f at them; the connection copies them
     * before it returns, so they stay the user's. */
    size_t (*take_trailers)(void *ud, const proto_header_t **f);
} gw_h1conn_req_ops_t;

enum gw_h1conn_state {
    GW_H1CONN_CONNECTING,
    GW_H1CONN_READY, /* connected, no request: idle or about to be used */
    GW_H1CONN_BUSY,
    GW_H1CONN_CLOSED,
};

struct gw_h1conn {
    /* The owner's fields: the connection never touches them. */
    void *owner;
    void *owner_arg;
    proto_queue_t owner_node;
    proto_queue_t owner_all_node;
    int owner_state;
    uint64_t owner_started_ns; /* when the owner began opening it */

    gw_ctx_t *w;
    const gw_h1conn_cfg_t *cfg;
    const gw_h1conn_owner_ops_t *owner_ops;
    const gw_h1conn_req_ops_t *req_ops;
    void *ud;
    enum gw_h1conn_state state;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t wreq;
    uv_buf_t wbufs[GW_H1CONN_IOV_MAX];
    size_t nwbufs;
    char *wbuf_alloc;  /* the write's head and framing (or TLS records) */
    proto_buf_t wbody; /* the write's body segments */
    size_t wbuf_body_bytes;
    size_t body_written; /* request body bytes of this request written so far */
    gw_task_t flush_task;
    proto_h1_response_t resp;
    const uint8_t *head; /* the request head, owned by the user */
    size_t head_len;
    uint64_t resp_deadline_ms; /* once the request is sent: the whole head by then */
    uint64_t idle_timeout_ms;  /* lowered by the server's Keep-Alive: timeout */
    uint32_t nrequests;        /* completed: > 0 means reused */
    int nhandles_open;
    gw_tls_conn_t tls;
    char sni[256];
    unsigned is_tls : 1;
    unsigned is_chunked : 1;
    unsigned is_head_written : 1;
    unsigned is_body_end : 1; /* the source gave its last byte */
    unsigned is_req_sent : 1; /* head, body and terminator all written */
    unsigned is_writing : 1;
    unsigned is_reading : 1;
    unsigned is_read_paused : 1;
    unsigned is_eof_pending : 1; /* ended while a write was in flight */
    unsigned is_any_written : 1; /* a write of this request completed */
    unsigned is_tls_ready : 1;
};

/* HTTPS to a server of the backend, for every connection made to it (the
 * pooled ones here and tunnels): TLS for tls_sni, else server_name,
 * verified when asked, with the ClientHello on its way over stream.
 * Returns GW_OK; GW_E_NOMEM when it could not start (tls is left empty);
 * GW_E_TLS (*why says why; tls is to be freed). */
gw_err_t gw_h1conn_start_tls(const gw_h1conn_cfg_t *cfg, const char *server_name,
                             gw_tls_conn_t *tls, uv_stream_t *stream, const char **why);

/* Starts a connection to addr. name is the server's host, for TLS SNI and
 * verification. The owner hears on_connected. Returns NULL when out of
 * memory or when the socket cannot even be made (*err says which: a local
 * error such as EMFILE is the gateway's, not the server's). */
gw_h1conn_t *gw_h1conn_connect(gw_ctx_t *w, const struct sockaddr *addr, const char *name,
                               const gw_h1conn_cfg_t *cfg, const gw_h1conn_owner_ops_t *ops,
                               void *owner, gw_err_t *err, char *why, size_t why_len);

/* Starts a request on a READY connection: head (kept by the caller until
 * on_done or on_error), the body from ops->take_body, framed chunked when
 * is_chunked (then the last chunk carries ops->take_trailers' fields).
 * is_head_method: the response has no body. */
void gw_h1conn_request(gw_h1conn_t *c, const gw_h1conn_req_ops_t *ops, void *ud,
                       const uint8_t *head, size_t head_len, int is_chunked, int is_head_method);

/* The body source has more (or its end): write it at the end of the turn. */
void gw_h1conn_body_ready(gw_h1conn_t *c);

/* Stops reading the response (the user's buffer is full); each call
 * restarts the write_stall_ms clock. */
void gw_h1conn_pause_read(gw_h1conn_t *c);
void gw_h1conn_resume_read(gw_h1conn_t *c);

/* Makes a READY connection wait for its next request; bytes, EOF or the
 * timeout end it (owner's on_idle_end). */
void gw_h1conn_set_idle(gw_h1conn_t *c, uint64_t timeout_ms);

/* 1 when the connection carried a request before. */
static inline int gw_h1conn_is_reused(const gw_h1conn_t *c)
{
    return c->nrequests > 0;
}

/* The idle timeout the server allows (its Keep-Alive: timeout, with a
 * margin) if lower than dflt. */
uint64_t gw_h1conn_idle_timeout(const gw_h1conn_t *c, uint64_t dflt);

/* Ends the request in progress with err (its user hears on_error). */
void gw_h1conn_abort(gw_h1conn_t *c, gw_err_t err, const char *why);

/* Closes now; no callback runs after this. Memory is freed once the loop
 * has closed the handles. Idempotent. */
void gw_h1conn_close(gw_h1conn_t *c);

#endif
