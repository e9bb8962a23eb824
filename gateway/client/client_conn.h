/*
 * A client connection's transport: the TCP handle, the peer address, an
 * optional PROXY protocol header, optional TLS, and the write side (output
 * gathered once per loop turn, one write in flight). The protocol on top
 * (HTTP/2 or HTTP/1.1) plugs in through gw_client_proto_t and sees only
 * plaintext.
 */
#ifndef GW_CLIENT_CONN_H
#define GW_CLIENT_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/queue.h"
#include "gateway/tls/tls_conn.h"
#include "proto/proto.h"

#include "gateway/core/ctx.h"

typedef struct gw_client_conn gw_client_conn_t;

/* What a connection sees of the listener that accepted it. The listener
 * and every connection it accepted each hold a reference: a reload may
 * close the listener while its connections go on, and they keep reading
 * cfg (so the origin holds the snapshot cfg points into) and counting
 * failures here until the last of them has closed. Only its worker's
 * thread touches it. */
typedef struct gw_client_origin {
    const cfg_listener_t *cfg; /* a listener of snapshot */
    const cfg_t *snapshot;     /* one reference (gateway/core/cfg_ref.h) */
    gw_tls_ctx_t *tls;         /* NULL for cleartext; swapped on reload */
    unsigned refs;
    uint64_t nhandshake_failures; /* failed or timed-out TLS handshakes */
    uint64_t nproxy_failures;     /* invalid PROXY protocol headers */
    /* The protocol before any byte is read, and the one ALPN chose. */
    void (*select_first)(gw_client_conn_t *c);
    int (*select_application)(gw_client_conn_t *c, const char *alpn);
} gw_client_origin_t;

typedef struct gw_client_proto {
    const char *name;
    /* Plaintext bytes from the client. Returns 0, or negative to close the
     * connection. */
    int (*on_read)(gw_client_conn_t *c, const uint8_t *data, size_t len);
    /* Called once per loop turn while the connection is dirty and no write is
     * in flight: append output with gw_client_conn_out(). Returns 1 while the
     * connection should stay open, 0 when it is done (closed once the output
     * is written), negative on error (closed at once). */
    int (*on_flush)(gw_client_conn_t *c);
    /* A graceful drain started. NULL: the connection closes at once. */
    void (*on_drain)(gw_client_conn_t *c);
    /* The connection is being freed: release every exchange and the state. */
    void (*on_destroy)(gw_client_conn_t *c);
    /* 1 when no request is in progress (the client idle timeout runs).
     * NULL: always idle (nothing was asked yet). */
    int (*is_idle)(gw_client_conn_t *c);
    /* Optional. The client closed its sending side (EOF); reading has
     * stopped. Returns 0 to keep the connection for the answers still owed
     * (the protocol ends it later through on_flush), negative to close now.
     * NULL: close now. */
    int (*on_eof)(gw_client_conn_t *c);
    /* Optional. The worker's periodic sweep found the connection with
     * nothing in progress and nothing to write: give back what an idle
     * connection does not need. Done here rather than each time a request
     * ends, where it would cost a client sending one request at a time. */
    void (*on_trim)(gw_client_conn_t *c);
} gw_client_proto_t;

struct gw_client_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* TLS handshake timeout, then the client idle timeout */
    gw_ctx_t *w;
    gw_client_origin_t *origin;
    const gw_client_proto_t *proto;
    void *proto_state;
    char peer_addr[64]; /* numeric, without port; from PROXY protocol when used */
    int peer_port;
    gw_task_t flush_task;
    proto_queue_t all_node;
    uint8_t *out; /* bytes for the socket; the write in flight owns them */
    size_t out_len, out_cap;
    uint8_t *plain; /* TLS: plaintext gathered this turn, encrypted at flush */
    size_t plain_len, plain_cap;
    uint8_t *proxy_buf; /* PROXY protocol header being read */
    size_t proxy_len;
    gw_tls_conn_t tls;
    uv_write_t wreq;
    int nhandles_open;
    int metrics_protocol; /* the open-connections gauge it counts in */
    unsigned is_tls : 1;
    unsigned is_proxy_pending : 1;
    unsigned is_writing : 1;
    unsigned is_closing : 1;
    unsigned is_done : 1;         /* protocol finished: close when the output is written */
    unsigned is_idle_timing : 1;  /* the idle timer runs */
    unsigned is_idle_expired : 1; /* told to go away for idling */
    unsigned is_read_paused : 1;  /* the protocol stopped reading (gw_client_conn_pause_read) */
    unsigned is_eof : 1;          /* the client sent EOF; nothing more will be read */
    unsigned is_lingering : 1;    /* done: FIN sent, input dropped until the client's FIN */
    unsigned is_close_notify_sent : 1; /* TLS: the last output is the close_notify */
    unsigned is_write_shut_wanted : 1; /* gw_client_conn_shutdown_write: FIN once written */
    unsigned is_write_shut : 1;        /* FIN sent; reading goes on */
    uint8_t sniff[24];                 /* first bytes, kept until the protocol is known */
    size_t sniff_len;
};

/* A new origin for a listener of snapshot (which it holds a reference
 * on), with one reference: the caller's. NULL when out of memory. */
gw_client_origin_t *gw_client_origin_new(const cfg_t *snapshot, const cfg_listener_t *cfg);

/* The listener follows cfg, one of snapshot's listeners (a reload): the
 * reference moves from the old snapshot to snapshot. */
void gw_client_origin_set_cfg(gw_client_origin_t *o, const cfg_t *snapshot,
                              const cfg_listener_t *cfg);

/* Drops one reference; the last frees the origin, its TLS context and its
 * reference on the snapshot. NULL is ignored. */
void gw_client_origin_release(gw_client_origin_t *o);

/* Takes a socket a listener accepted (the connection owns it from here on,
 * even on failure) and starts reading. The connection holds a reference on
 * origin until it is freed. Returns 0 or a negative uv error. */
int gw_client_conn_start(gw_ctx_t *w, gw_client_origin_t *origin, int fd);

/* Appends output for the next write (encrypted first on TLS). Returns 0 or
 * -ENOMEM. */
int gw_client_conn_out(gw_client_conn_t *c, const void *data, size_t len);

/* Takes len bytes at the end of the output for the caller to fill at once
 * (no copy through a buffer of its own). Returns where they go, or NULL
 * when out of memory. */
uint8_t *gw_client_conn_out_space(gw_client_conn_t *c, size_t len);

/* Ends what goes to the client (TLS: close_notify, then FIN) once the
 * output queued so far is written, while reading goes on: a tunnel whose
 * backend ended its side. The connection still ends when the protocol is
 * done. Idempotent. */
void gw_client_conn_shutdown_write(gw_client_conn_t *c);

/* The worker's periodic sweep: a connection with no request in progress
 * and no output pending gives back its idle buffers (TLS input, and what
 * the protocol's on_trim frees). */
void gw_client_conn_trim(gw_client_conn_t *c);

/* Asks for a flush at the end of this loop turn. */
void gw_client_conn_mark_dirty(gw_client_conn_t *c);

/* Stops reading from the client until gw_client_conn_resume_read(): the
 * protocol has as much input buffered as it may hold. Idempotent. */
void gw_client_conn_pause_read(gw_client_conn_t *c);

/* Reads again after gw_client_conn_pause_read(). Idempotent; does nothing
 * after EOF or once closing. Returns 0 or a negative uv error (the caller
 * then ends the connection from its on_flush). */
int gw_client_conn_resume_read(gw_client_conn_t *c);

/* The protocol was chosen (or changed, h2c): moves the connection to its
 * protocol's open-connections gauge. */
void gw_client_conn_note_protocol(gw_client_conn_t *c);

/* Closes now; pending output is dropped. Safe to call twice. Never call it
 * from inside the protocol's own callbacks: return an error instead. */
void gw_client_conn_close(gw_client_conn_t *c);

/* The address the client reached (the listener's, or for a wildcard
 * listener the local address of this connection) as "IP:PORT" or
 * "[IPv6]:PORT" into buf. Returns its length, or a negative error. */
int gw_client_conn_local_authority(gw_client_conn_t *c, char *buf, size_t cap);

/* mTLS: when the listener passes the client certificate on
 * (client_cert_header), fills field with that name and the verified
 * subject (empty without a certificate: the field is then only stripped
 * from the request), using buf for the value, and returns 1; else 0. */
int gw_client_conn_cert_field(const gw_client_conn_t *c, proto_header_t *field, char *buf,
                              size_t cap);

#endif
