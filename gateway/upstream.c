#include "gateway/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/exchange.h"
#include "gateway/log.h"
#include "gateway/worker.h"

/* A single upstream write carries at most this much request body, so one
 * fast client cannot make one write allocation arbitrarily large. */
#define MAX_BODY_PER_WRITE (256 * 1024)

/* Reserved connections (priority_reserved_connections) serve urgency 0..2:
 * what a browser marks as render-blocking (HTML, CSS, fonts). */
#define URGENT_MAX 2

static void on_connect(uv_connect_t *req, int status);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_timer(uv_timer_t *timer);
static void on_close(uv_handle_t *handle);
static void pool_dispatch(gw_pool_t *p);

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

/* The scheduler's view of the RFC 7540 tree: a waiting parent goes first. */
static gw_sched_entry_t *sched_parent_of(gw_sched_entry_t *e)
{
    gw_exchange_t *x = gw_container_of(e, gw_exchange_t, sched);
    if (x->fe->parent_of == NULL)
        return NULL;
    gw_exchange_t *parent = x->fe->parent_of(x);
    return parent != NULL && parent->pool == x->pool ? &parent->sched : NULL;
}

int gw_pool_init(gw_pool_t *p, gw_worker_t *w, const cfg_backend_t *bcfg)
{
    const cfg_addr_t *addr = &bcfg->servers[0].addr;
    memset(p, 0, sizeof(*p));
    p->w = w;
    p->cfg = w->cfg;
    p->bcfg = bcfg;
    gw_queue_init(&p->idle);
    gw_queue_init(&p->all);
    if (gw_sched_init(&p->sched,
                      bcfg->scheduling == CFG_SCHED_FIFO ? GW_SCHED_FIFO : GW_SCHED_PRIORITY,
                      bcfg->priority_max_wait_ms, sched_parent_of) != 0)
        return UV_ENOMEM;
    snprintf(p->name, sizeof(p->name), "%s:%u", addr->host, addr->port);

    /* Resolved once before the loop runs, so blocking here is harmless;
     * periodic re-resolution on the loop is the backend group's job. */
    char port[8];
    snprintf(port, sizeof(port), "%u", addr->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    uv_getaddrinfo_t req;
    int rv = uv_getaddrinfo(&w->loop, &req, NULL, addr->host, port, &hints);
    if (rv != 0) {
        GW_LOG_ERROR("backend %s: cannot resolve: %s", p->name, uv_strerror(rv));
        return rv;
    }
    memcpy(&p->addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static void upconn_start_timer(gw_upconn_t *u, uint64_t ms)
{
    uv_timer_start(&u->timer, on_timer, ms, 0);
}

/* Closes u. keep_slot leaves the pool's count alone because the caller
 * opens a replacement at once; otherwise waiting exchanges get the slot. */
static void upconn_close(gw_upconn_t *u, int keep_slot)
{
    if (u->state == GW_UP_CLOSING)
        return;
    gw_pool_t *p = u->pool;
    if (u->x != NULL)
        gw_exchange_detach(u->x);
    if (u->state == GW_UP_IDLE)
        p->nidle--;
    gw_queue_remove(&u->idle_node);
    gw_queue_remove(&u->all_node);
    u->state = GW_UP_CLOSING;
    uv_close((uv_handle_t *)&u->tcp, on_close);
    uv_close((uv_handle_t *)&u->timer, on_close);
    if (!keep_slot) {
        p->nconns--;
        pool_dispatch(p);
    }
}

void gw_upconn_close(gw_upconn_t *u)
{
    upconn_close(u, 0);
}

static void on_close(uv_handle_t *handle)
{
    gw_upconn_t *u = handle->data;
    if (--u->nhandles_open > 0)
        return;
    proto_h1_response_free(&u->resp);
    free(u);
}

static void upconn_assign(gw_upconn_t *u, gw_exchange_t *x)
{
    u->x = x;
    x->upconn = u;
    u->state = GW_UP_BUSY;
    uv_timer_stop(&u->timer);
    proto_h1_response_reset(&u->resp, x->is_head_method);
    gw_upconn_flush(u);
}

/* Opens a connection that carries x once connected. Counted against the
 * limit by the caller. */
static void upconn_open(gw_pool_t *p, gw_exchange_t *x)
{
    gw_upconn_t *u = calloc(1, sizeof(*u));
    if (u == NULL || proto_h1_response_init(&u->resp, &resp_cbs, u,
                                            p->cfg->max_header_list_size) != 0) {
        free(u);
        p->nconns--;
        gw_exchange_fail(x, 502, "out of memory opening a backend connection", 0);
        return;
    }
    u->pool = p;
    gw_queue_init(&u->idle_node);
    gw_queue_insert_tail(&p->all, &u->all_node);
    uv_tcp_init(&p->w->loop, &u->tcp);
    uv_timer_init(&p->w->loop, &u->timer);
    u->tcp.data = u->timer.data = u->connect_req.data = u->wreq.data = u;
    u->nhandles_open = 2;
    u->state = GW_UP_CONNECTING;
    u->x = x;
    x->upconn = u;
    p->nopened++;
    uv_tcp_nodelay(&u->tcp, 1);

    int rv = uv_tcp_connect(&u->connect_req, &u->tcp, (const struct sockaddr *)&p->addr,
                            on_connect);
    if (rv != 0) {
        gw_exchange_fail(x, 502, uv_strerror(rv), 0);
        return;
    }
    upconn_start_timer(u, p->bcfg->connect_timeout_ms);
}

/* The most urgent waiting exchange that may take a connection now: once
 * only the reserved connections are left, only urgency 0..2 may. */
static gw_exchange_t *pool_next(gw_pool_t *p)
{
    uint32_t nbusy = p->nconns - p->nidle;
    uint32_t reserved = p->bcfg->priority_reserved_connections;
    uint32_t max = p->bcfg->max_connections;
    int max_urgency = reserved > 0 && nbusy + reserved >= max ? URGENT_MAX : GW_SCHED_LEVELS - 1;
    gw_sched_entry_t *e = gw_sched_dequeue(&p->sched, gw_worker_now_ms(p->w), max_urgency);
    return e != NULL ? gw_container_of(e, gw_exchange_t, sched) : NULL;
}

static void pool_dispatch(gw_pool_t *p)
{
    /* A synchronous failure inside the loop closes a connection, which
     * dispatches again; the outer loop goes on instead of recursing. */
    if (p->is_dispatching)
        return;
    p->is_dispatching = 1;
    while (gw_sched_len(&p->sched) > 0) {
        gw_queue_t *idle = gw_queue_first(&p->idle);
        if (idle == NULL && p->nconns >= p->bcfg->max_connections)
            break;
        gw_exchange_t *x = pool_next(p);
        if (x == NULL)
            break;
        if (idle != NULL) {
            gw_upconn_t *u = gw_container_of(idle, gw_upconn_t, idle_node);
            gw_queue_remove(idle);
            p->nidle--;
            upconn_assign(u, x);
        } else {
            p->nconns++;
            upconn_open(p, x);
        }
    }
    p->is_dispatching = 0;
}

void gw_pool_submit(gw_pool_t *p, gw_exchange_t *x)
{
    if (gw_sched_enqueue(&p->sched, &x->sched, gw_worker_now_ms(p->w)) != 0) {
        gw_exchange_fail(x, 503, "out of memory queueing the request", 0);
        return;
    }
    pool_dispatch(p);
}

void gw_pool_reprioritize(gw_pool_t *p, gw_exchange_t *x, int urgency, int weight)
{
    gw_sched_update(&p->sched, &x->sched, urgency, weight);
}

void gw_pool_retry(gw_pool_t *p, gw_upconn_t *u, gw_exchange_t *x)
{
    if (u != NULL)
        upconn_close(u, 1);
    else
        p->nconns++;
    upconn_open(p, x);
}

void gw_pool_cancel(gw_pool_t *p, gw_exchange_t *x)
{
    gw_sched_remove(&p->sched, &x->sched);
}

void gw_pool_close_idle(gw_pool_t *p)
{
    gw_queue_t *n;
    while ((n = gw_queue_first(&p->idle)) != NULL)
        gw_upconn_close(gw_container_of(n, gw_upconn_t, idle_node));
}

void gw_pool_close_all(gw_pool_t *p)
{
    gw_queue_t *n;
    while ((n = gw_queue_first(&p->all)) != NULL) {
        gw_upconn_t *u = gw_container_of(n, gw_upconn_t, all_node);
        gw_exchange_t *x = u->x;
        if (x != NULL)
            gw_exchange_fail(x, 503, "gateway shutting down", 0);
        else
            gw_upconn_close(u);
    }
    gw_sched_free(&p->sched);
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
        char why[128];
        snprintf(why, sizeof(why), "backend unreachable: %s", uv_strerror(status));
        if (u->x != NULL)
            gw_exchange_fail(u->x, 502, why, 0);
        else
            gw_upconn_close(u);
        return;
    }
    uv_timer_stop(&u->timer);
    upconn_start_reading(u);
    gw_exchange_t *x = u->x;
    if (x == NULL) {
        gw_upconn_close(u);
        return;
    }
    upconn_assign(u, x);
}

/* Request bytes go out as one gathered write: the head (once), then body
 * bytes framed as the head promised, then the chunked terminator. */
void gw_upconn_flush(gw_upconn_t *u)
{
    gw_exchange_t *x = u->x;
    if (x == NULL || u->is_writing || u->state != GW_UP_BUSY || x->is_req_sent)
        return;

    size_t head_len = x->is_req_head_written ? 0 : x->head.len;
    size_t body_len = proto_buf_len(&x->req_body);
    if (body_len > MAX_BODY_PER_WRITE)
        body_len = MAX_BODY_PER_WRITE;
    int is_last = x->is_req_end && body_len == proto_buf_len(&x->req_body);
    int is_chunked = x->head.is_chunked;
    size_t total = head_len + body_len + (is_chunked ? 32 : 0);
    if (head_len == 0 && body_len == 0 && !is_last)
        return;

    char *buf = malloc(total ? total : 1);
    if (buf == NULL) {
        gw_exchange_fail(x, 502, "out of memory writing to the backend", 0);
        return;
    }
    size_t off = 0;
    memcpy(buf, x->head.data, head_len);
    off += head_len;
    if (body_len > 0 && is_chunked)
        off += (size_t)snprintf(buf + off, 20, "%zx\r\n", body_len);
    size_t copied = proto_buf_read(&x->req_body, buf + off, body_len);
    off += copied;
    if (body_len > 0 && is_chunked) {
        memcpy(buf + off, "\r\n", 2);
        off += 2;
    }
    if (is_last && is_chunked) {
        memcpy(buf + off, "0\r\n\r\n", 5);
        off += 5;
    }

    x->is_req_head_written = 1;
    x->req_body_written += copied;
    if (is_last)
        x->is_req_sent = 1;
    u->wbuf = uv_buf_init(buf, (unsigned)off);
    u->wbuf_body_bytes = copied;
    int rv = uv_write(&u->wreq, (uv_stream_t *)&u->tcp, &u->wbuf, 1, on_write);
    if (rv != 0) {
        free(buf);
        gw_exchange_fail(x, 502, uv_strerror(rv), u->nrequests > 0 && !u->resp.is_started);
        return;
    }
    u->is_writing = 1;
    if (is_last && !u->resp.is_started)
        upconn_start_timer(u, u->pool->bcfg->response_timeout_ms);
}

static void on_write(uv_write_t *req, int status)
{
    gw_upconn_t *u = req->data;
    free(u->wbuf.base);
    u->wbuf.base = NULL;
    u->is_writing = 0;
    if (u->state == GW_UP_CLOSING)
        return;
    gw_exchange_t *x = u->x;
    if (status != 0) {
        char why[128];
        snprintf(why, sizeof(why), "write to backend failed: %s", uv_strerror(status));
        if (x != NULL)
            gw_exchange_fail(x, 502, why, u->nrequests > 0 && !u->resp.is_started);
        else
            gw_upconn_close(u);
        return;
    }
    if (x == NULL)
        return;
    if (u->wbuf_body_bytes > 0)
        x->fe->on_req_body_written(x, u->wbuf_body_bytes);
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
           !u->is_writing && !u->pool->w->is_draining;
}

static void on_response_complete(gw_upconn_t *u, int has_extra_bytes)
{
    gw_exchange_t *x = u->x;
    gw_pool_t *p = u->pool;
    int is_reusable = upconn_can_reuse(u, x, has_extra_bytes);
    gw_exchange_detach(x);
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
     * through the same reserved-capacity rule as every other dispatch. */
    u->state = GW_UP_IDLE;
    gw_queue_insert_head(&p->idle, &u->idle_node);
    p->nidle++;
    upconn_start_timer(u, p->bcfg->idle_timeout_ms);
    pool_dispatch(p);
}

/* A reused connection that dies before any response byte most likely hit the
 * backend's keep-alive timeout: the request was not processed. */
static int is_stale_reuse_failure(const gw_upconn_t *u)
{
    return u->nrequests > 0 && !u->resp.is_started;
}

static void on_read_error(gw_upconn_t *u, ssize_t nread)
{
    gw_exchange_t *x = u->x;
    char why[160];
    if (!u->resp.is_started) {
        snprintf(why, sizeof(why), "backend closed the connection before responding (%s)",
                 uv_strerror((int)nread));
        gw_exchange_fail(x, 502, why, is_stale_reuse_failure(u));
        return;
    }
    if (nread == UV_EOF && proto_h1_response_finish(&u->resp) == 0 && u->resp.is_complete) {
        on_response_complete(u, 0);
        return;
    }
    snprintf(why, sizeof(why), "backend closed the connection mid-response (%s)",
             uv_strerror((int)nread));
    gw_exchange_fail(x, 502, why, 0);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_upconn_t *u = stream->data;
    if (nread == 0)
        return;
    if (u->state == GW_UP_IDLE || u->x == NULL) {
        /* Bytes or EOF on an idle connection: the backend is closing it or
         * is out of sync; either way it must not carry a request. */
        gw_upconn_close(u);
        return;
    }
    if (u->state != GW_UP_BUSY)
        return;
    if (nread < 0) {
        on_read_error(u, nread);
        return;
    }

    gw_exchange_t *x = u->x;
    ssize_t consumed = proto_h1_response_feed(&u->resp, (const uint8_t *)buf->base, (size_t)nread);
    if (consumed < 0) {
        char why[160];
        snprintf(why, sizeof(why), "invalid response from backend: %s",
                 u->resp.why != NULL ? u->resp.why : proto_strerror((int)consumed));
        gw_exchange_fail(x, 502, why, 0);
        return;
    }
    if (u->resp.is_complete) {
        on_response_complete(u, consumed < nread);
        return;
    }
    if (proto_buf_len(&x->resp_body) >= u->pool->cfg->response_buffer_size) {
        /* The client is slower than the backend: stop reading until the
         * frontend has drained the buffer (gw_upconn_resume_read). The
         * backend is not late meanwhile, so its timer stops too. */
        uv_read_stop(stream);
        uv_timer_stop(&u->timer);
        u->is_reading = 0;
        u->is_read_paused = 1;
    } else {
        /* Before the head the backend is thinking (response timeout); after
         * it, silence between body bytes is the io timeout. */
        upconn_start_timer(u, u->resp.head_done ? u->pool->bcfg->io_timeout_ms
                                                : u->pool->bcfg->response_timeout_ms);
    }
}

void gw_upconn_resume_read(gw_upconn_t *u)
{
    if (!u->is_read_paused || u->state != GW_UP_BUSY)
        return;
    u->is_read_paused = 0;
    upconn_start_reading(u);
    upconn_start_timer(u, u->pool->bcfg->io_timeout_ms);
}

static void on_timer(uv_timer_t *timer)
{
    gw_upconn_t *u = timer->data;
    switch (u->state) {
    case GW_UP_CONNECTING:
        gw_exchange_fail(u->x, 502, "connect to backend timed out", 0);
        break;
    case GW_UP_BUSY:
        gw_exchange_fail(u->x, 504, "backend response timed out", 0);
        break;
    case GW_UP_IDLE:
        gw_upconn_close(u);
        break;
    default:
        break;
    }
}

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_upconn_t *u = ud;
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
