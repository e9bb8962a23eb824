#include "gateway/worker.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/client/client_conn.h"
#include "gateway/core/cfg_ref.h"
#include "gateway/core/log.h"
#include "gateway/ops/access_log.h"
#include "gateway/ops/metrics.h"
#include "gateway/reload.h"
#include "proto/router.h"

/* How often a worker proves its loop turns, and how stale that may get. */
#define HEARTBEAT_MS 250
#define LIVE_MAX_AGE_MS 1000

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_heartbeat(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    atomic_store_explicit(&w->heartbeat_ms, mono_ms(), memory_order_relaxed);
}

static void on_kick(uv_idle_t *idle)
{
    (void)idle; /* its being active is the point: the next poll does not block */
}

/* How often idle connections give back their buffers and load is
 * compared with its peak, and how far it must fall. */
#define TRIM_INTERVAL_MS 1000
#define TRIM_MIN_PEAK 8

/* malloc keeps freed memory for reuse (main.c raises its trim threshold so
 * bodies do not cost a brk each): after a burst of connections or streams
 * has gone, give it back, or a daily peak stays resident forever. */
static void on_trim_timer(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    gw_ctx_t *ctx = &w->ctx;
    /* Connections with nothing in progress give back their idle buffers. */
    for (proto_queue_t *n = ctx->clients.next; n != &ctx->clients; n = n->next)
        gw_client_conn_trim(proto_container_of(n, gw_client_conn_t, all_node));
    if ((w->peak_clients >= TRIM_MIN_PEAK && ctx->nclients <= w->peak_clients / 2) ||
        (w->peak_exchanges >= TRIM_MIN_PEAK && ctx->nexchanges <= w->peak_exchanges / 2)) {
        malloc_trim(0);
        w->peak_clients = ctx->nclients;
        w->peak_exchanges = ctx->nexchanges;
    }
}

static void note_peaks(gw_worker_t *w)
{
    if (w->ctx.nclients > w->peak_clients)
        w->peak_clients = w->ctx.nclients;
    if (w->ctx.nexchanges > w->peak_exchanges)
        w->peak_exchanges = w->ctx.nexchanges;
}

/* Runs right before the loop waits for I/O: every connection with output
 * writes it here, once per turn. Flushing can dirty others (a backend
 * write reopens a client window; a finished HTTP/1.1 response starts the
 * next pipelined request), so a few rounds run; what is left keeps the
 * idle handle active so that the wait does not block on it. */
static void on_flush(uv_prepare_t *prepare)
{
    gw_worker_t *w = prepare->data;
    note_peaks(w);
    int is_left = 1;
    for (int round = 0; round < 4 && is_left; round++)
        is_left = gw_ctx_run_tasks(&w->ctx);
    if (is_left)
        uv_idle_start(&w->kick, on_kick);
    else
        uv_idle_stop(&w->kick);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    GW_LOG_WARN("drain timed out with %u client connections open: closing them", w->ctx.nclients);
    uv_stop(&w->ctx.loop);
}

#define GOAWAY_STEP_MS 1000

static void on_goaway_timer(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    for (proto_queue_t *n = w->ctx.clients.next; n != &w->ctx.clients; n = n->next) {
        gw_client_conn_t *c = proto_container_of(n, gw_client_conn_t, all_node);
        if (c->proto != NULL && c->proto->on_drain != NULL)
            c->proto->on_drain(c);
    }
}

static void on_drain_delay(uv_timer_t *timer)
{
    GW_LOG_INFO("drain delay over: draining");
    gw_worker_drain(timer->data);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    gw_worker_t *w = sig->data;
    if (signum == SIGUSR1) {
        /* logrotate moved the access log: write to the file by its name */
        gw_access_log_reopen(w->ctx.access_log);
        return;
    }
    if (signum == SIGHUP) {
        if (w->is_drain_pending || w->ctx.is_draining) {
            GW_LOG_WARN("SIGHUP during drain: not reloading");
            return;
        }
        GW_LOG_INFO("SIGHUP: reloading the configuration and certificates");
        gw_worker_reload(w);
        return;
    }
    if (w->is_drain_pending || w->ctx.is_draining) {
        GW_LOG_WARN("signal %d during drain: closing everything now", signum);
        uv_stop(&w->ctx.loop);
        return;
    }
    w->is_drain_pending = 1; /* /readyz fails from now on */
    uint64_t delay = w->ctx.cfg->drain_delay_ms;
    if (delay == 0) {
        GW_LOG_INFO("signal %d: draining", signum);
        gw_worker_drain(w);
        return;
    }
    GW_LOG_INFO("signal %d: not ready; draining in %llu ms", signum, (unsigned long long)delay);
    uv_timer_start(&w->drain_timer, on_drain_delay, delay, 0);
}

static void on_client_closed(gw_ctx_t *ctx)
{
    if (ctx->is_draining && ctx->nclients == 0)
        uv_stop(&ctx->loop);
}

static gw_pool_t *pool_for(gw_ctx_t *ctx, const char *authority, size_t authority_len,
                           const char *path, size_t path_len)
{
    gw_worker_t *w = (gw_worker_t *)ctx;
    return &w->pools[proto_route_pick(ctx->cfg, authority, authority_len, path, path_len)];
}

static void start_signal(gw_worker_t *w, uv_signal_t *sig, int signum)
{
    uv_signal_init(&w->ctx.loop, sig);
    sig->data = w;
    uv_signal_start(sig, on_signal, signum);
}

/* Descriptors kept aside for listeners, logs, DNS, the admin listener and
 * the loop's own. */
#define FD_RESERVE 64

/* The clients one worker may hold: max_connections, or less when the
 * descriptor limit, shared by the workers after every backend connection
 * they may open, allows less. */
static uint32_t client_budget(const cfg_t *cfg, uint64_t nofile)
{
    uint64_t backend_fds = 0;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const cfg_backend_t *b = &cfg->backends[i];
        /* +1 per server for its health check connection */
        backend_fds += (uint64_t)b->nservers * (b->max_connections + 1);
    }
    uint64_t per_worker = nofile / cfg->workers;
    uint64_t need = backend_fds + FD_RESERVE / cfg->workers + cfg->nlisteners;
    uint64_t room = per_worker > need + 16 ? per_worker - need : 16;
    return room < cfg->max_connections ? (uint32_t)room : cfg->max_connections;
}

/* /livez: every worker still running has turned its loop within a second. */
static int is_live(void *arg, char *why, size_t cap)
{
    gw_worker_t *w = arg;
    gw_worker_t *all = w->peers != NULL ? w->peers : w;
    uint32_t n = w->peers != NULL ? w->npeers : 1;
    uint64_t now = mono_ms();
    for (uint32_t i = 0; i < n; i++) {
        if (!atomic_load(&all[i].is_running))
            continue;
        uint64_t last = atomic_load_explicit(&all[i].heartbeat_ms, memory_order_relaxed);
        if (now > last && now - last >= LIVE_MAX_AGE_MS) {
            snprintf(why, cap, "worker %u has not run its loop for %llu ms", i,
                     (unsigned long long)(now - last));
            return 0;
        }
    }
    return 1;
}

/* /readyz: listening, not draining, and every backend has a usable server
 * (as worker 0's pools see it). */
static int is_ready(void *arg, char *why, size_t cap)
{
    gw_worker_t *w = arg;
    if (w->is_drain_pending || w->ctx.is_draining) {
        snprintf(why, cap, "draining");
        return 0;
    }
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (!w->listeners[i]->is_listening) {
            snprintf(why, cap, "listener %s is not open", w->listeners[i]->name);
            return 0;
        }
    }
    for (size_t i = 0; i < w->npools; i++) {
        if (!gw_pool_is_usable(&w->pools[i])) {
            snprintf(why, cap, "backend %s has no usable server", w->pools[i].name);
            return 0;
        }
    }
    return 1;
}

/* /metrics: every worker's counters (the memory stays until every thread
 * has ended: main frees it), and the certificates worker 0's listeners
 * serve (its own, on this thread). */
static int scrape_metrics(void *arg, char **body, size_t *len)
{
    gw_worker_t *w = arg;
    gw_worker_t *all = w->peers != NULL ? w->peers : w;
    uint32_t n = w->peers != NULL ? w->npeers : 1;
    size_t ncerts = 0;
    for (size_t i = 0; i < w->nlisteners; i++)
        ncerts += w->listeners[i]->origin->tls != NULL ? w->listeners[i]->cfg->ncerts : 0;
    const gw_metrics_t **workers = calloc(n, sizeof(*workers));
    gw_metrics_cert_t *certs = calloc(ncerts + 1, sizeof(*certs));
    int rv = -1;
    if (workers != NULL && certs != NULL) {
        for (uint32_t i = 0; i < n; i++)
            workers[i] = &all[i].ctx.metrics;
        size_t k = 0;
        for (size_t i = 0; i < w->nlisteners; i++) {
            const gw_tls_ctx_t *tls = w->listeners[i]->origin->tls;
            for (size_t c = 0; tls != NULL && k < ncerts; c++, k++) {
                if (gw_tls_ctx_cert(tls, c, &certs[k].subject, &certs[k].not_after) != 0)
                    break;
            }
        }
        gw_metrics_scrape_t s = {workers, n, certs, k};
        rv = gw_metrics_render(&s, body, len);
    }
    free(workers);
    free(certs);
    return rv;
}

/* ---- reload ---- */

/* How often retired generations are looked at. */
#define REAP_INTERVAL_MS 250

static void free_generation(gw_generation_t *g)
{
    for (size_t i = 0; i < g->npools; i++)
        gw_pool_free(&g->pools[i]);
    free(g->pools);
    if (g->access_log != NULL) {
        gw_access_log_close(g->access_log);
        free(g->access_log);
    }
    gw_cfg_ref_release(g->cfg);
    free(g);
}

static int is_resolving(const gw_generation_t *g)
{
    for (size_t i = 0; i < g->npools; i++) {
        for (size_t k = 0; k < g->pools[i].nservers; k++) {
            if (g->pools[i].servers[k].is_resolving)
                return 1;
        }
    }
    return 0;
}

/* A retired generation goes in two steps: its pools are closed once no
 * exchange or connection uses them; one check later (their handles' close
 * callbacks have run, and a cancelled name resolution has answered) they
 * are freed, and the old snapshot is released. */
static void on_reap_timer(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    gw_generation_t **link = &w->retired;
    while (*link != NULL) {
        gw_generation_t *g = *link;
        if (g->is_closed && !is_resolving(g) &&
            (g->access_log == NULL || !g->access_log->is_writing)) {
            *link = g->next;
            free_generation(g);
            GW_LOG_INFO("worker %d: a previous configuration is freed", w->ctx.index);
            continue;
        }
        if (!g->is_closed) {
            int is_unused = 1;
            for (size_t i = 0; i < g->npools && is_unused; i++)
                is_unused = gw_pool_is_unused(&g->pools[i]);
            if (is_unused) {
                for (size_t i = 0; i < g->npools; i++)
                    gw_pool_close_all(&g->pools[i]);
                g->is_closed = 1;
                GW_LOG_INFO("worker %d: the pools of a previous configuration are unused: "
                            "closed",
                            w->ctx.index);
            }
        }
        link = &g->next;
    }
    if (w->retired == NULL)
        uv_timer_stop(&w->reap_timer);
}

static void retire(gw_worker_t *w, gw_generation_t *g)
{
    g->next = w->retired;
    w->retired = g;
    uv_timer_start(&w->reap_timer, on_reap_timer, REAP_INTERVAL_MS, REAP_INTERVAL_MS);
}

static void free_handoff(gw_handoff_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nfds; i++) {
        if (h->fds[i] >= 0)
            close(h->fds[i]);
    }
    gw_cfg_ref_release(h->cfg);
    free(h);
}

/* The index in w->listeners of the running listener named name, or -1. */
static ssize_t find_running(const gw_worker_t *w, const char *name)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i] != NULL && strcmp(w->listeners[i]->cfg->name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Swaps the worker to the handed-off snapshot: new pools for its backends,
 * listeners started on the new sockets, the others and the access log
 * follow it; exchanges in flight keep the old pools (and through them the
 * old snapshot) until they end, and connections accepted by a listener
 * that closes here keep its origin (gateway/client/client_conn.h). On
 * failure the worker keeps running on the old snapshot, and the sockets
 * not taken are closed with the handoff. */
static int apply_config(gw_worker_t *w, gw_handoff_t *h)
{
    gw_ctx_t *ctx = &w->ctx;
    const cfg_t *running = ctx->cfg;
    const cfg_t *cfg = h->cfg;
    gw_generation_t *old = calloc(1, sizeof(*old));
    gw_pool_t *pools = calloc(cfg->nbackends, sizeof(*pools));
    gw_listener_t **listeners = calloc(cfg->nlisteners + 1, sizeof(*listeners));
    ssize_t *kept = calloc(cfg->nlisteners + 1, sizeof(*kept));
    gw_access_log_t *log = NULL;
    size_t n = 0;
    int rv = UV_ENOMEM;
    gw_cfg_ref_hold(cfg);
    if (old == NULL || pools == NULL || listeners == NULL || kept == NULL)
        goto fail;
    /* gw_pool_init reads the gateway options through the context, and a
     * new listener's origin holds the snapshot it finds there. */
    ctx->cfg = cfg;
    for (; n < cfg->nbackends; n++) {
        if ((rv = gw_pool_init(&pools[n], ctx, &cfg->backends[n])) != 0) {
            /* Partly set up: closed with the rest if its timers exist. */
            if (pools[n].queue_timer.loop != NULL)
                n++;
            goto undo;
        }
    }
    /* The log is opened again even when its name has not changed: after
     * a rotation that is the point of the signal. */
    if (cfg->access_log != NULL) {
        rv = UV_ENOMEM;
        if ((log = calloc(1, sizeof(*log))) == NULL)
            goto undo;
        if ((rv = gw_access_log_open(log, &ctx->loop, cfg->access_log,
                                     cfg->access_log_format == CFG_LOG_JSON)) != 0) {
            GW_LOG_ERROR("access log %s: %s", cfg->access_log, uv_strerror(rv));
            goto undo;
        }
    }
    /* Listeners last, so that nothing after a new one announces itself
     * can undo it but another new one failing. */
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        if (h->fds[i] < 0) {
            /* Worker 0 found it running at the same address; so does
             * every worker whose reloads have all been applied. */
            if ((kept[i] = find_running(w, l->name)) < 0) {
                GW_LOG_ERROR("worker %d: listener %s is not running here", ctx->index,
                             l->name[0] ? l->name : "(unnamed)");
                rv = UV_ENOENT;
                goto undo;
            }
            continue;
        }
        kept[i] = -1;
        int fd = h->fds[i];
        h->fds[i] = -1; /* the listener's from here on, also on failure */
        if ((rv = gw_listener_start(&listeners[i], ctx, l, fd)) != 0)
            goto undo;
        if (ctx->index == 0)
            GW_LOG_WARN("listener %s: opened by the reload", listeners[i]->name);
    }

    old->cfg = running;
    old->pools = w->pools;
    old->npools = w->npools;
    old->access_log = ctx->access_log;
    for (size_t i = 0; i < old->npools; i++)
        gw_pool_retire(&old->pools[i]);
    retire(w, old);
    w->pools = pools;
    w->npools = n;
    ctx->access_log = log;
    ctx->max_clients = client_budget(cfg, w->nofile);
    gw_ctx_set_via(ctx);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (kept[i] < 0)
            continue;
        listeners[i] = w->listeners[kept[i]];
        w->listeners[kept[i]] = NULL;
        gw_listener_update(listeners[i], &cfg->listeners[i]);
    }
    /* What no new listener continues: its connections go on, the socket
     * closes now. */
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i] == NULL)
            continue;
        if (ctx->index == 0)
            GW_LOG_WARN("listener %s: closed by the reload; its connections finish",
                        w->listeners[i]->name);
        gw_listener_close(w->listeners[i]);
    }
    free(w->listeners);
    w->listeners = listeners;
    w->nlisteners = cfg->nlisteners;
    free(kept);
    return 0;

undo:
    ctx->cfg = running;
    free(log);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (listeners[i] != NULL)
            gw_listener_close(listeners[i]);
    }
    free(listeners);
    free(kept);
    /* The pools made so far go as a retired generation would: closed now,
     * freed once their handles have closed. */
    for (size_t i = 0; i < n; i++)
        gw_pool_close_all(&pools[i]);
    *old = (gw_generation_t){.cfg = cfg, .pools = pools, .npools = n, .is_closed = 1};
    retire(w, old);
    return rv;
fail:
    free(old);
    free(pools);
    free(listeners);
    free(kept);
    gw_cfg_ref_release(cfg);
    return rv;
}

static void on_reload_async(uv_async_t *async)
{
    gw_worker_t *w = async->data;
    gw_worker_t *leader = w->leader;
    gw_handoff_t *h = atomic_exchange(&w->pending, NULL);
    if (h == NULL)
        return;
    size_t nbackends = h->cfg->nbackends, nroutes = h->cfg->nroutes;
    int rv = UV_ECANCELED; /* draining: the reload is dropped */
    if (!w->is_drain_pending && !w->ctx.is_draining)
        rv = apply_config(w, h);
    free_handoff(h);
    if (rv != 0 && rv != UV_ECANCELED) {
        GW_LOG_ERROR("worker %d: reload failed (%s): keeping the running configuration",
                     w->ctx.index, uv_strerror(rv));
        gw_metrics_config_reload(&w->ctx.metrics, 0);
    }
    if (rv != 0)
        atomic_store(&leader->is_reload_failed, 1);
    else
        GW_LOG_DEBUG("worker %d: on the new configuration", w->ctx.index);
    if (atomic_fetch_sub(&leader->reload_left, 1) == 1 && !atomic_load(&leader->is_reload_failed)) {
        /* At the default log level too: an operator asked for it. The
         * last worker to swap counts it, in its own metrics. */
        GW_LOG_WARN("configuration reloaded (%zu backends, %zu routes)", nbackends, nroutes);
        gw_metrics_config_reload(&w->ctx.metrics, 1);
    }
}

/* Opens, for every worker, the sockets of cfg's listeners that need new
 * ones (new, or moved), all before any worker swaps: one that cannot be
 * bound refuses the reload as a whole while the running listeners go on
 * untouched. Sockets touch no loop, so this thread opens the others'
 * too, as at start; each worker starts accepting on its own on its thread.
 * As at start the first socket of each is worker 0's: it binds alone
 * first, and the others join the port it got (port 0). */
static int open_sockets(const gw_worker_t *w, const cfg_t *cfg, gw_handoff_t **hs, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        if ((hs[k] = calloc(1, sizeof(*hs[k]) + cfg->nlisteners * sizeof(int))) == NULL)
            return UV_ENOMEM;
        gw_cfg_ref_hold(cfg);
        hs[k]->cfg = cfg;
        hs[k]->nfds = cfg->nlisteners;
        for (size_t i = 0; i < cfg->nlisteners; i++)
            hs[k]->fds[i] = -1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        if (gw_reload_kept_listener(w->ctx.cfg, l) != NULL)
            continue;
        uint16_t port = 0;
        for (uint32_t k = 0; k < n; k++) {
            int fd = gw_listener_bind(l, port, cfg->workers > 1, k == 0);
            if (fd < 0)
                return fd;
            hs[k]->fds[i] = fd;
            if (k == 0)
                port = gw_listener_fd_port(fd);
        }
    }
    return 0;
}

void gw_worker_reload(gw_worker_t *w)
{
    if (atomic_load(&w->reload_left) > 0) {
        /* Its sockets are not every worker's yet: a new reload would
         * compare against listeners that are about to change. */
        GW_LOG_WARN("reload refused: the previous one is still being applied; send SIGHUP "
                    "again");
        gw_metrics_config_reload(&w->ctx.metrics, 0);
        return;
    }
    gw_worker_t *all = w->peers != NULL ? w->peers : w;
    uint32_t n = w->peers != NULL ? w->npeers : 1;
    const cfg_t *cfg = gw_reload_load(w->argc, w->argv, w->ctx.cfg);
    gw_handoff_t **hs = cfg != NULL ? calloc(n, sizeof(*hs)) : NULL;
    int rv = hs != NULL ? open_sockets(w, cfg, hs, n) : UV_EINVAL;
    if (rv != 0) {
        if (rv == UV_ENOMEM)
            GW_LOG_ERROR("reload: out of memory");
        for (uint32_t i = 0; hs != NULL && i < n; i++)
            free_handoff(hs[i]);
        free(hs);
        gw_cfg_ref_release(cfg);
        GW_LOG_ERROR("reload failed: keeping the running configuration");
        gw_metrics_config_reload(&w->ctx.metrics, 0);
        return;
    }
    gw_log_set_level(cfg->log_level);
    atomic_store(&w->is_reload_failed, 0);
    atomic_store(&w->reload_left, n);
    for (uint32_t i = 0; i < n; i++) {
        /* Nothing is pending: a reload is refused until all took the last. */
        free_handoff(atomic_exchange(&all[i].pending, hs[i]));
        uv_async_send(&all[i].reload_async);
    }
    free(hs);
    gw_cfg_ref_release(cfg);
}

int gw_worker_init(gw_worker_t *w, const cfg_t *cfg, int index, const uint16_t *ports,
                   uint64_t nofile)
{
    memset(w, 0, sizeof(*w));
    gw_ctx_t *ctx = &w->ctx;
    gw_cfg_ref_hold(cfg);
    ctx->cfg = cfg;
    ctx->index = index;
    w->nofile = nofile;
    w->leader = w;
    atomic_init(&w->pending, NULL);
    ctx->max_clients = client_budget(cfg, nofile);
    if (index == 0 && ctx->max_clients < cfg->max_connections)
        GW_LOG_WARN("descriptor limit %llu: at most %u client connections per worker (not %u); "
                    "raise the hard limit (LimitNOFILE, ulimit -Hn) for more",
                    (unsigned long long)nofile, ctx->max_clients, cfg->max_connections);
    gw_metrics_init(&ctx->metrics);
    ctx->pool_for = pool_for;
    gw_ctx_set_via(ctx);
    ctx->on_client_closed = on_client_closed;
    proto_queue_init(&ctx->tasks);
    proto_queue_init(&ctx->clients);
    int rv = uv_loop_init(&ctx->loop);
    if (rv != 0)
        return rv;
    ctx->loop.data = ctx;

    uv_prepare_init(&ctx->loop, &w->flush);
    w->flush.data = w;
    uv_prepare_start(&w->flush, on_flush);
    uv_idle_init(&ctx->loop, &w->kick);
    start_signal(w, &w->sig_term, SIGTERM);
    start_signal(w, &w->sig_int, SIGINT);
    start_signal(w, &w->sig_usr1, SIGUSR1);
    /* Worker 0 reads the configuration again and hands it to the others. */
    if (index == 0)
        start_signal(w, &w->sig_hup, SIGHUP);
    uv_async_init(&ctx->loop, &w->reload_async, on_reload_async);
    w->reload_async.data = w;
    uv_unref((uv_handle_t *)&w->reload_async);
    uv_timer_init(&ctx->loop, &w->reap_timer);
    w->reap_timer.data = w;
    uv_unref((uv_handle_t *)&w->reap_timer);
    uv_timer_init(&ctx->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&ctx->loop, &w->goaway_timer);
    w->goaway_timer.data = w;
    uv_timer_init(&ctx->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_start(&w->trim_timer, on_trim_timer, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
    uv_unref((uv_handle_t *)&w->trim_timer);
    atomic_store(&w->heartbeat_ms, mono_ms());
    atomic_store(&w->is_running, 1);
    uv_timer_init(&ctx->loop, &w->heartbeat);
    w->heartbeat.data = w;
    uv_timer_start(&w->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);

    if (cfg->access_log != NULL) {
        ctx->access_log = calloc(1, sizeof(*ctx->access_log));
        if (ctx->access_log == NULL)
            return UV_ENOMEM;
        if ((rv = gw_access_log_open(ctx->access_log, &ctx->loop, cfg->access_log,
                                     cfg->access_log_format == CFG_LOG_JSON)) != 0) {
            GW_LOG_ERROR("access log %s: %s", cfg->access_log, uv_strerror(rv));
            free(ctx->access_log);
            ctx->access_log = NULL;
            return rv;
        }
    }
    w->pools = calloc(cfg->nbackends, sizeof(*w->pools));
    w->listeners = calloc(cfg->nlisteners + 1, sizeof(*w->listeners));
    if (w->pools == NULL || w->listeners == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if ((rv = gw_pool_init(&w->pools[i], ctx, &cfg->backends[i])) != 0)
            return rv;
        w->npools++;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        int fd = gw_listener_bind(l, ports != NULL ? ports[i] : 0, cfg->workers > 1, index == 0);
        if (fd < 0)
            return fd;
        if ((rv = gw_listener_start(&w->listeners[i], ctx, l, fd)) != 0)
            return rv;
        w->nlisteners++;
    }
    if (index == 0 && cfg->has_admin) {
        gw_admin_ops_t ops = {
            .arg = w, .is_live = is_live, .is_ready = is_ready, .metrics = scrape_metrics};
        if ((w->admin = gw_admin_start(&ctx->loop, &cfg->admin_addr, &ops)) == NULL)
            return UV_EINVAL;
    }
    return 0;
}

void gw_worker_drain(gw_worker_t *w)
{
    gw_ctx_t *ctx = &w->ctx;
    if (ctx->is_draining)
        return;
    ctx->is_draining = 1;
    for (size_t i = 0; i < w->nlisteners; i++)
        gw_listener_stop(w->listeners[i]);
    for (size_t i = 0; i < w->npools; i++)
        gw_pool_close_idle(&w->pools[i]);
    for (gw_generation_t *g = w->retired; g != NULL; g = g->next) {
        for (size_t i = 0; !g->is_closed && i < g->npools; i++)
            gw_pool_close_idle(&g->pools[i]);
    }
    for (proto_queue_t *n = ctx->clients.next; n != &ctx->clients; n = n->next) {
        gw_client_conn_t *c = proto_container_of(n, gw_client_conn_t, all_node);
        if (c->proto->on_drain != NULL) {
            c->proto->on_drain(c);
        } else {
            c->is_done = 1;
            gw_client_conn_mark_dirty(c);
        }
    }
    w->is_drain_pending = 1;
    uv_timer_start(&w->drain_timer, on_drain_timeout, ctx->cfg->shutdown_timeout_ms, 0);
    /* The second step of HTTP/2's GOAWAY for clients that did not answer
     * the PING within a second. */
    uv_timer_start(&w->goaway_timer, on_goaway_timer, GOAWAY_STEP_MS, 0);
    on_client_closed(ctx);
}

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int gw_worker_run(gw_worker_t *w)
{
    uv_run(&w->ctx.loop, UV_RUN_DEFAULT);
    atomic_store(&w->is_running, 0);
    return gw_worker_teardown(w);
}

int gw_worker_teardown(gw_worker_t *w)
{
    gw_ctx_t *ctx = &w->ctx;
    if (ctx->loop.data != ctx) {
        gw_cfg_ref_release(ctx->cfg);
        ctx->cfg = NULL;
        return 0; /* the loop never started */
    }
    /* Orderly teardown: connections first (their close callbacks free them),
     * then pools, then the worker's own handles, which have no callbacks. */
    atomic_store(&w->is_running, 0);
    gw_admin_stop(w->admin);
    w->admin = NULL;
    /* Each frees itself once its handles have closed, in the runs below. */
    for (size_t i = 0; i < w->nlisteners; i++)
        gw_listener_close(w->listeners[i]);
    w->nlisteners = 0;
    proto_queue_t *n;
    while ((n = proto_queue_first(&ctx->clients)) != NULL)
        gw_client_conn_close(proto_container_of(n, gw_client_conn_t, all_node));
    uv_run(&ctx->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < w->npools; i++)
        gw_pool_close_all(&w->pools[i]);
    for (gw_generation_t *g = w->retired; g != NULL; g = g->next) {
        for (size_t i = 0; !g->is_closed && i < g->npools; i++)
            gw_pool_close_all(&g->pools[i]);
        g->is_closed = 1;
    }
    uv_run(&ctx->loop, UV_RUN_NOWAIT);
    uv_walk(&ctx->loop, on_walk_close, NULL);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(&ctx->loop);
    if (ctx->access_log != NULL) {
        gw_access_log_close(ctx->access_log);
        free(ctx->access_log);
    }
    free(w->listeners);
    for (size_t i = 0; i < w->npools; i++)
        gw_pool_free(&w->pools[i]);
    free(w->pools);
    while (w->retired != NULL) {
        gw_generation_t *g = w->retired;
        w->retired = g->next;
        free_generation(g);
    }
    free_handoff(atomic_exchange(&w->pending, NULL));
    gw_cfg_ref_release(ctx->cfg);
    ctx->cfg = NULL;
    return rv;
}
