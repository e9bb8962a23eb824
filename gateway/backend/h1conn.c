#include "gateway/backend/h1conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/exchange.h"
#include "gateway/core/log.h"
#include "gateway/worker.h"

/* A single upstream write carries at most this much request body, so one
 * fast client cannot make one write allocation arbitrarily large. */
#define MAX_BODY_PER_WRITE (256 * 1024)

static void on_connect(uv_connect_t *req, int status);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_timer(uv_timer_t *timer);
static void on_close(uv_handle_t *handle);
static void release_write(gw_upconn_t *u);

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int resp_on_body(void *ud, const uint8_t *data, size_t len);
static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n);
static int resp_on_complete(void *ud);

static const proto_h1_response_cbs_t resp_cbs = {
    .on_head = resp_on_head,
    .on_body = resp_on_body,
    .on_trailers = resp_on_trailers,
    .on_complete = resp_on_complete,
};

static const cfg_backend_t *bcfg_of(const gw_upconn_t *u)
{
    return u->server->pool->bcfg;
}

static void upconn_start_timer(gw_upconn_t *u, uint64_t ms)
{
    uv_timer_start(&u->timer, on_timer, ms, 0);
}

static void set_busy(gw_upconn_t *u, int is_busy)
{
    if (u->is_busy_counted == (unsigned)is_busy)
        return;
    u->is_busy_counted = is_busy;
    if (is_busy)
        u->server->nbusy++;
    else
        u->server->nbusy--;
}

static void upconn_close(gw_upconn_t *u, int dispatch)
{
    if (u->state == GW_UP_CLOSING)
        return;
    gw_server_t *s = u->server;
    if (u->x != NULL)
        gw_exchange_detach(u->x);
    if (u->state == GW_UP_IDLE)
        s->nidle--;
    set_busy(u, 0);
    proto_queue_remove(&u->idle_node);
    proto_queue_remove(&u->all_node);
    proto_queue_remove(&u->dirty_node);
    u->state = GW_UP_CLOSING;
    uv_close((uv_handle_t *)&u->tcp, on_close);
    uv_close((uv_handle_t *)&u->timer, on_close);
    s->nconns--;
    if (dispatch)
        gw_pool_dispatch(s->pool);
}

void gw_upconn_close(gw_upconn_t *u)
{
    upconn_close(u, 1);
}

void gw_upconn_close_keep_slot(gw_upconn_t *u)
{
    upconn_close(u, 0);
}

static void on_close(uv_handle_t *handle)
{
    gw_upconn_t *u = handle->data;
    if (--u->nhandles_open > 0)
        return;
    if (u->is_tls)
        gw_tls_conn_free(&u->tls);
    release_write(u);
    proto_h1_response_free(&u->resp);
    free(u);
}

void gw_upconn_assign(gw_upconn_t *u, gw_exchange_t *x)
{
    u->x = x;
    x->upconn = u;
    x->server = u->server;
    u->state = GW_UP_BUSY;
    set_busy(u, 1);
    uv_timer_stop(&u->timer);
    proto_h1_response_reset(&u->resp, x->is_head_method);
    gw_upconn_flush(u);
}

void gw_upconn_open(gw_server_t *s, gw_exchange_t *x)
{
    gw_pool_t *p = s->pool;
    gw_upconn_t *u = calloc(1, sizeof(*u));
    if (u == NULL ||
        proto_h1_response_init(&u->resp, &resp_cbs, u, p->cfg->max_header_list_size) != 0) {
        free(u);
        gw_exchange_fail(x, 502, "out of memory opening a backend connection", 0);
        return;
    }
    u->server = s;
    s->nconns++;
    s->nopened++;
    proto_queue_init(&u->idle_node);
    proto_queue_init(&u->dirty_node);
    proto_queue_insert_tail(&p->all, &u->all_node);
    uv_tcp_init(&p->w->loop, &u->tcp);
    uv_timer_init(&p->w->loop, &u->timer);
    u->tcp.data = u->timer.data = u->connect_req.data = u->wreq.data = u;
    u->nhandles_open = 2;
    u->state = GW_UP_CONNECTING;
    u->idle_timeout_ms = p->bcfg->idle_timeout_ms;
    u->x = x;
    x->upconn = u;
    x->server = s;
    set_busy(u, 1);
    uv_tcp_nodelay(&u->tcp, 1);

    int rv =
        uv_tcp_connect(&u->connect_req, &u->tcp, (const struct sockaddr *)&s->addr, on_connect);
    if (rv != 0) {
        char why[96];
        snprintf(why, sizeof(why), "cannot connect: %s", uv_strerror(rv));
        gw_server_report(s, 0, why);
        gw_exchange_fail(x, 502, why, GW_FAIL_RETRY);
        return;
    }
    upconn_start_timer(u, p->bcfg->connect_timeout_ms);
}

/* TLS records OpenSSL produced outside a request write (handshake, key
 * updates). */
static void write_tls_pending(gw_upconn_t *u)
{
    if (u->state != GW_UP_CLOSING)
        gw_tls_conn_send_pending(&u->tls, (uv_stream_t *)&u->tcp);
}

static void upconn_start_reading(gw_upconn_t *u)
{
    if (u->is_reading)
        return;
    if (uv_read_start((uv_stream_t *)&u->tcp, gw_worker_alloc_cb, on_read) == 0)
        u->is_reading = 1;
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_upconn_t *u = req->data;
    if (status == UV_ECANCELED || u->state == GW_UP_CLOSING)
        return;
    if (status != 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
        gw_server_report(u->server, 0, why);
        if (u->x != NULL)
            gw_exchange_fail(u->x, 502, why, GW_FAIL_RETRY);
        else
            gw_upconn_close(u);
        return;
    }
    upconn_start_reading(u);
    gw_exchange_t *x = u->x;
    if (x == NULL) {
        gw_upconn_close(u);
        return;
    }
    gw_pool_t *p = u->server->pool;
    if (p->tls != NULL) {
        /* HTTPS: the handshake runs under the connect timeout; the
         * exchange is assigned once it completes (on_read). */
        const char *name = p->bcfg->tls_sni != NULL ? p->bcfg->tls_sni : u->server->cfg->addr.host;
        if (gw_tls_conn_init_client(&u->tls, p->tls, name, p->bcfg->tls_verify ? name : NULL) !=
            0) {
            gw_exchange_fail(x, 502, "out of memory starting TLS to the backend", 0);
            return;
        }
        u->is_tls = 1;
        const char *why = NULL;
        if (gw_tls_conn_handshake(&u->tls, &why) < 0) {
            gw_exchange_fail(x, 502, why, 0);
            return;
        }
        write_tls_pending(u);
        return;
    }
    uv_timer_stop(&u->timer);
    gw_upconn_assign(u, x);
}

/* How a failure before any response byte should be treated: a reused
 * connection that dies then most likely hit the backend's keep-alive
 * timeout (the pool's fault, retried for free on a fresh connection); on
 * a fresh connection it is the server's failure. */
static int early_failure_flags(const gw_upconn_t *u, const char *why)
{
    if (u->nrequests > 0)
        return GW_FAIL_STALE;
    gw_server_report(u->server, 0, why);
    return GW_FAIL_RETRY;
}

/* Request bytes go out as one gathered write: the head (once), then body
 * bytes framed as the head promised, then the chunked terminator. */
/* Frees what the last request write owned. */
static void release_write(gw_upconn_t *u)
{
    free(u->wbuf_alloc);
    u->wbuf_alloc = NULL;
    proto_buf_free(&u->wbody);
    u->nwbufs = 0;
}

static void add_buf(gw_upconn_t *u, const void *base, size_t len)
{
    if (len > 0)
        u->wbufs[u->nwbufs++] = uv_buf_init((char *)base, (unsigned)len);
}

/*
 * Prepares the next request write in u->wbufs: the head (once), then body
 * bytes framed as the head promised, then the chunked terminator. The body
 * segments move from the exchange to the connection (u->wbody) instead of
 * being copied, so the write owns its bytes whatever happens to the
 * exchange; HTTPS backends get one encrypted buffer. Returns the bytes to
 * write, 0 when nothing is pending or on failure (x failed then).
 */
static size_t next_write(gw_upconn_t *u, gw_exchange_t *x, int *is_last)
{
    static const char crlf[] = "\r\n", last_chunk[] = "0\r\n\r\n";
    size_t head_len = x->is_req_head_written ? 0 : x->head.len;
    int is_chunked = x->head.is_chunked;
    if (head_len == 0 && proto_buf_len(&x->req_body) == 0 && !x->is_req_end)
        return 0;

    char *prefix = malloc(head_len + 24);
    if (prefix == NULL) {
        gw_exchange_fail(x, 502, "out of memory writing to the backend", 0);
        return 0;
    }
    u->wbuf_alloc = prefix;
    size_t body_len =
        proto_buf_move(&u->wbody, &x->req_body, MAX_BODY_PER_WRITE, GW_WRITE_IOV_MAX - 3);
    *is_last = x->is_req_end && proto_buf_len(&x->req_body) == 0;
    if (head_len == 0 && body_len == 0 && !*is_last) {
        release_write(u);
        return 0;
    }
    memcpy(prefix, x->head.data, head_len);
    size_t prefix_len = head_len;
    if (body_len > 0 && is_chunked)
        prefix_len += (size_t)snprintf(prefix + prefix_len, 20, "%zx\r\n", body_len);
    add_buf(u, prefix, prefix_len);
    proto_slice_t sl[GW_WRITE_IOV_MAX];
    size_t n = proto_buf_slices(&u->wbody, sl, GW_WRITE_IOV_MAX - 3);
    for (size_t i = 0; i < n; i++) {
        add_buf(u, sl[i].base, sl[i].len);
        gw_exchange_note_body_sent(x, sl[i].base, sl[i].len);
    }
    if (body_len > 0 && is_chunked)
        add_buf(u, crlf, 2);
    if (*is_last && is_chunked)
        add_buf(u, last_chunk, 5);
    x->is_req_head_written = 1;
    if (*is_last)
        x->is_req_sent = 1;
    u->wbuf_body_bytes = body_len;

    size_t total = 0;
    for (size_t i = 0; i < u->nwbufs; i++)
        total += u->wbufs[i].len;
    if (total == 0) { /* only the end of a body already sent whole */
        release_write(u);
        return 0;
    }
    if (!u->is_tls)
        return total;

    /* HTTPS: the pieces become records in one buffer. */
    for (size_t i = 0; i < u->nwbufs; i++) {
        if (gw_tls_conn_write(&u->tls, (const uint8_t *)u->wbufs[i].base, u->wbufs[i].len) != 0) {
            release_write(u);
            gw_exchange_fail(x, 502, "TLS write to the backend failed", 0);
            return 0;
        }
    }
    release_write(u);
    size_t pending = gw_tls_conn_pending(&u->tls);
    char *sealed = malloc(pending ? pending : 1);
    if (sealed == NULL) {
        gw_exchange_fail(x, 502, "out of memory writing to the backend", 0);
        return 0;
    }
    u->wbuf_alloc = sealed;
    size_t len = gw_tls_conn_take(&u->tls, (uint8_t *)sealed, pending);
    add_buf(u, sealed, len);
    return len;
}

static void fail_write(gw_upconn_t *u, gw_exchange_t *x, int err)
{
    char why[96];
    snprintf(why, sizeof(why), "write to backend failed: %s", uv_strerror(err));
    /* Nothing was read back yet and the very first write failed: the
     * backend has none of this request. */
    int flags = u->resp.is_started ? 0 : early_failure_flags(u, why);
    if ((flags & GW_FAIL_STALE) && x->req_body_written == u->wbuf_body_bytes)
        flags |= GW_FAIL_UNSENT;
    gw_exchange_fail(x, 502, why, flags);
}

/* A write went out whole. Returns 1 when the next may follow. */
static int write_completed(gw_upconn_t *u)
{
    gw_exchange_t *x = u->x;
    if (x == NULL)
        return 0;
    if (u->is_eof_pending) {
        gw_exchange_fail(x, 502, "backend closed the connection before responding",
                         early_failure_flags(u, "closed before responding"));
        return 0;
    }
    /* A replayed body is written twice; the client's window is reopened
     * once per byte. */
    if (x->req_body_written > x->req_body_credited) {
        x->fe->on_req_body_written(x, x->req_body_written - x->req_body_credited);
        x->req_body_credited = x->req_body_written;
    }
    return 1;
}

void gw_upconn_flush(gw_upconn_t *u)
{
    for (;;) {
        gw_exchange_t *x = u->x;
        if (x == NULL || u->is_writing || u->state != GW_UP_BUSY || x->is_req_sent)
            return;
        int is_last = 0;
        size_t len = next_write(u, x, &is_last);
        if (u->state != GW_UP_BUSY || u->x != x)
            return; /* the exchange failed while the write was prepared */
        /* Waiting for the response head, or for the client's next body
         * bytes: either way silence beyond the timeout ends the exchange. */
        if (!u->resp.is_started && (len > 0 || x->is_req_sent))
            upconn_start_timer(u, is_last ? bcfg_of(u)->response_timeout_ms
                                          : bcfg_of(u)->io_timeout_ms);
        if (len == 0)
            return;
        /* Most writes complete at once: uv_try_write spares the request,
         * its callback a loop turn later, and libuv's poll update. */
        int n = uv_try_write((uv_stream_t *)&u->tcp, u->wbufs, (unsigned)u->nwbufs);
        if (n >= 0 && (size_t)n == len) {
            release_write(u);
            if (!write_completed(u))
                return;
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            release_write(u);
            fail_write(u, x, n);
            return;
        }
        /* The rest goes with a write request: skip what the socket took. */
        size_t done = n > 0 ? (size_t)n : 0, k = 0;
        while (k < u->nwbufs && done >= u->wbufs[k].len)
            done -= u->wbufs[k++].len;
        u->wbufs[k].base += done;
        u->wbufs[k].len -= done;
        int rv = uv_write(&u->wreq, (uv_stream_t *)&u->tcp, u->wbufs + k, (unsigned)(u->nwbufs - k),
                          on_write);
        if (rv != 0) {
            release_write(u);
            fail_write(u, x, rv);
            return;
        }
        u->is_writing = 1;
        return;
    }
}

void gw_upconn_mark_dirty(gw_upconn_t *u)
{
    if (u->state == GW_UP_CLOSING || proto_queue_is_linked(&u->dirty_node))
        return;
    proto_queue_insert_tail(&u->server->pool->w->dirty_upconns, &u->dirty_node);
}

void gw_upconn_flush_all(proto_queue_t *dirty)
{
    /* Only those dirty now: one marked again meanwhile waits a turn. */
    proto_queue_t now;
    proto_queue_move(&now, dirty);
    proto_queue_t *n;
    while ((n = proto_queue_first(&now)) != NULL) {
        proto_queue_remove(n);
        gw_upconn_flush(proto_container_of(n, gw_upconn_t, dirty_node));
    }
}

static void on_write(uv_write_t *req, int status)
{
    gw_upconn_t *u = req->data;
    release_write(u);
    u->is_writing = 0;
    if (u->state == GW_UP_CLOSING)
        return;
    gw_exchange_t *x = u->x;
    if (status != 0) {
        if (x == NULL)
            gw_upconn_close(u);
        else
            fail_write(u, x, status);
        return;
    }
    if (write_completed(u))
        gw_upconn_flush(u);
}

/*
 * nginx's keep-alive checklist: a connection carries another request only if
 * the response said it may, nothing was left unread or unwritten, and we are
 * not draining.
 */
static int upconn_can_reuse(const gw_upconn_t *u, const gw_exchange_t *x, int has_extra_bytes)
{
    return proto_h1_response_can_reuse(&u->resp) && !has_extra_bytes && x->is_req_sent &&
           !u->is_writing && !u->server->pool->w->is_draining;
}

static void on_response_complete(gw_upconn_t *u, int has_extra_bytes)
{
    gw_exchange_t *x = u->x;
    gw_server_t *s = u->server;
    int is_reusable = upconn_can_reuse(u, x, has_extra_bytes);
    gw_exchange_detach(x);
    set_busy(u, 0);
    u->nrequests++;
    gw_exchange_on_resp_done(x);

    if (!is_reusable) {
        gw_upconn_close(u);
        return;
    }
    if (u->is_read_paused) {
        u->is_read_paused = 0;
        upconn_start_reading(u);
    }
    /* Idle first, then dispatch: a waiting exchange takes it back at once,
     * through the same rules as every other dispatch. */
    u->state = GW_UP_IDLE;
    proto_queue_insert_head(&s->idle, &u->idle_node);
    s->nidle++;
    upconn_start_timer(u, u->idle_timeout_ms);
    gw_pool_dispatch(s->pool);
}

static void on_read_error(gw_upconn_t *u, ssize_t nread)
{
    gw_exchange_t *x = u->x;
    char why[128];
    if (!u->resp.is_started && u->is_writing && u->nrequests > 0) {
        /* A reused connection ended while our write is in flight: whether
         * the backend got any of the request is the write's to say (a
         * failed first write means it got none: REFUSED_STREAM). */
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->is_reading = 0;
        u->is_eof_pending = 1;
        return;
    }
    if (!u->resp.is_started) {
        snprintf(why, sizeof(why), "backend closed the connection before responding (%s)",
                 uv_strerror((int)nread));
        gw_exchange_fail(x, 502, why, early_failure_flags(u, why));
        return;
    }
    if (nread == UV_EOF && proto_h1_response_finish(&u->resp) == 0 && u->resp.is_complete) {
        on_response_complete(u, 0);
        return;
    }
    snprintf(why, sizeof(why), "backend closed the connection mid-response (%s)",
             uv_strerror((int)nread));
    gw_server_report(u->server, 0, why);
    gw_exchange_fail(x, 502, why, 0);
}

/* Response bytes (decrypted, for HTTPS backends). */
static void on_plaintext(gw_upconn_t *u, const uint8_t *data, size_t len)
{
    if (u->state == GW_UP_IDLE || u->x == NULL) {
        /* Bytes on an idle connection: the backend is out of sync; it must
         * not carry a request. */
        gw_upconn_close(u);
        return;
    }
    if (u->state != GW_UP_BUSY)
        return;

    gw_exchange_t *x = u->x;
    ssize_t consumed = proto_h1_response_feed(&u->resp, data, len);
    if (consumed < 0) {
        char why[160];
        snprintf(why, sizeof(why), "invalid response from backend: %s",
                 u->resp.why != NULL ? u->resp.why : proto_strerror((int)consumed));
        if (consumed != PROTO_E_CALLBACK)
            gw_server_report(u->server, 0, why);
        gw_exchange_fail(x, 502, why, 0);
        return;
    }
    if (u->resp.is_complete) {
        on_response_complete(u, (size_t)consumed < len);
        return;
    }
    if (proto_buf_len(&x->resp_body) >= u->server->pool->cfg->response_buffer_size) {
        /* The client is slower than the backend: stop reading until the
         * frontend has drained the buffer (gw_upconn_resume_read). The
         * backend is not late meanwhile, so its timer stops too. */
        uv_read_stop((uv_stream_t *)&u->tcp);
        uv_timer_stop(&u->timer);
        u->is_reading = 0;
        u->is_read_paused = 1;
    } else {
        /* Before the head the backend is thinking (response timeout); after
         * it, silence between body bytes is the io timeout. */
        upconn_start_timer(u, u->resp.head_done ? bcfg_of(u)->io_timeout_ms
                                                : bcfg_of(u)->response_timeout_ms);
    }
}

/* The connection ended (EOF, reset, or TLS closed). */
static void on_end(gw_upconn_t *u, ssize_t err)
{
    if (u->state == GW_UP_BUSY && u->x != NULL)
        on_read_error(u, err);
    else if (u->state == GW_UP_CONNECTING && u->x != NULL)
        gw_exchange_fail(u->x, 502, "backend closed the connection during the TLS handshake",
                         GW_FAIL_RETRY);
    else
        gw_upconn_close(u);
}

static void on_tls_bytes(gw_upconn_t *u, const uint8_t *data, size_t len)
{
    if (gw_tls_conn_put_cipher(&u->tls, data, len) != 0) {
        on_end(u, UV_ENOMEM);
        return;
    }
    if (!u->tls.is_handshake_done) {
        const char *why = NULL;
        int rv = gw_tls_conn_handshake(&u->tls, &why);
        write_tls_pending(u);
        if (rv < 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "TLS handshake with the backend failed: %s", why);
            gw_server_report(u->server, 0, msg);
            gw_exchange_fail(u->x, 502, msg, 0);
            return;
        }
        if (rv == 0)
            return;
        uv_timer_stop(&u->timer);
        gw_upconn_assign(u, u->x);
        if (u->state != GW_UP_BUSY)
            return;
    }
    uint8_t plain[16 * 1024];
    for (;;) {
        int n = gw_tls_conn_read(&u->tls, plain, sizeof(plain));
        if (n < 0) {
            on_end(u, UV_EOF);
            return;
        }
        if (n == 0)
            break;
        on_plaintext(u, plain, (size_t)n);
        if (u->state == GW_UP_CLOSING)
            return;
    }
    write_tls_pending(u);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_upconn_t *u = stream->data;
    if (nread == 0 || u->state == GW_UP_CLOSING)
        return;
    if (nread < 0) {
        on_end(u, nread);
        return;
    }
    if (u->is_tls)
        on_tls_bytes(u, (const uint8_t *)buf->base, (size_t)nread);
    else
        on_plaintext(u, (const uint8_t *)buf->base, (size_t)nread);
}

void gw_upconn_resume_read(gw_upconn_t *u)
{
    if (!u->is_read_paused || u->state != GW_UP_BUSY)
        return;
    u->is_read_paused = 0;
    upconn_start_reading(u);
    upconn_start_timer(u, bcfg_of(u)->io_timeout_ms);
}

static void on_timer(uv_timer_t *timer)
{
    gw_upconn_t *u = timer->data;
    switch (u->state) {
    case GW_UP_CONNECTING:
        gw_server_report(u->server, 0, "connect timed out");
        gw_exchange_fail(u->x, 502, "connect to backend timed out", GW_FAIL_RETRY);
        break;
    case GW_UP_BUSY:
        gw_server_report(u->server, 0, "timed out");
        gw_exchange_fail(u->x, 504,
                         u->resp.is_started  ? "backend stalled mid-response"
                         : u->x->is_req_sent ? "backend response timed out"
                                             : "request body stalled",
                         0);
        break;
    case GW_UP_IDLE:
        gw_upconn_close(u);
        break;
    default:
        break;
    }
}

/* The backend may keep idle connections for less than our idle timeout:
 * close ours first, with a margin, so we never reuse one it is closing. */
static void honour_keep_alive_timeout(gw_upconn_t *u)
{
    int secs = u->resp.keep_alive_timeout_s;
    if (secs < 0)
        return;
    uint64_t ms = (uint64_t)secs * 1000;
    uint64_t margin = ms / 2 < 1000 ? ms / 2 : 1000;
    ms -= margin;
    if (ms < u->idle_timeout_ms)
        u->idle_timeout_ms = ms > 0 ? ms : 1;
}

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_upconn_t *u = ud;
    honour_keep_alive_timeout(u);
    int is_failure = status >= 500 && bcfg_of(u)->fail_on_5xx;
    gw_server_report(u->server, !is_failure, "5xx response");
    return gw_exchange_on_resp_head(u->x, status, f, n);
}

static int resp_on_body(void *ud, const uint8_t *data, size_t len)
{
    gw_upconn_t *u = ud;
    return gw_exchange_on_resp_body(u->x, data, len);
}

static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    gw_upconn_t *u = ud;
    return gw_exchange_on_resp_trailers(u->x, f, n);
}

/* Completion is handled once feed() returns (on_response_complete), so that
 * the connection is never released while the parser is on the stack. */
static int resp_on_complete(void *ud)
{
    (void)ud;
    return 0;
}
