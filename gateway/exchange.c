#include "gateway/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "gateway/ops/access_log.h"
#include "gateway/backend/pool.h"
#include "gateway/backend/h1conn.h"
#include "gateway/worker.h"

gw_exchange_t *gw_exchange_new(gw_worker_t *w, const gw_frontend_ops_t *fe, void *fe_conn,
                               int32_t stream_id)
{
    gw_exchange_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->w = w;
    x->fe = fe;
    x->fe_conn = fe_conn;
    x->stream_id = stream_id;
    x->start_ms = gw_worker_now_ms(w);
    x->head.content_length = -1;
    proto_queue_init(&x->fe_node);
    proto_sched_entry_init(&x->sched);
    x->sched.owner = fe_conn;
    x->sched.urgency = 3;
    x->sched.weight = 16;
    proto_buf_init(&x->req_body);
    proto_buf_init(&x->resp_body);
    proto_buf_init(&x->replay);
    x->is_replayable = 1;
    return x;
}

void gw_exchange_detach(gw_exchange_t *x)
{
    if (x->upconn != NULL) {
        x->upconn->x = NULL;
        x->upconn = NULL;
    }
}

void gw_exchange_free(gw_exchange_t *x)
{
    gw_access_log_exchange(x->w->access_log, x);
    if (x->pool != NULL)
        gw_pool_cancel(x->pool, x);
    gw_upconn_t *u = x->upconn;
    gw_exchange_detach(x);
    /* A connection still borrowed here is mid-exchange: what the backend
     * will send next belongs to a request nobody waits for. */
    if (u != NULL)
        gw_upconn_close(u);
    proto_queue_remove(&x->fe_node);
    proto_h1_head_free(&x->head);
    proto_buf_free(&x->req_body);
    proto_buf_free(&x->resp_body);
    proto_buf_free(&x->replay);
    free(x->trailers);
    free(x);
}

void gw_exchange_reprioritize(gw_exchange_t *x, int urgency, int weight)
{
    if (x->pool != NULL && proto_sched_is_queued(&x->sched)) {
        gw_pool_reprioritize(x->pool, x, urgency, weight);
        return;
    }
    x->sched.urgency = (uint8_t)urgency;
    x->sched.weight = (uint16_t)weight;
}

static int is_over_body_limit(const gw_exchange_t *x, uint64_t size)
{
    uint64_t max = x->pool->bcfg->max_request_body;
    return max > 0 && size > max;
}

void gw_exchange_start(gw_exchange_t *x, gw_pool_t *pool)
{
    x->pool = pool;
    x->is_started = 1;
    x->retries_left = pool->bcfg->retries;
    if (x->head.content_length > 0 && is_over_body_limit(x, (uint64_t)x->head.content_length)) {
        pool->stats.body_too_large++;
        gw_exchange_fail(x, 413, "request body over max_request_body", 0);
        return;
    }
    gw_pool_submit(pool, x);
}

int gw_exchange_req_body(gw_exchange_t *x, const uint8_t *data, size_t len)
{
    /* Once the response is complete or failed, or the connection that took
     * the request is gone, nobody will write these bytes. */
    if (x->is_failed || x->is_resp_done || (x->is_req_head_written && x->upconn == NULL))
        return 0;
    x->req_body_received += len;
    if (is_over_body_limit(x, x->req_body_received)) {
        x->pool->stats.body_too_large++;
        gw_exchange_fail(x, 413, "request body over max_request_body", 0);
        return 0;
    }
    if (proto_buf_append(&x->req_body, data, len) != 0)
        return PROTO_E_NOMEM;
    if (x->upconn != NULL)
        gw_upconn_mark_dirty(x->upconn);
    return 1;
}

void gw_exchange_req_end(gw_exchange_t *x)
{
    x->is_req_end = 1;
    if (x->upconn != NULL)
        gw_upconn_mark_dirty(x->upconn);
}

size_t gw_exchange_resp_read(gw_exchange_t *x, uint8_t *dst, size_t max)
{
    size_t n = proto_buf_read(&x->resp_body, dst, max);
    x->resp_bytes += n;
    if (x->upconn != NULL && x->upconn->is_read_paused &&
        proto_buf_len(&x->resp_body) <= x->w->cfg->response_buffer_size / 2)
        gw_upconn_resume_read(x->upconn);
    return n;
}

void gw_exchange_note_body_sent(gw_exchange_t *x, const void *data, size_t len)
{
    x->req_body_written += len;
    /* Only idempotent requests are ever replayed: keep nothing for others. */
    if (x->is_replayable && !x->head.is_idempotent) {
        x->is_replayable = 0;
        proto_buf_free(&x->replay);
    }
    if (!x->is_replayable || len == 0)
        return;
    if (x->req_body_written > GW_REPLAY_MAX || proto_buf_append(&x->replay, data, len) != 0) {
        x->is_replayable = 0;
        proto_buf_free(&x->replay);
    }
}

/* Moves every byte of src to the end of dst. Returns 0 or PROTO_E_NOMEM. */
static int buf_move(proto_buf_t *dst, proto_buf_t *src)
{
    proto_slice_t sl[16];
    size_t n;
    while ((n = proto_buf_slices(src, sl, 16)) > 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (proto_buf_append(dst, sl[i].base, sl[i].len) != 0)
                return PROTO_E_NOMEM;
            total += sl[i].len;
        }
        proto_buf_consume(src, total);
    }
    return 0;
}

/* Puts the body bytes of the failed attempt back in front of those not
 * yet sent, so the next attempt sends the whole body again. */
static int rewind_request(gw_exchange_t *x)
{
    if (x->req_body_written > 0) {
        proto_buf_t body;
        proto_buf_init(&body);
        if (buf_move(&body, &x->replay) != 0 || buf_move(&body, &x->req_body) != 0) {
            proto_buf_free(&body);
            return -1;
        }
        proto_buf_free(&x->req_body);
        x->req_body = body;
        x->req_body_written = 0;
    }
    x->is_req_head_written = 0;
    x->is_req_sent = 0;
    return 0;
}

/*
 * A retry is invisible to the client only if nothing of the earlier attempt
 * can have had an effect the client would notice twice: the method is
 * idempotent, the whole body sent so far can be sent again, and no response
 * byte reached the client. A stale keep-alive failure is free (a few times);
 * any other uses up one of the backend's retries.
 */
static int can_retry(gw_exchange_t *x, int flags)
{
    if (x->is_resp_head_sent || x->is_failed || !x->head.is_idempotent || !x->is_replayable ||
        x->pool == NULL)
        return 0;
    if ((flags & GW_FAIL_STALE) && x->stale_retries < 3) {
        x->stale_retries++;
        return 1;
    }
    if ((flags & (GW_FAIL_RETRY | GW_FAIL_STALE)) && x->retries_left > 0) {
        x->retries_left--;
        return 1;
    }
    return 0;
}

void gw_exchange_fail(gw_exchange_t *x, int status, const char *why, int flags)
{
    gw_upconn_t *u = x->upconn;
    const char *server = x->server != NULL ? x->server->name : "-";
    const char *backend = x->pool != NULL ? x->pool->name : "-";
    gw_exchange_detach(x);

    if (can_retry(x, flags) && rewind_request(x) == 0) {
        GW_LOG_INFO("backend %s server %s stream %d: %s; retrying %s", backend, server,
                    (int)x->stream_id, why,
                    flags & GW_FAIL_STALE ? "on a fresh connection" : "on another server");
        gw_pool_retry(x->pool, u, x, (flags & GW_FAIL_STALE) != 0);
        return;
    }
    if (u != NULL)
        gw_upconn_close(u);
    if (x->is_failed)
        return;
    x->is_failed = 1;
    int reply = x->is_resp_head_sent ? 0 : status;
    /* Nothing reached the backend, but we may not replay the request: the
     * client may (RFC 9113 §8.7). */
    if (reply > 0 && (flags & GW_FAIL_UNSENT) && !x->head.is_idempotent)
        reply = GW_STATUS_REFUSED;
    GW_LOG_WARN("backend %s server %s stream %d: %s (%s)", backend, server, (int)x->stream_id, why,
                reply > 0                    ? "answered with an error"
                : reply == GW_STATUS_REFUSED ? "stream refused"
                                             : "stream reset");
    proto_buf_free(&x->resp_body);
    x->fe->on_fail(x, reply, why);
}

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

int gw_exchange_on_resp_head(gw_exchange_t *x, int status, const proto_header_t *f, size_t n)
{
    x->resp_status = status;
    int rv = x->fe->on_head(x, status, f, n, !has_no_content(x, status, f, n));
    if (rv == 0)
        x->is_resp_head_sent = 1;
    return rv;
}

int gw_exchange_on_resp_body(gw_exchange_t *x, const uint8_t *data, size_t len)
{
    if (proto_buf_append(&x->resp_body, data, len) != 0)
        return PROTO_E_NOMEM;
    x->fe->on_body(x);
    return 0;
}

int gw_exchange_on_resp_trailers(gw_exchange_t *x, const proto_header_t *f, size_t n)
{
    /* The fields outlive the parser's buffer: they are sent only after the
     * client has taken the body, so copy them into one block. */
    size_t bytes = n * sizeof(proto_header_t);
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len;
    proto_header_t *copy = malloc(bytes ? bytes : 1);
    if (copy == NULL)
        return PROTO_E_NOMEM;
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
    free(x->trailers);
    x->trailers = copy;
    x->ntrailers = n;
    return 0;
}

void gw_exchange_on_resp_done(gw_exchange_t *x)
{
    x->is_resp_done = 1;
    x->fe->on_body(x);
}
