/*
 * One backend connection for one upgraded request (a WebSocket): opened
 * directly, outside the keep-alive pool, and never reused. It connects,
 * writes the request head, and reads the answer: a 101 opens the tunnel
 * (raw bytes both ways from then on, each direction closable on its own);
 * any other answer is parsed as an ordinary HTTP/1.1 response
 * (proto/h1_response) and relayed, and the connection is done. Like
 * gateway/backend/h1conn it knows nothing of exchanges or clients: its user
 * hears everything through gw_tunnel_ops_t and owns it (closes it).
 *
 * Memory is bounded by its user: bytes for the backend are buffered until
 * written (the user stops feeding past its own limit, see
 * gw_tunnel_pending), and reading stops while the user says it is full.
 */
#ifndef GW_TUNNEL_H
#define GW_TUNNEL_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "gateway/backend/h1conn.h"
#include "gateway/core/ctx.h"
#include "gateway/core/err.h"
#include "proto/buf.h"
#include "proto/h1_response.h"

typedef struct gw_tunnel gw_tunnel_t;

/* What the user hears, with its ud. No callback runs after gw_tunnel_close(). */
typedef struct gw_tunnel_ops {
    /* The backend answered: 101 (the tunnel is open; fields as the backend
     * sent them, names lowercased) or a final status (fields filtered as
     * for any response, see proto/h1_response). Fields are valid during the
     * call only. Returns 0, or negative to fail (on_error follows). */
    int (*on_head)(void *ud, int status, const proto_header_t *f, size_t n);
    /* Response body bytes, or after a 101 the backend's tunnel bytes.
     * Returns 0, or negative to fail. */
    int (*on_data)(void *ud, const uint8_t *data, size_t len);
    /* A non-101 response is complete, or after a 101 the backend closed its
     * sending side. */
    void (*on_end)(void *ud);
    /* n bytes given to gw_tunnel_write() reached the socket. */
    void (*on_written)(void *ud, size_t n);
    /* The tunnel failed (connect, timeout, reset, a bad answer); nothing
     * more is heard. The user closes it. */
    void (*on_error)(void *ud, gw_err_t err, const char *why);
} gw_tunnel_ops_t;

enum gw_tunnel_state {
    GW_TUNNEL_CONNECTING,
    GW_TUNNEL_HANDSHAKE, /* head written (or being written), waiting for the answer */
    GW_TUNNEL_RESPONSE,  /* a non-101 answer is being relayed */
    GW_TUNNEL_OPEN,      /* after the 101: raw bytes */
    GW_TUNNEL_DONE,      /* response complete, or failed */
    GW_TUNNEL_CLOSED,
};

const char *gw_tunnel_state_str(int state);

struct gw_tunnel {
    gw_ctx_t *w;
    const gw_h1conn_cfg_t *cfg; /* the backend's timeouts and head limit */
    uint64_t idle_timeout_ms;   /* an open tunnel with no byte either way this long ends */
    const gw_tunnel_ops_t *ops;
    void *ud;
    enum gw_tunnel_state state;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t wreq;
    uv_shutdown_t shutdown_req;
    int nhandles_open;
    proto_buf_t out;  /* the request head, then the user's bytes, not yet written */
    size_t head_left; /* bytes at the front of out that are the request head */
    size_t writing;   /* bytes of out in the write in flight */
    char *rhead;      /* the answer's head while it arrives */
    size_t rhead_len;
    gw_tls_conn_t tls; /* HTTPS backends (cfg->tls) */
    char *sealed;      /* the write in flight's TLS records */
    char sni[256];
    proto_h1_response_t resp; /* a non-101 answer */
    unsigned is_writing : 1;
    unsigned is_reading : 1;
    unsigned is_read_paused : 1;
    unsigned is_shutdown_wanted : 1; /* the user's side ended: shut down after out */
    unsigned is_shutdown_sent : 1;
    unsigned is_read_eof : 1;
    unsigned has_resp : 1; /* resp is initialized */
    unsigned is_tls : 1;
    unsigned is_tls_ready : 1;
};

/* Connects to addr and sends head (copied); over TLS when cfg->tls is set
 * (name is the server's host, for SNI and verification, as in h1conn). ops and ud get the events.
 * Returns NULL when out of memory or when no socket can be made (*err and
 * why say which). Counts itself in w->ntunnels until closed. */
gw_tunnel_t *gw_tunnel_connect(gw_ctx_t *w, const struct sockaddr *addr, const char *name,
                               const gw_h1conn_cfg_t *cfg, uint64_t idle_timeout_ms,
                               const char *head, size_t head_len, const gw_tunnel_ops_t *ops,
                               void *ud, gw_err_t *err, char *why, size_t why_len);

/* Bytes for the backend. Returns 1 when taken (on_written follows once
 * written; before the 101 they wait), 0 when the tunnel no longer takes
 * any (a non-101 answer, an error, after gw_tunnel_shutdown), or
 * PROTO_E_NOMEM. */
int gw_tunnel_write(gw_tunnel_t *t, const uint8_t *data, size_t len);

/* 1 once the backend's 101 opened the tunnel, until it is closed. */
static inline int gw_tunnel_is_open(const gw_tunnel_t *t)
{
    return t->state == GW_TUNNEL_OPEN;
}

/* Bytes taken but not written yet. */
static inline size_t gw_tunnel_pending(const gw_tunnel_t *t)
{
    return proto_buf_len(&t->out);
}

/* The user's side ended: once the pending bytes are out, the backend's
 * receiving side is shut down (after the 101 only). */
void gw_tunnel_shutdown(gw_tunnel_t *t);

/* Stops or restarts reading from the backend (the user's buffer is full,
 * or has drained). */
void gw_tunnel_pause_read(gw_tunnel_t *t);
void gw_tunnel_resume_read(gw_tunnel_t *t);

/* Closes now; no callback runs after this. Memory is freed once the loop
 * has closed the handles. Idempotent; NULL is fine. */
void gw_tunnel_close(gw_tunnel_t *t);

#endif
