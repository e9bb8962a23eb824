#include "gateway/client/h2_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/client/h2_priority.h"
#include "gateway/core/metrics.h"
#include "gateway/upgrade.h"
#include "proto/upgrade.h"
#include "proto/headers.h"

/* RFC 9113 4.1: every frame starts with a 9-byte header. */
#define H2_FRAME_HDLEN 9

/* Answers x with a short text error. The body goes through the same data
 * provider as a backend body, so there is one way a response leaves. */
void gw_h2_reply_error(gw_exchange_t *x, int status)
{
    h2_client_t *h = gw_h2_client_of(x);
    if (status >= 400 && status < 500)
        gw_h2_note_glitch(h, GW_H2_GLITCH_BAD_REQUEST);
    char body[96], status_str[8], len_str[24];
    int body_len = snprintf(body, sizeof(body), "%d %s\n", status, proto_reason_phrase(status));
    snprintf(status_str, sizeof(status_str), "%d", status);
    snprintf(len_str, sizeof(len_str), "%d", body_len);
    proto_buf_free(&x->resp_body);
    x->resp_status = status;
    x->is_resp_done = 1;
    x->is_resp_head_sent = 1;
    if (proto_buf_append(&x->resp_body, body, (size_t)body_len) != 0) {
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    char retry_str[16];
    snprintf(retry_str, sizeof(retry_str), "%u", x->retry_after_s);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)status_str, 7, strlen(status_str), 0},
        {(uint8_t *)"content-type", (uint8_t *)"text/plain; charset=utf-8", 12, 25, 0},
        {(uint8_t *)"content-length", (uint8_t *)len_str, 14, strlen(len_str), 0},
        {(uint8_t *)"retry-after", (uint8_t *)retry_str, 11, strlen(retry_str), 0},
    };
    size_t nnv = x->retry_after_s > 0 ? 4 : 3;
    nghttp2_data_provider dp = {.source.ptr = x, .read_callback = gw_h2_on_data_read};
    if (nghttp2_submit_response(h->session, x->stream_id, nv, nnv, &dp) != 0)
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
}

/* Name-value pairs that fit on the stack; more are allocated. */
#define NV_STACK 64

/* ":status" (written into status_str, 8 bytes) then f, as nghttp2 takes
 * them: in stack (NV_STACK entries) when they fit, else allocated (the
 * caller frees it when it is not stack). NULL when out of memory. */
static nghttp2_nv *make_nv(int status, char *status_str, const proto_header_t *f, size_t n,
                           nghttp2_nv *stack)
{
    nghttp2_nv *nv = n + 1 <= NV_STACK ? stack : malloc((n + 1) * sizeof(*nv));
    if (nv == NULL)
        return NULL;
    snprintf(status_str, 8, "%d", status);
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_str, 7, strlen(status_str), 0};
    for (size_t i = 0; i < n; i++)
        nv[i + 1] = (nghttp2_nv){(uint8_t *)f[i].name, (uint8_t *)f[i].value, f[i].name_len,
                                 f[i].value_len, NGHTTP2_NV_FLAG_NONE};
    return nv;
}

static int fe_on_head(gw_exchange_t *x, int status, const proto_header_t *f, size_t n, int has_body)
{
    h2_client_t *h = gw_h2_client_of(x);
    char status_str[8];
    proto_header_t stack_f[64], *kept_alloc = NULL;
    if (status == 101) {
        /* RFC 8441 5: the tunnel is open; the client hears 200 and the
         * fields that are not the HTTP/1.1 handshake's. */
        proto_header_t *kept = n <= 64 ? stack_f : (kept_alloc = malloc(n * sizeof(*kept)));
        if (kept == NULL)
            return -1;
        n = proto_upgrade_filter_101(f, n, kept, 1);
        f = kept;
        status = 200;
        x->resp_status = 200;
        has_body = 1;
    } else if (x->is_upgrade && status >= 200 && status < 300) {
        /* A backend that did not switch but succeeded would look to the
         * client like an open tunnel: the exchange answers 502. */
        return -1;
    }
    nghttp2_nv stack_nv[NV_STACK];
    nghttp2_nv *nv = make_nv(status, status_str, f, n, stack_nv);
    if (nv == NULL) {
        free(kept_alloc);
        return -1;
    }
    gw_h2_push_on_head(&h->push, h->session, x, status, f, n); /* PUSH_PROMISEs go first */
    nghttp2_data_provider dp = {.source.ptr = x, .read_callback = gw_h2_on_data_read};
    int rv = nghttp2_submit_response(h->session, x->stream_id, nv, n + 1, has_body ? &dp : NULL);
    if (nv != stack_nv)
        free(nv);
    free(kept_alloc);
    if (rv != 0)
        return -1;
    gw_client_conn_mark_dirty(h->conn);
    return 0;
}

/* An interim response: a HEADERS frame with its 1xx :status and no
 * END_STREAM, before the final one (RFC 9113 8.1). A 100 Continue too: an
 * HTTP/2 client that sent Expect waits for it before sending its body. */
static int fe_on_info(gw_exchange_t *x, int status, const proto_header_t *f, size_t n)
{
    h2_client_t *h = gw_h2_client_of(x);
    if (!(x->stream_id & 1))
        return 0; /* a pushed response starts with its final head */
    char status_str[8];
    nghttp2_nv stack_nv[NV_STACK];
    nghttp2_nv *nv = make_nv(status, status_str, f, n, stack_nv);
    if (nv == NULL)
        return -1;
    /* A stream the client has reset takes none: the hint is dropped, the
     * exchange goes on (it ends with the stream). */
    int32_t rv =
        nghttp2_submit_headers(h->session, NGHTTP2_FLAG_NONE, x->stream_id, NULL, nv, n + 1, NULL);
    if (nv != stack_nv)
        free(nv);
    if (rv == 0)
        gw_client_conn_mark_dirty(h->conn);
    return rv == NGHTTP2_ERR_NOMEM ? -1 : 0;
}

static void fe_on_body(gw_exchange_t *x)
{
    h2_client_t *h = gw_h2_client_of(x);
    if (!x->is_deferred)
        return;
    x->is_deferred = 0;
    nghttp2_session_resume_data(h->session, x->stream_id);
    gw_client_conn_mark_dirty(h->conn);
}

static void fe_on_fail(gw_exchange_t *x, int status, uint32_t rst_code, const char *why)
{
    h2_client_t *h = gw_h2_client_of(x);
    (void)why;
    if (status > 0)
        gw_h2_reply_error(x, status);
    else
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                  status == GW_STATUS_REFUSED ? NGHTTP2_REFUSED_STREAM : rst_code);
    gw_client_conn_mark_dirty(h->conn);
}

static void fe_on_req_body_written(gw_exchange_t *x, size_t n)
{
    h2_client_t *h = gw_h2_client_of(x);
    nghttp2_session_consume_stream(h->session, x->stream_id, n);
    gw_client_conn_mark_dirty(h->conn);
}

static int submit_trailers(nghttp2_session *session, gw_exchange_t *x)
{
    nghttp2_nv stack_nv[32] = {0};
    nghttp2_nv *nv = x->ntrailers <= 32 ? stack_nv : malloc(x->ntrailers * sizeof(*nv));
    if (nv == NULL)
        return -1;
    for (size_t i = 0; i < x->ntrailers; i++) {
        const proto_header_t *f = &x->trailers[i];
        nv[i] = (nghttp2_nv){(uint8_t *)f->name, (uint8_t *)f->value, f->name_len, f->value_len,
                             NGHTTP2_NV_FLAG_NONE};
    }
    int rv = nghttp2_submit_trailer(session, x->stream_id, nv, x->ntrailers);
    if (nv != stack_nv)
        free(nv);
    return rv;
}

/* Makes nghttp2 send the response DATA of urgent streams first too. Only
 * meaningful once RFC 9218 was negotiated; nghttp2 ignores it otherwise. */
ssize_t gw_h2_on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud, (void)buf;
    gw_exchange_t *x = src->ptr;
    size_t avail = proto_buf_len(&x->resp_body);
    if (avail == 0 && !x->is_resp_done) {
        x->is_deferred = 1; /* resumed by fe_on_body() */
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < len ? avail : len;
    /* The bytes go from the response buffer straight into the connection's
     * output in gw_h2_on_send_data, not through nghttp2's frame buffer. */
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (x->is_resp_done && n == avail) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        /* An extended CONNECT refused by the backend: the answer is
         * complete, so the client's side is ended too (RFC 9113 8.1). */
        if (x->is_upgrade && x->resp_status != 200 && !x->is_req_end)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
        if (x->ntrailers > 0 && submit_trailers(session, x) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

/* A DATA frame whose payload gw_h2_on_data_read left in place: its header and
 * payload go into the output in one piece (no padding is ever chosen). */
int gw_h2_on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                       size_t length, nghttp2_data_source *src, void *ud)
{
    (void)session, (void)frame;
    h2_client_t *h = ud;
    uint8_t *at = gw_client_conn_out_space(h->conn, H2_FRAME_HDLEN + length);
    if (at == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(at, framehd, H2_FRAME_HDLEN);
    if (gw_exchange_resp_read(src->ptr, at + H2_FRAME_HDLEN, length) != length)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

const gw_frontend_ops_t gw_h2_frontend_ops = {
    .on_head = fe_on_head,
    .on_info = fe_on_info,
    .on_body = fe_on_body,
    .on_fail = fe_on_fail,
    .on_req_body_written = fe_on_req_body_written,
    .parent_of = gw_h2_parent_of,
    .protocol = "h2",
};
