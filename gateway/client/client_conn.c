#include "gateway/client/client_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/core/cfg_ref.h"
#include "gateway/core/log.h"
#include "gateway/core/metrics.h"
#include "proto/proxy_protocol.h"

/* Output buffers are given back as soon as they are written: ten thousand
 * mostly idle clients must not each hold one (malloc keeps the memory
 * at hand for the busy ones). */
#define KEEP_OUT_CAP 0

/* Plaintext is decrypted in pieces of one TLS record at most. */
#define TLS_READ_CHUNK (16 * 1024)

/* How long a finished connection keeps reading (and dropping) after its
 * FIN, waiting for the client's. */
#define LINGER_MS 2000

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_close(uv_handle_t *handle);
static void on_handshake_timeout(uv_timer_t *timer);

static void set_peer(gw_client_conn_t *c, const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a6, c->peer_addr, sizeof(c->peer_addr));
        c->peer_port = ntohs(a6->sin6_port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
        uv_ip4_name(a4, c->peer_addr, sizeof(c->peer_addr));
        c->peer_port = ntohs(a4->sin_port);
    }
}

static void on_flush_task(gw_task_t *t);

gw_client_origin_t *gw_client_origin_new(const cfg_t *snapshot, const cfg_listener_t *cfg)
{
    gw_client_origin_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    gw_cfg_ref_hold(snapshot);
    o->snapshot = snapshot;
    o->cfg = cfg;
    o->refs = 1;
    return o;
}

void gw_client_origin_set_cfg(gw_client_origin_t *o, const cfg_t *snapshot,
                              const cfg_listener_t *cfg)
{
    gw_cfg_ref_hold(snapshot);
    gw_cfg_ref_release(o->snapshot);
    o->snapshot = snapshot;
    o->cfg = cfg;
}

void gw_client_origin_release(gw_client_origin_t *o)
{
    if (o == NULL || --o->refs > 0)
        return;
    gw_tls_ctx_unref(o->tls);
    gw_cfg_ref_release(o->snapshot);
    free(o);
}

int gw_client_conn_start(gw_ctx_t *w, gw_client_origin_t *origin, int fd)
{
    gw_client_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->nhandles_open = 2;
    c->tcp.data = c->timer.data = c->wreq.data = c;
    c->w = w;
    c->origin = origin;
    origin->refs++;
    gw_task_init(&c->flush_task, on_flush_task);
    proto_queue_insert_tail(&w->clients, &c->all_node);
    w->nclients++;
    c->metrics_protocol = GW_M_PROTO_NONE;
    gw_metrics_gauge_add(&w->metrics.client_conns[GW_M_PROTO_NONE], 1);

    int rv = uv_tcp_open(&c->tcp, fd);
    if (rv != 0)
        close(fd); /* the handle did not take it */
    if (rv == 0) {
        gw_metrics_inc(&w->metrics.client_conns_total);
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
            set_peer(c, &ss);
        uv_tcp_nodelay(&c->tcp, 1);
        c->is_proxy_pending = origin->cfg->proxy_protocol != 0;
        if (origin->tls != NULL) {
            if (gw_tls_conn_init(&c->tls, origin->tls) != 0) {
                rv = UV_ENOMEM;
            } else {
                c->is_tls = 1;
                uv_timer_start(&c->timer, on_handshake_timeout, w->cfg->tls_handshake_timeout_ms,
                               0);
            }
        }
        origin->select_first(c);
    }
    if (rv == 0)
        rv = uv_read_start((uv_stream_t *)&c->tcp, gw_ctx_alloc_cb, on_read);
    if (rv != 0) {
        gw_client_conn_close(c);
        return rv;
    }
    /* The first flush starts the idle timer of a client that sends nothing. */
    gw_client_conn_mark_dirty(c);
    return 0;
}

/* Makes room for n more bytes and takes them: returns where they go. */
static uint8_t *grow(uint8_t **buf, size_t *len, size_t *cap, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 16384;
        while (ncap < *len + n)
            ncap *= 2;
        uint8_t *p = realloc(*buf, ncap);
        if (p == NULL)
            return NULL;
        *buf = p;
        *cap = ncap;
    }
    uint8_t *at = *buf + *len;
    *len += n;
    return at;
}

uint8_t *gw_client_conn_out_space(gw_client_conn_t *c, size_t len)
{
    if (c->is_tls)
        return grow(&c->plain, &c->plain_len, &c->plain_cap, len);
    return grow(&c->out, &c->out_len, &c->out_cap, len);
}

int gw_client_conn_out(gw_client_conn_t *c, const void *data, size_t len)
{
    uint8_t *at = gw_client_conn_out_space(c, len);
    if (at == NULL)
        return -ENOMEM;
    memcpy(at, data, len);
    return 0;
}

void gw_client_conn_mark_dirty(gw_client_conn_t *c)
{
    if (!c->is_closing)
        gw_ctx_defer(c->w, &c->flush_task);
}

/* TLS: what the protocol wrote this turn becomes records (one SSL_write for
 * all of it, so records are full), then everything OpenSSL has for the
 * socket (handshake messages included) joins the output. */
static int seal_tls_output(gw_client_conn_t *c)
{
    if (c->plain_len > 0) {
        if (gw_tls_conn_write(&c->tls, c->plain, c->plain_len) != 0)
            return -1;
        c->plain_len = 0;
        if (c->plain_cap > KEEP_OUT_CAP) {
            free(c->plain);
            c->plain = NULL;
            c->plain_cap = 0;
        }
    }
    size_t pending = gw_tls_conn_pending(&c->tls);
    if (pending == 0)
        return 0;
    if (c->out_len == 0) {
        /* The usual case: the records become the output as they are. */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
        gw_tls_conn_take_buffer(&c->tls, &c->out, &c->out_len, &c->out_cap);
        return 0;
    }
    if (c->out_len + pending > c->out_cap) {
        uint8_t *p = realloc(c->out, c->out_len + pending);
        if (p == NULL)
            return -1;
        c->out = p;
        c->out_cap = c->out_len + pending;
    }
    c->out_len += gw_tls_conn_take(&c->tls, c->out + c->out_len, pending);
    return 0;
}

/* An idle connection told to go away (HTTP/2: GOAWAY with 2^31-1 and a
 * PING) hears it again this much later: HTTP/2's final GOAWAY goes out
 * whether or not the client answered the PING, so a client that answers
 * nothing is closed too. */
#define IDLE_GOAWAY_STEP_MS 1000

static void on_idle_goaway_step(uv_timer_t *timer)
{
    gw_client_conn_t *c = timer->data;
    c->proto->on_drain(c);
    gw_client_conn_mark_dirty(c);
}

static void on_idle_timeout(uv_timer_t *timer)
{
    gw_client_conn_t *c = timer->data;
    c->is_idle_timing = 0;
    c->is_idle_expired = 1;
    GW_LOG_DEBUG("client %s:%d: idle for %llu ms: closing", c->peer_addr, c->peer_port,
                 (unsigned long long)c->w->cfg->client_idle_timeout_ms);
    if (c->proto->on_drain == NULL) {
        gw_client_conn_close(c);
        return;
    }
    c->proto->on_drain(c); /* HTTP/2: GOAWAY, then close once it is out */
    gw_client_conn_mark_dirty(c);
    uv_timer_start(&c->timer, on_idle_goaway_step, IDLE_GOAWAY_STEP_MS, 0);
}

/* The client idle timeout runs while no request is in progress; the TLS
 * handshake has its own timeout on the same timer first. */
static void update_idle_timer(gw_client_conn_t *c)
{
    if (c->is_closing || c->is_lingering || c->is_idle_expired ||
        (c->is_tls && !c->tls.is_handshake_done))
        return;
    int is_idle = c->proto->is_idle == NULL || c->proto->is_idle(c);
    if (is_idle && !c->is_idle_timing) {
        uv_timer_start(&c->timer, on_idle_timeout, c->w->cfg->client_idle_timeout_ms, 0);
        c->is_idle_timing = 1;
    } else if (!is_idle && c->is_idle_timing) {
        uv_timer_stop(&c->timer);
        c->is_idle_timing = 0;
    }
}

/* The output was written: the buffer is free again, and small again. */
static void output_written(gw_client_conn_t *c)
{
    c->out_len = 0;
    if (c->is_tls && !c->is_closing)
        gw_tls_conn_release_buffers(&c->tls, 0);
    if (c->out_cap > KEEP_OUT_CAP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
}

static void on_linger_timeout(uv_timer_t *timer)
{
    gw_client_conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    gw_client_conn_t *c = req->data;
    free(req);
    if (status == UV_ECANCELED)
        return; /* closed meanwhile: c may be gone */
    if (status != 0)
        gw_client_conn_close(c);
}

/*
 * The protocol is done and its last output written: send FIN, then read and
 * drop what the client still sends until its own FIN (or LINGER_MS). Closing
 * with unread input, or input still on its way, makes the kernel answer with
 * a reset, which can destroy the last answer (a GOAWAY, an HTTP/1.1 response
 * with "connection: close") before the client has read it.
 */
/* Sends FIN once the writes queued are out. Returns 0, or -1 (c is closed). */
static int shutdown_write(gw_client_conn_t *c)
{
    if (c->is_write_shut)
        return 0;
    c->is_write_shut = 1;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL) {
        gw_client_conn_close(c);
        return -1;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        gw_client_conn_close(c);
        return -1;
    }
    /* From here on req is freed by on_shutdown, also when the close cancels it. */
    return 0;
}

void gw_client_conn_shutdown_write(gw_client_conn_t *c)
{
    if (c->is_write_shut_wanted)
        return;
    c->is_write_shut_wanted = 1;
    gw_client_conn_mark_dirty(c);
}

static void linger_close(gw_client_conn_t *c)
{
    if (c->is_lingering)
        return;
    c->is_lingering = 1;
    if (c->is_eof) { /* the client has closed its side already */
        gw_client_conn_close(c);
        return;
    }
    if (shutdown_write(c) != 0)
        return;
    if (c->is_read_paused && uv_read_start((uv_stream_t *)&c->tcp, gw_ctx_alloc_cb, on_read) != 0) {
        gw_client_conn_close(c);
        return;
    }
    c->is_read_paused = 0;
    c->is_idle_timing = 0;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

void gw_client_conn_trim(gw_client_conn_t *c)
{
    if (c->proto == NULL || c->is_closing || c->is_lingering || c->is_done || c->is_writing ||
        c->out_len > 0 || (c->proto->is_idle != NULL && !c->proto->is_idle(c)))
        return;
    if (c->is_tls)
        gw_tls_conn_release_buffers(&c->tls, 1);
    if (c->proto->on_trim != NULL)
        c->proto->on_trim(c);
}

/* Rounds of gather-and-write per connection and loop turn: a connection
 * with endless output must not hold the loop from the others. */
#define MAX_FLUSH_ROUNDS 4

static void write_out(gw_client_conn_t *c)
{
    for (int round = 0; round < MAX_FLUSH_ROUNDS; round++) {
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
        if (c->is_tls && seal_tls_output(c) != 0) {
            gw_client_conn_close(c);
            return;
        }
        if (c->out_len == 0) {
            int is_ending = c->is_done || c->is_write_shut_wanted;
            if (is_ending && c->is_tls && !c->is_close_notify_sent) {
                /* The TLS client hears the end is deliberate, not a cut
                 * (a close-delimited body is complete only with it). */
                c->is_close_notify_sent = 1;
                if (gw_tls_conn_close_notify(&c->tls) == 0)
                    continue; /* sealed and written by the next round */
            }
            if (c->is_done)
                linger_close(c);
            else if (c->is_write_shut_wanted)
                shutdown_write(c);
            return;
        }
        /* Most writes complete at once: uv_try_write spares the write
         * request, its callback a loop turn later, and libuv's poll update. */
        uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (n == (int)c->out_len) {
            output_written(c);
            continue; /* the protocol may have more */
        }
        if (n < 0 && n != UV_EAGAIN) {
            GW_LOG_DEBUG("client %s:%d: write failed: %s", c->peer_addr, c->peer_port,
                         uv_strerror(n));
            gw_client_conn_close(c);
            return;
        }
        if (n > 0)
            buf = uv_buf_init((char *)c->out + n, (unsigned)(c->out_len - (size_t)n));
        int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
        if (rv != 0) {
            GW_LOG_DEBUG("client %s:%d: write failed: %s", c->peer_addr, c->peer_port,
                         uv_strerror(rv));
            gw_client_conn_close(c);
            return;
        }
        c->is_writing = 1;
        return;
    }
    gw_client_conn_mark_dirty(c); /* more next turn */
}

static void flush_one(gw_client_conn_t *c)
{
    write_out(c);
    /* After the protocol ran: a request may have ended or begun. */
    update_idle_timer(c);
}

static void on_flush_task(gw_task_t *t)
{
    flush_one(proto_container_of(t, gw_client_conn_t, flush_task));
}

static void on_write(uv_write_t *req, int status)
{
    gw_client_conn_t *c = req->data;
    c->is_writing = 0;
    output_written(c);
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

static void on_handshake_timeout(uv_timer_t *timer)
{
    gw_client_conn_t *c = timer->data;
    if (c->is_tls && !c->tls.is_handshake_done) {
        c->origin->nhandshake_failures++;
        gw_metrics_inc(&c->w->metrics.tls_handshake_failures);
        GW_LOG_DEBUG("client %s:%d: TLS handshake timed out", c->peer_addr, c->peer_port);
        gw_client_conn_close(c);
    }
}

/* TLS: ciphertext in, handshake or plaintext out to the protocol. */
static int deliver_tls(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    if (gw_tls_conn_put_cipher(&c->tls, data, len) != 0)
        return -1;
    if (!c->tls.is_handshake_done) {
        const char *why = NULL;
        int rv = gw_tls_conn_handshake(&c->tls, &why);
        if (rv < 0) {
            /* Scanners and broken clients are routine at the edge: counted
             * and logged at debug level, not an error flood. */
            c->origin->nhandshake_failures++;
            gw_metrics_inc(&c->w->metrics.tls_handshake_failures);
            GW_LOG_DEBUG("client %s:%d: TLS handshake failed: %s", c->peer_addr, c->peer_port, why);
            return -1;
        }
        if (rv == 0)
            return 0;
        uv_timer_stop(&c->timer);
        gw_metrics_inc(&c->w->metrics.tls_handshakes);
        if (gw_tls_conn_is_resumed(&c->tls))
            gw_metrics_inc(&c->w->metrics.tls_resumptions);
        char alpn[16];
        gw_tls_conn_alpn(&c->tls, alpn, sizeof(alpn));
        if (c->origin->select_application(c, alpn) != 0)
            return -1;
    }
    uint8_t buf[TLS_READ_CHUNK];
    for (;;) {
        int n = gw_tls_conn_read(&c->tls, buf, sizeof(buf));
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        int rv = c->proto->on_read(c, buf, (size_t)n);
        if (rv < 0 || c->is_closing)
            return rv;
    }
}

static int deliver(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->is_tls)
        return deliver_tls(c, data, len);
    return c->proto->on_read(c, data, len);
}

/* PROXY protocol: the header comes before anything else (TLS included) and
 * replaces the peer address; what follows it is the client's own bytes. */
static int deliver_after_proxy(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->proxy_buf == NULL && (c->proxy_buf = malloc(PROTO_PROXY_MAX_HEADER)) == NULL)
        return -1;
    size_t take = PROTO_PROXY_MAX_HEADER - c->proxy_len;
    if (take > len)
        take = len;
    memcpy(c->proxy_buf + c->proxy_len, data, take);
    c->proxy_len += take;

    proto_proxy_info_t info;
    int hlen = proto_proxy_parse(c->proxy_buf, c->proxy_len, &info);
    if (hlen < 0) {
        c->origin->nproxy_failures++;
        GW_LOG_DEBUG("client %s:%d: invalid PROXY protocol header", c->peer_addr, c->peer_port);
        return -1;
    }
    if (hlen == 0)
        return 0;
    if (!info.is_local) {
        snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", info.src_addr);
        c->peer_port = info.src_port;
    }
    c->is_proxy_pending = 0;
    int rv = 0;
    size_t rest = c->proxy_len - (size_t)hlen;
    if (rest > 0)
        rv = deliver(c, c->proxy_buf + hlen, rest);
    if (rv >= 0 && take < len && !c->is_closing)
        rv = deliver(c, data + take, len - take);
    free(c->proxy_buf);
    c->proxy_buf = NULL;
    return rv;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_client_conn_t *c = stream->data;
    if (nread == 0 || c->is_closing)
        return;
    if (c->is_lingering) {
        if (nread < 0) /* the client's FIN (or an error): nothing more to wait for */
            gw_client_conn_close(c);
        return;
    }
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
    const uint8_t *data = (const uint8_t *)buf->base;
    int rv = c->is_proxy_pending ? deliver_after_proxy(c, data, (size_t)nread)
                                 : deliver(c, data, (size_t)nread);
    if (rv < 0) {
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
    return uv_read_start((uv_stream_t *)&c->tcp, gw_ctx_alloc_cb, on_read);
}

void gw_client_conn_close(gw_client_conn_t *c)
{
    if (c->is_closing)
        return;
    c->is_closing = 1;
    gw_task_cancel(&c->flush_task);
    proto_queue_remove(&c->all_node);
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_close(uv_handle_t *handle)
{
    gw_client_conn_t *c = handle->data;
    if (--c->nhandles_open > 0)
        return;
    gw_ctx_t *w = c->w;
    /* No protocol yet when the accept itself failed. */
    if (c->proto != NULL && c->proto->on_destroy != NULL)
        c->proto->on_destroy(c);
    if (c->is_tls)
        gw_tls_conn_free(&c->tls);
    free(c->out);
    free(c->plain);
    free(c->proxy_buf);
    gw_client_origin_release(c->origin);
    gw_metrics_gauge_add(&w->metrics.client_conns[c->metrics_protocol], -1);
    free(c);
    w->nclients--;
    w->on_client_closed(w);
}

void gw_client_conn_note_protocol(gw_client_conn_t *c)
{
    int proto = gw_metrics_protocol(c->proto != NULL ? c->proto->name : NULL);
    if (proto == c->metrics_protocol)
        return;
    gw_metrics_gauge_add(&c->w->metrics.client_conns[c->metrics_protocol], -1);
    gw_metrics_gauge_add(&c->w->metrics.client_conns[proto], 1);
    c->metrics_protocol = proto;
}

int gw_client_conn_local_authority(gw_client_conn_t *c, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    int n;

    int rv = uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len);
    if (rv != 0)
        return rv;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a6, ip, sizeof(ip));
        n = snprintf(buf, cap, "[%s]:%u", ip, ntohs(a6->sin6_port));
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a4, ip, sizeof(ip));
        n = snprintf(buf, cap, "%s:%u", ip, ntohs(a4->sin_port));
    }
    return n < 0 || (size_t)n >= cap ? UV_ENOBUFS : n;
}

int gw_client_conn_cert_field(const gw_client_conn_t *c, proto_header_t *field, char *buf,
                              size_t cap)
{
    const char *name = c->origin->cfg->client_cert_header;
    if (name == NULL)
        return 0;
    buf[0] = '\0';
    if (c->is_tls)
        gw_tls_conn_peer_subject(&c->tls, buf, cap);
    *field = (proto_header_t){name, strlen(name), buf, strlen(buf)};
    return 1;
}
