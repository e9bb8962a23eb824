#include "gateway/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "gateway/core/metrics.h"
#include "gateway/ops/access_log.h"
#include "proto/link.h"
#include "proto/retry.h"

static void on_conn(gw_pool_waiter_t *wt, gw_h1conn_t *c, gw_server_t *s);
static void on_wait_fail(gw_pool_waiter_t *wt, gw_err_t err, const char *why, gw_server_t *s);
static gw_pool_waiter_t *waiter_parent_of(gw_pool_waiter_t *wt);

static const gw_pool_waiter_ops_t waiter_ops = {on_conn, on_wait_fail, waiter_parent_of};

static int conn_on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int conn_on_body(void *ud, const uint8_t *data, size_t len);
static int conn_on_trailers(void *ud, const proto_header_t *f, size_t n);
static void conn_on_done(void *ud, int is_reusable);
static void conn_on_error(void *ud, const gw_h1conn_fail_t *f);
static size_t conn_take_body(void *ud, proto_buf_t *dst, size_t max, size_t max_segs, int *is_end);
static void conn_on_body_written(void *ud, size_t n);

static int conn_on_info(void *ud, int status, const proto_header_t *f, size_t n);
static size_t conn_take_trailers(void *ud, const proto_header_t **f);

static const gw_h1conn_req_ops_t conn_ops = {
    .on_head = conn_on_head,
    .on_body = conn_on_body,
    .on_trailers = conn_on_trailers,
    .on_done = conn_on_done,
    .on_error = conn_on_error,
    .take_body = conn_take_body,
    .on_body_written = conn_on_body_written,
    .on_info = conn_on_info,
    .take_trailers = conn_take_trailers,
};

const char *gw_exchange_state_str(int state)
{
    static const char *const names[] = {"new",       "queued", "connecting", "sending",
                                        "receiving", "done",   "failed"};
    return state >= 0 && state <= GW_X_FAILED ? names[state] : "?";
}

_Static_assert(GW_E_COUNT <= GW_M_ERRORS_MAX, "gw_metrics_t needs a counter per gw_err");

static gw_exchange_t *of_waiter(gw_pool_waiter_t *wt)
{
    return proto_container_of(wt, gw_exchange_t, wait);
}

gw_exchange_t *gw_exchange_new(gw_ctx_t *w, const gw_frontend_ops_t *fe, void *fe_conn,
                               int32_t stream_id)
{
    gw_exchange_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->w = w;
    w->nexchanges++;
    x->fe = fe;
    x->fe_conn = fe_conn;
    x->stream_id = stream_id;
    x->start_ms = gw_ctx_now_ms(w);
    x->start_ns = uv_hrtime();
    x->metrics_protocol = gw_metrics_protocol(fe->protocol);
    if (x->metrics_protocol < GW_M_PROTOCOLS)
        gw_metrics_gauge_add(&w->metrics.client_streams[x->metrics_protocol], 1);
    x->head.content_length = -1;
    proto_queue_init(&x->fe_node);
    gw_pool_waiter_init(&x->wait, &waiter_ops, fe_conn);
    proto_buf_init(&x->req_body);
    proto_buf_init(&x->resp_body);
    proto_buf_init(&x->replay);
    x->is_replayable = 1;
    x->wait_ms = -1;
    return x;
}

/* ---- the end of an exchange ---- */

static void log_access(const gw_exchange_t *x)
{
    if (x->w->access_log == NULL)
        return;
    gw_access_record_t r = {
        .client_addr = x->client_addr,
        .client_port = x->client_port,
        .protocol = x->protocol,
        .tls_version = x->tls_version,
        .sni = x->sni,
        .stream_id = x->stream_id,
        .bytes_in = x->req_body_received,
        .queue_ms = x->wait_ms,
        .urgency = x->wait.sched.urgency,
        .is_reused = x->is_conn_reused,
        .retries = x->nretries,
        .cause = x->is_failed ? gw_err_name(x->err) : NULL,
        .status = x->is_refused ? 0 : x->resp_status,
        .bytes_out = x->resp_bytes,
        .duration_ms = gw_ctx_now_ms(x->w) - x->start_ms,
        .backend = x->pool != NULL ? x->pool->name : NULL,
        .server = x->server != NULL ? x->server->name : NULL,
        /* The status alone can mislead: the backend's may be logged while
         * the client saw the stream reset. */
        .outcome = x->is_refused       ? "refused"
                   : x->is_error_reply ? "error"
                   : x->is_failed      ? "reset"
                   : !x->is_resp_done  ? "cancelled"
                                       : "ok",
    };
    /* The request line's method and target, from the HTTP/1.1 head. */
    const char *end = x->head.data != NULL ? memchr(x->head.data, '\r', x->head.len) : NULL;
    if (end != NULL && end - x->head.data >= 9) {
        r.request_line = x->head.data;
        r.request_line_len = (int)(end - x->head.data) - 9; /* without " HTTP/1.1" */
        const char *sp = memchr(r.request_line, ' ', (size_t)r.request_line_len);
        if (sp != NULL) {
            r.method = r.request_line;
            r.method_len = (size_t)(sp - r.request_line);
            r.path = sp + 1;
            r.path_len = (size_t)(r.request_line + r.request_line_len - r.path);
        }
        /* The head always carries one host line, ours. */
        const char *host = strstr(end, "\r\nhost: ");
        const char *host_end = host != NULL ? strstr(host + 2, "\r\n") : NULL;
        if (host_end != NULL) {
            r.authority = host + 8;
            r.authority_len = (size_t)(host_end - r.authority);
        }
    }
    gw_access_log_write(x->w->access_log, &r);
}

/* Gives the borrowed connection back: reusable only after a clean end. */
static void drop_conn(gw_exchange_t *x, int is_reusable)
{
    gw_h1conn_t *c = x->conn;
    if (c == NULL)
        return;
    x->conn = NULL;
    gw_pool_release(x->pool, c, is_reusable);
}

/* One request ended: counted by backend, protocol and the status the
 * client got, with its duration; one that failed or was cancelled also by
 * its cause (the gw_err table's name). */
static void count_request(const gw_exchange_t *x)
{
    gw_metrics_t *m = &x->w->metrics;
    gw_metrics_backend_t *b = x->pool != NULL ? x->pool->metrics : &m->no_backend;
    int proto = gw_metrics_protocol(x->protocol);
    if (proto < GW_M_PROTOCOLS) {
        int status = x->is_refused ? 0 : x->resp_status;
        gw_metrics_inc(&b->requests[proto][gw_metrics_class(status)]);
        gw_metrics_observe(&b->request_duration, uv_hrtime() - x->start_ns);
    }
    gw_err_t cause = GW_OK;
    if (x->is_failed && x->err == GW_OK) /* the frontend refused the request itself */
        cause = x->resp_status == 431 ? GW_E_HEAD_TOO_LARGE : GW_E_BAD_REQUEST;
    else if (!x->is_failed && !x->is_resp_done)
        cause = GW_E_CLIENT_GONE; /* the access log's "cancelled" */
    if (cause != GW_OK)
        gw_metrics_inc(&m->errors[cause]);
    if (x->metrics_protocol < GW_M_PROTOCOLS)
        gw_metrics_gauge_add(&m->client_streams[x->metrics_protocol], -1);
}

void gw_exchange_free(gw_exchange_t *x)
{
    log_access(x);
    count_request(x);
    gw_pool_cancel(&x->wait);
    /* A connection still borrowed here is mid-exchange: what the backend
     * sends next belongs to a request nobody waits for. */
    drop_conn(x, 0);
    gw_tunnel_close(x->tunnel);
    proto_queue_remove(&x->fe_node);
    proto_h1_head_free(&x->head);
    proto_buf_free(&x->req_body);
    proto_buf_free(&x->resp_body);
    proto_buf_free(&x->replay);
    free(x->trailers);
    /* Only gw_exchange_start counts an exchange in its pool: a frontend may
     * set x->pool for a request it then refuses (400, 501). */
    if (x->pool != NULL && x->is_started)
        x->pool->nexchanges--;
    free(x->req_trailers);
    x->w->nexchanges--;
    free(x);
}

/* The one exit to the client for a failed exchange: its status before the
 * head, a reset after it, a refusal when nothing reached a backend and the
 * request may not be replayed (the client may, RFC 9113 8.7). */
static void tell_failure(gw_exchange_t *x, gw_err_t err, const char *why, int is_unsent)
{
    if (x->is_failed)
        return;
    const gw_err_info_t *info = gw_err_info(err);
    x->is_failed = 1;
    x->state = GW_X_FAILED;
    x->err = err;
    gw_metrics_inc(&x->w->metrics.errors[err < GW_E_COUNT ? err : GW_E_NOMEM]);
    int reply = x->is_resp_head_sent ? 0 : info->status;
    if (reply > 0 && is_unsent && !x->head.is_idempotent && info->is_server_fault) {
        reply = GW_STATUS_REFUSED;
        x->is_refused = 1;
    }
    if (reply > 0) {
        x->resp_status = reply;
        x->is_error_reply = 1;
    }
    const char *server = x->server != NULL ? x->server->name : "-";
    const char *backend = x->pool != NULL ? x->pool->name : "-";
    const char *what = reply > 0                    ? "answered with an error"
                       : reply == GW_STATUS_REFUSED ? "stream refused"
                                                    : "stream reset";
    /* Through an outage the same failure repeats per request: one line a
     * second per server (or backend) says it, with a count. */
    gw_log_limit_t *lim = x->server != NULL ? &x->server->log_limit
                          : x->pool != NULL ? &x->pool->log_limit
                                            : NULL;
    if (info->status < 500 || err == GW_E_CLIENT_WRITE_TIMEOUT || lim == NULL)
        GW_LOG_INFO("backend %s server %s stream %d: %s (%s)", backend, server, (int)x->stream_id,
                    why, what);
    else
        gw_log_limited(lim, gw_ctx_now_ms(x->w), CFG_LOG_WARN,
                       "backend %s server %s stream %d: %s (%s)", backend, server,
                       (int)x->stream_id, why, what);
    proto_buf_free(&x->resp_body);
    if (err == GW_E_ALL_DOWN || err == GW_E_QUEUE_FULL || err == GW_E_QUEUE_TIMEOUT)
        x->retry_after_s =
            err == GW_E_ALL_DOWN && x->pool != NULL ? gw_pool_retry_after(x->pool) : 1;
    x->fe->on_fail(x, reply, info->rst_code, why);
}

void gw_exchange_fail(gw_exchange_t *x, gw_err_t err, const char *why)
{
    gw_pool_cancel(&x->wait);
    drop_conn(x, 0);
    tell_failure(x, err, why, 0);
}

/* ---- request ---- */

/* Copies n fields into one allocation (the array, then the bytes), freed
 * with one free(). Returns NULL when out of memory. */
static proto_header_t *copy_fields(const proto_header_t *f, size_t n)
{
    size_t bytes = n * sizeof(proto_header_t);
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len;
    proto_header_t *copy = malloc(bytes ? bytes : 1);
    if (copy == NULL)
        return NULL;
    char *p = (char *)(copy + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, f[i].name, f[i].name_len);
        copy[i].name = p;
        copy[i].name_len = f[i].name_len;
        p += f[i].name_len;
        memcpy(p, f[i].value, f[i].value_len);
        copy[i].value = p;
        copy[i].value_len = f[i].value_len;
        p += f[i].value_len;
    }
    return copy;
}

static int is_over_body_limit(const gw_exchange_t *x, uint64_t size)
{
    uint64_t max = x->pool->bcfg->max_request_body;
    return max > 0 && size > max;
}

static void submit(gw_exchange_t *x)
{
    x->state = GW_X_QUEUED;
    if (x->queued_ms == 0)
        x->queued_ms = gw_ctx_now_ms(x->w);
    gw_err_t err = gw_pool_submit(x->pool, &x->wait);
    if (err != GW_OK)
        tell_failure(x, err,
                     err == GW_E_ALL_DOWN     ? "every server of the backend is down"
                     : err == GW_E_QUEUE_FULL ? "backend queue is full"
                     : err == GW_E_SHUTDOWN   ? "gateway shutting down"
                                              : "out of memory queueing the request",
                     0);
}

void gw_exchange_start(gw_exchange_t *x, gw_pool_t *pool)
{
    x->pool = pool;
    pool->nexchanges++;
    x->is_started = 1;
    x->retries_left = pool->bcfg->retries;
    if (x->head.content_length > 0 && is_over_body_limit(x, (uint64_t)x->head.content_length)) {
        pool->stats.body_too_large++;
        tell_failure(x, GW_E_BODY_TOO_LARGE, "request body over max_request_body", 0);
        return;
    }
    submit(x);
}

void gw_exchange_reprioritize(gw_exchange_t *x, int urgency, int weight)
{
    gw_pool_reprioritize(&x->wait, urgency, weight);
}

int gw_exchange_req_body(gw_exchange_t *x, const uint8_t *data, size_t len)
{
    /* Once the response is complete or failed nobody will write these. */
    if (x->state == GW_X_FAILED)
        return 0;
    if (x->tunnel != NULL) {
        int rv = gw_tunnel_write(x->tunnel, data, len);
        x->req_body_received += rv == 1 ? len : 0;
        return rv;
    }
    if (x->state == GW_X_DONE)
        return 0;
    x->req_body_received += len;
    gw_metrics_add(&x->w->metrics.received_bytes, len);
    if (is_over_body_limit(x, x->req_body_received)) {
        x->pool->stats.body_too_large++;
        gw_exchange_fail(x, GW_E_BODY_TOO_LARGE, "request body over max_request_body");
        return 0;
    }
    if (proto_buf_append(&x->req_body, data, len) != 0)
        return PROTO_E_NOMEM;
    if (x->conn != NULL)
        gw_h1conn_body_ready(x->conn);
    return 1;
}

int gw_exchange_req_trailers(gw_exchange_t *x, const proto_header_t *f, size_t n,
                             const char *reserved_name)
{
    if (x->state == GW_X_DONE || x->state == GW_X_FAILED || n == 0)
        return 0;
    if (!x->head.is_chunked) {
        /* Content-Length framing went out with the head: HTTP/1.1 has no
         * place for trailers after a fixed-length body. */
        GW_LOG_DEBUG("client %s:%d stream %d: %zu request trailer fields dropped (the request "
                     "has a content-length)",
                     x->client_addr, x->client_port, (int)x->stream_id, n);
        return 0;
    }
    proto_header_t stack[32];
    proto_header_t *kept = n <= 32 ? stack : malloc(n * sizeof(*kept));
    if (kept == NULL)
        return PROTO_E_NOMEM;
    const char *why = NULL;
    int k =
        proto_h1_request_trailers(f, n, reserved_name, x->w->cfg->max_header_list_size, kept, &why);
    int rv = 0;
    if (k < 0) {
        gw_exchange_fail(x, k == PROTO_E_TOO_LARGE ? GW_E_HEAD_TOO_LARGE : GW_E_BAD_REQUEST,
                         why != NULL ? why : "invalid request trailers");
    } else if (k > 0) {
        proto_header_t *copy = copy_fields(kept, (size_t)k);
        if (copy == NULL) {
            rv = PROTO_E_NOMEM;
        } else {
            free(x->req_trailers);
            x->req_trailers = copy;
            x->nreq_trailers = (size_t)k;
        }
    }
    if (kept != stack)
        free(kept);
    return rv;
}

static size_t conn_take_trailers(void *ud, const proto_header_t **f)
{
    gw_exchange_t *x = ud;
    /* Kept, not moved: a replayed request sends them again. */
    *f = x->req_trailers;
    return x->nreq_trailers;
}

void gw_exchange_req_end(gw_exchange_t *x)
{
    x->is_req_end = 1;
    if (x->conn != NULL)
        gw_h1conn_body_ready(x->conn);
    if (x->tunnel != NULL)
        gw_tunnel_shutdown(x->tunnel);
}

static gw_pool_waiter_t *waiter_parent_of(gw_pool_waiter_t *wt)
{
    gw_exchange_t *x = of_waiter(wt);
    if (x->fe->parent_of == NULL)
        return NULL;
    gw_exchange_t *parent = x->fe->parent_of(x);
    return parent != NULL ? &parent->wait : NULL;
}

static void on_conn(gw_pool_waiter_t *wt, gw_h1conn_t *c, gw_server_t *s)
{
    gw_exchange_t *x = of_waiter(wt);
    x->conn = c;
    x->server = s;
    x->attempt_ms = wt->attempt_started_ms;
    x->is_conn_reused = gw_h1conn_is_reused(c);
    if (x->wait_ms < 0)
        x->wait_ms = (int64_t)(gw_ctx_now_ms(x->w) - x->queued_ms);
    x->state = GW_X_SENDING;
    x->is_resp_paused = 0;
    x->req_body_taken = 0;
    x->req_body_acked = 0;
    gw_h1conn_request(c, &conn_ops, x, (const uint8_t *)x->head.data, x->head.len,
                      x->head.is_chunked, x->is_head_method);
}

static size_t conn_take_body(void *ud, proto_buf_t *dst, size_t max, size_t max_segs, int *is_end)
{
    gw_exchange_t *x = ud;
    size_t before = proto_buf_len(dst);
    size_t n = proto_buf_move(dst, &x->req_body, max, max_segs);
    *is_end = x->is_req_end && proto_buf_len(&x->req_body) == 0;
    if (*is_end && x->state == GW_X_SENDING)
        x->state = GW_X_RECEIVING;
    x->req_body_taken += n;
    /* Only idempotent requests are ever replayed: keep nothing for others,
     * and nothing past GW_REPLAY_MAX. */
    if (x->is_replayable && (!x->head.is_idempotent || x->req_body_taken > GW_REPLAY_MAX)) {
        x->is_replayable = 0;
        proto_buf_free(&x->replay);
    }
    if (x->is_replayable && n > 0) {
        proto_slice_t sl[64];
        size_t skip = before, k = proto_buf_slices(dst, sl, 64);
        for (size_t i = 0; i < k && x->is_replayable; i++) {
            size_t off = skip < sl[i].len ? skip : sl[i].len;
            skip -= off;
            if (sl[i].len > off && proto_buf_append(&x->replay, (const uint8_t *)sl[i].base + off,
                                                    sl[i].len - off) != 0) {
                x->is_replayable = 0;
                proto_buf_free(&x->replay);
            }
        }
    }
    return n;
}

static void conn_on_body_written(void *ud, size_t n)
{
    gw_exchange_t *x = ud;
    x->req_body_acked += n;
    /* A replayed body is written twice; the client's window is reopened
     * once per byte. */
    if (x->req_body_acked > x->req_body_credited) {
        size_t credit = (size_t)(x->req_body_acked - x->req_body_credited);
        x->req_body_credited = x->req_body_acked;
        x->fe->on_req_body_written(x, credit);
    }
}

/* Puts the body bytes of the failed attempt back in front of those not
 * yet sent, so the next attempt sends the whole body again. */
static void rewind_request(gw_exchange_t *x)
{
    if (x->req_body_taken > 0) {
        proto_buf_move(&x->replay, &x->req_body, SIZE_MAX, SIZE_MAX);
        proto_buf_free(&x->req_body);
        x->req_body = x->replay;
        proto_buf_init(&x->replay);
    }
    x->req_body_taken = 0;
    x->req_body_acked = 0;
}

/* An attempt failed: try again when proto/retry allows, else tell the
 * client. Runs on the failing connection's stack; a retry only queues. */
static void attempt_failed(gw_exchange_t *x, gw_err_t err, const char *why, int is_reused,
                           int is_resp_started, int is_unsent)
{
    const gw_err_info_t *info = gw_err_info(err);
    int is_stale = is_reused && !is_resp_started && info->is_server_fault;
    gw_server_t *s = x->server;
    if (is_stale)
        gw_pool_note_stale(x->pool, s);
    else if (info->is_server_fault && s != NULL)
        gw_pool_report(x->pool, s, 0, why, x->attempt_ms);
    proto_retry_facts_t facts = {
        .is_idempotent = x->head.is_idempotent,
        .is_replayable = x->is_replayable,
        .is_resp_head_sent = x->is_resp_head_sent,
        .is_server_fault = info->is_server_fault,
        .is_stale = is_stale,
        .stale_retries = x->stale_retries,
        .retries_left = x->retries_left,
    };
    enum proto_retry r = x->is_failed ? PROTO_RETRY_NO : proto_retry_decide(&facts);
    /* Another server is worth a counted retry only if there is one. */
    if (r == PROTO_RETRY_COUNTED && x->pool->nservers < 2 && !is_stale)
        r = PROTO_RETRY_NO;
    if (r != PROTO_RETRY_NO) {
        if (r == PROTO_RETRY_FREE)
            x->stale_retries++;
        else
            x->retries_left--;
        x->nretries++;
        rewind_request(x);
        x->wait.avoid = is_stale ? NULL : s;
        GW_LOG_INFO("backend %s server %s stream %d: %s; retrying %s", x->pool->name,
                    s != NULL ? s->name : "-", (int)x->stream_id, why,
                    is_stale ? "on a fresh connection" : "on another server");
        submit(x);
        return;
    }
    tell_failure(x, err, why, is_unsent);
}

static void on_wait_fail(gw_pool_waiter_t *wt, gw_err_t err, const char *why, gw_server_t *s)
{
    gw_exchange_t *x = of_waiter(wt);
    if (s != NULL)
        x->server = s;
    x->attempt_ms = wt->attempt_started_ms;
    if (err == GW_E_CONNECT || err == GW_E_CONNECT_TIMEOUT || err == GW_E_TLS) {
        /* The pool has counted it against the server already; nothing of
         * the request was sent. */
        const gw_err_info_t *info = gw_err_info(err);
        proto_retry_facts_t facts = {
            .is_idempotent = 1, /* nothing was sent: any request may go again */
            .is_replayable = 1,
            .is_server_fault = info->is_server_fault,
            .retries_left = x->retries_left,
        };
        if (!x->is_failed && x->pool->nservers > 1 &&
            proto_retry_decide(&facts) == PROTO_RETRY_COUNTED) {
            x->retries_left--;
            x->nretries++;
            x->wait.avoid = s;
            GW_LOG_INFO("backend %s server %s stream %d: %s; retrying on another server",
                        x->pool->name, s != NULL ? s->name : "-", (int)x->stream_id, why);
            submit(x);
            return;
        }
    }
    tell_failure(x, err, why, 0);
}

static void conn_on_error(void *ud, const gw_h1conn_fail_t *f)
{
    gw_exchange_t *x = ud;
    drop_conn(x, 0);
    /* Only a reused connection's first write failing proves the server never
     * saw the request: then a request that may not be replayed is refused
     * (the client may send it again); any other failure is a 502. */
    attempt_failed(x, f->err, f->why, f->is_reused, f->is_resp_started,
                   f->is_unsent && f->is_reused);
}

/* ---- response ---- */

static int has_no_content(const gw_exchange_t *x, int status, const proto_header_t *f, size_t n)
{
    if (x->is_head_method || status == 204 || status == 304)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (proto_headers_name_eq(f[i].name, f[i].name_len, "content-length", 14))
            return f[i].value_len == 1 && f[i].value[0] == '0';
    }
    return 0;
}

/* early_hints_from_link: the final head's Link rel=preload fields go first
 * in a 103 of their own, unless the backend sent its own hints. */
static void hints_from_link(gw_exchange_t *x, int status, const proto_header_t *f, size_t n)
{
    proto_header_t links[GW_INFO_MAX];
    if (!x->w->cfg->early_hints_from_link || x->fe->on_info == NULL || x->ninfo > 0 ||
        status < 200 || status >= 300)
        return;
    size_t k = proto_link_preload_fields(f, n, links, GW_INFO_MAX);
    if (k > 0) {
        x->ninfo++;
        x->fe->on_info(x, 103, links, k); /* a hint: the response goes on without it */
    }
}

static int conn_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_exchange_t *x = ud;
    hints_from_link(x, status, f, n);
    int is_failure = status >= 500 && x->pool->bcfg->fail_on_5xx;
    gw_pool_report(x->pool, x->server, !is_failure, "5xx response", x->attempt_ms);
    x->resp_status = status;
    int has_body = !has_no_content(x, status, f, n);
    int rv;
    if (x->w->via_resp[0] == '\0') {
        rv = x->fe->on_head(x, status, f, n, has_body);
    } else {
        /* This hop's Via after the backend's own (RFC 9110 7.6.3). */
        proto_header_t stack[64];
        proto_header_t *all = n + 1 <= 64 ? stack : malloc((n + 1) * sizeof(*all));
        if (all == NULL)
            return PROTO_E_NOMEM;
        memcpy(all, f, n * sizeof(*f));
        all[n] = (proto_header_t){"via", 3, x->w->via_resp, strlen(x->w->via_resp)};
        rv = x->fe->on_head(x, status, all, n + 1, has_body);
        if (all != stack)
            free(all);
    }
    if (rv == 0)
        x->is_resp_head_sent = 1;
    return rv;
}

static int conn_on_info(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_exchange_t *x = ud;
    /* Past GW_INFO_MAX the backend's hints cost the client nothing. */
    if (x->fe->on_info == NULL)
        return 0;
    if (x->ninfo >= GW_INFO_MAX) {
        if (x->ninfo == GW_INFO_MAX)
            GW_LOG_DEBUG("backend %s stream %d: interim responses past %d dropped", x->pool->name,
                         (int)x->stream_id, GW_INFO_MAX);
        x->ninfo = GW_INFO_MAX + 1; /* said once */
        return 0;
    }
    x->ninfo++;
    return x->fe->on_info(x, status, f, n);
}

static int conn_on_body(void *ud, const uint8_t *data, size_t len)
{
    gw_exchange_t *x = ud;
    if (proto_buf_append(&x->resp_body, data, len) != 0)
        return PROTO_E_NOMEM;
    /* The client is slower than the backend: stop reading until it has
     * drained half (gw_exchange_resp_read); the backend connection then
     * times the client, not the backend. */
    if (proto_buf_len(&x->resp_body) >= x->w->cfg->response_buffer_size && x->conn != NULL) {
        x->is_resp_paused = 1;
        gw_h1conn_pause_read(x->conn);
    }
    x->fe->on_body(x);
    return 0;
}

static int conn_on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    gw_exchange_t *x = ud;
    /* The fields outlive the parser's buffer: they are sent only after the
     * client has taken the body, so copy them into one block. */
    proto_header_t *copy = copy_fields(f, n);
    if (copy == NULL)
        return PROTO_E_NOMEM;
    free(x->trailers);
    x->trailers = copy;
    x->ntrailers = n;
    return 0;
}

static void conn_on_done(void *ud, int is_reusable)
{
    gw_exchange_t *x = ud;
    drop_conn(x, is_reusable);
    x->state = GW_X_DONE;
    x->is_resp_done = 1;
    x->fe->on_body(x);
}

size_t gw_exchange_resp_read(gw_exchange_t *x, uint8_t *dst, size_t max)
{
    size_t n = proto_buf_read(&x->resp_body, dst, max);
    x->resp_bytes += n;
    gw_metrics_add(&x->w->metrics.sent_bytes, n);
    if (x->tunnel != NULL && n > 0 &&
        proto_buf_len(&x->resp_body) <= x->w->cfg->response_buffer_size / 2)
        gw_tunnel_resume_read(x->tunnel);
    if (x->conn != NULL && x->is_resp_paused && n > 0) {
        if (proto_buf_len(&x->resp_body) <= x->w->cfg->response_buffer_size / 2) {
            x->is_resp_paused = 0;
            gw_h1conn_resume_read(x->conn);
        } else
            gw_h1conn_pause_read(x->conn); /* progress: the client's clock restarts */
    }
    return n;
}
