/*
 * The per-connection TLS engine: one SSL object between two memory BIOs.
 * libuv owns the socket; this only turns ciphertext into plaintext and back.
 */
#include "gateway/tls/tls_conn.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <stdio.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* Memory BIOs keep the largest size they ever held: a handshake flight
 * (certificate chain) or a burst of records. Beyond this, an empty one is
 * replaced after each write; any size once the connection is quiet (even
 * a ClientHello's 700 bytes are a tenth of what an idle client costs). */
#define BIO_KEEP_CAP 1024

static BIO *new_mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    /* An empty BIO means "wait for the socket", not end of stream. */
    if (b != NULL)
        BIO_set_mem_eof_return(b, -1);
    return b;
}

static int is_empty_above(BIO *b, size_t keep)
{
    BUF_MEM *bm = NULL;
    BIO_get_mem_ptr(b, &bm);
    return bm != NULL && BIO_ctrl_pending(b) == 0 && bm->max > keep;
}

void gw_tls_conn_release_buffers(gw_tls_conn_t *t, int is_quiet)
{
    if (t->ssl == NULL || !t->is_handshake_done)
        return;
    if (is_empty_above(t->net_in, is_quiet ? 0 : BIO_KEEP_CAP)) {
        BIO *b = new_mem_bio();
        if (b != NULL) {
            SSL_set0_rbio(t->ssl, b); /* frees the old one */
            t->net_in = b;
        }
    }
}

/* ---- the output BIO: records straight into t->out ----
 *
 * A memory BIO grows with BUF_MEM_grow_clean, which reallocates, copies and
 * zeroes the old block at every growth, and then BIO_read copies the
 * records out again: for bulk responses that was a third of the proxy's
 * instructions. This BIO appends to a buffer that doubles and is handed to
 * the socket write as it is. */

static int out_write(BIO *b, const char *data, size_t len, size_t *written)
{
    gw_tls_conn_t *t = BIO_get_data(b);
    if (t->out_len + len > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(t->out, cap);
        if (p == NULL)
            return 0;
        t->out = p;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, data, len);
    t->out_len += len;
    *written = len;
    return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    gw_tls_conn_t *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return t != NULL ? (long)(t->out_len - t->out_off) : 0;
    default:
        return 0;
    }
}

static BIO_METHOD *out_method;

static void make_out_method(void)
{
    out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "h2gw out");
    if (out_method != NULL) {
        BIO_meth_set_write_ex(out_method, out_write);
        BIO_meth_set_ctrl(out_method, out_ctrl);
    }
}

static BIO *new_out_bio(gw_tls_conn_t *t)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_out_method);
    if (out_method == NULL)
        return NULL;
    BIO *b = BIO_new(out_method);
    if (b != NULL) {
        BIO_set_data(b, t);
        BIO_set_init(b, 1);
    }
    return b;
}

int gw_tls_conn_init(gw_tls_conn_t *t, gw_tls_ctx_t *ctx)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(gw_tls_ctx_default(ctx));
    t->net_in = new_mem_bio();
    t->net_out = new_out_bio(t);
    if (t->ssl == NULL || t->net_in == NULL || t->net_out == NULL) {
        SSL_free(t->ssl);
        BIO_free(t->net_in);
        BIO_free(t->net_out);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    SSL_set_bio(t->ssl, t->net_in, t->net_out);
    SSL_set_accept_state(t->ssl); /* gw_tls_conn_init_client switches to connect */
    t->ctx = ctx;
    gw_tls_ctx_ref(ctx);
    return 0;
}

void gw_tls_conn_free(gw_tls_conn_t *t)
{
    if (t->ssl != NULL)
        SSL_free(t->ssl); /* frees both BIOs */
    free(t->out);
    gw_tls_ctx_unref(t->ctx);
    memset(t, 0, sizeof(*t));
}

int gw_tls_conn_is_resumed(const gw_tls_conn_t *t)
{
    return t->ssl != NULL && SSL_session_reused(t->ssl);
}

int gw_tls_conn_put_cipher(gw_tls_conn_t *t, const uint8_t *data, size_t len)
{
    return BIO_write(t->net_in, data, (int)len) == (int)len ? 0 : -1;
}

int gw_tls_conn_handshake(gw_tls_conn_t *t, const char **why)
{
    int rv = SSL_do_handshake(t->ssl);
    if (rv == 1) {
        t->is_handshake_done = 1;
        return 1;
    }
    int e = SSL_get_error(t->ssl, rv);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    unsigned long code = ERR_peek_error();
    *why = code != 0 ? ERR_reason_error_string(code) : "handshake failed";
    if (*why == NULL)
        *why = "handshake failed";
    ERR_clear_error();
    return -1;
}

int gw_tls_conn_read(gw_tls_conn_t *t, uint8_t *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e != SSL_ERROR_ZERO_RETURN) /* not the peer's close_notify */
        t->is_fatal = 1;
    ERR_clear_error();
    return -1;
}

int gw_tls_conn_close_notify(gw_tls_conn_t *t)
{
    if (t->ssl == NULL || !t->is_handshake_done || t->is_fatal)
        return -1;
    /* 0: ours is out, the peer's not yet seen; 1: both done. The peer's is
     * not waited for (RFC 8446 6.1: a close_notify ends one direction). */
    if (SSL_shutdown(t->ssl) < 0) {
        t->is_fatal = 1;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Record overhead beyond the plaintext: header, tag and content type
 * (TLS 1.3), or explicit nonce and tag (TLS 1.2). */
#define RECORD_OVERHEAD 32
#define RECORD_MAX 16384

int gw_tls_conn_write(gw_tls_conn_t *t, const uint8_t *data, size_t len)
{
    /* The records land in t->out: size it once for all of them, rather
     * than doubling (and copying) as they come. */
    size_t need = t->out_len + len + (len / RECORD_MAX + 1) * RECORD_OVERHEAD;
    if (need > t->out_cap) {
        uint8_t *p = realloc(t->out, need);
        if (p != NULL) {
            t->out = p;
            t->out_cap = need;
        }
    }
    while (len > 0) {
        int n = SSL_write(t->ssl, data, (int)len);
        if (n <= 0) {
            t->is_fatal = 1;
            ERR_clear_error();
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

size_t gw_tls_conn_pending(const gw_tls_conn_t *t)
{
    return t->out_len - t->out_off;
}

size_t gw_tls_conn_take(gw_tls_conn_t *t, uint8_t *dst, size_t cap)
{
    size_t n = t->out_len - t->out_off;
    if (n > cap)
        n = cap;
    memcpy(dst, t->out + t->out_off, n);
    t->out_off += n;
    if (t->out_off == t->out_len) {
        /* Drained: an idle connection keeps no ciphertext buffer. */
        free(t->out);
        t->out = NULL;
        t->out_len = t->out_off = t->out_cap = 0;
    }
    return n;
}

int gw_tls_conn_take_buffer(gw_tls_conn_t *t, uint8_t **buf, size_t *len, size_t *cap)
{
    if (t->out_len == t->out_off)
        return -1;
    if (t->out_off > 0)
        memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
    *buf = t->out;
    *len = t->out_len - t->out_off;
    *cap = t->out_cap;
    t->out = NULL;
    t->out_len = t->out_off = t->out_cap = 0;
    return 0;
}

typedef struct pending_write {
    uv_write_t req;
    uint8_t data[];
} pending_write_t;

static void on_pending_written(uv_write_t *req, int status)
{
    (void)status; /* a failure shows up on the read side as well */
    free(req->data);
}

int gw_tls_conn_send_pending(gw_tls_conn_t *t, uv_stream_t *stream)
{
    size_t n = gw_tls_conn_pending(t);
    if (n == 0)
        return 0;
    pending_write_t *w = malloc(sizeof(*w) + n);
    if (w == NULL)
        return UV_ENOMEM;
    w->req.data = w;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)gw_tls_conn_take(t, w->data, n));
    int rv = uv_write(&w->req, stream, &b, 1, on_pending_written);
    if (rv != 0)
        free(w);
    return rv;
}

int gw_tls_conn_handshake_step(gw_tls_conn_t *t, uv_stream_t *stream, const char **why)
{
    int rv = gw_tls_conn_handshake(t, why);
    if (gw_tls_conn_send_pending(t, stream) != 0 && rv >= 0) {
        *why = "write failed";
        return -1;
    }
    return rv;
}

const char *gw_tls_conn_version(const gw_tls_conn_t *t)
{
    return t->ssl != NULL ? SSL_get_version(t->ssl) : NULL;
}

const char *gw_tls_conn_sni(const gw_tls_conn_t *t)
{
    return t->ssl != NULL ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

void gw_tls_conn_alpn(const gw_tls_conn_t *t, char *out, size_t cap)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    if (p == NULL || len >= cap)
        len = 0;
    if (len > 0)
        memcpy(out, p, len);
    out[len] = '\0';
}

void gw_tls_conn_peer_subject(const gw_tls_conn_t *t, char *out, size_t cap)
{
    out[0] = '\0';
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (x == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return;
    char *s = gw_tls_subject(x);
    if (s != NULL)
        snprintf(out, cap, "%s", s);
    free(s);
}

int gw_tls_conn_init_client(gw_tls_conn_t *t, gw_tls_ctx_t *ctx, const char *sni,
                            const char *verify_name)
{
    if (gw_tls_conn_init(t, ctx) != 0)
        return -1;
    SSL_set_connect_state(t->ssl);
    struct in6_addr ip;
    int is_ip =
        sni != NULL && (inet_pton(AF_INET, sni, &ip) == 1 || inet_pton(AF_INET6, sni, &ip) == 1);
    if (sni != NULL && !is_ip)
        SSL_set_tlsext_host_name(t->ssl, sni);
    if (verify_name != NULL) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), verify_name)
                       : SSL_set1_host(t->ssl, verify_name);
        if (ok != 1) {
            gw_tls_conn_free(t);
            return -1;
        }
    }
    return 0;
}
