#include "gateway/backend/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/exchange.h"
#include "gateway/backend/health.h"
#include "gateway/core/log.h"
#include "gateway/tls/tls.h"
#include "gateway/backend/h1conn.h"
#include "gateway/worker.h"

/* Reserved connections (priority_reserved_connections) serve urgency 0..2:
 * what a browser marks as render-blocking (HTML, CSS, fonts). */
#define URGENT_MAX 2

static void on_queue_timer(uv_timer_t *timer);
static void on_resolve_timer(uv_timer_t *timer);

/* The scheduler's view of the RFC 7540 tree: a waiting parent goes first. */
static proto_sched_entry_t *sched_parent_of(proto_sched_entry_t *e)
{
    gw_exchange_t *x = proto_container_of(e, gw_exchange_t, sched);
    if (x->fe->parent_of == NULL)
        return NULL;
    gw_exchange_t *parent = x->fe->parent_of(x);
    return parent != NULL && parent->pool == x->pool ? &parent->sched : NULL;
}

static uint64_t now_ms(const gw_pool_t *p)
{
    return gw_worker_now_ms(p->w);
}

/* ---- addresses ---- */

static int numeric_addr(const cfg_addr_t *a, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)ss);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_server_t *s = req->data;
    s->is_resolving = 0;
    s->is_awaiting_first_address = 0;
    if (status != 0 || res == NULL) {
        if (status != UV_ECANCELED) {
            GW_LOG_WARN("backend %s server %s: cannot resolve: %s", s->pool->name, s->name,
                        uv_strerror(status));
            /* Requests that waited for this answer learn there is none. */
            gw_pool_dispatch(s->pool);
        }
        uv_freeaddrinfo(res);
        return;
    }
    /* Connections already open keep their address; new ones use this. */
    if (!s->has_addr || memcmp(&s->addr, res->ai_addr, res->ai_addrlen) != 0)
        GW_LOG_INFO("backend %s server %s: resolved", s->pool->name, s->name);
    memset(&s->addr, 0, sizeof(s->addr));
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->has_addr = 1;
    uv_freeaddrinfo(res);
    gw_pool_dispatch(s->pool);
}

static void resolve(gw_server_t *s)
{
    if (s->is_resolving)
        return;
    char port[8];
    snprintf(port, sizeof(port), "%u", s->cfg->addr.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->resolve_req.data = s;
    if (uv_getaddrinfo(&s->pool->w->loop, &s->resolve_req, on_resolved, s->cfg->addr.host, port,
                       &hints) == 0)
        s->is_resolving = 1;
}

static int has_names(const gw_pool_t *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        struct sockaddr_storage ss;
        if (numeric_addr(&p->servers[i].cfg->addr, &ss) != 0)
            return 1;
    }
    return 0;
}

static void on_resolve_timer(uv_timer_t *timer)
{
    gw_pool_t *p = timer->data;
    for (size_t i = 0; i < p->nservers; i++) {
        struct sockaddr_storage ss;
        if (numeric_addr(&p->servers[i].cfg->addr, &ss) != 0)
            resolve(&p->servers[i]);
    }
}

/* ---- setup and teardown ---- */

int gw_pool_init(gw_pool_t *p, gw_worker_t *w, const cfg_backend_t *bcfg)
{
    memset(p, 0, sizeof(*p));
    p->w = w;
    p->cfg = w->cfg;
    p->bcfg = bcfg;
    snprintf(p->name, sizeof(p->name), "%s", bcfg->name);
    proto_queue_init(&p->all);
    if (proto_sched_init(&p->sched,
                      bcfg->scheduling == CFG_SCHED_FIFO ? PROTO_SCHED_FIFO : PROTO_SCHED_PRIORITY,
                      bcfg->priority_max_wait_ms, sched_parent_of) != 0)
        return UV_ENOMEM;
    uv_timer_init(&w->loop, &p->queue_timer);
    uv_timer_init(&w->loop, &p->resolve_timer);
    p->queue_timer.data = p->resolve_timer.data = p;

    if (bcfg->tls) {
        char err[512];
        if ((p->tls = gw_tls_client_ctx_new(bcfg, err, sizeof(err))) == NULL) {
            GW_LOG_ERROR("backend %s: %s", p->name, err);
            return UV_EINVAL;
        }
    }
    /* Freed by gw_pool_free() once the loop has run every callback,
     * getaddrinfo's included. */
    p->servers = calloc(bcfg->nservers, sizeof(*p->servers));
    if (p->servers == NULL)
        return UV_ENOMEM;
    p->nservers = bcfg->nservers;
    for (size_t i = 0; i < p->nservers; i++) {
        gw_server_t *s = &p->servers[i];
        s->pool = p;
        s->cfg = &bcfg->servers[i];
        snprintf(s->name, sizeof(s->name), "%s:%u", s->cfg->addr.host, s->cfg->addr.port);
        proto_queue_init(&s->idle);
        if (numeric_addr(&s->cfg->addr, &s->addr) == 0) {
            s->has_addr = 1;
        } else {
            s->is_awaiting_first_address = 1;
            resolve(s);
        }
        if (bcfg->health_check_path != NULL)
            s->hc = gw_health_check_start(s);
    }
    if (has_names(p))
        uv_timer_start(&p->resolve_timer, on_resolve_timer, bcfg->resolve_interval_ms,
                       bcfg->resolve_interval_ms);
    return 0;
}

void gw_pool_close_idle(gw_pool_t *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        proto_queue_t *n;
        while ((n = proto_queue_first(&p->servers[i].idle)) != NULL)
            gw_upconn_close(proto_container_of(n, gw_upconn_t, idle_node));
    }
}

void gw_pool_close_all(gw_pool_t *p)
{
    const gw_pool_stats_t *st = &p->stats;
    GW_LOG_INFO("backend %s: %llu requests, %llu retries, %llu refused with 503 (queue full "
                "%llu, queue timeout %llu, all servers down %llu), %llu bodies too large",
                p->name, (unsigned long long)st->requests, (unsigned long long)st->retries,
                (unsigned long long)(st->queue_full + st->queue_timeouts + st->all_down),
                (unsigned long long)st->queue_full, (unsigned long long)st->queue_timeouts,
                (unsigned long long)st->all_down, (unsigned long long)st->body_too_large);
    proto_queue_t *n;
    while ((n = proto_queue_first(&p->all)) != NULL) {
        gw_upconn_t *u = proto_container_of(n, gw_upconn_t, all_node);
        if (u->x != NULL)
            gw_exchange_fail(u->x, 503, "gateway shutting down", 0);
        else
            gw_upconn_close(u);
    }
    proto_sched_entry_t *e;
    while ((e = proto_sched_dequeue(&p->sched, now_ms(p), PROTO_SCHED_LEVELS - 1)) != NULL)
        gw_exchange_fail(proto_container_of(e, gw_exchange_t, sched), 503, "gateway shutting down", 0);
    proto_sched_free(&p->sched);
    for (size_t i = 0; i < p->nservers; i++) {
        gw_health_check_stop(p->servers[i].hc);
        p->servers[i].hc = NULL;
        if (p->servers[i].is_resolving)
            uv_cancel((uv_req_t *)&p->servers[i].resolve_req);
    }
    if (!uv_is_closing((uv_handle_t *)&p->queue_timer)) {
        uv_close((uv_handle_t *)&p->queue_timer, NULL);
        uv_close((uv_handle_t *)&p->resolve_timer, NULL);
    }
}

void gw_pool_free(gw_pool_t *p)
{
    gw_tls_ctx_unref(p->tls);
    p->tls = NULL;
    free(p->servers);
    p->servers = NULL;
    p->nservers = 0;
}

/* ---- health ---- */

int gw_server_is_up(const gw_server_t *s, uint64_t now)
{
    return s->has_addr && !s->is_check_down && now >= s->ejected_until_ms;
}

void gw_server_report(gw_server_t *s, int is_ok, const char *why)
{
    const cfg_backend_t *b = s->pool->bcfg;
    if (is_ok) {
        s->nfails = 0;
        if (s->ejected_until_ms == 0 || now_ms(s->pool) >= s->ejected_until_ms)
            s->nejections = 0;
        return;
    }
    s->nfails++;
    if (b->max_fails == 0 || s->nfails < b->max_fails)
        return;
    uint64_t backoff = b->eject_time_ms;
    for (uint32_t i = 0; i < s->nejections && backoff < b->eject_time_max_ms; i++)
        backoff *= 2;
    if (backoff > b->eject_time_max_ms)
        backoff = b->eject_time_max_ms;
    s->nejections++;
    s->nfails = 0;
    s->ejected_until_ms = now_ms(s->pool) + backoff;
    GW_LOG_WARN("backend %s server %s: %u failures in a row (last: %s): ejected for %llu ms",
                s->pool->name, s->name, b->max_fails, why, (unsigned long long)backoff);
}

void gw_server_set_check_down(gw_server_t *s, int is_down)
{
    s->is_check_down = is_down;
    if (!is_down)
        gw_pool_dispatch(s->pool);
}

/* 1 when a server is up, or may be soon: one whose name is being resolved
 * for the first time is worth waiting for (just after start). */
static int any_server_up(const gw_pool_t *p, uint64_t now)
{
    for (size_t i = 0; i < p->nservers; i++) {
        if (gw_server_is_up(&p->servers[i], now) || p->servers[i].is_awaiting_first_address)
            return 1;
    }
    return 0;
}

uint32_t gw_pool_retry_after(const gw_pool_t *p)
{
    uint64_t now = now_ms(p), soonest = UINT64_MAX;
    for (size_t i = 0; i < p->nservers; i++) {
        const gw_server_t *s = &p->servers[i];
        uint64_t at = s->ejected_until_ms > now ? s->ejected_until_ms
                      : s->is_check_down        ? now + p->bcfg->health_check_interval_ms
                                                : now + 1000;
        if (at < soonest)
            soonest = at;
    }
    uint64_t secs = soonest == UINT64_MAX ? 1 : (soonest - now + 999) / 1000;
    return secs < 1 ? 1 : (uint32_t)secs;
}

/* ---- load balancing and dispatch ---- */

static int has_capacity(const gw_server_t *s)
{
    return s->nidle > 0 || s->nconns < s->pool->bcfg->max_connections;
}

/* The server the next exchange goes to, among those up with capacity
 * (avoid: a server to skip when another is possible). */
static gw_server_t *pick_server(gw_pool_t *p, const gw_server_t *avoid)
{
    uint64_t now = now_ms(p);
    gw_server_t *best = NULL;
    if (p->bcfg->lb == CFG_LB_ROUND_ROBIN) {
        /* Smooth weighted round robin: every candidate gains its weight,
         * the richest is picked and pays the total. */
        int64_t total = 0;
        for (size_t i = 0; i < p->nservers; i++) {
            gw_server_t *s = &p->servers[i];
            if (s == avoid || !gw_server_is_up(s, now) || !has_capacity(s))
                continue;
            s->rr_current += s->cfg->weight;
            total += s->cfg->weight;
            if (best == NULL || s->rr_current > best->rr_current)
                best = s;
        }
        if (best != NULL)
            best->rr_current -= total;
    } else {
        /* Least outstanding requests per unit of weight; ties rotate. */
        size_t n = p->nservers;
        for (size_t k = 0; k < n; k++) {
            gw_server_t *s = &p->servers[(p->rr_next + k) % n];
            if (s == avoid || !gw_server_is_up(s, now) || !has_capacity(s))
                continue;
            if (best == NULL || (uint64_t)(s->nbusy + 1) * best->cfg->weight <
                                    (uint64_t)(best->nbusy + 1) * s->cfg->weight)
                best = s;
        }
        p->rr_next++;
    }
    if (best == NULL && avoid != NULL && gw_server_is_up(avoid, now) && has_capacity(avoid))
        return (gw_server_t *)avoid;
    return best;
}

/* The most urgent waiting exchange that server s may take: once only its
 * reserved connections are left, only urgency 0..2 may. */
static gw_exchange_t *next_for(gw_pool_t *p, gw_server_t *s)
{
    uint32_t reserved = p->bcfg->priority_reserved_connections;
    uint32_t max = p->bcfg->max_connections;
    int max_urgency = reserved > 0 && s->nbusy + reserved >= max ? URGENT_MAX : PROTO_SCHED_LEVELS - 1;
    proto_sched_entry_t *e = proto_sched_dequeue(&p->sched, now_ms(p), max_urgency);
    return e != NULL ? proto_container_of(e, gw_exchange_t, sched) : NULL;
}

/* Sends x on s: an idle connection, or a new one. */
static void send_on(gw_server_t *s, gw_exchange_t *x)
{
    proto_queue_t *idle = proto_queue_first(&s->idle);
    if (idle != NULL) {
        gw_upconn_t *u = proto_container_of(idle, gw_upconn_t, idle_node);
        proto_queue_remove(idle);
        s->nidle--;
        gw_upconn_assign(u, x);
    } else {
        gw_upconn_open(s, x);
    }
}

static void arm_queue_timer(gw_pool_t *p);

/* 1 when some server could take an exchange right now. */
static int has_free_slot(gw_pool_t *p)
{
    uint64_t now = now_ms(p);
    for (size_t i = 0; i < p->nservers; i++) {
        if (gw_server_is_up(&p->servers[i], now) && has_capacity(&p->servers[i]))
            return 1;
    }
    return 0;
}

void gw_pool_dispatch(gw_pool_t *p)
{
    /* A synchronous failure inside the loop closes a connection, which
     * dispatches again; the outer loop goes on instead of recursing. */
    if (p->is_dispatching)
        return;
    p->is_dispatching = 1;
    while (proto_sched_len(&p->sched) > 0) {
        gw_server_t *s = pick_server(p, NULL);
        if (s == NULL)
            break;
        gw_exchange_t *x = next_for(p, s);
        if (x == NULL)
            break;
        send_on(s, x);
    }
    p->is_dispatching = 0;
    if (proto_sched_len(&p->sched) > 0 && !any_server_up(p, now_ms(p))) {
        /* Everything went down under the queue: waiting is pointless. */
        proto_sched_entry_t *e;
        while ((e = proto_sched_dequeue(&p->sched, now_ms(p), PROTO_SCHED_LEVELS - 1)) != NULL) {
            gw_exchange_t *x = proto_container_of(e, gw_exchange_t, sched);
            x->retry_after_s = gw_pool_retry_after(p);
            p->stats.all_down++;
            gw_exchange_fail(x, 503, "every server of the backend is down", 0);
        }
    }
    arm_queue_timer(p);
}

void gw_pool_submit(gw_pool_t *p, gw_exchange_t *x)
{
    p->stats.requests++;
    if (!any_server_up(p, now_ms(p))) {
        x->retry_after_s = gw_pool_retry_after(p);
        p->stats.all_down++;
        gw_exchange_fail(x, 503, "every server of the backend is down", 0);
        return;
    }
    if (proto_sched_len(&p->sched) >= p->bcfg->queue_length && !has_free_slot(p)) {
        x->retry_after_s = 1;
        p->stats.queue_full++;
        gw_exchange_fail(x, 503, "backend queue is full", 0);
        return;
    }
    if (proto_sched_enqueue(&p->sched, &x->sched, now_ms(p)) != 0) {
        gw_exchange_fail(x, 503, "out of memory queueing the request", 0);
        return;
    }
    gw_pool_dispatch(p);
}

void gw_pool_retry(gw_pool_t *p, gw_upconn_t *u, gw_exchange_t *x, int is_stale)
{
    p->stats.retries++;
    if (is_stale && u != NULL) {
        /* The backend closed a kept-alive connection as we reused it: the
         * server is fine; a fresh connection takes the old one's slot. */
        gw_server_t *s = u->server;
        gw_upconn_close_keep_slot(u);
        gw_upconn_open(s, x);
        return;
    }
    const gw_server_t *failed = u != NULL ? u->server : NULL;
    if (u != NULL)
        gw_upconn_close(u);
    gw_server_t *s = pick_server(p, failed);
    if (s == NULL) {
        /* Every server is busy: wait like a new request, keeping its age. */
        if (proto_sched_enqueue(&p->sched, &x->sched, now_ms(p)) != 0)
            gw_exchange_fail(x, 503, "out of memory queueing the request", 0);
        else
            gw_pool_dispatch(p);
        return;
    }
    send_on(s, x);
}

void gw_pool_reprioritize(gw_pool_t *p, gw_exchange_t *x, int urgency, int weight)
{
    proto_sched_update(&p->sched, &x->sched, urgency, weight);
}

void gw_pool_cancel(gw_pool_t *p, gw_exchange_t *x)
{
    proto_sched_remove(&p->sched, &x->sched);
}

/* ---- queue timeout ---- */

static void arm_queue_timer(gw_pool_t *p)
{
    if (uv_is_closing((uv_handle_t *)&p->queue_timer))
        return;
    proto_sched_entry_t *oldest = proto_sched_oldest(&p->sched);
    if (oldest == NULL) {
        uv_timer_stop(&p->queue_timer);
        return;
    }
    uint64_t deadline = oldest->enqueued_ms + p->bcfg->queue_timeout_ms, now = now_ms(p);
    uv_timer_start(&p->queue_timer, on_queue_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_queue_timer(uv_timer_t *timer)
{
    gw_pool_t *p = timer->data;
    uint64_t now = now_ms(p);
    proto_sched_entry_t *e;
    while ((e = proto_sched_oldest(&p->sched)) != NULL &&
           now - e->enqueued_ms >= p->bcfg->queue_timeout_ms) {
        proto_sched_remove(&p->sched, e);
        gw_exchange_t *x = proto_container_of(e, gw_exchange_t, sched);
        x->retry_after_s = 1;
        p->stats.queue_timeouts++;
        gw_exchange_fail(x, 503, "waited too long for a backend connection", 0);
    }
    arm_queue_timer(p);
}
