/*
 * TLS contexts: one gw_tls_ctx per listener holds its certificates (one
 * SSL_CTX per certificate, picked by SNI), ALPN, session ticket keys and
 * client verification; a reload builds a new gw_tls_ctx and swaps it in,
 * while open connections keep the one they started with (reference
 * counted). Backends with tls = on get a client context. The per-connection
 * engine is gateway/tls/tls_conn.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <openssl/ssl.h>
#include <uv.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct gw_tls_ctx gw_tls_ctx_t;

/* Draws the process-wide secret that generated session ticket keys derive
 * from; once, before any worker starts. Returns 0 or -1. */
int gw_tls_global_init(void);

/* Loads the listener's certificates, keys and TLS options. Returns NULL
 * and a one-line reason in err when a file cannot be read or a key does not
 * match its certificate. */
gw_tls_ctx_t *gw_tls_ctx_new(const cfg_listener_t *l, char *err, size_t errlen);

/* A client context for HTTPS to a backend: TLS 1.2+, ALPN http/1.1, and
 * (when tls_verify) the server certificate verified against tls_ca_file or
 * the system store. Returns NULL and a reason in err on failure. */
gw_tls_ctx_t *gw_tls_client_ctx_new(const cfg_backend_t *b, char *err, size_t errlen);

void gw_tls_ctx_ref(gw_tls_ctx_t *ctx);
void gw_tls_ctx_unref(gw_tls_ctx_t *ctx);

/* Subject of the certificate served for SNI name (NULL: the default), for
 * logs and tests. Returns a static-lifetime-while-ctx-lives string. */
const char *gw_tls_ctx_subject(const gw_tls_ctx_t *ctx, const char *name);

/* A certificate's subject in RFC 2253 form, malloc'd (NULL when out of
 * memory). */
char *gw_tls_subject(X509 *x);

/* Certificate i of ctx (0 <= i < its count): its subject (lives as long
 * as ctx) and notAfter in Unix seconds. Returns 0, or -1 past the last. */
int gw_tls_ctx_cert(const gw_tls_ctx_t *ctx, size_t i, const char **subject, int64_t *not_after);

/* The SSL_CTX new connections start with (SNI may switch it). */
SSL_CTX *gw_tls_ctx_default(const gw_tls_ctx_t *ctx);

#endif
