#include "gateway/client/listener.h"

#include <errno.h>
#include <libgen.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/client/client_conn.h"
#include "gateway/client/h1_frontend.h"
#include "gateway/client/h2_frontend.h"
#include "gateway/core/log.h"
#include "gateway/worker.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* A burst of file events (a Secret update swaps several links) becomes one
 * reload this long after the last event. */
#define RELOAD_DEBOUNCE_MS 200

static void on_refused_close(uv_handle_t *handle)
{
    free(handle);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_listener_t *l = server->data;
    gw_worker_t *w = l->w;
    if (status != 0) {
        GW_LOG_WARN("listener %s: accept failed: %s", l->name, uv_strerror(status));
        return;
    }
    if (w->nclients >= w->cfg->max_connections) {
        /* Accept and close at once, so the kernel queue does not hold
         * clients that would only time out. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return;
        uv_tcp_init(&w->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            GW_LOG_WARN("client connection limit (%u) reached: connection refused",
                        w->cfg->max_connections);
        uv_close((uv_handle_t *)t, on_refused_close);
        return;
    }
    l->naccepted++;
    int rv = gw_client_conn_start(l, server);
    if (rv != 0)
        GW_LOG_WARN("listener %s: cannot start client connection: %s", l->name, uv_strerror(rv));
}

/* ---- TLS material: load, reload, watch ---- */

static int load_tls(gw_listener_t *l)
{
    char err[512];
    gw_tls_ctx_t *ctx = gw_tls_ctx_new(l->cfg, err, sizeof(err));
    if (ctx == NULL) {
        GW_LOG_ERROR("listener %s: %s", l->name, err);
        return -1;
    }
    gw_tls_ctx_unref(l->tls);
    l->tls = ctx;
    return 0;
}

void gw_listener_reload_tls(gw_listener_t *l)
{
    if (l->tls == NULL || !l->is_listening)
        return;
    if (load_tls(l) == 0)
        GW_LOG_INFO("listener %s: certificates reloaded (%s)", l->name,
                    gw_tls_ctx_subject(l->tls, NULL));
    else
        GW_LOG_ERROR("listener %s: reload failed; keeping the previous certificates", l->name);
}

static void on_reload_timer(uv_timer_t *timer)
{
    gw_listener_reload_tls(timer->data);
}

static void on_file_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    (void)filename, (void)events;
    gw_listener_t *l = handle->data;
    if (status == 0)
        uv_timer_start(&l->reload_timer, on_reload_timer, RELOAD_DEBOUNCE_MS, 0);
}

/* Kubernetes updates a mounted Secret by swapping a symlink in the mount
 * directory, so the directories are watched, not the files. */
static void watch_certificates(gw_listener_t *l)
{
    const cfg_listener_t *cfg = l->cfg;
    size_t max = cfg->ncerts * 2 + 2;
    l->watches = calloc(max, sizeof(*l->watches));
    if (l->watches == NULL)
        return;
    /* Directories already watched (a cert and its key usually share one). */
    char(*dirs)[1024] = calloc(max, sizeof(*dirs));
    if (dirs == NULL)
        return;
    size_t ndirs = 0;
    for (size_t i = 0; i < cfg->ncerts * 2 + 1; i++) {
        const char *file = i < cfg->ncerts * 2
                               ? (i % 2 ? cfg->certs[i / 2].key_file : cfg->certs[i / 2].cert_file)
                               : cfg->tls_ticket_key_file;
        if (file == NULL)
            continue;
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", file);
        const char *dir = dirname(copy);
        int seen = 0;
        for (size_t k = 0; k < ndirs; k++)
            seen |= strcmp(dirs[k], dir) == 0;
        if (seen)
            continue;
        snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", dir);
        uv_fs_event_t *ev = &l->watches[l->nwatches];
        uv_fs_event_init(&l->w->loop, ev);
        ev->data = l;
        int rv = uv_fs_event_start(ev, on_file_event, dir, 0);
        if (rv != 0) {
            GW_LOG_WARN("listener %s: cannot watch %s: %s", l->name, dir, uv_strerror(rv));
            uv_close((uv_handle_t *)ev, NULL);
            continue;
        }
        l->nwatches++;
    }
    free(dirs);
}

/* ---- accepting ---- */

/* A listening socket that other workers' sockets may share (SO_REUSEPORT):
 * libuv 1.44 cannot set that option, so the socket is made here. */
static int bind_shared(const struct sockaddr_storage *ss, int is_shared)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (is_shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

uint16_t gw_listener_port(const gw_listener_t *l)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

int gw_listener_start(gw_listener_t *l, gw_worker_t *w, const cfg_listener_t *cfg, uint16_t port)
{
    memset(l, 0, sizeof(*l));
    l->w = w;
    l->cfg = cfg;
    const cfg_addr_t *a = &cfg->addr;
    snprintf(l->name, sizeof(l->name), "%s%s%s:%u", cfg->name, cfg->name[0] ? " " : "",
             a->host[0] ? a->host : "0.0.0.0", a->port);
    if (cfg->ncerts > 0 && load_tls(l) != 0)
        return -1;

    struct sockaddr_storage ss;
    uint16_t bind_port = port != 0 ? port : a->port;
    int rv =
        strchr(a->host, ':') != NULL
            ? uv_ip6_addr(a->host, bind_port, (struct sockaddr_in6 *)&ss)
            : uv_ip4_addr(a->host[0] ? a->host : "0.0.0.0", bind_port, (struct sockaddr_in *)&ss);
    if (rv != 0) {
        GW_LOG_ERROR("listener %s: not a numeric address: %s", l->name, uv_strerror(rv));
        return rv;
    }
    uv_tcp_init(&w->loop, &l->tcp);
    l->tcp.data = l;
    l->is_listening = 1; /* the handle exists from here on and must be closed */
    int fd = bind_shared(&ss, w->cfg->workers > 1);
    rv = fd < 0 ? fd : uv_tcp_open(&l->tcp, fd);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    if (rv != 0) {
        GW_LOG_ERROR("listener %s: %s", l->name, uv_strerror(rv));
        return rv;
    }

    if (l->tls != NULL) {
        uv_timer_init(&w->loop, &l->reload_timer);
        l->reload_timer.data = l;
        l->has_reload_timer = 1;
        if (cfg->watch_certificates)
            watch_certificates(l);
    }
    if (w->index == 0) {
        int is_v6 = ss.ss_family == AF_INET6;
        printf("listening on %s%s%s:%u%s\n", is_v6 ? "[" : "", a->host[0] ? a->host : "0.0.0.0",
               is_v6 ? "]" : "", gw_listener_port(l), l->tls ? " (tls)" : "");
        fflush(stdout);
    }
    return 0;
}

void gw_listener_stop(gw_listener_t *l)
{
    if (!l->is_listening)
        return;
    l->is_listening = 0;
    GW_LOG_INFO("listener %s: %llu connections, %llu failed TLS handshakes, %llu bad PROXY "
                "headers",
                l->name, (unsigned long long)l->naccepted,
                (unsigned long long)l->nhandshake_failures, (unsigned long long)l->nproxy_failures);
    uv_close((uv_handle_t *)&l->tcp, NULL);
    for (size_t i = 0; i < l->nwatches; i++)
        uv_close((uv_handle_t *)&l->watches[i], NULL);
    if (l->has_reload_timer)
        uv_close((uv_handle_t *)&l->reload_timer, NULL);
    l->has_reload_timer = 0;
    l->nwatches = 0;
}

/* ---- protocols ---- */

/* Switches c to proto and replays the bytes seen so far plus data. */
static int switch_protocol(gw_client_conn_t *c, const gw_client_proto_t *proto, const uint8_t *data,
                           size_t len)
{
    c->proto = proto;
    if (proto == &gw_h2_client_proto && gw_h2_client_attach(c) != 0)
        return -1;
    if (proto == &gw_h1_client_proto && gw_h1_client_attach(c, c->is_tls) != 0)
        return -1;
    if (c->sniff_len > 0) {
        int rv = proto->on_read(c, c->sniff, c->sniff_len);
        c->sniff_len = 0;
        if (rv < 0)
            return rv;
    }
    return len > 0 ? proto->on_read(c, data, len) : 0;
}

/* Reads until the bytes either match the whole HTTP/2 preface or stop
 * matching it; only the prefix seen so far is buffered (24 bytes at most). */
static int sniff_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    size_t need = H2_PREFACE_LEN - c->sniff_len;
    size_t take = len < need ? len : need;
    if (memcmp(data, h2_preface + c->sniff_len, take) != 0)
        return switch_protocol(c, &gw_h1_client_proto, data, len);
    if (take < need) {
        memcpy(c->sniff + c->sniff_len, data, take);
        c->sniff_len += take;
        return 0;
    }
    return switch_protocol(c, &gw_h2_client_proto, data, len);
}

/* Before the protocol is known there is nothing of ours to write (TLS
 * handshake bytes are added by the transport). */
static int waiting_on_flush(gw_client_conn_t *c)
{
    (void)c;
    return 1;
}

static const gw_client_proto_t sniff_proto = {
    .name = "sniff",
    .on_read = sniff_on_read,
    .on_flush = waiting_on_flush,
};

static int handshake_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    (void)c, (void)data, (void)len;
    return -1; /* unreachable: the transport delivers nothing before ALPN */
}

static const gw_client_proto_t handshake_proto = {
    .name = "tls-handshake",
    .on_read = handshake_on_read,
    .on_flush = waiting_on_flush,
};

void gw_listener_select_protocol(gw_client_conn_t *c)
{
    c->proto = c->is_tls ? &handshake_proto : &sniff_proto;
}

int gw_listener_start_application(gw_client_conn_t *c, const char *alpn)
{
    if (strcmp(alpn, "h2") == 0)
        return switch_protocol(c, &gw_h2_client_proto, NULL, 0);
    return switch_protocol(c, &gw_h1_client_proto, NULL, 0); /* http/1.1 or no ALPN */
}
