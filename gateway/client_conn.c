#include "gateway/client_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/worker.h"

#define KEEP_OUT_CAP (16 * 1024)

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_close(uv_handle_t *handle);

int gw_client_conn_start(gw_worker_t *w, uv_stream_t *server)
{
    gw_client_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return UV_ENOMEM;
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    c->wreq.data = c;
    c->w = w;
    gw_queue_init(&c->dirty_node);
    gw_queue_insert_tail(&w->clients, &c->all_node);
    w->nclients++;

    int rv = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rv == 0) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
                uv_ip6_name(a6, c->peer_addr, sizeof(c->peer_addr));
                c->peer_port = ntohs(a6->sin6_port);
            } else {
                struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
                uv_ip4_name(a4, c->peer_addr, sizeof(c->peer_addr));
                c->peer_port = ntohs(a4->sin_port);
            }
        }
        uv_tcp_nodelay(&c->tcp, 1);
        gw_listener_select_protocol(c);
        rv = uv_read_start((uv_stream_t *)&c->tcp, gw_worker_alloc_cb, on_read);
    }
    if (rv != 0) {
        gw_client_conn_close(c);
        return rv;
    }
    return 0;
}

int gw_client_conn_out(gw_client_conn_t *c, const void *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL)
            return -ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

void gw_client_conn_mark_dirty(gw_client_conn_t *c)
{
    if (c->is_closing || gw_queue_is_linked(&c->dirty_node))
        return;
    gw_queue_insert_tail(&c->w->dirty, &c->dirty_node);
}

static void flush_one(gw_client_conn_t *c)
{
    if (c->is_writing || c->is_closing)
        return;
    if (!c->is_done) {
        int rv = c->proto->on_flush(c);
        if (rv < 0) {
            gw_client_conn_close(c);
            return;
        }
        if (rv == 0)
            c->is_done = 1;
    }
    if (c->out_len == 0) {
        if (c->is_done)
            gw_client_conn_close(c);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rv != 0) {
        GW_LOG_DEBUG("client %s:%d: write failed: %s", c->peer_addr, c->peer_port,
                     uv_strerror(rv));
        gw_client_conn_close(c);
        return;
    }
    c->is_writing = 1;
}

void gw_client_conn_flush_all(gw_worker_t *w)
{
    gw_queue_t *n;
    while ((n = gw_queue_first(&w->dirty)) != NULL) {
        gw_queue_remove(n);
        flush_one(gw_container_of(n, gw_client_conn_t, dirty_node));
    }
}

static void on_write(uv_write_t *req, int status)
{
    gw_client_conn_t *c = req->data;
    c->is_writing = 0;
    c->out_len = 0;
    /* An idle connection keeps only a small buffer: ten thousand mostly idle
     * clients must not each hold a full gather buffer. */
    if (c->out_cap > KEEP_OUT_CAP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->is_closing)
        return;
    if (status != 0) {
        GW_LOG_DEBUG("client %s:%d: write failed: %s", c->peer_addr, c->peer_port,
                     uv_strerror(status));
        gw_client_conn_close(c);
        return;
    }
    /* Whatever the protocol held back while this write was in flight goes
     * out with the next gathered write. */
    gw_client_conn_mark_dirty(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_client_conn_t *c = stream->data;
    if (nread == 0 || c->is_closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            GW_LOG_DEBUG("client %s:%d: read failed: %s", c->peer_addr, c->peer_port,
                         uv_strerror((int)nread));
        /* A half-closed client may still be owed answers (HTTP/1.1
         * pipelining): the protocol decides. */
        if (nread == UV_EOF && c->proto->on_eof != NULL) {
            c->is_eof = 1;
            uv_read_stop(stream);
            if (c->proto->on_eof(c) == 0) {
                gw_client_conn_mark_dirty(c);
                return;
            }
        }
        gw_client_conn_close(c);
        return;
    }
    if (c->proto->on_read(c, (const uint8_t *)buf->base, (size_t)nread) < 0) {
        gw_client_conn_close(c);
        return;
    }
    gw_client_conn_mark_dirty(c);
}

void gw_client_conn_pause_read(gw_client_conn_t *c)
{
    if (c->is_read_paused || c->is_closing || c->is_eof)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->is_read_paused = 1;
}

int gw_client_conn_resume_read(gw_client_conn_t *c)
{
    if (!c->is_read_paused || c->is_closing || c->is_eof)
        return 0;
    c->is_read_paused = 0;
    return uv_read_start((uv_stream_t *)&c->tcp, gw_worker_alloc_cb, on_read);
}

void gw_client_conn_close(gw_client_conn_t *c)
{
    if (c->is_closing)
        return;
    c->is_closing = 1;
    gw_queue_remove(&c->dirty_node);
    gw_queue_remove(&c->all_node);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_close(uv_handle_t *handle)
{
    gw_client_conn_t *c = handle->data;
    gw_worker_t *w = c->w;
    if (c->proto->on_destroy != NULL)
        c->proto->on_destroy(c);
    free(c->out);
    free(c);
    w->nclients--;
    gw_worker_on_client_closed(w);
}
