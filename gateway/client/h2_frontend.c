#include "gateway/client/h2_frontend.h"
#include "gateway/client/h2_priority.h"
#include "gateway/client/h2_response.h"
#include "gateway/client/h2_state.h"
#include "gateway/client/h2_mem.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/exchange.h"
#include "gateway/upgrade.h"
#include "gateway/client/h2_glitch.h"
#include "gateway/client/h2_push.h"
#include "proto/fields.h"
#include "gateway/core/log.h"
#include "gateway/core/ctx.h"
#include "proto/h2_watch.h"
#include "proto/headers.h"
#include "proto/priority.h"
#include "proto/upgrade.h"

/* Gathering stops at this much output per write; the rest follows when the
 * write completes, so a fast stream cannot grow the buffer without bound. */
#define MAX_GATHER (128 * 1024)

/* The connection window only paces the client; memory is bounded by the
 * per-stream windows, so it is consumed on receipt and kept large. */
#define CONNECTION_WINDOW (16 * 1024 * 1024)

/* The glitch budget's hooks, defined with the budget's section below. */
static void glitch_on_frame_recv(h2_client_t *h, const nghttp2_frame *frame);

static void request_free(gw_exchange_t *x)
{
    h2_request_t *r = x->fe_req;
    if (r == NULL)
        return;
    proto_fields_free(&r->fs);
    free(r);
    x->fe_req = NULL;
}

static int request_add_field(h2_request_t *r, const uint8_t *name, size_t name_len,
                             const uint8_t *value, size_t value_len)
{
    proto_fields_t *fs = &r->fs;
    if (proto_fields_append_name(fs, (const char *)name, name_len) != 0)
        return -1;
    proto_fields_end_name(fs);
    if (value_len > 0 && proto_fields_append_value(fs, (const char *)value, value_len) != 0)
        return -1;
    proto_fields_end_value(fs);
    const proto_field_t *f = proto_fields_last(fs);
    if (name_len == 0 || name[0] != ':') {
        r->nregular++;
        return 0;
    }
    if (proto_fields_name_is(fs, f, ":method"))
        r->method = *f;
    else if (proto_fields_name_is(fs, f, ":path"))
        r->path = *f;
    else if (proto_fields_name_is(fs, f, ":protocol")) {
        r->protocol = *f;
        r->has_protocol = 1;
    } else if (proto_fields_name_is(fs, f, ":authority")) {
        r->authority = *f;
        r->has_authority = 1;
    }
    return 0;
}

/* ---- requests from the client ---- */

gw_exchange_t *gw_h2_stream_exchange(nghttp2_session *session, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

/* Request trailers (a HEADERS frame after the request's, which nghttp2
 * lets through only with END_STREAM) are gathered in a field store of
 * their own, bounded like the head, for an exchange that is under way. */
static int begin_trailers(nghttp2_session *session, int32_t stream_id)
{
    gw_exchange_t *x = gw_h2_stream_exchange(session, stream_id);
    if (x == NULL || !x->is_started || x->is_failed || x->fe_req != NULL)
        return 0;
    h2_request_t *r = calloc(1, sizeof(*r));
    if (r == NULL || proto_fields_init(&r->fs, SIZE_MAX, 0) != 0) {
        free(r);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    x->fe_req = r;
    return 0;
}

/* The trailers are complete: the exchange checks them and keeps them for
 * the backend's last chunk. */
static void end_trailers(h2_client_t *h, gw_exchange_t *x)
{
    h2_request_t *r = x->fe_req;
    gw_client_conn_t *c = h->conn;
    if (r->is_too_large) {
        request_free(x);
        gw_exchange_fail(x, GW_E_HEAD_TOO_LARGE, "request trailers over max_header_list_size");
        return;
    }
    proto_header_t stack[32] = {0};
    proto_header_t *f = r->fs.n <= 32 ? stack : malloc(r->fs.n * sizeof(*f));
    int rv = PROTO_E_NOMEM;
    if (f != NULL) {
        for (size_t i = 0; i < r->fs.n; i++)
            f[i] = proto_fields_header(&r->fs, &r->fs.list[i]);
        rv = gw_exchange_req_trailers(x, f, r->fs.n, c->origin->cfg->client_cert_header);
    }
    if (f != stack)
        free(f);
    request_free(x);
    if (rv < 0)
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
}

static int h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_client_t *h = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS)
        return begin_trailers(session, frame->hd.stream_id);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    gw_exchange_t *x = gw_exchange_new(h->conn->w, &gw_h2_frontend_ops, h, frame->hd.stream_id);
    h2_request_t *r = calloc(1, sizeof(*r));
    /* The limit is checked here, the RFC 9113 way (list_size). */
    if (x == NULL || r == NULL || proto_fields_init(&r->fs, SIZE_MAX, 0) != 0) {
        free(x);
        free(r);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    x->fe_req = r;
    x->client_addr = h->conn->peer_addr;
    x->client_port = h->conn->peer_port;
    x->protocol = "h2";
    if (h->conn->is_tls) {
        x->tls_version = gw_tls_conn_version(&h->conn->tls);
        x->sni = gw_tls_conn_sni(&h->conn->tls);
    }
    x->weight = PROTO_WEIGHT_DEFAULT;
    if (frame->hd.flags & NGHTTP2_FLAG_PRIORITY)
        gw_h2_note_priority_spec(x, &frame->headers.pri_spec);
    proto_queue_insert_tail(&h->exchanges, &x->fe_node);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, x);
    return 0;
}

static int h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
                        void *ud)
{
    h2_client_t *h = ud;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        (frame->headers.cat != NGHTTP2_HCAT_REQUEST && frame->headers.cat != NGHTTP2_HCAT_HEADERS))
        return 0;
    gw_exchange_t *x = gw_h2_stream_exchange(session, frame->hd.stream_id);
    if (x == NULL || x->fe_req == NULL)
        return 0;
    h2_request_t *r = x->fe_req;
    r->list_size += name_len + value_len + 32;
    if (r->list_size > h->conn->w->cfg->max_header_list_size)
        r->is_too_large = 1;
    if (r->is_too_large)
        return 0;
    if (request_add_field(r, name, name_len, value, value_len) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void field_view(const h2_request_t *r, const proto_field_t *f, const char **p, size_t *len)
{
    *p = proto_fields_value(&r->fs, f);
    *len = f->value_len;
}

/* RFC 8441: an extended CONNECT with :protocol websocket goes to the
 * backend as an HTTP/1.1 WebSocket handshake (a GET with Upgrade and a
 * Sec-WebSocket-Key made here); any other protocol is answered 501. */
static int websocket_request(const h2_request_t *r, proto_request_t *req, proto_header_t *extra,
                             char *key, const char **why)
{
    const char *proto = proto_fields_value(&r->fs, &r->protocol);
    if (!proto_headers_name_eq(proto, r->protocol.value_len, "websocket", 9)) {
        *why = "extended CONNECT for a protocol other than websocket";
        return PROTO_E_NOT_IMPLEMENTED;
    }
    if (req->method_len != 7 || memcmp(req->method, "CONNECT", 7) != 0) {
        *why = ":protocol on a request that is not CONNECT";
        return PROTO_E_BAD_REQUEST;
    }
    if (gw_upgrade_new_key(key) != 0)
        return PROTO_E_NOMEM;
    return proto_upgrade_request(req, extra, 1 + PROTO_UPGRADE_EXTRA_MAX, key);
}

/* The request head is complete: translate it, or answer the client when it
 * cannot be forwarded. Nothing reaches a backend before this passes. */
static void start_exchange(h2_client_t *h, gw_exchange_t *x, int is_end_stream)
{
    h2_request_t *r = x->fe_req;
    gw_client_conn_t *c = h->conn;

    if (r->is_too_large) {
        GW_LOG_INFO("client %s:%d stream %d: header list over %u bytes: 431", c->peer_addr,
                    c->peer_port, (int)x->stream_id, c->w->cfg->max_header_list_size);
        request_free(x);
        x->is_failed = 1;
        gw_h2_reply_error(x, 431);
        return;
    }

    proto_header_t stack_hdrs[64];
    proto_header_t *hdrs = r->nregular <= 64 ? stack_hdrs : malloc(r->nregular * sizeof(*hdrs));
    if (hdrs == NULL) {
        request_free(x);
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        return;
    }
    proto_priority_t pri = proto_priority_default();
    int has_priority_field = 0;
    size_t n = 0;
    for (size_t i = 0; i < r->fs.n; i++) {
        const proto_field_t *f = &r->fs.list[i];
        if (f->name_len > 0 && proto_fields_name(&r->fs, f)[0] == ':')
            continue;
        hdrs[n] = proto_fields_header(&r->fs, f);
        if (proto_fields_name_is(&r->fs, f, "priority")) {
            proto_priority_parse(hdrs[n].value, hdrs[n].value_len, &pri);
            has_priority_field = 1;
        }
        n++;
    }
    int urgency = pri.urgency, weight = PROTO_WEIGHT_DEFAULT;
    gw_h2_tree_priority(h, x, &urgency, &weight);
    if (has_priority_field)
        urgency = pri.urgency;
    x->has_priority_field = has_priority_field;
    proto_request_t req = {
        .headers = hdrs,
        .nheaders = n,
        .client_addr = c->peer_addr,
        .has_body = !is_end_stream,
        .via = gw_ctx_via_request(c->w, 2, 0),
    };
    /* mTLS: the verified subject goes to the backend under the configured
     * name; without a certificate the name is only stripped. */
    char subject[512];
    proto_header_t extra;
    if (gw_client_conn_cert_field(c, &extra, subject, sizeof(subject))) {
        req.extra = &extra;
        req.nextra = 1;
    }
    field_view(r, &r->method, &req.method, &req.method_len);
    /* X-Forwarded-Proto and Forwarded say how the request reached us: the
     * connection decides, as for HTTP/1.1 clients, not the :scheme a
     * cleartext client may set to "https". */
    req.scheme = c->is_tls ? "https" : "http";
    req.scheme_len = c->is_tls ? 5 : 4;
    field_view(r, &r->path, &req.path, &req.path_len);
    if (r->has_authority)
        field_view(r, &r->authority, &req.authority, &req.authority_len);

    const char *why = NULL;
    int is_upgrade = r->has_protocol, rv = 0;
    char ws_key[PROTO_UPGRADE_KEY_LEN + 1];
    proto_header_t ws_extra[1 + PROTO_UPGRADE_EXTRA_MAX];
    if (is_upgrade)
        rv = websocket_request(r, &req, ws_extra, ws_key, &why);
    if (rv == 0)
        rv = proto_h1_request_build(&req, &x->head, &why);
    x->is_upgrade = is_upgrade;
    x->is_head_method = req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
    /* Routed now: req points into the request's buffer, freed below. */
    gw_pool_t *pool =
        c->w->pool_for(c->w, req.authority, req.authority_len, req.path, req.path_len);
    if (hdrs != stack_hdrs)
        free(hdrs);
    request_free(x);

    if (rv != 0) {
        int status = rv == PROTO_E_NOT_IMPLEMENTED ? 501 : 400;
        if (rv == PROTO_E_NOMEM) {
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, x->stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
            return;
        }
        GW_LOG_INFO("client %s:%d stream %d: request refused with %d: %s", c->peer_addr,
                    c->peer_port, (int)x->stream_id, status, why ? why : proto_strerror(rv));
        x->is_failed = 1;
        gw_h2_reply_error(x, status);
        return;
    }
    x->is_req_end = is_end_stream;
    x->wait.sched.urgency = (uint8_t)urgency;
    x->wait.sched.weight = (uint16_t)weight;
    x->is_incremental = pri.incremental;
    gw_h2_apply_send_priority(h, x);
    if (is_upgrade)
        gw_upgrade_start(x, pool);
    else
        gw_exchange_start(x, pool);
}

/* GOAWAY with the last stream the gateway will process: the client may
 * retry any later one elsewhere. */
static void send_final_goaway(h2_client_t *h)
{
    if (h->is_goaway_sent)
        return;
    h->is_goaway_sent = 1;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    gw_client_conn_mark_dirty(h->conn);
}

static int h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_client_t *h = ud;
    int is_end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    gw_exchange_t *x;

    glitch_on_frame_recv(h, frame);

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        x = gw_h2_stream_exchange(session, frame->hd.stream_id);
        if (x == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && x->fe_req != NULL) {
            start_exchange(h, x, is_end_stream);
            break;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && x->fe_req != NULL)
            end_trailers(h, x);
        if (is_end_stream && x->is_started)
            gw_exchange_req_end(x);
        break;
    case NGHTTP2_DATA:
        x = gw_h2_stream_exchange(session, frame->hd.stream_id);
        if (x != NULL && is_end_stream && x->is_started)
            gw_exchange_req_end(x);
        break;
    case NGHTTP2_PRIORITY_UPDATE:
        gw_h2_on_priority_update(h, frame->ext.payload);
        break;
    case NGHTTP2_PRIORITY:
        gw_h2_on_priority_frame(h, frame);
        break;
    case NGHTTP2_RST_STREAM:
        h->peer_reset_id = frame->hd.stream_id; /* nghttp2 closes it next */
        gw_metrics_inc(&h->conn->w->metrics.rst_received);
        break;
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && h->is_shutdown_noticed)
            send_final_goaway(h);
        break;
    default:
        break;
    }
    return 0;
}

static int h2_on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                                 const uint8_t *data, size_t len, void *ud)
{
    (void)flags, (void)ud;
    nghttp2_session_consume_connection(session, len);
    gw_exchange_t *x = gw_h2_stream_exchange(session, stream_id);
    int taken = x != NULL && x->is_started ? gw_exchange_req_body(x, data, len) : 0;
    if (taken < 0) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
        taken = 0;
    }
    if (taken == 0)
        nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
}

static int h2_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *ud)
{
    h2_client_t *h = ud;
    (void)error_code;
    /* The reset first: nghttp2 marks a stream the client reset as closed
     * for reading too, like one it ended. */
    int kind = stream_id == h->peer_reset_id ? PROTO_H2_CLOSED_PEER_RESET
               : nghttp2_session_get_stream_remote_close(session, stream_id) == 1
                   ? PROTO_H2_CLOSED_REMOTE_END
                   : PROTO_H2_CLOSED_LOCAL_RESET;
    proto_h2_watch_closed(&h->watch, stream_id, kind);
    gw_exchange_t *x = gw_h2_stream_exchange(session, stream_id);
    if (x == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    request_free(x);
    gw_exchange_free(x);
    return 0;
}

/* ---- the glitch budget (gateway/client/h2_glitch.c) ---- */

/* The budget is spent (once per connection): the client gets
 * GOAWAY(ENHANCE_YOUR_CALM), nghttp2 ignores the rest of its input from
 * here on, and the connection closes once the GOAWAY is written. */
static void glitch_trip(h2_client_t *h)
{
    gw_client_conn_t *c = h->conn;
    char counts[256];
    GW_LOG_INFO("client %s:%d: HTTP/2 glitch budget over %u (%s): GOAWAY(ENHANCE_YOUR_CALM)",
                c->peer_addr, c->peer_port, h->glitch.threshold,
                gw_h2_glitch_format(&h->glitch, counts, sizeof(counts)));
    nghttp2_session_terminate_session(h->session, NGHTTP2_ENHANCE_YOUR_CALM);
    gw_client_conn_mark_dirty(c);
}

/* Charges one protocol oddity to the budget. */
void gw_h2_note_glitch(h2_client_t *h, gw_h2_glitch_kind_t kind)
{
    if (gw_h2_glitch_add(&h->glitch, kind, gw_ctx_now_ms(h->conn->w)))
        glitch_trip(h);
}

/* Floods and empty DATA are told by the frame header alone, before nghttp2
 * spends anything on the frame. */
static int h2_on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *ud)
{
    h2_client_t *h = ud;
    (void)session;
    if (gw_h2_glitch_on_frame_head(&h->glitch, hd->type, hd->flags, hd->length,
                                   gw_ctx_now_ms(h->conn->w)))
        glitch_trip(h);
    return 0;
}

/* Tiny WINDOW_UPDATEs, resets of streams whose answer has not begun, and
 * DATA frames of padding alone (their header does not tell). */
static void glitch_on_frame_recv(h2_client_t *h, const nghttp2_frame *frame)
{
    int32_t id = frame->hd.stream_id;
    if (frame->hd.type == NGHTTP2_DATA) {
        if (frame->hd.length > 0 && frame->hd.length == frame->data.padlen &&
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            gw_h2_note_glitch(h, GW_H2_GLITCH_EMPTY_DATA);
    } else if (frame->hd.type == NGHTTP2_WINDOW_UPDATE) {
        int64_t after = id == 0 ? nghttp2_session_get_remote_window_size(h->session)
                                : nghttp2_session_get_stream_remote_window_size(h->session, id);
        int64_t full = id == 0 ? NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE
                               : nghttp2_session_get_remote_settings(
                                     h->session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
        if (gw_h2_glitch_is_small_window_update(
                (uint32_t)frame->window_update.window_size_increment, after, full))
            gw_h2_note_glitch(h, GW_H2_GLITCH_SMALL_WINDOW);
    } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
        gw_exchange_t *x = gw_h2_stream_exchange(h->session, id);
        if (x != NULL && !x->is_resp_head_sent && (id & 1)) /* declining a push is fine */
            gw_h2_note_glitch(h, GW_H2_GLITCH_RAPID_RESET);
    }
}

/* nghttp2 resets a stream (or ends the connection) for the client's
 * invalid frame: each such reset is work the client made us do for free
 * (MadeYouReset, CVE-2025-8671): malformed header blocks, a stream window
 * overflow, streams over the concurrency limit. nghttp2 1.52 ends the whole
 * connection for a zero WINDOW_UPDATE or DATA on a half-closed stream. */
static int h2_on_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                                    int lib_error_code, void *ud)
{
    h2_client_t *h = ud;
    (void)session, (void)frame, (void)lib_error_code;
    if (gw_h2_glitch_on_stream_error(&h->glitch, gw_ctx_now_ms(h->conn->w)))
        glitch_trip(h);
    return 0;
}

/* The resets nghttp2 sends without calling the above (a DATA frame beyond
 * the request's content-length, for one) are charged as they leave. */
static int h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    h2_client_t *h = ud;
    /* Metrics: a GOAWAY(ENHANCE_YOUR_CALM) ends a flooding client (the
     * glitch budget's, or nghttp2's own); every RST_STREAM is counted. */
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM)
        gw_metrics_inc(&h->conn->w->metrics.flood_refusals);
    gw_h2_push_on_frame_send(&h->push, session, frame);
    if (frame->hd.type != NGHTTP2_RST_STREAM)
        return 0;
    gw_metrics_inc(&h->conn->w->metrics.rst_sent);
    int has_request = gw_h2_stream_exchange(session, frame->hd.stream_id) != NULL;
    if (gw_h2_glitch_on_reset_sent(&h->glitch, frame->rst_stream.error_code, has_request,
                                   gw_ctx_now_ms(h->conn->w)))
        glitch_trip(h);
    return 0;
}

static int h2_on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
                                int lib_error_code, void *ud)
{
    (void)session, (void)lib_error_code;
    gw_h2_push_on_frame_not_send(&((h2_client_t *)ud)->push, frame);
    return 0;
}

/* ---- the connection ---- */

static int session_recv(h2_client_t *h, const uint8_t *data, size_t len)
{
    gw_client_conn_t *c = h->conn;
    ssize_t rv = len > 0 ? nghttp2_session_mem_recv(h->session, data, len) : 0;
    if (rv < 0) {
        if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
            gw_metrics_inc(&c->w->metrics.flood_refusals);
        GW_LOG_DEBUG("client %s:%d: HTTP/2 error: %s", c->peer_addr, c->peer_port,
                     nghttp2_strerror((int)rv));
        return -1;
    }
    return 0;
}

/*
 * RFC 9113 5.1 for a DATA or HEADERS frame whose header just arrived, all
 * earlier frames being processed: on a stream the client had ended, a
 * connection error; on one it reset, a stream error; on an id it skipped,
 * PROTOCOL_ERROR (5.1.1). nghttp2 still sees the frame (its HPACK state
 * must follow every header block) but ignores it. Returns 1 when the
 * connection is ending.
 */
static int answer_closed_stream(h2_client_t *h, const proto_h2_frame_hd_t *hd)
{
    gw_client_conn_t *c = h->conn;
    int is_known = nghttp2_session_find_stream(h->session, hd->stream_id) != NULL;
    uint32_t code;

    switch (proto_h2_watch_judge(&h->watch, hd, is_known)) {
    case PROTO_H2_RST_CLOSED:
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, hd->stream_id,
                                  NGHTTP2_STREAM_CLOSED);
        gw_client_conn_mark_dirty(c);
        return 0;
    case PROTO_H2_GOAWAY_CLOSED:
        code = NGHTTP2_STREAM_CLOSED;
        break;
    case PROTO_H2_GOAWAY_PROTOCOL:
        code = NGHTTP2_PROTOCOL_ERROR;
        break;
    default:
        return 0;
    }
    GW_LOG_DEBUG("client %s:%d: frame type %d on closed stream %d: connection error %s",
                 c->peer_addr, c->peer_port, hd->type, (int)hd->stream_id,
                 nghttp2_http2_strerror(code));
    nghttp2_session_terminate_session(h->session, code);
    gw_client_conn_mark_dirty(c);
    return 1;
}

static int h2_conn_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    h2_client_t *h = c->proto_state;
    size_t fed = 0, pos = 0;

    h->is_awaiting_preface = 0;
    h->is_mem_dirty = 1;
    /* Frame by frame where it matters: a DATA or HEADERS frame is judged
     * after nghttp2 has processed everything before it. */
    while (pos < len) {
        proto_h2_frame_hd_t hd;
        int has_hd;
        pos += proto_h2_watch_scan(&h->watch, data + pos, len - pos, &hd, &has_hd);
        if (!has_hd)
            break;
        if (session_recv(h, data + fed, pos - 1 - fed) != 0)
            return -1;
        fed = pos - 1;
        if (answer_closed_stream(h, &hd))
            return 0; /* nghttp2 ignores all input from now on */
    }
    return session_recv(h, data + fed, len - fed);
}

static int h2_conn_on_flush(gw_client_conn_t *c)
{
    h2_client_t *h = c->proto_state;
    if (h->is_awaiting_preface)
        return 1;
    while (c->out_len < MAX_GATHER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) {
            GW_LOG_DEBUG("client %s:%d: HTTP/2 send error: %s", c->peer_addr, c->peer_port,
                         nghttp2_strerror((int)n));
            return -1;
        }
        if (n == 0)
            break;
        if (gw_client_conn_out(c, data, (size_t)n) != 0)
            return -1;
    }
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
        return 0;
    return 1;
}

static void h2_conn_on_drain(gw_client_conn_t *c)
{
    h2_client_t *h = c->proto_state;
    if (!h->is_shutdown_noticed && nghttp2_submit_shutdown_notice(h->session) == 0 &&
        nghttp2_submit_ping(h->session, NGHTTP2_FLAG_NONE, NULL) == 0)
        h->is_shutdown_noticed = 1;
    else
        send_final_goaway(h);
    gw_client_conn_mark_dirty(c);
}

static void h2_conn_on_destroy(gw_client_conn_t *c)
{
    h2_client_t *h = c->proto_state;
    if (h == NULL)
        return;
    proto_queue_t *n;
    while ((n = proto_queue_first(&h->exchanges)) != NULL) {
        gw_exchange_t *x = proto_container_of(n, gw_exchange_t, fe_node);
        request_free(x);
        gw_exchange_free(x);
    }
    nghttp2_session_del(h->session);
    gw_h2_push_free(&h->push);
    free(h);
    c->proto_state = NULL;
}

/* Quiet: no request, and nothing to send (so the last frame was copied
 * out). Most connections at the edge spend their life like this, and the
 * session's frame buffer and empty stream map are then pages of nothing. */
static void h2_conn_on_trim(gw_client_conn_t *c)
{
    h2_client_t *h = c->proto_state;
    if (h != NULL && h->is_mem_dirty && !nghttp2_session_want_write(h->session)) {
        gw_h2_mem_release(&h->mem);
        h->is_mem_dirty = 0;
    }
}

static int h2_conn_is_idle(gw_client_conn_t *c)
{
    h2_client_t *h = c->proto_state;
    return h == NULL || proto_queue_empty(&h->exchanges);
}

const gw_client_proto_t gw_h2_client_proto = {
    .name = "h2",
    .on_read = h2_conn_on_read,
    .on_flush = h2_conn_on_flush,
    .on_drain = h2_conn_on_drain,
    .on_destroy = h2_conn_on_destroy,
    .is_idle = h2_conn_is_idle,
    .on_trim = h2_conn_on_trim,
};

/* Creates c's HTTP/2 session and queues the server SETTINGS. The caller
 * installs it as c->proto_state. Returns NULL when out of memory. */
static h2_client_t *session_new(gw_client_conn_t *c)
{
    const cfg_t *cfg = c->w->cfg;
    h2_client_t *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv;
    if (h == NULL)
        return NULL;
    h->conn = c;
    gw_h2_mem_init(&h->mem);
    h->is_mem_dirty = 1; /* the SETTINGS about to be sent */
    proto_queue_init(&h->exchanges);
    proto_h2_watch_init(&h->watch, 0);

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, h2_on_invalid_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, h2_on_frame_not_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, gw_h2_on_send_data);
    gw_h2_glitch_init(&h->glitch, cfg->h2_glitch_threshold, gw_ctx_now_ms(c->w));

    if (nghttp2_option_new(&opt) != 0)
        goto fail;
    /* Window updates follow what the backend has taken (backpressure). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* CVE-2023-44487 (Rapid Reset) and CVE-2024-27316 (CONTINUATION flood). */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8);
    /* RFC 9218 for clients that announce it, the RFC 7540 tree for the rest. */
    nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
    nghttp2_option_set_server_fallback_rfc7540_priorities(opt, 1);

    gw_h2_mem_begin_session(&h->mem);
    rv = nghttp2_session_server_new3(&h->session, cbs, h, opt, gw_h2_mem_get(&h->mem));
    gw_h2_mem_end_session(&h->mem);
    if (rv != 0)
        goto fail;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    opt = NULL;
    cbs = NULL;

    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->request_buffer_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* RFC 8441: last, dropped when off */
    };
    size_t nsettings = sizeof(settings) / sizeof(settings[0]) - !gw_upgrade_is_enabled(c->w);
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, settings, nsettings) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                              CONNECTION_WINDOW) != 0)
        goto fail_session;
    return h;

fail_session:
    nghttp2_session_del(h->session);
fail:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    free(h);
    return NULL;
}

int gw_h2_client_attach(gw_client_conn_t *c)
{
    h2_client_t *h = session_new(c);
    if (h == NULL)
        return -1;
    c->proto_state = h;
    gw_client_conn_mark_dirty(c);
    return 0;
}

/* ---- h2c Upgrade (RFC 7540 §3.2) ---- */

int gw_h2_client_attach_upgrade(gw_client_conn_t *c, const uint8_t *settings, size_t settings_len,
                                gw_exchange_t *x)
{
    h2_client_t *h = session_new(c);
    if (h == NULL)
        return -1;
    /* Applies the client's HTTP2-Settings as if a SETTINGS frame had come,
     * and opens stream 1, half-closed (remote): the upgrading request is
     * its request. The client's preface still follows on the wire. */
    int rv = nghttp2_session_upgrade2(h->session, settings, settings_len, x->is_head_method, NULL);
    if (rv != 0) {
        GW_LOG_INFO("client %s:%d: h2c upgrade refused: %s", c->peer_addr, c->peer_port,
                    nghttp2_strerror(rv));
        nghttp2_session_del(h->session);
        free(h);
        return -1;
    }
    /* From here on x is an HTTP/2 stream like any other. */
    x->fe = &gw_h2_frontend_ops;
    x->fe_conn = h;
    x->stream_id = 1;
    x->protocol = "h2";
    x->wait.sched.owner = h;
    x->is_req_end = 1;
    proto_queue_insert_tail(&h->exchanges, &x->fe_node);
    nghttp2_session_set_stream_user_data(h->session, 1, x);
    c->proto = &gw_h2_client_proto;
    c->proto_state = h;
    gw_client_conn_note_protocol(c);
    h->is_awaiting_preface = 1;
    proto_h2_watch_init(&h->watch, 1);
    gw_h2_apply_send_priority(h, x);
    gw_exchange_start(x, x->pool); /* routed by the HTTP/1.1 frontend */
    gw_client_conn_mark_dirty(c);
    return 0;
}
