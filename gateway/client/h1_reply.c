#include "gateway/client/h1_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "gateway/upgrade.h"
#include "proto/headers.h"
#include "proto/upgrade.h"

/* Response body gathered per write: the next piece follows when it is done. */
#define OUT_HIGH (64 * 1024)

static int stage(h1_client_t *h, const void *data, size_t len)
{
    return proto_buf_append(&h->pending, data, len);
}

int gw_h1_stage_str(h1_client_t *h, const char *s)
{
    return stage(h, s, strlen(s));
}

static int stage_field(h1_client_t *h, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    int rv = stage(h, name, name_len);
    rv |= stage(h, ": ", 2);
    rv |= stage(h, value, value_len);
    rv |= stage(h, "\r\n", 2);
    return rv ? PROTO_E_NOMEM : 0;
}

/* The Connection field of a response: close unless another request may
 * follow; HTTP/1.0 clients must be told when the connection persists. */
static int stage_connection(h1_client_t *h)
{
    if (!h->is_keep_alive)
        return gw_h1_stage_str(h, "connection: close\r\n");
    if (h->http_minor == 0)
        return gw_h1_stage_str(h, "connection: keep-alive\r\n");
    return 0;
}

/* Stages a complete short text answer (the request is not forwarded, or
 * its exchange failed before a response head). */
void gw_h1_stage_error(h1_client_t *h, int status, uint32_t retry_after_s)
{
    char line[200], body[96];
    int body_len = snprintf(body, sizeof(body), "%d %s\n", status, proto_reason_phrase(status));
    int n = snprintf(line, sizeof(line),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %d\r\n",
                     status, proto_reason_phrase(status), body_len);
    if (retry_after_s > 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "retry-after: %u\r\n", retry_after_s);
    int rv = stage(h, line, (size_t)n);

    rv |= stage_connection(h);
    rv |= stage(h, "\r\n", 2);
    if (!h->is_head)
        rv |= stage(h, body, (size_t)body_len);
    h->is_resp_started = 1;
    h->is_resp_done = 1;
    if (rv != 0)
        h->is_aborted = 1;
}

/* Bytes for the tunnel: the client's, after the 101. Returns 0, or -1 when
 * out of memory. */
int gw_h1_to_tunnel(h1_client_t *h, const uint8_t *data, size_t len)
{
    if (h->x != NULL && gw_exchange_req_body(h->x, data, len) < 0)
        return -1;
    return 0;
}

/*
 * The backend switched protocols: its 101 goes to the client (Upgrade,
 * Connection and Sec-WebSocket-Accept are the handshake, the client's to
 * check), and from here the connection carries raw bytes both ways until
 * either side ends. Bytes the client sent behind its request are the
 * tunnel's now.
 */
static int stage_switch(h1_client_t *h, const proto_header_t *f, size_t n)
{
    proto_header_t stack[64];
    proto_header_t *kept = n <= 64 ? stack : malloc(n * sizeof(*kept));
    if (kept == NULL)
        return -1;
    size_t k = proto_upgrade_filter_101(f, n, kept, 0);
    int rv = gw_h1_stage_str(h, "HTTP/1.1 101 Switching Protocols\r\n");
    for (size_t i = 0; i < k && rv == 0; i++)
        rv = stage_field(h, kept[i].name, kept[i].name_len, kept[i].value, kept[i].value_len);
    rv |= stage(h, "\r\n", 2);
    if (kept != stack)
        free(kept);
    if (rv != 0)
        return -1;
    h->framing = FRAME_CLOSE; /* the backend's bytes as they come */
    h->is_keep_alive = 0;
    h->is_resp_started = 1;
    h->is_tunnel = 1;
    proto_slice_t sl;
    while (proto_buf_slices(&h->inbuf, &sl, 1) > 0) {
        if (gw_h1_to_tunnel(h, sl.base, sl.len) != 0)
            return -1;
        proto_buf_consume(&h->inbuf, sl.len);
    }
    /* The client may have ended its side already. */
    if (h->conn->is_eof && h->x != NULL)
        gw_exchange_req_end(h->x);
    gw_h1_update_reading(h);
    gw_client_conn_mark_dirty(h->conn);
    return 0;
}

static int fe_on_head(gw_exchange_t *x, int status, const proto_header_t *f, size_t n, int has_body)
{
    h1_client_t *h = gw_h1_client_of(x);
    char line[64];
    int has_length = 0, rv;

    if (status == 101)
        return stage_switch(h, f, n);
    for (size_t i = 0; i < n; i++) {
        if (proto_headers_name_eq(f[i].name, f[i].name_len, "content-length", 14))
            has_length = 1;
    }
    if (!has_body)
        h->framing = FRAME_NONE;
    else if (has_length)
        h->framing = FRAME_LENGTH;
    else if (h->http_minor >= 1)
        h->framing = FRAME_CHUNKED;
    else
        h->framing = FRAME_CLOSE;
    if (h->framing == FRAME_CLOSE || h->is_draining)
        h->is_keep_alive = 0;

    rv = stage(h, line,
               (size_t)snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
                                proto_reason_phrase(status)));
    /* The fields were checked by the response parser: token names, values
     * without CR, LF or NUL, connection-specific ones removed. */
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = stage_field(h, f[i].name, f[i].name_len, f[i].value, f[i].value_len);
    if (h->framing == FRAME_CHUNKED)
        rv |= gw_h1_stage_str(h, "transfer-encoding: chunked\r\n");
    rv |= stage_connection(h);
    rv |= stage(h, "\r\n", 2);
    if (rv != 0)
        return -1;
    h->is_resp_started = 1;
    gw_client_conn_mark_dirty(h->conn);
    return 0;
}

/* An interim response ("HTTP/1.1 103 Early Hints" and its fields) staged
 * before the final head; HTTP/1.0 clients know none (RFC 9110 15.2). The
 * backend's 100 Continue is not the client's: this frontend answers
 * Expect itself. */
static int fe_on_info(gw_exchange_t *x, int status, const proto_header_t *f, size_t n)
{
    h1_client_t *h = gw_h1_client_of(x);
    char line[64];

    if (h->http_minor == 0 || h->is_resp_started || status == 100)
        return 0;
    int rv = stage(h, line,
                   (size_t)snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
                                    proto_reason_phrase(status)));
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = stage_field(h, f[i].name, f[i].name_len, f[i].value, f[i].value_len);
    rv |= stage(h, "\r\n", 2);
    if (rv != 0)
        return -1;
    gw_client_conn_mark_dirty(h->conn);
    return 0;
}

static void fe_on_body(gw_exchange_t *x)
{
    gw_client_conn_mark_dirty(gw_h1_client_of(x)->conn);
}

static void fe_on_fail(gw_exchange_t *x, int status, uint32_t rst_code, const char *why)
{
    h1_client_t *h = gw_h1_client_of(x);
    (void)why;      /* logged by the exchange */
    (void)rst_code; /* HTTP/1.1 has one way to reset: the close */

    /* HTTP/1.1 cannot refuse a request as retryable: a 502 says it failed. */
    if (status == GW_STATUS_REFUSED)
        status = 502;
    if (status > 0 && !h->is_resp_started) {
        /* Unread request bytes would be taken for the next request. */
        if (!h->is_req_done)
            h->is_keep_alive = 0;
        gw_h1_stage_error(h, status, x->retry_after_s);
    } else {
        /* The head is out: a body cut short must never look complete, so
         * no terminating chunk; the close tells the client. */
        h->is_aborted = 1;
    }
    gw_client_conn_mark_dirty(h->conn);
}

static void fe_on_req_body_written(gw_exchange_t *x, size_t n)
{
    (void)n;
    h1_client_t *h = gw_h1_client_of(x);
    gw_h1_update_reading(h);
    if (h->is_tunnel && h->is_resp_done)
        gw_client_conn_mark_dirty(h->conn); /* a half-open tunnel may be done */
}

/* ---- output ---- */

int gw_h1_move_pending(gw_client_conn_t *c, h1_client_t *h)
{
    proto_slice_t s[8];
    size_t n;

    while ((n = proto_buf_slices(&h->pending, s, 8)) > 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (gw_client_conn_out(c, s[i].base, s[i].len) != 0)
                return -1;
            total += s[i].len;
        }
        proto_buf_consume(&h->pending, total);
    }
    return 0;
}

static int out_str(gw_client_conn_t *c, const char *s)
{
    return gw_client_conn_out(c, s, strlen(s));
}

/* Moves response body bytes into the gather buffer in the framing the head
 * announced, and the end of the body once the backend finished. */
int gw_h1_write_body(gw_client_conn_t *c, h1_client_t *h)
{
    gw_exchange_t *x = h->x;
    uint8_t piece[16384];

    while (c->out_len < OUT_HIGH) {
        size_t n = gw_exchange_resp_read(x, piece, sizeof(piece));
        if (n == 0)
            break;
        if (h->framing == FRAME_CHUNKED) {
            char size_line[24];
            int k = snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
            if (gw_client_conn_out(c, size_line, (size_t)k) != 0 ||
                gw_client_conn_out(c, piece, n) != 0 || gw_client_conn_out(c, "\r\n", 2) != 0)
                return -1;
        } else if (gw_client_conn_out(c, piece, n) != 0) {
            return -1;
        }
    }
    if (!x->is_resp_done || proto_buf_len(&x->resp_body) > 0)
        return 0;
    if (h->framing == FRAME_CHUNKED) {
        if (out_str(c, "0\r\n") != 0)
            return -1;
        for (size_t i = 0; i < x->ntrailers; i++) {
            const proto_header_t *t = &x->trailers[i];
            if (gw_client_conn_out(c, t->name, t->name_len) != 0 || out_str(c, ": ") != 0 ||
                gw_client_conn_out(c, t->value, t->value_len) != 0 || out_str(c, "\r\n") != 0)
                return -1;
        }
        if (out_str(c, "\r\n") != 0)
            return -1;
    }
    h->is_resp_done = 1;
    return 0;
}

const gw_frontend_ops_t gw_h1_frontend_ops = {
    .on_head = fe_on_head,
    .on_info = fe_on_info,
    .on_body = fe_on_body,
    .on_fail = fe_on_fail,
    .on_req_body_written = fe_on_req_body_written,
    .parent_of = NULL,
    .protocol = "http/1.1",
};
