#include "gateway/client/listener.h"

#include <errno.h>
#include <libgen.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/client/client_conn.h"
#include "gateway/client/select.h"
#include "gateway/core/log.h"

/* A burst of file events (a Secret update swaps several links) becomes one
 * reload this long after the last event. */
#define RELOAD_DEBOUNCE_MS 200

/* Out of descriptors, accepting stops this long: the connections wait in
 * the kernel's queue (until it is full) instead of being accepted and
 * closed, and the loop does not spin on a listener it cannot serve. */
#define ACCEPT_PAUSE_MS 100

/* Connections taken per readiness event, so one busy listener does not
 * starve the rest of the loop (the poll is level-triggered: what is left
 * is taken in the next turn). */
#define ACCEPTS_PER_EVENT 64

static void on_readable(uv_poll_t *poll, int status, int events);

static void on_pause_end(uv_timer_t *timer)
{
    gw_listener_t *l = timer->data;
    if (l->is_listening)
        uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

static void pause_accepting(gw_listener_t *l, int err)
{
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->pause_timer, on_pause_end, ACCEPT_PAUSE_MS, 0);
    l->npauses++;
    gw_metrics_inc(&l->w->metrics.accept_pauses);
    gw_log_limited(&l->log_limit, gw_ctx_now_ms(l->w), CFG_LOG_WARN,
                   "listener %s: accept failed: %s; accepting paused for %d ms", l->name,
                   uv_strerror(err), ACCEPT_PAUSE_MS);
}

static void on_readable(uv_poll_t *poll, int status, int events)
{
    (void)events;
    gw_listener_t *l = poll->data;
    gw_ctx_t *w = l->w;
    if (status != 0) {
        pause_accepting(l, status);
        return;
    }
    for (int n = 0; n < ACCEPTS_PER_EVENT && l->is_listening; n++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = -errno;
            if (err == UV_EAGAIN || err == UV_ECONNABORTED || err == UV_EINTR) {
                if (err == UV_EAGAIN)
                    return;
                continue;
            }
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM: a local shortage that
             * passes as connections close. */
            pause_accepting(l, err);
            return;
        }
        if (w->nclients >= w->max_clients) {
            /* Closed at once, so the kernel queue does not hold clients
             * that would only time out. */
            close(fd);
            gw_metrics_inc(&w->metrics.flood_refusals);
            gw_log_limited(&l->log_limit, gw_ctx_now_ms(w), CFG_LOG_WARN,
                           "client connection limit (%u) reached: connection refused",
                           w->max_clients);
            continue;
        }
        l->naccepted++;
        int rv = gw_client_conn_start(w, l->origin, fd);
        if (rv != 0)
            GW_LOG_WARN("listener %s: cannot start client connection: %s", l->name,
                        uv_strerror(rv));
    }
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
    gw_tls_ctx_unref(l->origin->tls);
    l->origin->tls = ctx;
    return 0;
}

void gw_listener_reload_tls(gw_listener_t *l)
{
    if (l->origin->tls == NULL || !l->is_listening)
        return;
    if (load_tls(l) == 0)
        GW_LOG_INFO("listener %s: certificates reloaded (%s)", l->name,
                    gw_tls_ctx_subject(l->origin->tls, NULL));
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
        /* A watch that cannot start keeps its slot, idle, and is closed
         * with the others: its memory must stay until its close callback. */
        uv_fs_event_t *ev = &l->watches[l->nwatches++];
        uv_fs_event_init(&l->w->loop, ev);
        ev->data = l;
        int rv = uv_fs_event_start(ev, on_file_event, dir, 0);
        if (rv != 0)
            GW_LOG_WARN("listener %s: cannot watch %s: %s", l->name, dir, uv_strerror(rv));
    }
    free(dirs);
}

typedef struct closing_watches {
    uv_fs_event_t *watches;
    size_t left;
} closing_watches_t;

static void on_watch_closed(uv_handle_t *handle)
{
    closing_watches_t *cw = handle->data;
    if (--cw->left > 0)
        return;
    free(cw->watches);
    free(cw);
}

/* Closes the watches; the array is freed once the last has closed.
 * Returns -1 (the watches stay) when out of memory. */
static int unwatch_certificates(gw_listener_t *l)
{
    if (l->nwatches == 0) {
        free(l->watches);
        l->watches = NULL;
        return 0;
    }
    closing_watches_t *cw = malloc(sizeof(*cw));
    if (cw == NULL)
        return -1;
    cw->watches = l->watches;
    cw->left = l->nwatches;
    for (size_t i = 0; i < l->nwatches; i++) {
        l->watches[i].data = cw;
        uv_close((uv_handle_t *)&l->watches[i], on_watch_closed);
    }
    l->watches = NULL;
    l->nwatches = 0;
    return 0;
}

int gw_listener_update(gw_listener_t *l, const cfg_listener_t *cfg)
{
    if (!l->is_listening)
        return 0;
    /* A TLS context keeps nothing of the snapshot it was made from, so the
     * listener may follow the new one even if its certificates fail to
     * load (the old context then stays). */
    l->cfg = cfg;
    gw_client_origin_set_cfg(l->origin, l->w->cfg, cfg);
    int rv = 0;
    if (cfg->ncerts == 0) {
        gw_tls_ctx_unref(l->origin->tls);
        l->origin->tls = NULL;
    } else if (load_tls(l) != 0) {
        GW_LOG_ERROR("listener %s: keeping the previous certificates", l->name);
        rv = -1;
    } else if (l->w->index == 0) {
        GW_LOG_INFO("listener %s: certificates reloaded (%s)", l->name,
                    gw_tls_ctx_subject(l->origin->tls, NULL));
    }
    if (l->origin->tls != NULL && !l->has_reload_timer) {
        uv_timer_init(&l->w->loop, &l->reload_timer);
        l->reload_timer.data = l;
        l->has_reload_timer = 1;
    }
    if (unwatch_certificates(l) == 0 && l->origin->tls != NULL && cfg->watch_certificates)
        watch_certificates(l);
    return rv;
}

/* ---- the socket ---- */

/* "NAME HOST:PORT" for logs: the address as configured. */
static void format_name(const cfg_listener_t *cfg, char *buf, size_t cap)
{
    const cfg_addr_t *a = &cfg->addr;
    int is_v6 = strchr(a->host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s%s%s:%u", cfg->name, cfg->name[0] ? " " : "", is_v6 ? "[" : "",
             a->host[0] ? a->host : "0.0.0.0", is_v6 ? "]" : "", a->port);
}

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

int gw_listener_bind(const cfg_listener_t *cfg, uint16_t port, int is_shared, int is_first)
{
    char name[sizeof(((gw_listener_t *)NULL)->name)];
    format_name(cfg, name, sizeof(name));
    const cfg_addr_t *a = &cfg->addr;
    struct sockaddr_storage ss;
    uint16_t bind_port = port != 0 ? port : a->port;
    int is_v6 = strchr(a->host, ':') != NULL;
    int rv =
        is_v6 ? uv_ip6_addr(a->host, bind_port, (struct sockaddr_in6 *)&ss)
              : uv_ip4_addr(a->host[0] ? a->host : "0.0.0.0", bind_port, (struct sockaddr_in *)&ss);
    if (rv != 0) {
        GW_LOG_ERROR("listener %s: not a numeric address: %s", name, uv_strerror(rv));
        return rv;
    }
    int fd = 0;
    if (is_shared && is_first && bind_port != 0) {
        /* SO_REUSEPORT would let this bind join a socket another process
         * (another h2gw with several workers) holds, and the two would
         * split the traffic silently: the first binds alone first, which
         * fails if anyone holds the port, then lets go for the shared
         * sockets. */
        fd = bind_shared(&ss, 0);
        if (fd >= 0)
            close(fd);
    }
    if (fd >= 0)
        fd = bind_shared(&ss, is_shared);
    if (fd == UV_EADDRINUSE) {
        GW_LOG_ERROR("listener %s: address %s%s%s:%u is already in use by another process", name,
                     is_v6 ? "[" : "", a->host[0] ? a->host : "0.0.0.0", is_v6 ? "]" : "",
                     bind_port);
        return fd;
    }
    /* Listening already, before a worker polls it: whatever can fail
     * fails here, where a reload can still be refused as a whole. The
     * kernel queues the first connections until the worker accepts. */
    if (fd >= 0 && listen(fd, 1024) != 0) {
        int err = -errno;
        close(fd);
        fd = err;
    }
    if (fd < 0)
        GW_LOG_ERROR("listener %s: cannot listen on %s%s%s:%u: %s", name, is_v6 ? "[" : "",
                     a->host[0] ? a->host : "0.0.0.0", is_v6 ? "]" : "", bind_port,
                     uv_strerror(fd));
    return fd;
}

uint16_t gw_listener_fd_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

uint16_t gw_listener_port(const gw_listener_t *l)
{
    return l->fd >= 0 ? gw_listener_fd_port(l->fd) : 0;
}

/* ---- lifetime ---- */

static void free_listener(gw_listener_t *l)
{
    gw_client_origin_release(l->origin);
    free(l->watches);
    free(l);
}

static void on_handle_closed(uv_handle_t *handle)
{
    gw_listener_t *l = handle->data;
    if (--l->nclosing == 0 && l->is_closed)
        free_listener(l);
}

static void close_handle(gw_listener_t *l, uv_handle_t *handle)
{
    handle->data = l;
    l->nclosing++;
    uv_close(handle, on_handle_closed);
}

/* Closes the socket and every handle; the listener is freed by the last
 * close callback once gw_listener_close() gave it up. */
static void close_handles(gw_listener_t *l)
{
    l->is_listening = 0;
    if (l->has_poll)
        close_handle(l, (uv_handle_t *)&l->poll);
    l->has_poll = 0;
    if (l->fd >= 0)
        close(l->fd); /* the poll handle has let go of it: closing stops it at once */
    l->fd = -1;
    close_handle(l, (uv_handle_t *)&l->pause_timer);
    for (size_t i = 0; i < l->nwatches; i++)
        close_handle(l, (uv_handle_t *)&l->watches[i]);
    l->nwatches = 0;
    if (l->has_reload_timer)
        close_handle(l, (uv_handle_t *)&l->reload_timer);
    l->has_reload_timer = 0;
}

int gw_listener_start(gw_listener_t **out, gw_ctx_t *w, const cfg_listener_t *cfg, int fd)
{
    *out = NULL;
    gw_listener_t *l = calloc(1, sizeof(*l));
    gw_client_origin_t *origin = l != NULL ? gw_client_origin_new(w->cfg, cfg) : NULL;
    if (origin == NULL) {
        free(l);
        close(fd);
        return UV_ENOMEM;
    }
    l->fd = fd;
    l->w = w;
    l->cfg = cfg;
    l->origin = origin;
    origin->select_first = gw_select_first_protocol;
    origin->select_application = gw_select_application;
    format_name(cfg, l->name, sizeof(l->name));
    uv_timer_init(&w->loop, &l->pause_timer);
    l->pause_timer.data = l;
    l->is_listening = 1; /* handles exist from here on and must be closed */

    int rv = cfg->ncerts > 0 && load_tls(l) != 0 ? UV_EINVAL : 0; /* load_tls logged it */
    /* Accepting is done here, not by uv_listen: out of descriptors libuv
     * accepts and closes every waiting connection, and cannot pause. */
    if (rv == 0 && (rv = uv_poll_init_socket(&w->loop, &l->poll, fd)) == 0) {
        l->has_poll = 1;
        l->poll.data = l;
        rv = uv_poll_start(&l->poll, UV_READABLE, on_readable);
    }
    if (rv != 0) {
        if (rv != UV_EINVAL)
            GW_LOG_ERROR("listener %s: %s", l->name, uv_strerror(rv));
        close_handles(l);
        gw_listener_close(l);
        return rv;
    }

    if (l->origin->tls != NULL) {
        uv_timer_init(&w->loop, &l->reload_timer);
        l->reload_timer.data = l;
        l->has_reload_timer = 1;
        if (cfg->watch_certificates)
            watch_certificates(l);
    }
    if (w->index == 0) {
        const cfg_addr_t *a = &cfg->addr;
        int is_v6 = strchr(a->host, ':') != NULL;
        printf("listening on %s%s%s:%u%s\n", is_v6 ? "[" : "", a->host[0] ? a->host : "0.0.0.0",
               is_v6 ? "]" : "", gw_listener_port(l), l->origin->tls ? " (tls)" : "");
        fflush(stdout);
    }
    *out = l;
    return 0;
}

void gw_listener_stop(gw_listener_t *l)
{
    if (!l->is_listening)
        return;
    GW_LOG_INFO("listener %s: %llu connections, %llu failed TLS handshakes, %llu bad PROXY "
                "headers, %llu accept pauses",
                l->name, (unsigned long long)l->naccepted,
                (unsigned long long)l->origin->nhandshake_failures,
                (unsigned long long)l->origin->nproxy_failures, (unsigned long long)l->npauses);
    close_handles(l);
}

void gw_listener_close(gw_listener_t *l)
{
    gw_listener_stop(l);
    l->is_closed = 1;
    if (l->nclosing == 0)
        free_listener(l);
}
