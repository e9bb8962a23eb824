#include "gateway/backend/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"

/* Soon enough to catch a dead server before much traffic goes to it, late
 * enough for a numeric address to be set and a name likely resolved. */
#define FIRST_CHECK_DELAY_MS 100

struct gw_health_check {
    gw_ctx_t *w;
    gw_health_target_t t;
    const cfg_backend_t *bcfg;
    gw_h1conn_cfg_t conn_cfg; /* the backend's, with the check's own deadlines */
    uv_timer_t timer;         /* the next round; freed in its close callback */
    gw_h1conn_t *conn;        /* the check in flight, or NULL */
    char *req;                /* the request, built once */
    size_t req_len;
    uint64_t round_started_ms;
    uint32_t npassed, nfailed; /* consecutive */
};

static void on_timer(uv_timer_t *timer);
static void on_connected(gw_h1conn_t *c, gw_err_t err, const char *why);
static void on_idle_end(gw_h1conn_t *c, const char *why);
static int on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int on_body(void *ud, const uint8_t *data, size_t len);
static int on_trailers(void *ud, const proto_header_t *f, size_t n);
static void on_done(void *ud, int is_reusable);
static void on_error(void *ud, const gw_h1conn_fail_t *f);
static size_t take_body(void *ud, proto_buf_t *dst, size_t max, size_t max_segs, int *is_end);
static void on_body_written(void *ud, size_t n);

static const gw_h1conn_owner_ops_t owner_ops = {on_connected, on_idle_end};
static const gw_h1conn_req_ops_t req_ops = {
    .on_head = on_head,
    .on_body = on_body,
    .on_trailers = on_trailers,
    .on_done = on_done,
    .on_error = on_error,
    .take_body = take_body,
    .on_body_written = on_body_written,
};

/* Config validation keeps the interval at 1 ms or more; 0 would spin. */
static uint64_t interval_ms(const cfg_backend_t *bcfg)
{
    return bcfg->health_check_interval_ms > 0 ? bcfg->health_check_interval_ms : 1;
}

static char *build_request(const char *path, const char *host, unsigned port, size_t *len)
{
    /* cfg_addr_t keeps IPv6 literals without brackets; Host needs them, and
     * the port unless it is HTTP's default (RFC 9110 7.2). */
    int is_v6 = strchr(host, ':') != NULL;
    char authority[CFG_HOST_MAX + 16];
    snprintf(authority, sizeof(authority), "%s%s%s", is_v6 ? "[" : "", host, is_v6 ? "]" : "");
    if (port != 80) {
        size_t off = strlen(authority);
        snprintf(authority + off, sizeof(authority) - off, ":%u", port);
    }
    const char *fmt = "GET %s HTTP/1.1\r\nHost: %s\r\n"
                      "User-Agent: h2gw-health-check\r\nConnection: close\r\n\r\n";
    int n = snprintf(NULL, 0, fmt, path, authority);
    if (n < 0)
        return NULL;
    char *req = malloc((size_t)n + 1);
    if (req == NULL)
        return NULL;
    snprintf(req, (size_t)n + 1, fmt, path, authority);
    *len = (size_t)n;
    return req;
}

gw_health_check_t *gw_health_check_start(gw_ctx_t *w, const gw_health_target_t *t,
                                         const gw_h1conn_cfg_t *conn_cfg, const cfg_backend_t *bcfg)
{
    gw_health_check_t *hc = calloc(1, sizeof(*hc));
    if (hc == NULL || (hc->req = build_request(bcfg->health_check_path, t->host, t->port,
                                               &hc->req_len)) == NULL) {
        free(hc);
        GW_LOG_ERROR("backend %s server %s: cannot start health checks (out of memory)",
                     t->backend_name, t->server_name);
        return NULL;
    }
    hc->w = w;
    hc->t = *t;
    hc->bcfg = bcfg;
    /* The deadline never runs into the next round: one check at a time. */
    uint64_t interval = interval_ms(bcfg);
    uint64_t timeout = bcfg->connect_timeout_ms + bcfg->response_timeout_ms;
    timeout = timeout > 0 && timeout < interval ? timeout : interval;
    hc->conn_cfg = *conn_cfg;
    hc->conn_cfg.connect_timeout_ms = timeout;
    hc->conn_cfg.response_timeout_ms = timeout;
    hc->conn_cfg.io_timeout_ms = timeout;
    uv_timer_init(&w->loop, &hc->timer);
    hc->timer.data = hc;
    uv_timer_start(&hc->timer, on_timer, FIRST_CHECK_DELAY_MS, 0);
    return hc;
}

static void on_timer_close(uv_handle_t *handle)
{
    gw_health_check_t *hc = handle->data;
    free(hc->req);
    free(hc);
}

static void end_conn(gw_health_check_t *hc)
{
    gw_h1conn_close(hc->conn);
    hc->conn = NULL;
}

void gw_health_check_stop(gw_health_check_t *hc)
{
    if (hc == NULL)
        return;
    end_conn(hc);
    uv_close((uv_handle_t *)&hc->timer, on_timer_close);
}

static void schedule_next(gw_health_check_t *hc)
{
    uint64_t due = hc->round_started_ms + interval_ms(hc->bcfg);
    uint64_t now = gw_ctx_now_ms(hc->w);
    uv_timer_start(&hc->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Ends the check in flight and counts its result; a threshold crossing is
 * handed on last, since the verdict may stop the check. */
static void check_end(gw_health_check_t *hc, int is_pass, const char *why)
{
    end_conn(hc);
    schedule_next(hc);
    const gw_health_target_t *t = &hc->t;
    int is_down = *t->is_down;
    if (is_pass) {
        hc->nfailed = 0;
        if (hc->npassed < UINT32_MAX)
            hc->npassed++;
        uint32_t threshold = hc->bcfg->healthy_threshold > 0 ? hc->bcfg->healthy_threshold : 1;
        if (is_down && hc->npassed >= threshold) {
            GW_LOG_WARN("backend %s server %s: health check passed %u times: marked up",
                        t->backend_name, t->server_name, hc->npassed);
            t->on_verdict(t->arg, 0);
        }
        return;
    }
    hc->npassed = 0;
    if (hc->nfailed < UINT32_MAX)
        hc->nfailed++;
    uint32_t threshold = hc->bcfg->unhealthy_threshold > 0 ? hc->bcfg->unhealthy_threshold : 1;
    if (!is_down && hc->nfailed >= threshold) {
        GW_LOG_WARN("backend %s server %s: health check failed %u times (%s): marked down",
                    t->backend_name, t->server_name, hc->nfailed, why);
        t->on_verdict(t->arg, 1);
        return;
    }
    GW_LOG_DEBUG("backend %s server %s: health check failed (%s)", t->backend_name, t->server_name,
                 why);
}

static void on_timer(uv_timer_t *timer)
{
    gw_health_check_t *hc = timer->data;
    hc->round_started_ms = gw_ctx_now_ms(hc->w);
    if (!*hc->t.has_addr) {
        /* Not resolved yet: no verdict either way; the resolver reports. */
        schedule_next(hc);
        return;
    }
    gw_err_t err;
    char why[128];
    hc->conn = gw_h1conn_connect(hc->w, (const struct sockaddr *)hc->t.addr, hc->t.host,
                                 &hc->conn_cfg, &owner_ops, hc, &err, why, sizeof(why));
    if (hc->conn == NULL)
        check_end(hc, 0, why);
}

static void on_connected(gw_h1conn_t *c, gw_err_t err, const char *why)
{
    gw_health_check_t *hc = c->owner;
    if (err != GW_OK) {
        check_end(hc, 0, why);
        return;
    }
    gw_h1conn_request(c, &req_ops, hc, (const uint8_t *)hc->req, hc->req_len, 0, 0);
}

static void on_idle_end(gw_h1conn_t *c, const char *why)
{
    check_end(c->owner, 0, why);
}

static int on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    (void)f;
    (void)n;
    gw_health_check_t *hc = ud;
    /* The verdict is in with the status; the body is not needed. */
    char why[64];
    snprintf(why, sizeof(why), "status %d", status);
    check_end(hc,
              status >= (int)hc->bcfg->health_check_status_min &&
                  status <= (int)hc->bcfg->health_check_status_max,
              why);
    return PROTO_E_CALLBACK;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return 0;
}

static int on_trailers(void *ud, const proto_header_t *f, size_t n)
{
    (void)ud;
    (void)f;
    (void)n;
    return 0;
}

static void on_done(void *ud, int is_reusable)
{
    (void)ud;
    (void)is_reusable; /* on_head has judged and closed already */
}

static void on_error(void *ud, const gw_h1conn_fail_t *f)
{
    gw_health_check_t *hc = ud;
    if (hc->conn != NULL)
        check_end(hc, 0, f->why);
}

static size_t take_body(void *ud, proto_buf_t *dst, size_t max, size_t max_segs, int *is_end)
{
    (void)ud;
    (void)dst;
    (void)max;
    (void)max_segs;
    *is_end = 1;
    return 0;
}

static void on_body_written(void *ud, size_t n)
{
    (void)ud;
    (void)n;
}
