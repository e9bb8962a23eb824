#include "gateway/backend/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/backend/health.h"

/* Reserved connections (priority_reserved_connections) serve urgency 0..2:
 * what a browser marks as render-blocking (HTML, CSS, fonts). */
#define URGENT_MAX 2
/* Longest run of dispatches one client connection gets in a row (see
 * gw_pool_init): 8 already puts the client-side reads and writes of F in
 * make bench at about one per eight requests; 16 measured no better. */
#define SCHED_RUN_MAX 8

_Static_assert(CFG_NAME_MAX <= GW_M_NAME_MAX, "a backend name fits its metrics' name");

/* Where a connection is, in owner_state. */
enum { CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

static void on_queue_timer(uv_timer_t *timer);
static void on_resolve_timer(uv_timer_t *timer);
static void on_dispatch_task(gw_task_t *t);
static void on_connected(gw_h1conn_t *c, gw_err_t err, const char *why);
static void on_idle_end(gw_h1conn_t *c, const char *why);

static const gw_h1conn_owner_ops_t conn_owner_ops = {
    .on_connected = on_connected,
    .on_idle_end = on_idle_end,
};

static uint64_t now_ms(const gw_pool_t *p)
{
    return gw_ctx_now_ms(p->w);
}

static void kick(gw_pool_t *p)
{
    if (!p->is_closing)
        gw_ctx_defer(p->w, &p->dispatch_task);
}

static gw_pool_waiter_t *waiter_of(proto_sched_entry_t *e)
{
    return proto_container_of(e, gw_pool_waiter_t, sched);
}

/* The scheduler's view of the RFC 7540 tree: a waiting parent goes first. */
static proto_sched_entry_t *sched_parent_of(proto_sched_entry_t *e)
{
    gw_pool_waiter_t *wt = waiter_of(e);
    gw_pool_waiter_t *parent = wt->ops->parent_of != NULL ? wt->ops->parent_of(wt) : NULL;
    return parent != NULL && parent->pool == wt->pool ? &parent->sched : NULL;
}

void gw_pool_waiter_init(gw_pool_waiter_t *wt, const gw_pool_waiter_ops_t *ops, void *owner)
{
    memset(wt, 0, sizeof(*wt));
    proto_sched_entry_init(&wt->sched);
    wt->sched.owner = owner;
    wt->sched.urgency = 3;
    wt->sched.weight = 16;
    wt->ops = ops;
}

/* ---- setup and teardown ---- */

static void on_check_verdict(void *arg, int is_down)
{
    gw_server_set_check_down(arg, is_down);
}

int gw_pool_init(gw_pool_t *p, gw_ctx_t *w, const cfg_backend_t *bcfg)
{
    memset(p, 0, sizeof(*p));
    p->w = w;
    p->cfg = w->cfg;
    p->bcfg = bcfg;
    /* Counters by name: they go on across reloads while the name stays. */
    if ((p->metrics = gw_metrics_backend(&w->metrics, bcfg->name)) == NULL)
        return UV_ENOMEM;
    snprintf(p->name, sizeof(p->name), "%s", bcfg->name);
    proto_queue_init(&p->all);
    gw_task_init(&p->dispatch_task, on_dispatch_task);
    if (proto_sched_init(
            &p->sched, bcfg->scheduling == CFG_SCHED_FIFO ? PROTO_SCHED_FIFO : PROTO_SCHED_PRIORITY,
            bcfg->priority_max_wait_ms, sched_parent_of) != 0)
        return UV_ENOMEM;
    /* A connection's waiting requests go out in runs, so that their
     * responses come back together and leave in one write to the client
     * (and its next requests arrive in one read): one request from each of
     * 64 connections per turn cost a write and a read per request, 30 %
     * more CPU per request through a pool of 16. A run fills at most one
     * round of a server's connections, so a newcomer still waits about one
     * round per connection ahead of it, as with a pool of one. */
    proto_sched_set_quantum(&p->sched, bcfg->max_connections < SCHED_RUN_MAX ? bcfg->max_connections
                                                                             : SCHED_RUN_MAX);
    uv_timer_init(&w->loop, &p->queue_timer);
    uv_timer_init(&w->loop, &p->resolve_timer);
    p->queue_timer.data = p->resolve_timer.data = p;

    gw_h1conn_cfg_t *cc = &p->conn_cfg;
    cc->connect_timeout_ms = bcfg->connect_timeout_ms;
    cc->response_timeout_ms = bcfg->response_timeout_ms;
    cc->io_timeout_ms = bcfg->io_timeout_ms;
    cc->read_stall_ms = w->cfg->stream_read_timeout_ms;
    cc->write_stall_ms = w->cfg->stream_write_timeout_ms;
    cc->max_head_size = w->cfg->max_header_list_size;
    cc->tls_sni = bcfg->tls_sni;
    cc->tls_verify = bcfg->tls_verify;
    if (bcfg->tls) {
        char err[512];
        if ((cc->tls = gw_tls_client_ctx_new(bcfg, err, sizeof(err))) == NULL) {
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
    int has_names = 0;
    for (size_t i = 0; i < p->nservers; i++) {
        gw_server_t *s = &p->servers[i];
        gw_server_init(s, p, &bcfg->servers[i]);
        has_names |= s->is_awaiting_first_address;
        if (bcfg->health_check_path != NULL) {
            gw_health_target_t t = {
                .backend_name = p->name,
                .server_name = s->name,
                .host = s->cfg->addr.host,
                .port = s->cfg->addr.port,
                .addr = &s->addr,
                .has_addr = &s->has_addr,
                .is_down = &s->is_check_down,
                .metrics = p->metrics,
                .on_verdict = on_check_verdict,
                .arg = s,
            };
            s->hc = gw_health_check_start(w, &t, &p->conn_cfg, bcfg);
        }
    }
    if (has_names)
        uv_timer_start(&p->resolve_timer, on_resolve_timer, bcfg->resolve_interval_ms,
                       bcfg->resolve_interval_ms);
    return 0;
}

static void on_resolve_timer(uv_timer_t *timer)
{
    gw_server_resolve_all(timer->data);
}

/* ---- connections: the only code that moves the counters ---- */

/* The backend's gauge for a connection state (the metrics mirror the
 * counters, summed over the servers). */
static gw_mgauge_t *state_gauge(gw_server_t *s, int state)
{
    gw_metrics_backend_t *m = s->pool->metrics;
    switch (state) {
    case CONN_CONNECTING:
        return &m->conns_connecting;
    case CONN_IDLE:
        return &m->conns_idle;
    case CONN_BUSY:
        return &m->conns_busy;
    default:
        return NULL;
    }
}

static void set_state(gw_server_t *s, gw_h1conn_t *c, int state)
{
    gw_mgauge_t *from = state_gauge(s, c->owner_state), *to = state_gauge(s, state);
    if (from != NULL)
        gw_metrics_gauge_add(from, -1);
    if (to != NULL)
        gw_metrics_gauge_add(to, 1);
    switch (c->owner_state) {
    case CONN_CONNECTING:
        s->nconnecting--;
        break;
    case CONN_IDLE:
        s->nidle--;
        proto_queue_remove(&c->owner_node);
        break;
    case CONN_BUSY:
        s->nbusy--;
        break;
    }
    c->owner_state = state;
    switch (state) {
    case CONN_CONNECTING:
        s->nconnecting++;
        break;
    case CONN_IDLE:
        s->nidle++;
        proto_queue_insert_head(&s->idle, &c->owner_node); /* LIFO */
        break;
    case CONN_BUSY:
        s->nbusy++;
        break;
    }
}

/* The queue-length gauge follows the scheduler after every change. */
static void note_queue(gw_pool_t *p)
{
    gw_metrics_gauge_set(&p->metrics->queue_length, (int64_t)proto_sched_len(&p->sched));
}

/* A waiter leaves the queue for a connection: how long it waited, by the
 * urgency it was dispatched at. */
static void note_dequeued(gw_pool_t *p, gw_pool_waiter_t *wt)
{
    unsigned u = wt->sched.urgency < GW_M_URGENCIES ? wt->sched.urgency : GW_M_URGENCIES - 1;
    gw_metrics_observe(&p->w->metrics.queue_wait[u], uv_hrtime() - wt->queued_ns);
}

static void conn_close(gw_h1conn_t *c)
{
    gw_server_t *s = c->owner;
    set_state(s, c, -1);
    proto_queue_remove(&c->owner_all_node);
    s->nconns--;
    gw_h1conn_close(c);
    kick(s->pool); /* a slot is free */
}

/* Hands a READY connection to wt for one request. */
static void give(gw_pool_t *p, gw_server_t *s, gw_h1conn_t *c, gw_pool_waiter_t *wt)
{
    set_state(s, c, CONN_BUSY);
    wt->pool = NULL;
    wt->conn = NULL;
    wt->attempt_started_ms = now_ms(p);
    wt->ops->on_conn(wt, c, s);
}

/* Opens a connection to s for wt. Returns 0, or an error when not even a
 * socket could be made (wt is then still the caller's). */
static gw_err_t open_for(gw_pool_t *p, gw_server_t *s, gw_pool_waiter_t *wt, char *why,
                         size_t why_len)
{
    gw_err_t err = GW_OK;
    gw_h1conn_t *c = gw_h1conn_connect(p->w, (const struct sockaddr *)&s->addr, s->cfg->addr.host,
                                       &p->conn_cfg, &conn_owner_ops, s, &err, why, why_len);
    if (c == NULL)
        return err;
    p->stats.connects++;
    gw_metrics_inc(&p->metrics->connects);
    c->owner_started_ns = uv_hrtime();
    s->nconns++;
    c->owner_state = -1;
    set_state(s, c, CONN_CONNECTING);
    proto_queue_insert_tail(&p->all, &c->owner_all_node);
    /* The waiter rides on the connection until it is up; if it leaves
     * first, the connection serves whoever waits then. */
    c->owner_arg = wt;
    wt->conn = c;
    wt->pool = p;
    wt->attempt_started_ms = now_ms(p);
    return GW_OK;
}

static void on_connected(gw_h1conn_t *c, gw_err_t err, const char *why)
{
    gw_server_t *s = c->owner;
    gw_pool_t *p = s->pool;
    gw_pool_waiter_t *wt = c->owner_arg;
    c->owner_arg = NULL;
    if (wt != NULL) {
        wt->conn = NULL;
        wt->pool = NULL;
    }
    if (err != GW_OK) {
        p->stats.connect_failures++;
        gw_metrics_inc(&p->metrics->connect_failures);
        conn_close(c);
        if (gw_err_info(err)->is_server_fault)
            gw_pool_report(p, s, 0, why, wt != NULL ? wt->attempt_started_ms : now_ms(p));
        if (wt != NULL)
            wt->ops->on_fail(wt, err, why, s);
        return;
    }
    gw_metrics_observe(&p->metrics->connect_duration, uv_hrtime() - c->owner_started_ns);
    if (wt != NULL && !p->is_closing) {
        give(p, s, c, wt);
        return;
    }
    if (p->is_closing || p->is_retired) {
        conn_close(c);
        return;
    }
    /* Its waiter left: the connection is the pool's to give. */
    set_state(s, c, CONN_IDLE);
    gw_h1conn_set_idle(c, p->bcfg->idle_timeout_ms);
    kick(p);
}

static void on_idle_end(gw_h1conn_t *c, const char *why)
{
    gw_server_t *s = c->owner;
    GW_LOG_DEBUG("backend %s server %s: idle connection ended: %s", s->pool->name, s->name, why);
    conn_close(c);
}

void gw_pool_release(gw_pool_t *p, gw_h1conn_t *c, int is_reusable)
{
    gw_server_t *s = c->owner;
    if (!is_reusable || p->is_closing || p->is_retired || p->w->is_draining) {
        conn_close(c);
        return;
    }
    set_state(s, c, CONN_IDLE);
    gw_h1conn_set_idle(c, gw_h1conn_idle_timeout(c, p->bcfg->idle_timeout_ms));
    kick(p);
}

void gw_pool_note_stale(gw_pool_t *p, gw_server_t *s)
{
    (void)p;
    proto_queue_t *n;
    while ((n = proto_queue_first(&s->idle)) != NULL)
        conn_close(proto_container_of(n, gw_h1conn_t, owner_node));
}

/* ---- waiting and dispatch ---- */

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

int gw_pool_is_usable(const gw_pool_t *p)
{
    uint64_t now = now_ms(p);
    for (size_t i = 0; i < p->nservers; i++) {
        if (gw_server_is_up(&p->servers[i], now))
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

static int has_free_slot(gw_pool_t *p)
{
    uint64_t now = now_ms(p);
    for (size_t i = 0; i < p->nservers; i++) {
        if (gw_server_is_up(&p->servers[i], now) && gw_server_has_capacity(&p->servers[i]))
            return 1;
    }
    return 0;
}

static void arm_queue_timer(gw_pool_t *p);

gw_err_t gw_pool_submit(gw_pool_t *p, gw_pool_waiter_t *wt)
{
    if (p->is_closing)
        return GW_E_SHUTDOWN;
    if (!any_server_up(p, now_ms(p))) {
        p->stats.all_down++;
        return GW_E_ALL_DOWN;
    }
    if (proto_sched_len(&p->sched) >= p->bcfg->queue_length && !has_free_slot(p)) {
        p->stats.queue_full++;
        return GW_E_QUEUE_FULL;
    }
    /* A resubmitted waiter keeps its age: it was first in line before. */
    int is_retry = wt->sched.enqueued_ms != 0;
    uint64_t enqueued = is_retry ? wt->sched.enqueued_ms : now_ms(p);
    if (is_retry) {
        p->stats.retries++;
        gw_metrics_inc(&p->metrics->retries);
    } else {
        p->stats.requests++;
    }
    if (proto_sched_enqueue(&p->sched, &wt->sched, enqueued) != 0)
        return GW_E_NOMEM;
    wt->pool = p;
    wt->queued_ns = uv_hrtime();
    note_queue(p);
    kick(p);
    arm_queue_timer(p);
    return GW_OK;
}

void gw_pool_cancel(gw_pool_waiter_t *wt)
{
    gw_pool_t *p = wt->pool;
    if (p == NULL)
        return;
    if (wt->conn != NULL) {
        wt->conn->owner_arg = NULL;
        wt->conn = NULL;
    } else {
        proto_sched_remove(&p->sched, &wt->sched);
        note_queue(p);
        arm_queue_timer(p);
    }
    wt->pool = NULL;
}

void gw_pool_reprioritize(gw_pool_waiter_t *wt, int urgency, int weight)
{
    if (wt->pool != NULL && proto_sched_is_queued(&wt->sched)) {
        proto_sched_update(&wt->pool->sched, &wt->sched, urgency, weight);
        return;
    }
    wt->sched.urgency = (uint8_t)urgency;
    wt->sched.weight = (uint16_t)weight;
}

/* The most urgent waiter that server s may take: once only its reserved
 * connections are left, only urgency 0..2 may. */
static gw_pool_waiter_t *next_for(gw_pool_t *p, const gw_server_t *s)
{
    uint32_t reserved = p->bcfg->priority_reserved_connections;
    uint32_t max = p->bcfg->max_connections;
    int max_urgency = reserved > 0 && s->nbusy + s->nconnecting + reserved >= max
                          ? URGENT_MAX
                          : PROTO_SCHED_LEVELS - 1;
    proto_sched_entry_t *e = proto_sched_dequeue(&p->sched, now_ms(p), max_urgency);
    if (e == NULL)
        return NULL;
    note_queue(p);
    note_dequeued(p, waiter_of(e));
    return waiter_of(e);
}

/* Fails every waiter with err (the waiters' callbacks may submit again:
 * they land in the queue, which is taken whole first). */
static void fail_all_waiting(gw_pool_t *p, gw_err_t err, const char *why)
{
    proto_sched_entry_t *e;
    while ((e = proto_sched_dequeue(&p->sched, now_ms(p), PROTO_SCHED_LEVELS - 1)) != NULL) {
        gw_pool_waiter_t *wt = waiter_of(e);
        wt->pool = NULL;
        note_queue(p);
        wt->ops->on_fail(wt, err, why, NULL);
    }
}

static void dispatch(gw_pool_t *p)
{
    char why[128];
    while (proto_sched_len(&p->sched) > 0) {
        gw_server_t *s = gw_server_pick(p, NULL);
        if (s == NULL)
            break;
        gw_pool_waiter_t *wt = next_for(p, s);
        if (wt == NULL)
            break;
        if (wt->avoid == s) {
            /* A retry: another server if one can take it. */
            gw_server_t *other = gw_server_pick(p, s);
            if (other != NULL)
                s = other;
        }
        proto_queue_t *idle = proto_queue_first(&s->idle);
        if (idle != NULL) {
            p->stats.reuses++;
            gw_metrics_inc(&p->metrics->reuses);
            give(p, s, proto_container_of(idle, gw_h1conn_t, owner_node), wt);
            continue;
        }
        gw_err_t err = open_for(p, s, wt, why, sizeof(why));
        if (err != GW_OK) {
            /* No socket: a local shortage (EMFILE) is not the server's
             * fault, and the waiter hears it now, outside any other's
             * stack. */
            wt->pool = NULL;
            if (gw_err_info(err)->is_server_fault)
                gw_pool_report(p, s, 0, why, now_ms(p));
            wt->ops->on_fail(wt, err, why, s);
        }
    }
    if (proto_sched_len(&p->sched) > 0 && !any_server_up(p, now_ms(p)))
        fail_all_waiting(p, GW_E_ALL_DOWN, "every server of the backend is down");
    arm_queue_timer(p);
}

static void on_dispatch_task(gw_task_t *t)
{
    dispatch(proto_container_of(t, gw_pool_t, dispatch_task));
}

/* ---- queue timeout ---- */

static void arm_queue_timer(gw_pool_t *p)
{
    if (p->is_closing)
        return;
    proto_sched_entry_t *oldest = proto_sched_oldest(&p->sched);
    if (oldest == NULL) {
        /* Left running, it fires once for nothing: cheaper than a stop and
         * a start for every request of a busy pool. */
        return;
    }
    uint64_t deadline = oldest->enqueued_ms + p->bcfg->queue_timeout_ms, now = now_ms(p);
    /* A timer due no later than this deadline finds the new oldest when it
     * fires and sets itself again: re-arming (a heap operation) only when
     * the deadline comes earlier keeps it off the per-request path. */
    if (uv_is_active((uv_handle_t *)&p->queue_timer) && p->queue_deadline_ms <= deadline)
        return;
    p->queue_deadline_ms = deadline;
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
        note_queue(p);
        gw_pool_waiter_t *wt = waiter_of(e);
        wt->pool = NULL;
        p->stats.queue_timeouts++;
        wt->ops->on_fail(wt, GW_E_QUEUE_TIMEOUT, "waited too long for a backend connection", NULL);
    }
    arm_queue_timer(p);
}

/* ---- drain and shutdown ---- */

void gw_pool_close_idle(gw_pool_t *p)
{
    for (size_t i = 0; i < p->nservers; i++)
        gw_pool_note_stale(p, &p->servers[i]);
}

void gw_pool_retire(gw_pool_t *p)
{
    p->is_retired = 1;
    for (size_t i = 0; i < p->nservers; i++) {
        gw_health_check_stop(p->servers[i].hc);
        p->servers[i].hc = NULL;
    }
    uv_timer_stop(&p->resolve_timer);
    gw_pool_close_idle(p);
}

int gw_pool_is_unused(const gw_pool_t *p)
{
    return p->nexchanges == 0 && proto_queue_empty(&p->all) && proto_sched_len(&p->sched) == 0;
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
    p->is_closing = 1;
    gw_task_cancel(&p->dispatch_task);
    fail_all_waiting(p, GW_E_SHUTDOWN, "gateway shutting down");
    proto_queue_t *n;
    while ((n = proto_queue_first(&p->all)) != NULL) {
        gw_h1conn_t *c = proto_container_of(n, gw_h1conn_t, owner_all_node);
        gw_pool_waiter_t *wt = c->owner_arg;
        if (wt != NULL) {
            c->owner_arg = NULL;
            wt->conn = NULL;
            wt->pool = NULL;
        }
        /* A request still on it hears the end and hands it back. */
        if (c->owner_state == CONN_BUSY)
            gw_h1conn_abort(c, GW_E_SHUTDOWN, "gateway shutting down");
        if (proto_queue_is_linked(&c->owner_all_node))
            conn_close(c);
    }
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
    gw_tls_ctx_unref(p->conn_cfg.tls);
    p->conn_cfg.tls = NULL;
    free(p->servers);
    p->servers = NULL;
    p->nservers = 0;
}
