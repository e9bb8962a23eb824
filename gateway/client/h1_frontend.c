/*
 * HTTP/1.1 frontend. One request at a time: its head starts an exchange,
 * its body streams into the exchange, and only once its answer has been
 * gathered for writing is the next pipelined request parsed. Output is
 * staged (h->pending, the response body in x->resp_body) and moved into the
 * connection's gather buffer in on_flush only, because the buffer belongs to
 * the write in flight until that write completes.
 *
 * Memory per connection is bounded: unparsed pipelined bytes stop the reads
 * past MAX_UNPARSED, the request body buffer past request_buffer_size, and
 * at most about OUT_HIGH of response body is gathered per write.
 */
#include "gateway/client/h1_frontend.h"
#include "gateway/client/h1_reply.h"
#include "gateway/client/h1_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/exchange.h"
#include "gateway/upgrade.h"
#include "gateway/client/h2_frontend.h"
#include "gateway/core/log.h"
#include "proto/headers.h"
#include "gateway/core/ctx.h"
#include "proto/buf.h"
#include "proto/h1_request_parser.h"
#include "proto/h1_start.h"
#include "proto/upgrade.h"

/* Unparsed bytes kept while a request is served; reads stop beyond. */
#define MAX_UNPARSED (64 * 1024)
/* Requests finished per on_flush, so a pipelining client cannot hold the
 * loop; the rest goes on in the next turn. */
#define MAX_REQUESTS_PER_FLUSH 16
/* Largest HTTP2-Settings we decode: 6 bytes per setting, far more settings
 * than exist. */
#define MAX_H2_SETTINGS 1536

static int status_of(int err)
{
    if (err == PROTO_E_NOT_IMPLEMENTED)
        return 501;
    return err == PROTO_E_TOO_LARGE ? 431 : 400;
}

/*
 * The request cannot be forwarded (or, after its head, cannot be finished):
 * answer status with "connection: close" if nothing of the response was
 * staged yet, and close once the output is out. Nothing more is parsed: the
 * bytes that follow a malformed request cannot be trusted to start a new one
 * (the callers drop them once the parser is off the stack).
 */
static void refuse(h1_client_t *h, int status, const char *why)
{
    gw_client_conn_t *c = h->conn;

    GW_LOG_INFO("client %s:%d: HTTP/1.1 request refused with %d: %s", c->peer_addr, c->peer_port,
                status, why);
    if (h->x != NULL) {
        /* The backend may hold part of this request: its connection goes. */
        gw_exchange_free(h->x);
        h->x = NULL;
    }
    h->is_keep_alive = 0;
    h->is_refused = 1;
    if (!h->is_resp_started)
        gw_h1_stage_error(h, status, 0);
    else if (!h->is_resp_done)
        h->is_aborted = 1; /* a response is half out: only the close can end it */
    h->is_active = 1;
    h->is_req_done = 1;
    gw_client_conn_mark_dirty(c);
}

/* ---- requests from the client ---- */

/* Reads stop while the connection holds as much input as it may: unparsed
 * pipelined bytes, or a request body the backend has not taken yet. */
void gw_h1_update_reading(h1_client_t *h)
{
    gw_client_conn_t *c = h->conn;
    /* A refused connection goes on reading (and dropping) until its answer
     * is written: closing with unread input makes the kernel send a reset,
     * which may destroy the answer before the client reads it. */
    int is_full =
        proto_buf_len(&h->inbuf) > MAX_UNPARSED || h->is_aborted ||
        (h->x != NULL && proto_buf_len(&h->x->req_body) > c->w->cfg->request_buffer_size) ||
        (h->is_tunnel && h->x != NULL && h->x->tunnel != NULL &&
         gw_tunnel_pending(h->x->tunnel) > c->w->cfg->request_buffer_size);

    if (is_full) {
        gw_client_conn_pause_read(c);
    } else if (gw_client_conn_resume_read(c) != 0) {
        h->is_aborted = 1;
        gw_client_conn_mark_dirty(c);
    }
}

/* The fields forwarded to the backend: all of them but Expect (answered
 * here, hop-by-hop in effect) and, for an absolute-form target, Host
 * (RFC 9112 §3.2.2: the target's authority wins). proto_h1_request_build()
 * drops the connection-specific ones. */
static size_t forwarded_fields(const proto_h1_req_head_t *head, proto_header_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < head->nheaders; i++) {
        const proto_header_t *f = &head->headers[i];
        if (f->name_len == 6 && memcmp(f->name, "expect", 6) == 0)
            continue;
        if ((head->flags & PROTO_H1_REQ_ABSOLUTE_FORM) && f->name_len == 4 &&
            memcmp(f->name, "host", 4) == 0)
            continue;
        out[n++] = *f;
    }
    return n;
}

/* An upgrade is taken when its settings decode; otherwise the request is
 * simply served over HTTP/1.1 (RFC 7540 §3.2 lets a server ignore it). */
static int want_upgrade(h1_client_t *h, const proto_h1_req_head_t *head)
{
    ssize_t n;

    if (!(head->flags & PROTO_H1_REQ_UPGRADE_H2C) || h->is_tls || h->is_draining)
        return 0;
    h->h2_settings = malloc(MAX_H2_SETTINGS);
    if (h->h2_settings == NULL)
        return 0;
    n = proto_h1_base64url_decode(head->http2_settings, head->http2_settings_len, h->h2_settings,
                                  MAX_H2_SETTINGS);
    if (n < 0 || n % 6 != 0) {
        free(h->h2_settings);
        h->h2_settings = NULL;
        return 0;
    }
    h->h2_settings_len = (size_t)n;
    return 1;
}

static int h1_on_head(void *ud, const proto_h1_req_head_t *head)
{
    h1_client_t *h = ud;
    gw_client_conn_t *c = h->conn;
    proto_header_t stack[64];
    proto_header_t *fields =
        head->nheaders <= 64 ? stack : malloc(head->nheaders * sizeof(*fields));
    const char *why = NULL;
    gw_exchange_t *x;
    int rv;

    h->is_active = 1;
    h->http_minor = head->http_minor;
    h->is_head = head->method_len == 4 && memcmp(head->method, "HEAD", 4) == 0;
    h->is_keep_alive = (head->flags & PROTO_H1_REQ_KEEP_ALIVE) && !h->is_draining;
    x = gw_exchange_new(c->w, &gw_h1_frontend_ops, h, 0);
    if (x != NULL) {
        x->client_addr = c->peer_addr;
        x->client_port = c->peer_port;
        x->protocol = "http/1.1";
        if (c->is_tls) {
            x->tls_version = gw_tls_conn_version(&c->tls);
            x->sni = gw_tls_conn_sni(&c->tls);
        }
    }
    if (fields == NULL || x == NULL) {
        if (fields != stack)
            free(fields);
        if (x != NULL)
            gw_exchange_free(x);
        h->is_aborted = 1;
        return -1;
    }

    proto_request_t req = {
        .method = head->method,
        .method_len = head->method_len,
        .scheme = h->is_tls ? "https" : "http",
        .scheme_len = h->is_tls ? 5 : 4,
        .path = head->path,
        .path_len = head->path_len,
        .headers = fields,
        .nheaders = forwarded_fields(head, fields),
        .client_addr = c->peer_addr,
        .has_body = (head->flags & PROTO_H1_REQ_HAS_BODY) != 0,
        .via = gw_ctx_via_request(c->w, 1, head->http_minor),
    };
    char subject[512];
    proto_header_t extra;
    if (gw_client_conn_cert_field(c, &extra, subject, sizeof(subject))) {
        req.extra = &extra;
        req.nextra = 1;
    }
    /* Host itself is checked and written by the builder; only the
     * absolute-form authority comes in as :authority. */
    const char *authority = head->authority;
    size_t authority_len = head->authority_len;
    char local[80];
    if (head->flags & PROTO_H1_REQ_ABSOLUTE_FORM) {
        req.authority = authority;
        req.authority_len = authority_len;
    } else if (authority == NULL) {
        /* HTTP/1.0 without Host (the parser refuses that in HTTP/1.1): the
         * backend, which may well need one, gets the address the client
         * reached. */
        int n = gw_client_conn_local_authority(c, local, sizeof(local));
        if (n > 0) {
            req.authority = authority = local;
            req.authority_len = authority_len = (size_t)n;
        }
    }
    /* A WebSocket handshake goes through whole, the client's key included;
     * the connection is the tunnel's afterwards, or closes. */
    proto_header_t ws_extra[1 + PROTO_UPGRADE_EXTRA_MAX];
    h->is_upgrade = gw_upgrade_is_enabled(c->w) && head->http_minor == 1 &&
                    proto_upgrade_is_websocket(head->method, head->method_len, head->headers,
                                               head->nheaders, req.has_body);
    if (h->is_upgrade) {
        proto_upgrade_request(&req, ws_extra, 1 + PROTO_UPGRADE_EXTRA_MAX, NULL);
        h->is_keep_alive = 0;
    }
    rv = proto_h1_request_build(&req, &x->head, &why);
    if (fields != stack)
        free(fields);
    x->is_head_method = h->is_head;
    /* Routed now: head's pointers are valid during this callback only. */
    x->pool = c->w->pool_for(c->w, authority, authority_len, head->path, head->path_len);
    if (rv != 0) {
        gw_exchange_free(x);
        if (rv == PROTO_E_NOMEM) {
            h->is_aborted = 1;
            return -1;
        }
        refuse(h, rv == PROTO_E_NOT_IMPLEMENTED ? 501 : 400, why ? why : proto_strerror(rv));
        return -1;
    }
    h->x = x;
    x->is_req_end = !req.has_body;
    if (h->is_upgrade) {
        x->is_req_end = 0; /* the tunnel's bytes follow */
        gw_upgrade_start(x, x->pool);
        gw_client_conn_mark_dirty(c);
        return 0;
    }
    if (want_upgrade(h, head))
        return 0; /* started on stream 1 by the switch in on_flush */
    gw_exchange_start(x, x->pool);
    /* RFC 9110 §10.1.1: the client waits for this before sending its body.
     * Not after a synchronous failure: its answer is final already. */
    if ((head->flags & PROTO_H1_REQ_EXPECT_CONTINUE) && !h->is_resp_started &&
        gw_h1_stage_str(h, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
        h->is_aborted = 1;
    gw_client_conn_mark_dirty(c);
    return 0;
}

static int h1_on_body(void *ud, const uint8_t *data, size_t len)
{
    h1_client_t *h = ud;

    /* 0 means the exchange no longer wants them (answered or failed): the
     * bytes are read to find the end of the request, and dropped. */
    if (h->x != NULL && h->x->is_started && gw_exchange_req_body(h->x, data, len) < 0) {
        h->is_aborted = 1;
        return -1;
    }
    return 0;
}

static int h1_on_complete(void *ud)
{
    h1_client_t *h = ud;

    h->is_req_done = 1;
    if (h->x != NULL && h->x->is_started && !h->x->is_req_end && !h->is_upgrade)
        gw_exchange_req_end(h->x);
    gw_client_conn_mark_dirty(h->conn); /* the answer may be waiting for this */
    return 0;
}

/* Trailers of a chunked request: the parser has checked their syntax and
 * size; the exchange keeps what may be forwarded for the backend's last
 * chunk (the request to the backend is chunked too). */
static int h1_on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    h1_client_t *h = ud;

    if (h->x != NULL && h->x->is_started &&
        gw_exchange_req_trailers(h->x, f, n, h->conn->origin->cfg->client_cert_header) < 0) {
        h->is_aborted = 1;
        return -1;
    }
    return 0;
}

static const proto_h1_req_cbs_t parser_cbs = {
    .on_head = h1_on_head,
    .on_body = h1_on_body,
    .on_trailers = h1_on_trailers,
    .on_complete = h1_on_complete,
};

/* 1 while parsed bytes would go somewhere: a new request's head, or the
 * body of the request being served. */
static int can_parse(const h1_client_t *h)
{
    return !h->is_refused && !h->is_aborted && h->h2_settings == NULL &&
           !(h->is_active && h->is_req_done);
}

/* Feeds bytes to the parser; returns how many it took (everything on a
 * refusal, whose bytes are dropped). */
static size_t feed(h1_client_t *h, const uint8_t *data, size_t len)
{
    ssize_t n = proto_h1_req_parser_feed(&h->parser, data, len);

    if (n >= 0)
        return (size_t)n;
    /* PROTO_E_CALLBACK: our callback stopped it and has acted already. */
    if (n != PROTO_E_CALLBACK && !h->is_refused) {
        if (n == PROTO_E_NOMEM)
            h->is_aborted = 1;
        else
            refuse(h, status_of((int)n), h->parser.why ? h->parser.why : proto_strerror((int)n));
    }
    gw_client_conn_mark_dirty(h->conn);
    return len;
}

/* Parses buffered bytes as far as the request being served allows. */
static void process_input(h1_client_t *h)
{
    if (h->is_processing)
        return;
    h->is_processing = 1;
    while (can_parse(h) && proto_buf_len(&h->inbuf) > 0) {
        proto_slice_t s;
        proto_buf_slices(&h->inbuf, &s, 1);
        size_t n = feed(h, s.base, s.len);
        if (h->is_refused || h->is_aborted) {
            proto_buf_free(&h->inbuf);
            break;
        }
        proto_buf_consume(&h->inbuf, n);
    }
    h->is_processing = 0;
    gw_h1_update_reading(h);
}

static int h1_conn_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    h1_client_t *h = c->proto_state;
    size_t n = 0;

    if (h->is_refused || h->is_aborted)
        return 0;
    if (h->is_tunnel) {
        int rv = gw_h1_to_tunnel(h, data, len);
        gw_h1_update_reading(h);
        return rv;
    }
    /* Straight from the read buffer when nothing waits before these bytes. */
    if (proto_buf_len(&h->inbuf) == 0 && can_parse(h)) {
        h->is_processing = 1;
        n = feed(h, data, len);
        h->is_processing = 0;
    }
    if (h->is_refused || h->is_aborted)
        return 0;
    if (n < len && proto_buf_append(&h->inbuf, data + n, len - n) != 0)
        return -1;
    process_input(h);
    return 0;
}

/* The answer is gathered: forget the request and ready the parser. */
static void end_request(h1_client_t *h)
{
    if (h->x != NULL) {
        gw_exchange_free(h->x);
        h->x = NULL;
    }
    proto_h1_req_parser_reset(&h->parser);
    h->is_active = 0;
    h->is_head = 0;
    h->is_req_done = 0;
    h->is_resp_started = 0;
    h->is_resp_done = 0;
    h->framing = FRAME_NONE;
}

static void client_free(h1_client_t *h)
{
    if (h->x != NULL)
        gw_exchange_free(h->x);
    proto_h1_req_parser_free(&h->parser);
    proto_buf_free(&h->inbuf);
    proto_buf_free(&h->pending);
    free(h->h2_settings);
    free(h);
}

/* The upgrade is off (the switch failed, or a drain began): the request
 * is served over HTTP/1.1 like any other. */
static void cancel_upgrade(h1_client_t *h)
{
    free(h->h2_settings);
    h->h2_settings = NULL;
    gw_exchange_start(h->x, h->x->pool);
}

/*
 * RFC 7540 §3.2: answer 101, then the connection is HTTP/2 and the
 * upgrading request is stream 1. Runs in on_flush so that the 101 lands in
 * the gather buffer after every earlier answer and before anything HTTP/2
 * sends. Returns 1 when switched (h is freed then), 0 when the request
 * stays on HTTP/1.1, -1 on error.
 */
static int switch_to_h2(gw_client_conn_t *c, h1_client_t *h)
{
    static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                    "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    gw_exchange_t *x = h->x;
    proto_buf_t rest = h->inbuf;
    proto_slice_t s;

    if (gw_h2_client_attach_upgrade(c, h->h2_settings, h->h2_settings_len, x) != 0) {
        cancel_upgrade(h);
        return 0;
    }
    h->x = NULL; /* stream 1 owns it now */
    proto_buf_init(&h->inbuf);
    client_free(h);
    if (gw_client_conn_out(c, switching, sizeof(switching) - 1) != 0 ||
        gw_client_conn_resume_read(c) != 0) {
        proto_buf_free(&rest);
        return -1;
    }
    /* Bytes the client sent after its request (the preface, if it did not
     * wait for the 101) are HTTP/2's now. */
    while (proto_buf_slices(&rest, &s, 1) > 0) {
        if (c->proto->on_read(c, s.base, s.len) < 0) {
            proto_buf_free(&rest);
            return -1;
        }
        proto_buf_consume(&rest, s.len);
    }
    return 1;
}

/* A tunnel whose backend ended its side ends the client's too (FIN), and
 * stays for what the client still sends: until the client's own EOF, and
 * until the backend has taken every byte of it. */
static int is_tunnel_half_open(gw_client_conn_t *c, h1_client_t *h)
{
    if (!h->is_tunnel || h->x == NULL || h->x->tunnel == NULL)
        return 0;
    if (c->is_eof && gw_tunnel_pending(h->x->tunnel) == 0)
        return 0;
    gw_client_conn_shutdown_write(c);
    return 1;
}

static int h1_conn_on_flush(gw_client_conn_t *c)
{
    h1_client_t *h = c->proto_state;

    for (int finished = 0;;) {
        if (h->h2_settings != NULL && h->is_req_done) {
            int rv = 0;
            if (h->is_draining)
                cancel_upgrade(h);
            else
                rv = switch_to_h2(c, h);
            if (rv != 0)
                return rv; /* 1: c is HTTP/2 now, h is gone */
        }
        if (gw_h1_move_pending(c, h) != 0)
            return -1;
        if (h->is_aborted)
            return 0;
        if (h->x != NULL && h->is_resp_started && !h->is_resp_done && gw_h1_write_body(c, h) != 0)
            return -1;
        /* After the client's EOF a request that became active later (it was
         * buffered behind the one on_eof saw) and has all its bytes parsed
         * is cut short for good: its answer ends the connection. */
        if (c->is_eof && h->is_active && !h->is_req_done && proto_buf_len(&h->inbuf) == 0)
            h->is_keep_alive = 0;
        if (!h->is_active || !h->is_resp_done || (h->is_keep_alive && !h->is_req_done))
            break;
        /* The answer is complete (and the request read, unless we close). */
        if (!h->is_keep_alive)
            return is_tunnel_half_open(c, h) ? 1 : 0;
        end_request(h);
        if (++finished == MAX_REQUESTS_PER_FLUSH) {
            gw_client_conn_mark_dirty(c); /* the rest in the next turn */
            break;
        }
        process_input(h);
    }
    /* Nothing is owed and nothing more can come or is wanted. */
    if (!h->is_active && (c->is_eof || h->is_draining))
        return 0;
    return 1;
}

static int h1_conn_on_eof(gw_client_conn_t *c)
{
    h1_client_t *h = c->proto_state;

    /* After a 101 the client has to send its preface: it cannot now. */
    if (h->h2_settings != NULL)
        return -1;
    /* A tunnel's client ended its side: so does the backend's, and the
     * connection stays for what the backend still sends. */
    if (h->is_tunnel) {
        if (h->x != NULL)
            gw_exchange_req_end(h->x);
        return 0;
    }
    /* Answers are still owed for complete requests: the one being served
     * and those buffered behind it. */
    if (h->is_active && h->is_req_done)
        return 0;
    /* A request cut short never completes; an answer already on its way
     * is finished, then the connection closes. */
    if (h->is_active && h->is_resp_started) {
        h->is_keep_alive = 0;
        return 0;
    }
    return -1;
}

static void h1_conn_on_drain(gw_client_conn_t *c)
{
    h1_client_t *h = c->proto_state;

    /* The request being served is answered, with "connection: close" if
     * its head is not out yet; nothing after it is read. */
    h->is_draining = 1;
    h->is_keep_alive = 0;
    gw_client_conn_mark_dirty(c);
}

static void h1_conn_on_destroy(gw_client_conn_t *c)
{
    h1_client_t *h = c->proto_state;

    if (h == NULL)
        return;
    client_free(h);
    c->proto_state = NULL;
}

static int h1_conn_is_idle(gw_client_conn_t *c)
{
    h1_client_t *h = c->proto_state;
    return h == NULL || (!h->is_active && proto_buf_len(&h->inbuf) == 0);
}

const gw_client_proto_t gw_h1_client_proto = {
    .name = "http/1.1",
    .on_read = h1_conn_on_read,
    .on_flush = h1_conn_on_flush,
    .on_drain = h1_conn_on_drain,
    .on_destroy = h1_conn_on_destroy,
    .on_eof = h1_conn_on_eof,
    .is_idle = h1_conn_is_idle,
};

int gw_h1_client_attach(gw_client_conn_t *c, int is_tls)
{
    h1_client_t *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return -1;
    h->conn = c;
    h->is_tls = is_tls;
    proto_buf_init(&h->inbuf);
    proto_buf_init(&h->pending);
    if (proto_h1_req_parser_init(&h->parser, &parser_cbs, h, c->w->cfg->max_header_list_size) !=
        0) {
        free(h);
        return -1;
    }
    c->proto_state = h;
    return 0;
}
