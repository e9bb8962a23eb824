#include "gateway/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/upstream.h"
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
    gw_queue_init(&x->fe_node);
    gw_sched_entry_init(&x->sched);
    x->sched.owner = fe_conn;
    x->sched.urgency = 3;
    x->sched.weight = 16;
    proto_buf_init(&x->req_body);
    proto_buf_init(&x->resp_body);
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
    if (x->pool != NULL)
        gw_pool_cancel(x->pool, x);
    gw_upconn_t *u = x->upconn;
    gw_exchange_detach(x);
    /* A connection still borrowed here is mid-exchange: what the backend
     * will send next belongs to a request nobody waits for. */
    if (u != NULL)
        gw_upconn_close(u);
    gw_queue_remove(&x->fe_node);
    proto_h1_head_free(&x->head);
    proto_buf_free(&x->req_body);
    proto_buf_free(&x->resp_body);
    free(x->trailers);
    free(x);
}

void gw_exchange_reprioritize(gw_exchange_t *x, int urgency, int weight)
{
    if (x->pool != NULL && gw_sched_is_queued(&x->sched)) {
        gw_pool_reprioritize(x->pool, x, urgency, weight);
        return;
    }
    x->sched.urgency = (uint8_t)urgency;
    x->sched.weight = (uint16_t)weight;
}

void gw_exchange_start(gw_exchange_t *x, gw_pool_t *pool)
{
    x->pool = pool;
    x->is_started = 1;
    gw_pool_submit(pool, x);
}

int gw_exchange_req_body(gw_exchange_t *x, const uint8_t *data, size_t len)
{
    /* Once the response is complete or failed, or the connection that took
     * the request is gone, nobody will write these bytes. */
    if (x->is_failed || x->is_resp_done || (x->is_req_head_written && x->upconn == NULL))
        return 0;
    if (proto_buf_append(&x->req_body, data, len) != 0)
        return PROTO_E_NOMEM;
    if (x->upconn != NULL)
        gw_upconn_flush(x->upconn);
    return 1;
}

void gw_exchange_req_end(gw_exchange_t *x)
{
    x->is_req_end = 1;
    if (x->upconn != NULL)
        gw_upconn_flush(x->upconn);
}

size_t gw_exchange_resp_read(gw_exchange_t *x, uint8_t *dst, size_t max)
{
    size_t n = proto_buf_read(&x->resp_body, dst, max);
    if (x->upconn != NULL && x->upconn->is_read_paused &&
        proto_buf_len(&x->resp_body) <= x->w->cfg->response_buffer_size / 2)
        gw_upconn_resume_read(x->upconn);
    return n;
}

/*
 * A retry is invisible to the client only if nothing of the first attempt
 * can have had an effect the client would notice twice: the method is
 * idempotent, no body byte left us, no response byte reached us, and it is
 * the first retry.
 */
static int can_retry(const gw_exchange_t *x)
{
    return !x->is_retried && x->head.is_idempotent && x->req_body_written == 0 &&
           !x->is_resp_head_sent;
}

void gw_exchange_fail(gw_exchange_t *x, int status, const char *why, int is_retryable)
{
    gw_upconn_t *u = x->upconn;
    gw_exchange_detach(x);

    if (is_retryable && can_retry(x)) {
        GW_LOG_INFO("%s stream %d: retrying on a fresh connection: %s",
                    x->pool != NULL ? x->pool->name : "-", (int)x->stream_id, why);
        x->is_retried = 1;
        x->is_req_head_written = 0;
        x->is_req_sent = 0;
        gw_pool_retry(x->pool, u, x);
        return;
    }
    if (u != NULL)
        gw_upconn_close(u);
    if (x->is_failed)
        return;
    x->is_failed = 1;
    int reply = x->is_resp_head_sent ? 0 : status;
    GW_LOG_WARN("%s stream %d: %s (%s)", x->pool != NULL ? x->pool->name : "-",
                (int)x->stream_id, why, reply ? "answered with an error" : "stream reset");
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
