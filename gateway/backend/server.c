/*
 * The servers of a backend: their addresses (numeric, or resolved through
 * uv_getaddrinfo and again every resolve_interval), their health (passive:
 * outlier ejection; active: verdicts from health.c), and which one the next
 * request goes to. The connection counters it reads are pool.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/backend/pool.h"
#include "gateway/core/log.h"

static uint64_t now_ms(const gw_pool_t *p)
{
    return gw_ctx_now_ms(p->w);
}

/* ---- addresses ---- */

static int numeric_addr(const cfg_addr_t *a, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)ss);
}

static void kick(gw_pool_t *p)
{
    gw_ctx_defer(p->w, &p->dispatch_task);
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
            kick(s->pool);
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
    kick(s->pool);
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

void gw_server_init(gw_server_t *s, gw_pool_t *p, const cfg_server_t *cfg)
{
    s->pool = p;
    s->cfg = cfg;
    snprintf(s->name, sizeof(s->name), "%s:%u", cfg->addr.host, cfg->addr.port);
    proto_queue_init(&s->idle);
    if (numeric_addr(&cfg->addr, &s->addr) == 0) {
        s->has_addr = 1;
    } else {
        s->is_awaiting_first_address = 1;
        resolve(s);
    }
}

void gw_server_resolve_all(gw_pool_t *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        struct sockaddr_storage ss;
        if (numeric_addr(&p->servers[i].cfg->addr, &ss) != 0)
            resolve(&p->servers[i]);
    }
}

/* ---- health ---- */

int gw_server_is_up(const gw_server_t *s, uint64_t now)
{
    return s->has_addr && !s->is_check_down && now >= s->ejected_until_ms;
}

void gw_server_set_check_down(gw_server_t *s, int is_down)
{
    s->is_check_down = is_down;
    if (!is_down) {
        /* The check is the half-open probe: a pass readmits at once. */
        s->ejected_until_ms = 0;
        s->is_ejected = 0;
        s->nejections = 0;
        s->nfails = 0;
        s->admitted_ms = now_ms(s->pool);
        kick(s->pool);
    }
}

/*
 * Ejecting s must leave the backend something to send to: never its last
 * usable server, and never more than max_ejection_percent of them (nginx
 * keeps a sole server "never unavailable"; Envoy settled its "last host
 * ejected" outages with max_ejection_percent).
 */
static int may_eject(const gw_pool_t *p, const gw_server_t *s, uint64_t now)
{
    size_t nusable = 0, nejected = 0;
    for (size_t i = 0; i < p->nservers; i++) {
        const gw_server_t *o = &p->servers[i];
        if (o->is_ejected && now < o->ejected_until_ms)
            nejected++;
        else if (o != s && gw_server_is_up(o, now))
            nusable++;
    }
    if (nusable == 0)
        return 0;
    return (uint64_t)(nejected + 1) * 100 <= (uint64_t)p->bcfg->max_ejection_percent * p->nservers;
}

static void eject(gw_pool_t *p, gw_server_t *s, uint64_t now, const char *why)
{
    const cfg_backend_t *b = p->bcfg;
    uint64_t backoff = b->eject_time_ms;
    for (uint32_t i = 0; i < s->nejections && backoff < b->eject_time_max_ms; i++)
        backoff *= 2;
    if (backoff > b->eject_time_max_ms)
        backoff = b->eject_time_max_ms;
    s->nejections++;
    s->nfails = 0;
    s->is_ejected = 1;
    s->ejected_until_ms = now + backoff;
    /* Attempts already under way when it comes back say nothing about it. */
    s->admitted_ms = s->ejected_until_ms;
    p->stats.ejections++;
    gw_metrics_inc(&p->metrics->ejections);
    GW_LOG_WARN("backend %s server %s: %u failures in a row (last: %s): ejected for %llu ms",
                p->name, s->name, s->nejections > 1 ? 1 : b->max_fails, why,
                (unsigned long long)backoff);
}

void gw_pool_report(gw_pool_t *p, gw_server_t *s, int is_ok, const char *why, uint64_t started_ms)
{
    uint64_t now = now_ms(p);
    if (started_ms < s->admitted_ms)
        return; /* started before the server was last admitted */
    if (is_ok) {
        s->nfails = 0;
        s->nejections = 0;
        if (s->is_ejected) {
            s->is_ejected = 0;
            GW_LOG_WARN("backend %s server %s: answered again: readmitted", p->name, s->name);
        }
        return;
    }
    if (s->is_ejected) {
        /* Half-open: the first result after the ejection decides, and a
         * failure ejects it again for twice as long. */
        if (now >= s->ejected_until_ms)
            eject(p, s, now, why);
        return;
    }
    if (p->bcfg->max_fails == 0 || ++s->nfails < p->bcfg->max_fails)
        return;
    if (!may_eject(p, s, now)) {
        /* nginx resets the counters of a backend with nothing else to use,
         * "for quick recovery": the server keeps being tried. */
        s->nfails = 0;
        return;
    }
    eject(p, s, now, why);
}

/* ---- picking ---- */

int gw_server_has_capacity(const gw_server_t *s)
{
    return s->nidle > 0 || s->nconns < s->pool->bcfg->max_connections;
}

static gw_server_t *pick_among(gw_pool_t *p, const gw_server_t *avoid)
{
    uint64_t now = now_ms(p);
    gw_server_t *best = NULL;
    if (p->bcfg->lb == CFG_LB_ROUND_ROBIN) {
        /* Smooth weighted round robin: every candidate gains its weight,
         * the richest is picked and pays the total. */
        int64_t total = 0;
        for (size_t i = 0; i < p->nservers; i++) {
            gw_server_t *s = &p->servers[i];
            if (s == avoid || !gw_server_is_up(s, now) || !gw_server_has_capacity(s))
                continue;
            s->rr_current += s->cfg->weight;
            total += s->cfg->weight;
            if (best == NULL || s->rr_current > best->rr_current)
                best = s;
        }
        if (best != NULL)
            best->rr_current -= total;
        return best;
    }
    /* Least outstanding requests per unit of weight; ties rotate. */
    size_t n = p->nservers;
    for (size_t k = 0; k < n; k++) {
        gw_server_t *s = &p->servers[(p->rr_next + k) % n];
        if (s == avoid || !gw_server_is_up(s, now) || !gw_server_has_capacity(s))
            continue;
        /* Connections being opened carry a request too. */
        uint64_t load = s->nbusy + s->nconnecting + 1;
        if (best == NULL || load * best->cfg->weight <
                                (uint64_t)(best->nbusy + best->nconnecting + 1) * s->cfg->weight)
            best = s;
    }
    p->rr_next++;
    return best;
}

gw_server_t *gw_server_pick(gw_pool_t *p, const gw_server_t *avoid)
{
    gw_server_t *s = pick_among(p, avoid);
    if (s == NULL && avoid != NULL)
        s = pick_among(p, NULL);
    return s;
}
