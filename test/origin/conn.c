/*
 * One client connection of the test origin.
 *
 * Requests are answered strictly in order. on_message_complete pauses llhttp,
 * so exactly one request is dispatched at a time; bytes of later pipelined
 * requests stay unparsed (copied out of the shared read buffer) until the
 * current response is fully queued and the output queue is below
 * OR_OUT_HIGH. While anything stays unparsed the connection does not read.
 *
 * Output is gathered: everything queued while handling one read (or one
 * timer, or one write completion) goes out in one uv_write, and only one
 * write is in flight per connection. A streamed body is queued one batch at a
 * time, after the previous write completed, so a client that does not read
 * costs no memory.
 */
#include "origin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

or_stats_t or_stats;
int or_kill_next;

/* Reads land here; whatever is left unparsed is copied before on_read returns. */
static char g_read_buf[OR_READ_BUF];
static llhttp_settings_t g_settings;
static EVP_MD *g_sha256;
static uint64_t g_next_id;

static void conn_process(or_conn_t *c);
static void conn_flush(or_conn_t *c);

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "origin: out of memory\n");
        abort();
    }
    return q;
}

static void buf_reserve(or_buf_t *b, size_t extra)
{
    size_t cap;

    if (b->cap - b->len >= extra)
        return;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

/* ---- output queue ---- */

/* Owned bytes are appended to `out` in order, so consecutive owned pieces
 * form one segment. A static piece is only referenced while a slot is left
 * after it for the owned bytes that may follow; otherwise it is copied. */
void or_out_append(or_conn_t *c, const void *p, size_t n)
{
    or_seg_t *last = c->nsegs ? &c->segs[c->nsegs - 1] : NULL;

    if (n == 0)
        return;
    buf_reserve(&c->out, n);
    if (last != NULL && last->ext == NULL) {
        last->len += n;
    } else {
        c->segs[c->nsegs++] = (or_seg_t){.ext = NULL, .off = c->out.len, .len = n};
    }
    memcpy(c->out.data + c->out.len, p, n);
    c->out.len += n;
}

void or_out_str(or_conn_t *c, const char *s)
{
    or_out_append(c, s, strlen(s));
}

void or_out_printf(or_conn_t *c, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        or_out_append(c, small, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    or_out_append(c, big, (size_t)n);
    free(big);
}

void or_out_static(or_conn_t *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (c->nsegs + 2 > OR_MAX_SEGS) {
        or_out_append(c, p, n);
        return;
    }
    c->segs[c->nsegs++] = (or_seg_t){.ext = p, .off = 0, .len = n};
}

/* ---- closing ---- */

static void on_handle_close(uv_handle_t *h)
{
    or_conn_t *c = h->data;

    if (--c->open_handles > 0)
        return;
    free(c->req.head.data);
    free(c->req.fields);
    free(c->out.data);
    free(c->inflight.data);
    free(c->in_store);
    EVP_MD_CTX_free(c->md);
    or_stats.open_connections--;
    free(c);
}

void or_conn_hard_close(or_conn_t *c)
{
    if (c->is_closed)
        return;
    c->is_closed = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_close);
    uv_close((uv_handle_t *)&c->timer, on_handle_close);
}

/* Abort the connection with a TCP RST (SO_LINGER 0); pending output is dropped. */
static void conn_reset(or_conn_t *c)
{
    if (c->is_closed)
        return;
    c->is_closed = 1;
    if (uv_tcp_close_reset(&c->tcp, on_handle_close) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_handle_close);
    uv_close((uv_handle_t *)&c->timer, on_handle_close);
}

static void on_timer(uv_timer_t *t)
{
    or_conn_t *c = t->data;
    or_timer_kind_t kind = c->timer_kind;

    if (c->is_closed)
        return;
    c->timer_kind = OR_TIMER_NONE;
    switch (kind) {
    case OR_TIMER_DELAY:
        or_route_delay_fire(c);
        conn_process(c);
        break;
    case OR_TIMER_DROP:
    case OR_TIMER_LINGER:
        or_conn_hard_close(c);
        break;
    case OR_TIMER_NONE:
        break;
    }
}

void or_conn_end_response(or_conn_t *c)
{
    c->resp = OR_RESP_NONE;
    if (!c->req.is_keep_alive && c->close_mode == OR_CLOSE_NONE)
        c->close_mode = OR_CLOSE_GRACEFUL;
}

void or_conn_start_timer(or_conn_t *c, or_timer_kind_t kind, uint64_t ms)
{
    c->timer_kind = kind;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void conn_set_reading(or_conn_t *c, int want);

/* The response is written and our side is shut down; drain what the client
 * still sends so that closing does not turn into an RST that could destroy
 * the response in the client's receive queue. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    or_conn_t *c = req->data;

    if (c->is_closed)
        return;
    if (status < 0) {
        or_conn_hard_close(c);
        return;
    }
    c->is_lingering = 1;
    conn_set_reading(c, 1);
    or_conn_start_timer(c, OR_TIMER_LINGER, OR_LINGER_MS);
}

/* Called whenever nothing is queued and no write is in flight. */
static void conn_drained(or_conn_t *c)
{
    switch (c->close_mode) {
    case OR_CLOSE_NONE:
        break;
    case OR_CLOSE_GRACEFUL:
        if (c->is_shutting)
            break;
        c->is_shutting = 1;
        if (c->peer_eof) {
            or_conn_hard_close(c);
            break;
        }
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
            or_conn_hard_close(c);
        break;
    case OR_CLOSE_DROP_IDLE:
        if (c->timer_kind == OR_TIMER_NONE && !c->is_shutting) {
            c->is_shutting = 1;
            or_conn_start_timer(c, OR_TIMER_DROP, OR_DROP_IDLE_MS);
        }
        break;
    }
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status)
{
    or_conn_t *c = req->data;

    c->is_writing = 0;
    if (c->is_closed)
        return;
    if (status < 0) {
        or_conn_hard_close(c);
        return;
    }
    c->inflight.len = 0;
    if (c->inflight.cap > 4 * OR_OUT_HIGH) { /* one huge /echo must not pin memory */
        free(c->inflight.data);
        c->inflight = (or_buf_t){0};
    }
    if (c->resp == OR_RESP_STREAM)
        or_route_stream_pump(c);
    conn_process(c);
}

static void conn_flush(or_conn_t *c)
{
    uv_buf_t bufs[OR_MAX_SEGS];
    or_buf_t tmp;
    size_t i;

    if (c->is_closed || c->is_writing)
        return;
    if (c->nsegs == 0) {
        conn_drained(c);
        return;
    }
    for (i = 0; i < c->nsegs; i++) {
        const or_seg_t *s = &c->segs[i];
        char *base = s->ext ? (char *)s->ext : c->out.data + s->off;
        bufs[i] = uv_buf_init(base, (unsigned int)s->len);
    }
    /* `inflight` must live until on_write; `out` starts again empty. */
    tmp = c->inflight;
    c->inflight = c->out;
    c->out = tmp;
    c->out.len = 0;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, (unsigned int)c->nsegs, on_write) != 0) {
        c->nsegs = 0;
        or_conn_hard_close(c);
        return;
    }
    c->nsegs = 0;
    c->is_writing = 1;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(g_read_buf, sizeof g_read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    or_conn_t *c = s->data;

    if (c->is_closed || nread == 0)
        return;
    if (c->is_lingering) {
        if (nread < 0)
            or_conn_hard_close(c);
        return;
    }
    if (nread == UV_EOF) {
        /* A half-closed client still gets the answers to what it sent. */
        c->peer_eof = 1;
        conn_set_reading(c, 0);
        conn_process(c);
        return;
    }
    if (nread < 0) {
        or_conn_hard_close(c);
        return;
    }
    c->in = buf->base;
    c->in_off = 0;
    c->in_len = (size_t)nread;
    conn_process(c);
}

static void conn_set_reading(or_conn_t *c, int want)
{
    if (want && !c->is_reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->is_reading = 1;
    } else if (!want && c->is_reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->is_reading = 0;
    }
}

static void conn_bad_request(or_conn_t *c, int status)
{
    if (status == 431)
        or_out_str(c, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 32\r\nConnection: close\r\n\r\n"
                      "request header fields too large\n");
    else
        or_out_str(c, "HTTP/1.1 400 Bad Request\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
                      "bad request\n");
    c->close_mode = OR_CLOSE_GRACEFUL;
}

/* Parse and answer what is buffered as far as the connection may go, then
 * decide whether to read more and write what was queued. */
static void conn_process(or_conn_t *c)
{
    while (!c->is_closed && c->close_mode == OR_CLOSE_NONE && c->resp == OR_RESP_NONE &&
           c->in_off < c->in_len && c->out.len < OR_OUT_HIGH) {
        const char *p = c->in + c->in_off;
        llhttp_errno_t err = llhttp_execute(&c->parser, p, c->in_len - c->in_off);

        if (err == HPE_OK) {
            c->in_off = c->in_len;
        } else if (err == HPE_PAUSED) {
            c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - p);
            llhttp_resume(&c->parser);
            if (c->kill) {
                conn_reset(c);
                return;
            }
            if (c->msg_done) {
                c->msg_done = 0;
                or_route_dispatch(c);
            }
        } else {
            conn_bad_request(c, c->req.err_status ? c->req.err_status : 400);
        }
    }
    if (c->is_closed)
        return;

    if (c->in_off >= c->in_len || c->close_mode != OR_CLOSE_NONE) {
        if (c->in == c->in_store) {
            free(c->in_store);
            c->in_store = NULL;
        }
        c->in = NULL;
        c->in_off = c->in_len = 0;
    } else if (c->in == g_read_buf) {
        size_t left = c->in_len - c->in_off;

        c->in_store = xrealloc(NULL, left);
        memcpy(c->in_store, c->in + c->in_off, left);
        c->in = c->in_store;
        c->in_off = 0;
        c->in_len = left;
    }

    if (c->peer_eof && c->resp == OR_RESP_NONE && c->in_len == 0 && c->close_mode == OR_CLOSE_NONE)
        c->close_mode = OR_CLOSE_GRACEFUL;

    if (!c->is_lingering)
        conn_set_reading(c, c->close_mode == OR_CLOSE_NONE && c->resp == OR_RESP_NONE &&
                                c->in_len == 0 && !c->peer_eof && c->out.len < OR_OUT_HIGH);
    conn_flush(c);
}

/* ---- llhttp callbacks ---- */

static int head_append(or_conn_t *c, const char *at, size_t n)
{
    or_request_t *r = &c->req;

    if (r->head.len + n > OR_MAX_HEAD) {
        r->err_status = 431;
        return -1;
    }
    buf_reserve(&r->head, n);
    memcpy(r->head.data + r->head.len, at, n);
    r->head.len += n;
    return 0;
}

static int h1_on_message_begin(llhttp_t *p)
{
    or_conn_t *c = p->data;
    or_request_t *r = &c->req;

    if (or_kill_next && c->nreq > 0) {
        or_kill_next = 0;
        c->kill = 1;
        return HPE_PAUSED;
    }
    c->nreq++;
    r->head.len = 0;
    r->url_len = 0;
    r->nfields = 0;
    r->field_state = OR_FIELD_NONE;
    r->is_trailers = 0;
    r->is_head = 0;
    r->is_keep_alive = 0;
    r->is_hashing = 0;
    r->err_status = 0;
    r->body_len = 0;
    r->path_off = r->path_len = r->query_off = r->query_len = 0;
    r->route = OR_ROUTE_NOT_FOUND;
    r->arg = 0;
    r->is_chunked_arg = 0;
    return 0;
}

static int h1_on_url(llhttp_t *p, const char *at, size_t n)
{
    or_conn_t *c = p->data;

    if (head_append(c, at, n) != 0)
        return -1;
    c->req.url_len += (uint32_t)n;
    return 0;
}

static int h1_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    or_conn_t *c = p->data;
    or_request_t *r = &c->req;

    if (r->field_state != OR_FIELD_NAME) {
        if (r->nfields == OR_MAX_FIELDS) {
            r->err_status = 431;
            return -1;
        }
        if (r->nfields == r->fields_cap) {
            r->fields_cap = r->fields_cap ? r->fields_cap * 2 : 32;
            r->fields = xrealloc(r->fields, r->fields_cap * sizeof *r->fields);
        }
        r->fields[r->nfields++] =
            (or_field_t){.name_off = (uint32_t)r->head.len, .is_trailer = r->is_trailers};
        r->field_state = OR_FIELD_NAME;
    }
    if (head_append(c, at, n) != 0)
        return -1;
    r->fields[r->nfields - 1].name_len += (uint32_t)n;
    return 0;
}

static int h1_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    or_conn_t *c = p->data;
    or_request_t *r = &c->req;
    or_field_t *f;

    if (r->nfields == 0)
        return 0;
    f = &r->fields[r->nfields - 1];
    if (r->field_state == OR_FIELD_NAME) {
        f->value_off = (uint32_t)r->head.len;
        r->field_state = OR_FIELD_VALUE;
    }
    if (head_append(c, at, n) != 0)
        return -1;
    f->value_len += (uint32_t)n;
    return 0;
}

/* llhttp leaves trailing whitespace in the value; the field value has none. */
static int h1_on_header_value_complete(llhttp_t *p)
{
    or_conn_t *c = p->data;
    or_request_t *r = &c->req;
    or_field_t *f;

    if (r->nfields == 0)
        return 0;
    f = &r->fields[r->nfields - 1];
    while (f->value_len > 0) {
        char ch = r->head.data[f->value_off + f->value_len - 1];
        if (ch != ' ' && ch != '\t')
            break;
        f->value_len--;
    }
    r->field_state = OR_FIELD_NONE;
    return 0;
}

static int h1_on_headers_complete(llhttp_t *p)
{
    or_conn_t *c = p->data;
    or_request_t *r = &c->req;

    r->field_state = OR_FIELD_NONE;
    r->is_trailers = 1;
    r->method = llhttp_get_method(p);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->is_head = r->method == HTTP_HEAD;
    or_route_head(c);
    return 0;
}

static int h1_on_body(llhttp_t *p, const char *at, size_t n)
{
    or_conn_t *c = p->data;

    c->req.body_len += n;
    if (c->req.is_hashing)
        EVP_DigestUpdate(c->md, at, n);
    return 0;
}

static int h1_on_message_complete(llhttp_t *p)
{
    or_conn_t *c = p->data;

    /* An upgrade (or CONNECT) is never accepted: answer, then close. */
    c->req.is_keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    c->msg_done = 1;
    return HPE_PAUSED;
}

/* ---- accept ---- */

EVP_MD_CTX *or_conn_digest_begin(or_conn_t *c)
{
    if (c->md == NULL && (c->md = EVP_MD_CTX_new()) == NULL)
        return NULL;
    if (EVP_DigestInit_ex(c->md, g_sha256, NULL) != 1)
        return NULL;
    return c->md;
}

void or_conn_accept(uv_stream_t *server)
{
    or_conn_t *c = calloc(1, sizeof *c);

    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    or_stats.open_connections++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        or_conn_hard_close(c);
        return;
    }
    or_stats.connections_accepted++;
    c->id = ++g_next_id;
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
    c->parser.data = c;
    conn_set_reading(c, 1);
    if (!c->is_reading)
        or_conn_hard_close(c);
}

int or_conn_global_init(void)
{
    llhttp_settings_init(&g_settings);
    g_settings.on_message_begin = h1_on_message_begin;
    g_settings.on_url = h1_on_url;
    g_settings.on_header_field = h1_on_header_field;
    g_settings.on_header_value = h1_on_header_value;
    g_settings.on_header_value_complete = h1_on_header_value_complete;
    g_settings.on_headers_complete = h1_on_headers_complete;
    g_settings.on_body = h1_on_body;
    g_settings.on_message_complete = h1_on_message_complete;
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    return g_sha256 != NULL ? 0 : -1;
}

void or_conn_global_free(void)
{
    EVP_MD_free(g_sha256);
    g_sha256 = NULL;
}
