#include "gateway/backend/h1conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/chunked.h"

/* A single write carries at most this much request body, so one fast
 * client cannot make one write allocation arbitrarily large. */
#define MAX_BODY_PER_WRITE (256 * 1024)

static void on_connect(uv_connect_t *req, int status);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_timer(uv_timer_t *timer);
static void on_close(uv_handle_t *handle);
static void on_flush_task(gw_task_t *t);
static void flush(gw_h1conn_t *c);

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int resp_on_body(void *ud, const uint8_t *data, size_t len);
static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n);
static int resp_on_info(void *ud, int status, const proto_header_t *f, size_t n);

static const proto_h1_response_cbs_t resp_cbs = {
    .on_head = resp_on_head,
    .on_informational = resp_on_info,
    .on_body = resp_on_body,
    .on_trailers = resp_on_trailers,
};

static uint64_t now_ms(const gw_h1conn_t *c)
{
    return gw_ctx_now_ms(c->w);
}

/* ---- timers: one per connection, its meaning read off the state ---- */

/*
 * Which clock runs now. Each is a fault of a different party, so each has
 * its own error: the server that does not connect, answer or keep sending;
 * the user that does not take the response or give the rest of the body.
 */
static gw_err_t timer_kind(const gw_h1conn_t *c, uint64_t *ms)
{
    const gw_h1conn_cfg_t *cfg = c->cfg;
    if (c->is_read_paused) {
        *ms = cfg->write_stall_ms;
        return GW_E_CLIENT_WRITE_TIMEOUT;
    }
    if (c->resp.head_done) {
        *ms = cfg->io_timeout_ms;
        return GW_E_IO_TIMEOUT;
    }
    if (c->is_req_sent) {
        /* A deadline for the whole head: bytes that trickle in do not
         * move it. */
        uint64_t now = now_ms(c);
        *ms = c->resp_deadline_ms > now ? c->resp_deadline_ms - now : 0;
        return GW_E_RESPONSE_TIMEOUT;
    }
    if (c->is_writing) {
        *ms = cfg->io_timeout_ms;
        return GW_E_IO_TIMEOUT;
    }
    *ms = cfg->read_stall_ms;
    return GW_E_CLIENT_READ_TIMEOUT;
}

static void arm_timer(gw_h1conn_t *c)
{
    uint64_t ms = 0;
    if (c->state != GW_H1CONN_BUSY)
        return;
    timer_kind(c, &ms);
    if (ms == 0 && c->is_req_sent && !c->resp.head_done)
        ms = 1; /* the head's deadline has passed: fire at once */
    if (ms == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- lifetime ---- */

static void release_write(gw_h1conn_t *c)
{
    free(c->wbuf_alloc);
    c->wbuf_alloc = NULL;
    proto_buf_free(&c->wbody);
    c->nwbufs = 0;
}

void gw_h1conn_close(gw_h1conn_t *c)
{
    if (c == NULL || c->state == GW_H1CONN_CLOSED)
        return;
    c->state = GW_H1CONN_CLOSED;
    c->ud = NULL;
    c->req_ops = NULL;
    gw_task_cancel(&c->flush_task);
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_close(uv_handle_t *handle)
{
    gw_h1conn_t *c = handle->data;
    if (--c->nhandles_open > 0)
        return;
    if (c->is_tls)
        gw_tls_conn_free(&c->tls);
    release_write(c);
    proto_h1_response_free(&c->resp);
    free(c);
}

gw_h1conn_t *gw_h1conn_connect(gw_ctx_t *w, const struct sockaddr *addr, const char *name,
                               const gw_h1conn_cfg_t *cfg, const gw_h1conn_owner_ops_t *ops,
                               void *owner, gw_err_t *err, char *why, size_t why_len)
{
    gw_h1conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || proto_h1_response_init(&c->resp, &resp_cbs, c, cfg->max_head_size) != 0) {
        free(c);
        *err = GW_E_NOMEM;
        snprintf(why, why_len, "out of memory opening a backend connection");
        return NULL;
    }
    c->w = w;
    c->cfg = cfg;
    c->owner_ops = ops;
    c->owner = owner;
    c->state = GW_H1CONN_CONNECTING;
    snprintf(c->sni, sizeof(c->sni), "%s", name);
    proto_queue_init(&c->owner_node);
    proto_queue_init(&c->owner_all_node);
    gw_task_init(&c->flush_task, on_flush_task);
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c->connect_req.data = c->wreq.data = c;
    c->nhandles_open = 2;
    uv_tcp_nodelay(&c->tcp, 1);
    int rv = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
    if (rv != 0) {
        /* No socket at all (out of descriptors), or a bad address. */
        *err = gw_err_from_uv(rv, GW_E_CONNECT);
        snprintf(why, why_len, "cannot connect: %s", uv_strerror(rv));
        gw_h1conn_close(c);
        return NULL;
    }
    uv_timer_start(&c->timer, on_timer, cfg->connect_timeout_ms, 0);
    return c;
}

/* TLS records produced outside a request write (handshake, key updates). */
static int write_tls_pending(gw_h1conn_t *c)
{
    if (c->state == GW_H1CONN_CLOSED)
        return 0;
    return gw_tls_conn_send_pending(&c->tls, (uv_stream_t *)&c->tcp);
}

static int start_reading(gw_h1conn_t *c)
{
    if (c->is_reading)
        return 0;
    int rv = uv_read_start((uv_stream_t *)&c->tcp, gw_ctx_alloc_cb, on_read);
    if (rv == 0)
        c->is_reading = 1;
    return rv;
}

static void stop_reading(gw_h1conn_t *c)
{
    if (c->is_reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->is_reading = 0;
}

static void connected(gw_h1conn_t *c, gw_err_t err, const char *why)
{
    uv_timer_stop(&c->timer);
    if (err == GW_OK)
        c->state = GW_H1CONN_READY;
    c->owner_ops->on_connected(c, err, why);
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_h1conn_t *c = req->data;
    char why[96];
    if (status == UV_ECANCELED || c->state == GW_H1CONN_CLOSED)
        return;
    if (status != 0) {
        snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(status));
        connected(c, gw_err_from_uv(status, GW_E_CONNECT), why);
        return;
    }
    int rv = start_reading(c);
    if (rv != 0) {
        snprintf(why, sizeof(why), "cannot read: %s", uv_strerror(rv));
        connected(c, gw_err_from_uv(rv, GW_E_CONNECT), why);
        return;
    }
    if (c->cfg->tls == NULL) {
        connected(c, GW_OK, NULL);
        return;
    }
    /* HTTPS: the handshake runs under the connect timeout. */
    const char *tls_why = NULL;
    gw_err_t err = gw_h1conn_start_tls(c->cfg, c->sni, &c->tls, (uv_stream_t *)&c->tcp, &tls_why);
    c->is_tls = err != GW_E_NOMEM;
    if (err != GW_OK)
        connected(c, err, tls_why);
}

gw_err_t gw_h1conn_start_tls(const gw_h1conn_cfg_t *cfg, const char *server_name,
                             gw_tls_conn_t *tls, uv_stream_t *stream, const char **why)
{
    const char *name = cfg->tls_sni != NULL ? cfg->tls_sni : server_name;
    if (gw_tls_conn_init_client(tls, cfg->tls, name, cfg->tls_verify ? name : NULL) != 0) {
        *why = "out of memory starting TLS to the backend";
        return GW_E_NOMEM;
    }
    return gw_tls_conn_handshake_step(tls, stream, why) < 0 ? GW_E_TLS : GW_OK;
}

/* ---- requests ---- */

void gw_h1conn_request(gw_h1conn_t *c, const gw_h1conn_req_ops_t *ops, void *ud,
                       const uint8_t *head, size_t head_len, int is_chunked, int is_head_method)
{
    c->state = GW_H1CONN_BUSY;
    c->req_ops = ops;
    c->ud = ud;
    c->head = head;
    c->head_len = head_len;
    c->is_chunked = is_chunked;
    c->is_head_written = c->is_body_end = c->is_req_sent = 0;
    c->is_eof_pending = 0;
    c->is_any_written = 0;
    c->body_written = 0;
    c->resp_deadline_ms = 0;
    proto_h1_response_reset(&c->resp, is_head_method);
    uv_timer_stop(&c->timer);
    flush(c);
}

/* Ends the request with an error: the user learns it once, and the
 * connection is the owner's to close. */
static void fail(gw_h1conn_t *c, gw_err_t err, const char *why, int is_unsent)
{
    if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
        return;
    const gw_h1conn_req_ops_t *ops = c->req_ops;
    void *ud = c->ud;
    gw_h1conn_fail_t f = {
        .err = err,
        .why = why,
        .is_reused = c->nrequests > 0,
        .is_resp_started = c->resp.is_started,
        .is_unsent = is_unsent,
    };
    c->req_ops = NULL;
    c->ud = NULL;
    stop_reading(c);
    uv_timer_stop(&c->timer);
    ops->on_error(ud, &f);
}

void gw_h1conn_abort(gw_h1conn_t *c, gw_err_t err, const char *why)
{
    fail(c, err, why, 0);
}

static void add_buf(gw_h1conn_t *c, const void *base, size_t len)
{
    if (len > 0)
        c->wbufs[c->nwbufs++] = uv_buf_init((char *)base, (unsigned)len);
}

/*
 * Prepares the next write in c->wbufs: the head (once), then body bytes
 * framed as the head promised, then the chunked terminator. Body segments
 * move from the user to the connection (c->wbody) instead of being copied,
 * so the write owns its bytes whatever happens to the user; HTTPS gets one
 * buffer of records. Returns the bytes to write; 0 when nothing is pending
 * or on failure (then the request has failed).
 */
static size_t next_write(gw_h1conn_t *c)
{
    size_t head_len = c->is_head_written ? 0 : c->head_len;
    char *prefix = malloc(head_len + PROTO_CHUNK_LINE_MAX);
    if (prefix == NULL) {
        fail(c, GW_E_NOMEM, "out of memory writing to the backend", 0);
        return 0;
    }
    c->wbuf_alloc = prefix;
    int is_end = c->is_body_end;
    size_t body_len = 0;
    if (!is_end)
        body_len = c->req_ops->take_body(c->ud, &c->wbody, MAX_BODY_PER_WRITE,
                                         GW_H1CONN_IOV_MAX - 3, &is_end);
    int is_last = is_end && !c->is_body_end;
    if (head_len == 0 && body_len == 0 && !is_last) {
        release_write(c);
        return 0;
    }
    c->is_body_end = is_end;
    /* The last chunk, with the user's trailer fields copied in: the write
     * owns every byte it sends. */
    const char *last = PROTO_CHUNK_LAST;
    size_t last_len = PROTO_CHUNK_LAST_LEN;
    if (is_last && c->is_chunked && c->req_ops->take_trailers != NULL) {
        const proto_header_t *tf = NULL;
        size_t ntf = c->req_ops->take_trailers(c->ud, &tf);
        if (ntf > 0) {
            size_t off = head_len + PROTO_CHUNK_LINE_MAX;
            char *grown = realloc(prefix, off + proto_chunk_last_size(tf, ntf));
            if (grown == NULL) {
                release_write(c);
                fail(c, GW_E_NOMEM, "out of memory writing to the backend", 0);
                return 0;
            }
            c->wbuf_alloc = prefix = grown;
            last = prefix + off;
            last_len = proto_chunk_last_write(prefix + off, tf, ntf);
        }
    }
    memcpy(prefix, c->head, head_len);
    size_t prefix_len = head_len;
    if (body_len > 0 && c->is_chunked)
        prefix_len += proto_chunk_size_line(prefix + prefix_len, body_len);
    add_buf(c, prefix, prefix_len);
    proto_slice_t sl[GW_H1CONN_IOV_MAX];
    size_t n = proto_buf_slices(&c->wbody, sl, GW_H1CONN_IOV_MAX - 3);
    for (size_t i = 0; i < n; i++)
        add_buf(c, sl[i].base, sl[i].len);
    if (body_len > 0 && c->is_chunked)
        add_buf(c, PROTO_CHUNK_CRLF, 2);
    if (is_last && c->is_chunked)
        add_buf(c, last, last_len);
    c->is_head_written = 1;
    c->wbuf_body_bytes = body_len;
    if (is_last) {
        c->is_req_sent = 1;
        c->resp_deadline_ms = now_ms(c) + c->cfg->response_timeout_ms;
    }
    size_t total = 0;
    for (size_t i = 0; i < c->nwbufs; i++)
        total += c->wbufs[i].len;
    if (total == 0) { /* only the end of a body already sent whole */
        release_write(c);
        return 0;
    }
    if (!c->is_tls)
        return total;

    for (size_t i = 0; i < c->nwbufs; i++) {
        if (gw_tls_conn_write(&c->tls, (const uint8_t *)c->wbufs[i].base, c->wbufs[i].len) != 0) {
            release_write(c);
            fail(c, GW_E_WRITE, "TLS write to the backend failed", 0);
            return 0;
        }
    }
    release_write(c);
    size_t pending = gw_tls_conn_pending(&c->tls);
    char *sealed = malloc(pending ? pending : 1);
    if (sealed == NULL) {
        fail(c, GW_E_NOMEM, "out of memory writing to the backend", 0);
        return 0;
    }
    c->wbuf_alloc = sealed;
    size_t len = gw_tls_conn_take(&c->tls, (uint8_t *)sealed, pending);
    add_buf(c, sealed, len);
    return len;
}

static void fail_write(gw_h1conn_t *c, int uv_err)
{
    char why[96];
    snprintf(why, sizeof(why), "write to backend failed: %s", uv_strerror(uv_err));
    /* Nothing was read back and the request's first write failed: the
     * backend has none of it. */
    int is_unsent = !c->resp.is_started && !c->is_any_written;
    fail(c, GW_E_WRITE, why, is_unsent);
}

/* A write went out whole. Returns 1 when the next may follow. */
static int write_completed(gw_h1conn_t *c)
{
    if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
        return 0;
    if (c->is_eof_pending) {
        fail(c, GW_E_CLOSED_EARLY, "backend closed the connection before responding", 0);
        return 0;
    }
    size_t n = c->wbuf_body_bytes;
    c->wbuf_body_bytes = 0;
    c->is_any_written = 1;
    c->body_written += n;
    if (n > 0) {
        c->req_ops->on_body_written(c->ud, n);
        if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
            return 0;
    }
    return 1;
}

static void write_pending(gw_h1conn_t *c)
{
    for (;;) {
        if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL || c->is_writing || c->is_req_sent)
            return;
        size_t len = next_write(c);
        if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
            return; /* failed while preparing */
        if (len == 0)
            return;
        /* Most writes complete at once: uv_try_write spares the request,
         * its callback a loop turn later, and libuv's poll update. */
        int n = uv_try_write((uv_stream_t *)&c->tcp, c->wbufs, (unsigned)c->nwbufs);
        if (n >= 0 && (size_t)n == len) {
            release_write(c);
            if (!write_completed(c))
                return;
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            release_write(c);
            fail_write(c, n);
            return;
        }
        size_t done = n > 0 ? (size_t)n : 0, k = 0;
        while (k < c->nwbufs && done >= c->wbufs[k].len)
            done -= c->wbufs[k++].len;
        c->wbufs[k].base += done;
        c->wbufs[k].len -= done;
        int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->wbufs + k, (unsigned)(c->nwbufs - k),
                          on_write);
        if (rv != 0) {
            release_write(c);
            fail_write(c, rv);
            return;
        }
        c->is_writing = 1;
        return;
    }
}

/* Writes what is pending, then sets the clock for what it waits on now. */
static void flush(gw_h1conn_t *c)
{
    write_pending(c);
    if (c->state == GW_H1CONN_BUSY && c->req_ops != NULL)
        arm_timer(c);
}

static void on_flush_task(gw_task_t *t)
{
    flush(proto_container_of(t, gw_h1conn_t, flush_task));
}

void gw_h1conn_body_ready(gw_h1conn_t *c)
{
    if (c->state == GW_H1CONN_BUSY)
        gw_ctx_defer(c->w, &c->flush_task);
}

static void on_write(uv_write_t *req, int status)
{
    gw_h1conn_t *c = req->data;
    release_write(c);
    c->is_writing = 0;
    if (c->state != GW_H1CONN_BUSY)
        return;
    if (status != 0) {
        fail_write(c, status);
        return;
    }
    if (write_completed(c))
        flush(c);
}

/* ---- responses ---- */

/* nginx's keep-alive checklist, the connection's half of it: the response
 * said it may carry another, nothing was left unread or unwritten. */
static int can_reuse(const gw_h1conn_t *c, int has_extra_bytes)
{
    return proto_h1_response_can_reuse(&c->resp) && !has_extra_bytes && c->is_req_sent &&
           !c->is_writing;
}

static void response_complete(gw_h1conn_t *c, int has_extra_bytes)
{
    const gw_h1conn_req_ops_t *ops = c->req_ops;
    void *ud = c->ud;
    int is_reusable = can_reuse(c, has_extra_bytes);
    c->req_ops = NULL;
    c->ud = NULL;
    c->nrequests++;
    c->state = GW_H1CONN_READY;
    c->is_read_paused = 0;
    uv_timer_stop(&c->timer);
    if (!is_reusable)
        stop_reading(c);
    ops->on_done(ud, is_reusable);
}

static void on_end(gw_h1conn_t *c, ssize_t err)
{
    char why[128];
    if (c->state == GW_H1CONN_CONNECTING) {
        connected(c, GW_E_TLS, "backend closed the connection during the TLS handshake");
        return;
    }
    if (c->state == GW_H1CONN_READY) {
        stop_reading(c);
        c->owner_ops->on_idle_end(c, "closed by the server");
        return;
    }
    if (c->state != GW_H1CONN_BUSY)
        return;
    if (!c->resp.is_started && c->is_writing && c->nrequests > 0) {
        /* A reused connection ended while our write is in flight: whether
         * the server got any of the request is the write's to say. */
        stop_reading(c);
        c->is_eof_pending = 1;
        return;
    }
    if (!c->resp.is_started) {
        snprintf(why, sizeof(why), "backend closed the connection before responding (%s)",
                 uv_strerror((int)err));
        fail(c, GW_E_CLOSED_EARLY, why, 0);
        return;
    }
    if (err == UV_EOF && proto_h1_response_finish(&c->resp) == 0 && c->resp.is_complete) {
        response_complete(c, 0);
        return;
    }
    snprintf(why, sizeof(why), "backend closed the connection mid-response (%s)",
             uv_strerror((int)err));
    fail(c, GW_E_CLOSED_MID, why, 0);
}

static void on_plaintext(gw_h1conn_t *c, const uint8_t *data, size_t len)
{
    if (c->state == GW_H1CONN_READY) {
        /* Bytes on an idle connection: the server is out of sync; it must
         * not carry a request. */
        stop_reading(c);
        c->owner_ops->on_idle_end(c, "bytes from the server while idle");
        return;
    }
    if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
        return;
    ssize_t consumed = proto_h1_response_feed(&c->resp, data, len);
    if (c->state != GW_H1CONN_BUSY || c->req_ops == NULL)
        return; /* a callback failed the request */
    if (consumed < 0) {
        char why[160];
        snprintf(why, sizeof(why), "invalid response from backend: %s",
                 c->resp.why != NULL ? c->resp.why : proto_strerror((int)consumed));
        fail(c, consumed == PROTO_E_CALLBACK ? GW_E_FRONTEND : GW_E_BAD_RESPONSE, why, 0);
        return;
    }
    if (c->resp.is_complete) {
        response_complete(c, (size_t)consumed < len);
        return;
    }
    arm_timer(c);
}

static void on_tls_bytes(gw_h1conn_t *c, const uint8_t *data, size_t len)
{
    if (gw_tls_conn_put_cipher(&c->tls, data, len) != 0) {
        on_end(c, UV_ENOMEM);
        return;
    }
    if (!c->is_tls_ready) {
        const char *why = NULL;
        int rv = gw_tls_conn_handshake_step(&c->tls, (uv_stream_t *)&c->tcp, &why);
        if (rv < 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "TLS handshake with the backend failed: %s", why);
            connected(c, GW_E_TLS, msg);
            return;
        }
        if (rv == 0)
            return;
        c->is_tls_ready = 1;
        connected(c, GW_OK, NULL);
        if (c->state == GW_H1CONN_CLOSED)
            return;
    }
    uint8_t plain[16 * 1024];
    for (;;) {
        int n = gw_tls_conn_read(&c->tls, plain, sizeof(plain));
        if (n < 0) {
            on_end(c, UV_EOF);
            return;
        }
        if (n == 0)
            break;
        on_plaintext(c, plain, (size_t)n);
        if (c->state == GW_H1CONN_CLOSED || !c->is_reading)
            return;
    }
    write_tls_pending(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_h1conn_t *c = stream->data;
    if (nread == 0 || c->state == GW_H1CONN_CLOSED)
        return;
    if (nread < 0) {
        on_end(c, nread);
        return;
    }
    if (c->is_tls)
        on_tls_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        on_plaintext(c, (const uint8_t *)buf->base, (size_t)nread);
}

void gw_h1conn_pause_read(gw_h1conn_t *c)
{
    if (c->state != GW_H1CONN_BUSY)
        return;
    stop_reading(c);
    c->is_read_paused = 1;
    arm_timer(c);
}

void gw_h1conn_resume_read(gw_h1conn_t *c)
{
    if (!c->is_read_paused || c->state != GW_H1CONN_BUSY)
        return;
    c->is_read_paused = 0;
    if (start_reading(c) != 0) {
        fail(c, GW_E_CLOSED_MID, "cannot read from the backend", 0);
        return;
    }
    arm_timer(c);
}

void gw_h1conn_set_idle(gw_h1conn_t *c, uint64_t timeout_ms)
{
    if (c->state != GW_H1CONN_READY)
        return;
    if (start_reading(c) != 0) {
        c->owner_ops->on_idle_end(c, "cannot read");
        return;
    }
    uv_timer_start(&c->timer, on_timer, timeout_ms > 0 ? timeout_ms : 1, 0);
}

static void on_timer(uv_timer_t *timer)
{
    gw_h1conn_t *c = timer->data;
    uint64_t ms;
    switch (c->state) {
    case GW_H1CONN_CONNECTING:
        connected(c, GW_E_CONNECT_TIMEOUT, "connect to backend timed out");
        break;
    case GW_H1CONN_READY:
        c->owner_ops->on_idle_end(c, "idle timeout");
        break;
    case GW_H1CONN_BUSY: {
        gw_err_t err = timer_kind(c, &ms);
        const char *why = err == GW_E_CLIENT_WRITE_TIMEOUT  ? "client stopped reading the response"
                          : err == GW_E_CLIENT_READ_TIMEOUT ? "request body stalled"
                          : err == GW_E_RESPONSE_TIMEOUT    ? "backend response timed out"
                          : c->resp.head_done               ? "backend stalled mid-response"
                                                            : "backend stopped taking the request";
        fail(c, err, why, 0);
        break;
    }
    default:
        break;
    }
}

uint64_t gw_h1conn_idle_timeout(const gw_h1conn_t *c, uint64_t dflt)
{
    /* The server may keep idle connections for less than our idle timeout:
     * close ours first, with a margin, so we never reuse one it is
     * closing. */
    int secs = c->resp.keep_alive_timeout_s;
    if (secs < 0)
        return dflt;
    uint64_t ms = (uint64_t)secs * 1000;
    uint64_t margin = ms / 2 < 1000 ? ms / 2 : 1000;
    ms -= margin;
    if (ms == 0)
        ms = 1;
    return ms < dflt ? ms : dflt;
}

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_h1conn_t *c = ud;
    return c->req_ops != NULL ? c->req_ops->on_head(c->ud, status, f, n) : PROTO_E_CALLBACK;
}

static int resp_on_body(void *ud, const uint8_t *data, size_t len)
{
    gw_h1conn_t *c = ud;
    return c->req_ops != NULL ? c->req_ops->on_body(c->ud, data, len) : PROTO_E_CALLBACK;
}

static int resp_on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    gw_h1conn_t *c = ud;
    return c->req_ops != NULL ? c->req_ops->on_trailers(c->ud, f, n) : PROTO_E_CALLBACK;
}

static int resp_on_info(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_h1conn_t *c = ud;
    if (c->req_ops == NULL)
        return PROTO_E_CALLBACK;
    return c->req_ops->on_info != NULL ? c->req_ops->on_info(c->ud, status, f, n) : 0;
}
