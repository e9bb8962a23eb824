/*
 * The per-connection TLS engine: OpenSSL driven through memory BIOs, so that
 * libuv owns the socket and OpenSSL only transforms bytes. Client and
 * backend connections use it alike.
 */
#ifndef GW_TLS_CONN_H
#define GW_TLS_CONN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/tls/tls.h"

typedef struct gw_tls_conn {
    SSL *ssl;
    BIO *net_in;  /* ciphertext from the socket, read by OpenSSL */
    BIO *net_out; /* OpenSSL's records land in out below, nothing kept in it */
    /* Ciphertext for the socket: records appended by net_out with amortized
     * growth and no clearing; taken whole by the transport (no copy). */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    gw_tls_ctx_t *ctx;
    int is_handshake_done;
    int is_fatal; /* a fatal error: OpenSSL forbids a close_notify after one */
} gw_tls_conn_t;

/* Prepares t for a new server-side connection. Returns 0 or -1. */
int gw_tls_conn_init(gw_tls_conn_t *t, gw_tls_ctx_t *ctx);

/* Prepares t for a client connection to a backend. sni (may be NULL or an
 * IP address: then not sent) names the server; when verify_name is not
 * NULL the certificate must be valid for it. Returns 0 or -1. */
int gw_tls_conn_init_client(gw_tls_conn_t *t, gw_tls_ctx_t *ctx, const char *sni,
                            const char *verify_name);

void gw_tls_conn_free(gw_tls_conn_t *t);

/* 1 when the completed handshake resumed a session (a ticket). */
int gw_tls_conn_is_resumed(const gw_tls_conn_t *t);

/* Hands ciphertext from the socket to OpenSSL. Returns 0 or -1. */
int gw_tls_conn_put_cipher(gw_tls_conn_t *t, const uint8_t *data, size_t len);

/* Advances the handshake. Returns 1 when it completed, 0 when it needs more
 * bytes from the peer, -1 on failure (reason in *why, static). */
int gw_tls_conn_handshake(gw_tls_conn_t *t, const char **why);

/* The handshake step of a connection whose records go straight to stream
 * (gw_tls_conn_send_pending): advances it and sends what it produced (an
 * alert too, on failure). Returns as gw_tls_conn_handshake. */
int gw_tls_conn_handshake_step(gw_tls_conn_t *t, uv_stream_t *stream, const char **why);

/* Decrypts up to cap bytes into buf. Returns the count (> 0), 0 when no
 * more plaintext is available now, or -1 when the connection is over
 * (close_notify or a fatal error). */
int gw_tls_conn_read(gw_tls_conn_t *t, uint8_t *buf, size_t cap);

/* Queues a close_notify alert (pending output, like a write): the peer
 * learns the end is deliberate, so a body delimited by the close is known
 * complete. Returns 0, or -1 when none can be sent (no handshake, or after
 * a fatal error). */
int gw_tls_conn_close_notify(gw_tls_conn_t *t);

/* Encrypts len bytes of plaintext. Returns 0 or -1. */
int gw_tls_conn_write(gw_tls_conn_t *t, const uint8_t *data, size_t len);

/* Takes every pending ciphertext byte by handing over the buffer that
 * holds it: *buf (malloc'd, the caller frees it) and *len. Returns 0, or
 * -1 when nothing is pending. */
int gw_tls_conn_take_buffer(gw_tls_conn_t *t, uint8_t **buf, size_t *len, size_t *cap);

/* Ciphertext waiting to go to the socket, and taking it. */
size_t gw_tls_conn_pending(const gw_tls_conn_t *t);
size_t gw_tls_conn_take(gw_tls_conn_t *t, uint8_t *dst, size_t cap);

/* Writes the ciphertext waiting in t to stream, in a write request that
 * frees itself (handshake messages, or records sealed outside a gathered
 * write). libuv keeps writes on a stream in order. Returns 0 or a uv error. */
int gw_tls_conn_send_pending(gw_tls_conn_t *t, uv_stream_t *stream);

/* The protocol version ("TLSv1.3") and the SNI name the client sent (NULL:
 * none); valid while t lives. */
const char *gw_tls_conn_version(const gw_tls_conn_t *t);
const char *gw_tls_conn_sni(const gw_tls_conn_t *t);

/* Gives back the input memory BIO's grown buffer when it is drained
 * (after the handshake flight, after a burst); with is_quiet (nothing in
 * progress on the connection) a small one too: an idle connection keeps
 * only what OpenSSL itself needs. */
void gw_tls_conn_release_buffers(gw_tls_conn_t *t, int is_quiet);

/* Application protocol agreed by ALPN: "h2", "http/1.1" or "" (none). */
void gw_tls_conn_alpn(const gw_tls_conn_t *t, char *out, size_t cap);

/* The verified client certificate's subject (RFC 2253), or "" when the
 * client sent none. */
void gw_tls_conn_peer_subject(const gw_tls_conn_t *t, char *out, size_t cap);

#endif
