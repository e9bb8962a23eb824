#include "gateway/worker.h"

#include <string.h>

#include "gateway/client_conn.h"
#include "gateway/listener.h"
#include "gateway/log.h"

/* How long a graceful drain may take before open connections are cut. */
#define DRAIN_TIMEOUT_MS 10000

static void on_flush(uv_prepare_t *prepare)
{
    gw_client_conn_flush_all(prepare->data);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    gw_worker_t *w = sig->data;
    if (w->is_draining) {
        GW_LOG_WARN("signal %d during drain: closing everything now", signum);
        uv_stop(&w->loop);
        return;
    }
    GW_LOG_INFO("signal %d: draining", signum);
    gw_worker_drain(w);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    gw_worker_t *w = timer->data;
    GW_LOG_WARN("drain timed out with %u client connections open: closing them", w->nclients);
    uv_stop(&w->loop);
}

void gw_worker_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gw_worker_t *w = handle->loop->data;
    *buf = uv_buf_init(w->read_buf, sizeof(w->read_buf));
}

uint64_t gw_worker_now_ms(const gw_worker_t *w)
{
    return uv_now(&w->loop);
}

int gw_worker_init(gw_worker_t *w, const cfg_t *cfg)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    gw_queue_init(&w->dirty);
    gw_queue_init(&w->clients);
    int rv = uv_loop_init(&w->loop);
    if (rv != 0)
        return rv;
    w->loop.data = w;

    uv_prepare_init(&w->loop, &w->flush);
    w->flush.data = w;
    uv_prepare_start(&w->flush, on_flush);
    uv_signal_init(&w->loop, &w->sig_term);
    uv_signal_init(&w->loop, &w->sig_int);
    w->sig_term.data = w->sig_int.data = w;
    uv_signal_start(&w->sig_term, on_signal, SIGTERM);
    uv_signal_start(&w->sig_int, on_signal, SIGINT);
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;

    if ((rv = gw_pool_init(&w->pool, w, &cfg->backend)) != 0)
        return rv;
    return gw_listener_start(w);
}

void gw_worker_drain(gw_worker_t *w)
{
    if (w->is_draining)
        return;
    w->is_draining = 1;
    gw_listener_stop(w);
    gw_pool_close_idle(&w->pool);
    for (gw_queue_t *n = w->clients.next; n != &w->clients; n = n->next) {
        gw_client_conn_t *c = gw_container_of(n, gw_client_conn_t, all_node);
        if (c->proto->on_drain != NULL)
            c->proto->on_drain(c);
        else
            c->is_done = 1, gw_client_conn_mark_dirty(c);
    }
    uv_timer_start(&w->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
    gw_worker_on_client_closed(w);
}

void gw_worker_on_client_closed(gw_worker_t *w)
{
    if (w->is_draining && w->nclients == 0)
        uv_stop(&w->loop);
}

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int gw_worker_run(gw_worker_t *w)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);

    /* Orderly teardown: connections first (their close callbacks free them),
     * then the worker's own handles, which have no close callbacks. */
    gw_listener_stop(w);
    gw_queue_t *n;
    while ((n = gw_queue_first(&w->clients)) != NULL)
        gw_client_conn_close(gw_container_of(n, gw_client_conn_t, all_node));
    uv_run(&w->loop, UV_RUN_NOWAIT);
    gw_pool_close_all(&w->pool);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uv_walk(&w->loop, on_walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&w->loop);
}
