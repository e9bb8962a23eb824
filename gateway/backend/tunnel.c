#include "gateway/backend/tunnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/upgrade.h"

/* Fields of a 101 head we read; more is a malformed answer to us. */
#define MAX_101_FIELDS 64
/* Slices gathered per write. */
#define MAX_WRITE_SLICES 16

static void on_connect(uv_connect_t *req, int status);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_shutdown(uv_shutdown_t *req, int status);
static void on_timer(uv_timer_t *timer);
static void on_close(uv_handle_t *handle);

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int resp_on_body(void *ud, const uint8_t *data, size_t len);
static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n);

static const proto_h1_response_cbs_t resp_cbs = {
    .on_head = resp_on_head,
    .on_body = resp_on_body,
    .on_trailers = resp_on_trailers,
};

const char *gw_tunnel_state_str(int state)
{
    static const char *const names[] = {"connecting", "handshake", "response",
                                        "open",       "done",      "closed"};
    return state >= 0 && state <= GW_TUNNEL_CLOSED ? names[state] : "?";
}

/* 1 while the user may still hear from t (it has not failed, ended or
 * been closed): checked after every callback, which may close t. */
static int is_live(const gw_tunnel_t *t)
{
    return t->state != GW_TUNNEL_DONE && t->state != GW_TUNNEL_CLOSED;
}

/* One clock, its meaning read off the state: the server that does not
 * connect, answer or go on answering, or a tunnel nobody uses. */
static void arm_timer(gw_tunnel_t *t)
{
    uint64_t ms;
    switch (t->state) {
    case GW_TUNNEL_CONNECTING:
        ms = t->cfg->connect_timeout_ms;
        break;
    case GW_TUNNEL_HANDSHAKE:
        return; /* a deadline set once the head is sent: see on_write */
    case GW_TUNNEL_RESPONSE:
        ms = t->cfg->io_timeout_ms;
        break;
    case GW_TUNNEL_OPEN:
        ms = t->idle_timeout_ms;
        break;
    default:
        uv_timer_stop(&t->timer);
        return;
    }
    uv_timer_start(&t->timer, on_timer, ms > 0 ? ms : 1, 0);
}

static void stop_reading(gw_tunnel_t *t)
{
    if (t->is_reading)
        uv_read_stop((uv_stream_t *)&t->tcp);
    t->is_reading = 0;
}

static int start_reading(gw_tunnel_t *t)
{
    if (t->is_reading || t->is_read_paused || t->is_read_eof)
        return 0;
    int rv = uv_read_start((uv_stream_t *)&t->tcp, gw_ctx_alloc_cb, on_read);
    if (rv == 0)
        t->is_reading = 1;
    return rv;
}

/* Ends t with err: the user hears it once, and closes t. */
static void fail(gw_tunnel_t *t, gw_err_t err, const char *why)
{
    if (!is_live(t))
        return;
    t->state = GW_TUNNEL_DONE;
    stop_reading(t);
    uv_timer_stop(&t->timer);
    t->ops->on_error(t->ud, err, why);
}

/* A non-101 answer is complete, or the open tunnel's backend sent EOF. */
static void ended(gw_tunnel_t *t)
{
    stop_reading(t);
    if (t->state == GW_TUNNEL_RESPONSE) {
        t->state = GW_TUNNEL_DONE;
        uv_timer_stop(&t->timer);
    }
    t->ops->on_end(t->ud);
}

void gw_tunnel_close(gw_tunnel_t *t)
{
    if (t == NULL || t->state == GW_TUNNEL_CLOSED)
        return;
    t->state = GW_TUNNEL_CLOSED;
    t->w->ntunnels--;
    uv_close((uv_handle_t *)&t->tcp, on_close);
    uv_close((uv_handle_t *)&t->timer, on_close);
}

static void on_close(uv_handle_t *handle)
{
    gw_tunnel_t *t = handle->data;
    if (--t->nhandles_open > 0)
        return;
    proto_buf_free(&t->out);
    free(t->rhead);
    free(t->sealed);
    if (t->is_tls)
        gw_tls_conn_free(&t->tls);
    if (t->has_resp)
        proto_h1_response_free(&t->resp);
    free(t);
}

gw_tunnel_t *gw_tunnel_connect(gw_ctx_t *w, const struct sockaddr *addr, const char *name,
                               const gw_h1conn_cfg_t *cfg, uint64_t idle_timeout_ms,
                               const char *head, size_t head_len, const gw_tunnel_ops_t *ops,
                               void *ud, gw_err_t *err, char *why, size_t why_len)
{
    gw_tunnel_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        *err = GW_E_NOMEM;
        snprintf(why, why_len, "out of memory opening a tunnel");
        return NULL;
    }
    t->w = w;
    t->cfg = cfg;
    t->idle_timeout_ms = idle_timeout_ms;
    t->ops = ops;
    t->ud = ud;
    t->state = GW_TUNNEL_CONNECTING;
    snprintf(t->sni, sizeof(t->sni), "%s", name);
    proto_buf_init(&t->out);
    if (proto_buf_append(&t->out, head, head_len) != 0) {
        free(t);
        *err = GW_E_NOMEM;
        snprintf(why, why_len, "out of memory opening a tunnel");
        return NULL;
    }
    t->head_left = head_len;
    w->ntunnels++;
    uv_tcp_init(&w->loop, &t->tcp);
    uv_timer_init(&w->loop, &t->timer);
    t->tcp.data = t->timer.data = t->connect_req.data = t->wreq.data = t->shutdown_req.data = t;
    t->nhandles_open = 2;
    uv_tcp_nodelay(&t->tcp, 1);
    int rv = uv_tcp_connect(&t->connect_req, &t->tcp, addr, on_connect);
    if (rv != 0) {
        *err = gw_err_from_uv(rv, GW_E_CONNECT);
        snprintf(why, why_len, "cannot connect: %s", uv_strerror(rv));
        gw_tunnel_close(t);
        return NULL;
    }
    arm_timer(t);
    return t;
}

/* ---- writing ---- */

/* HTTPS: the plaintext pieces become one buffer of records (t->sealed,
 * freed when the write completes); the bytes stay in out until then, as
 * in cleartext, so the accounting is the same. */
static int seal(gw_tunnel_t *t, uv_buf_t *bufs, size_t *k)
{
    for (size_t i = 0; i < *k; i++) {
        if (gw_tls_conn_write(&t->tls, (const uint8_t *)bufs[i].base, bufs[i].len) != 0)
            return -1;
    }
    size_t pending = gw_tls_conn_pending(&t->tls);
    t->sealed = malloc(pending ? pending : 1);
    if (t->sealed == NULL)
        return -1;
    size_t len = gw_tls_conn_take(&t->tls, (uint8_t *)t->sealed, pending);
    bufs[0] = uv_buf_init(t->sealed, (unsigned)len);
    *k = 1;
    return 0;
}

static void flush(gw_tunnel_t *t)
{
    if (t->is_writing || (t->state != GW_TUNNEL_HANDSHAKE && t->state != GW_TUNNEL_OPEN))
        return;
    /* Before the 101 only the head may go: the user's bytes are for
     * whatever protocol the backend switches to. */
    size_t avail = t->state == GW_TUNNEL_OPEN ? proto_buf_len(&t->out) : t->head_left;
    if (avail == 0) {
        if (t->state == GW_TUNNEL_OPEN && t->is_shutdown_wanted && !t->is_shutdown_sent) {
            t->is_shutdown_sent = 1;
            if (uv_shutdown(&t->shutdown_req, (uv_stream_t *)&t->tcp, on_shutdown) != 0)
                fail(t, GW_E_WRITE, "cannot shut down the tunnel's backend side");
        }
        return;
    }
    proto_slice_t sl[MAX_WRITE_SLICES];
    uv_buf_t bufs[MAX_WRITE_SLICES];
    size_t n = proto_buf_slices(&t->out, sl, MAX_WRITE_SLICES), k = 0, total = 0;
    for (; k < n && total < avail; k++) {
        size_t len = sl[k].len < avail - total ? sl[k].len : avail - total;
        bufs[k] = uv_buf_init((char *)sl[k].base, (unsigned)len);
        total += len;
    }
    if (t->is_tls && seal(t, bufs, &k) != 0) {
        fail(t, GW_E_WRITE, "TLS write to the tunnel's backend failed");
        return;
    }
    int rv = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, bufs, (unsigned)k, on_write);
    if (rv != 0) {
        free(t->sealed);
        t->sealed = NULL;
        fail(t, GW_E_WRITE, "write to the tunnel's backend failed");
        return;
    }
    t->is_writing = 1;
    t->writing = total;
}

static void on_write(uv_write_t *req, int status)
{
    gw_tunnel_t *t = req->data;
    t->is_writing = 0;
    free(t->sealed);
    t->sealed = NULL;
    if (!is_live(t) || t->state == GW_TUNNEL_RESPONSE)
        return;
    if (status != 0) {
        char why[96];
        snprintf(why, sizeof(why), "write to the tunnel's backend failed: %s", uv_strerror(status));
        fail(t, GW_E_WRITE, why);
        return;
    }
    size_t n = t->writing, head = n < t->head_left ? n : t->head_left;
    t->writing = 0;
    proto_buf_consume(&t->out, n);
    t->head_left -= head;
    if (head > 0 && t->head_left == 0 && t->state == GW_TUNNEL_HANDSHAKE)
        uv_timer_start(&t->timer, on_timer, t->cfg->response_timeout_ms, 0);
    if (t->state == GW_TUNNEL_OPEN)
        arm_timer(t); /* a byte went through: not idle */
    if (n > head) {
        t->ops->on_written(t->ud, n - head);
        if (!is_live(t))
            return;
    }
    flush(t);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    gw_tunnel_t *t = req->data;
    if (status != 0 && status != UV_ECANCELED && is_live(t))
        fail(t, GW_E_WRITE, "cannot shut down the tunnel's backend side");
}

int gw_tunnel_write(gw_tunnel_t *t, const uint8_t *data, size_t len)
{
    if (!is_live(t) || t->state == GW_TUNNEL_RESPONSE || t->is_shutdown_wanted)
        return 0;
    if (proto_buf_append(&t->out, data, len) != 0)
        return PROTO_E_NOMEM;
    flush(t);
    return 1;
}

void gw_tunnel_shutdown(gw_tunnel_t *t)
{
    if (!is_live(t))
        return;
    t->is_shutdown_wanted = 1;
    flush(t);
}

/* ---- reading ---- */

/* The connection (and its TLS) is up: the head goes out. */
static void connected(gw_tunnel_t *t)
{
    t->state = GW_TUNNEL_HANDSHAKE;
    uv_timer_stop(&t->timer);
    flush(t);
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_tunnel_t *t = req->data;
    char why[96];
    if (status == UV_ECANCELED || t->state != GW_TUNNEL_CONNECTING)
        return;
    if (status != 0) {
        snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
        fail(t, gw_err_from_uv(status, GW_E_CONNECT), why);
        return;
    }
    int rv = start_reading(t);
    if (rv != 0) {
        snprintf(why, sizeof(why), "cannot read: %s", uv_strerror(rv));
        fail(t, gw_err_from_uv(rv, GW_E_CONNECT), why);
        return;
    }
    if (t->cfg->tls == NULL) {
        connected(t);
        return;
    }
    /* HTTPS: the TLS handshake runs under the connect timeout. */
    const char *tls_why = NULL;
    gw_err_t err = gw_h1conn_start_tls(t->cfg, t->sni, &t->tls, (uv_stream_t *)&t->tcp, &tls_why);
    t->is_tls = err != GW_E_NOMEM;
    if (err != GW_OK)
        fail(t, err, tls_why);
}

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_tunnel_t *t = ud;
    return t->state == GW_TUNNEL_RESPONSE ? t->ops->on_head(t->ud, status, f, n) : PROTO_E_CALLBACK;
}

static int resp_on_body(void *ud, const uint8_t *data, size_t len)
{
    gw_tunnel_t *t = ud;
    return t->state == GW_TUNNEL_RESPONSE ? t->ops->on_data(t->ud, data, len) : PROTO_E_CALLBACK;
}

static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    (void)ud, (void)f, (void)n;
    return 0; /* not relayed: the answer to an upgrade is an error page */
}

/* Bytes of a non-101 answer. */
static void feed_response(gw_tunnel_t *t, const uint8_t *data, size_t len)
{
    ssize_t rv = proto_h1_response_feed(&t->resp, data, len);
    if (!is_live(t))
        return;
    if (rv < 0) {
        char why[160];
        snprintf(why, sizeof(why), "invalid response from backend: %s",
                 t->resp.why != NULL ? t->resp.why : proto_strerror((int)rv));
        fail(t, rv == PROTO_E_CALLBACK ? GW_E_FRONTEND : GW_E_BAD_RESPONSE, why);
        return;
    }
    if (t->resp.is_complete)
        ended(t);
    else
        arm_timer(t);
}

/* The answer's head arrives: a 101 opens the tunnel, anything else is an
 * ordinary response, parsed from its first byte by proto/h1_response. */
static void on_answer_bytes(gw_tunnel_t *t, const uint8_t *data, size_t len)
{
    /* A non-101 status line hands everything to proto/h1_response at
     * once, so what is kept here is a status line or a 101's head. */
    size_t max = t->cfg->max_head_size;
    if (t->rhead_len + len > max) {
        fail(t, GW_E_BAD_RESPONSE, "backend response head too large");
        return;
    }
    char *p = realloc(t->rhead, t->rhead_len + len);
    if (p == NULL) {
        fail(t, GW_E_NOMEM, "out of memory reading the backend's answer");
        return;
    }
    t->rhead = p;
    memcpy(t->rhead + t->rhead_len, data, len);
    t->rhead_len += len;

    int status = 0;
    int rv = proto_upgrade_status(t->rhead, t->rhead_len, &status);
    if (rv < 0) {
        fail(t, GW_E_BAD_RESPONSE, "invalid response from backend: bad status line");
        return;
    }
    if (rv == 0)
        return;
    if (status != 101) {
        if (proto_h1_response_init(&t->resp, &resp_cbs, t, max) != 0) {
            fail(t, GW_E_NOMEM, "out of memory reading the backend's answer");
            return;
        }
        t->has_resp = 1;
        t->state = GW_TUNNEL_RESPONSE;
        /* The upgrade is off: the user's bytes go nowhere (freed with t,
         * since a write may still be reading the head). */
        char *all = t->rhead;
        size_t all_len = t->rhead_len;
        t->rhead = NULL;
        t->rhead_len = 0;
        feed_response(t, (const uint8_t *)all, all_len);
        free(all);
        return;
    }
    proto_header_t fields[MAX_101_FIELDS];
    size_t n = 0;
    ssize_t head_len =
        proto_upgrade_parse_head(t->rhead, t->rhead_len, &status, fields, MAX_101_FIELDS, &n);
    if (head_len == 0)
        return;
    if (head_len < 0) {
        fail(t, GW_E_BAD_RESPONSE, "invalid 101 response from backend");
        return;
    }
    t->state = GW_TUNNEL_OPEN;
    arm_timer(t);
    if (t->ops->on_head(t->ud, 101, fields, n) != 0) {
        fail(t, GW_E_FRONTEND, "the client side refused the 101");
        return;
    }
    if (!is_live(t))
        return;
    /* What came behind the head is already the new protocol's. */
    if ((size_t)head_len < t->rhead_len &&
        t->ops->on_data(t->ud, (const uint8_t *)t->rhead + head_len,
                        t->rhead_len - (size_t)head_len) != 0) {
        fail(t, GW_E_FRONTEND, "the client side refused tunnel bytes");
        return;
    }
    free(t->rhead);
    t->rhead = NULL;
    t->rhead_len = 0;
    if (is_live(t))
        flush(t);
}

static void on_eof(gw_tunnel_t *t, ssize_t err)
{
    char why[128];
    switch (t->state) {
    case GW_TUNNEL_HANDSHAKE:
        snprintf(why, sizeof(why), "backend closed the connection before responding (%s)",
                 uv_strerror((int)err));
        fail(t, GW_E_CLOSED_EARLY, why);
        break;
    case GW_TUNNEL_RESPONSE:
        if (err == UV_EOF && proto_h1_response_finish(&t->resp) == 0 && t->resp.is_complete) {
            ended(t);
            break;
        }
        snprintf(why, sizeof(why), "backend closed the connection mid-response (%s)",
                 uv_strerror((int)err));
        fail(t, GW_E_CLOSED_MID, why);
        break;
    case GW_TUNNEL_OPEN:
        if (err != UV_EOF) {
            snprintf(why, sizeof(why), "tunnel's backend connection failed (%s)",
                     uv_strerror((int)err));
            fail(t, GW_E_CLOSED_MID, why);
            break;
        }
        t->is_read_eof = 1;
        ended(t);
        break;
    default:
        break;
    }
}

static void on_plaintext(gw_tunnel_t *t, const uint8_t *data, size_t len)
{
    switch (t->state) {
    case GW_TUNNEL_HANDSHAKE:
        on_answer_bytes(t, data, len);
        break;
    case GW_TUNNEL_RESPONSE:
        feed_response(t, data, len);
        break;
    case GW_TUNNEL_OPEN:
        arm_timer(t);
        if (t->ops->on_data(t->ud, data, len) != 0)
            fail(t, GW_E_FRONTEND, "the client side refused tunnel bytes");
        break;
    default:
        break;
    }
}

/* HTTPS: ciphertext in; the handshake first, then plaintext as above. */
static void on_tls_bytes(gw_tunnel_t *t, const uint8_t *data, size_t len)
{
    if (gw_tls_conn_put_cipher(&t->tls, data, len) != 0) {
        fail(t, GW_E_NOMEM, "out of memory reading from the backend");
        return;
    }
    if (!t->is_tls_ready) {
        const char *why = NULL;
        int rv = gw_tls_conn_handshake_step(&t->tls, (uv_stream_t *)&t->tcp, &why);
        if (rv < 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "TLS handshake with the backend failed: %s", why);
            fail(t, GW_E_TLS, msg);
            return;
        }
        if (rv == 0)
            return;
        t->is_tls_ready = 1;
        connected(t);
        if (!is_live(t))
            return;
    }
    uint8_t plain[16 * 1024];
    for (;;) {
        int n = gw_tls_conn_read(&t->tls, plain, sizeof(plain));
        if (n < 0) {
            on_eof(t, UV_EOF);
            return;
        }
        if (n == 0)
            break;
        on_plaintext(t, plain, (size_t)n);
        if (!is_live(t))
            return;
    }
    gw_tls_conn_send_pending(&t->tls, (uv_stream_t *)&t->tcp);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_tunnel_t *t = stream->data;
    if (nread == 0 || !is_live(t))
        return;
    if (nread < 0) {
        on_eof(t, nread);
        return;
    }
    if (t->is_tls)
        on_tls_bytes(t, (const uint8_t *)buf->base, (size_t)nread);
    else
        on_plaintext(t, (const uint8_t *)buf->base, (size_t)nread);
}

void gw_tunnel_pause_read(gw_tunnel_t *t)
{
    if (!is_live(t))
        return;
    stop_reading(t);
    t->is_read_paused = 1;
}

void gw_tunnel_resume_read(gw_tunnel_t *t)
{
    if (!is_live(t) || !t->is_read_paused)
        return;
    t->is_read_paused = 0;
    if (t->state != GW_TUNNEL_CONNECTING && start_reading(t) != 0)
        fail(t, GW_E_CLOSED_MID, "cannot read from the tunnel's backend");
}

static void on_timer(uv_timer_t *timer)
{
    gw_tunnel_t *t = timer->data;
    switch (t->state) {
    case GW_TUNNEL_CONNECTING:
        fail(t, GW_E_CONNECT_TIMEOUT, "connect to backend timed out");
        break;
    case GW_TUNNEL_HANDSHAKE:
        fail(t, GW_E_RESPONSE_TIMEOUT, "backend did not answer the upgrade");
        break;
    case GW_TUNNEL_RESPONSE:
        fail(t, GW_E_IO_TIMEOUT, "backend stalled mid-response");
        break;
    case GW_TUNNEL_OPEN:
        fail(t, GW_E_TUNNEL_IDLE, "tunnel idle");
        break;
    default:
        break;
    }
}
