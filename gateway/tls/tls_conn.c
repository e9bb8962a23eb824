/*
 * The per-connection TLS engine: one SSL object between two memory BIOs.
 * libuv owns the socket; this only turns ciphertext into plaintext and back.
 */
#include "gateway/tls/tls_conn.h"

#include <arpa/inet.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <stdio.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* Memory BIOs keep the largest size they ever held: a handshake flight
 * (certificate chain) or a burst of records. Beyond this, an empty one is
 * replaced when the connection goes quiet. */
#define BIO_KEEP_CAP 1024

static BIO *new_mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    /* An empty BIO means "wait for the socket", not end of stream. */
    if (b != NULL)
        BIO_set_mem_eof_return(b, -1);
    return b;
}

static int is_big_and_empty(BIO *b)
{
    BUF_MEM *bm = NULL;
    BIO_get_mem_ptr(b, &bm);
    return bm != NULL && BIO_ctrl_pending(b) == 0 && bm->max > BIO_KEEP_CAP;
}

void gw_tls_conn_release_buffers(gw_tls_conn_t *t)
{
    if (t->ssl == NULL || !t->is_handshake_done)
        return;
    if (is_big_and_empty(t->net_in)) {
        BIO *b = new_mem_bio();
        if (b != NULL) {
            SSL_set0_rbio(t->ssl, b); /* frees the old one */
            t->net_in = b;
        }
    }
    if (is_big_and_empty(t->net_out)) {
        BIO *b = new_mem_bio();
        if (b != NULL) {
            SSL_set0_wbio(t->ssl, b);
            t->net_out = b;
        }
    }
}

int gw_tls_conn_init(gw_tls_conn_t *t, gw_tls_ctx_t *ctx)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(gw_tls_ctx_default(ctx));
    t->net_in = new_mem_bio();
    t->net_out = new_mem_bio();
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
    gw_tls_ctx_unref(t->ctx);
    memset(t, 0, sizeof(*t));
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
    ERR_clear_error();
    return -1;
}

int gw_tls_conn_write(gw_tls_conn_t *t, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int n = SSL_write(t->ssl, data, (int)len);
        if (n <= 0) {
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
    return BIO_ctrl_pending(t->net_out);
}

size_t gw_tls_conn_take(gw_tls_conn_t *t, uint8_t *dst, size_t cap)
{
    int n = BIO_read(t->net_out, dst, (int)cap);
    return n > 0 ? (size_t)n : 0;
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
