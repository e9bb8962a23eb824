#include "gateway/backend/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "gateway/tls/tls.h"
#include "gateway/worker.h"
#include "proto/h1_response.h"

/* Soon enough to catch a dead server before much traffic goes to it, late
 * enough for a numeric address to be set and a name likely resolved. */
#define FIRST_CHECK_DELAY_MS 100

/* Only the status line matters; a larger head simply arrives in pieces. */
#define HC_READ_BUF_SIZE 4096

enum hc_state {
    HC_IDLE,       /* between checks: the timer starts the next round */
    HC_CONNECTING, /* the timer is the check's deadline from here on */
    HC_WAITING,    /* connected, request written or being written, reading the head */
};

struct gw_health_check {
    gw_server_t *s; /* NULL once stopped: never touched after */
    struct gw_worker *w;
    const cfg_backend_t *bcfg;
    uv_timer_t timer; /* next round while idle, the deadline while a check runs */
    uv_tcp_t tcp;     /* one connection per check, closed at its end */
    uv_connect_t connect_req;
    uv_write_t write_req;
    proto_h1_response_t resp;
    char *req; /* the request, built once; outlives every write */
    size_t req_len;
    uint64_t timeout_ms;
    uint64_t round_started_ms;
    uint32_t npassed, nfailed; /* consecutive */
    int status;                /* of the check in flight; 0 until its head is parsed */
    int state;                 /* enum hc_state */
    int nhandles_open;         /* timer, and tcp from its init to its close callback */
    unsigned is_tcp_open : 1;  /* initialized and not yet closing */
    unsigned is_tls : 1;       /* the check in flight speaks TLS (tls = on) */
    gw_tls_ctx_t *tls_ctx;     /* the backend's client context, or NULL */
    gw_tls_conn_t tls;
    unsigned is_stopped : 1;
    char rbuf[HC_READ_BUF_SIZE];
};

static void on_timer(uv_timer_t *timer);
static void on_connect(uv_connect_t *req, int status);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_tcp_close(uv_handle_t *handle);
static void on_timer_close(uv_handle_t *handle);

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n);

/* Only the status matters: the parser skips the callbacks left NULL, so the
 * body (if any arrives before the connection closes) is discarded. */
static const proto_h1_response_cbs_t resp_cbs = {
    .on_head = resp_on_head,
};

/* Config validation keeps the interval at 1 ms or more; 0 would spin. */
static uint64_t interval_ms(const cfg_backend_t *bcfg)
{
    return bcfg->health_check_interval_ms > 0 ? bcfg->health_check_interval_ms : 1;
}

static char *build_request(const char *path, const char *host, unsigned port, size_t *len)
{
    /* cfg_addr_t keeps IPv6 literals without brackets; Host needs them, and
     * the port unless it is HTTP's default (RFC 9110 §7.2). */
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

gw_health_check_t *gw_health_check_start(gw_server_t *s)
{
    const cfg_backend_t *bcfg = s->pool->bcfg;
    gw_health_check_t *hc = calloc(1, sizeof(*hc));
    if (hc == NULL)
        goto fail;
    hc->s = s;
    hc->w = s->pool->w;
    hc->bcfg = bcfg;
    hc->tls_ctx = s->pool->tls;
    hc->req =
        build_request(bcfg->health_check_path, s->cfg->addr.host, s->cfg->addr.port, &hc->req_len);
    if (hc->req == NULL)
        goto fail_hc;
    if (proto_h1_response_init(&hc->resp, &resp_cbs, hc, s->pool->cfg->max_header_list_size) != 0)
        goto fail_req;

    /* The deadline never runs into the next round: one check at a time. */
    uint64_t interval = interval_ms(bcfg);
    uint64_t timeout = bcfg->connect_timeout_ms + bcfg->response_timeout_ms;
    hc->timeout_ms = timeout > 0 && timeout < interval ? timeout : interval;

    if (uv_timer_init(&hc->w->loop, &hc->timer) != 0)
        goto fail_resp;
    hc->timer.data = hc;
    hc->nhandles_open = 1;
    hc->state = HC_IDLE;
    uv_timer_start(&hc->timer, on_timer, FIRST_CHECK_DELAY_MS, 0);
    return hc;

fail_resp:
    proto_h1_response_free(&hc->resp);
fail_req:
    free(hc->req);
fail_hc:
    free(hc);
fail:
    GW_LOG_ERROR("backend %s server %s: cannot start health checks (out of memory)", s->pool->name,
                 s->name);
    return NULL;
}

static void hc_release(gw_health_check_t *hc)
{
    if (--hc->nhandles_open > 0)
        return;
    proto_h1_response_free(&hc->resp);
    free(hc->req);
    free(hc);
}

void gw_health_check_stop(gw_health_check_t *hc)
{
    if (hc == NULL || hc->is_stopped)
        return;
    hc->is_stopped = 1;
    hc->s = NULL;
    hc->state = HC_IDLE;
    /* A pending connect or write is cancelled by the tcp close and its
     * callback runs before the close callback, so neither outlives hc. */
    if (hc->is_tcp_open) {
        hc->is_tcp_open = 0;
        uv_close((uv_handle_t *)&hc->tcp, on_tcp_close);
    }
    uv_close((uv_handle_t *)&hc->timer, on_timer_close);
}

/* Arms the timer for the round after the current one: one interval after
 * the current round started, or at once if that time has passed. */
static void schedule_next(gw_health_check_t *hc)
{
    uint64_t due = hc->round_started_ms + interval_ms(hc->bcfg);
    uint64_t now = gw_worker_now_ms(hc->w);
    uv_timer_start(&hc->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Counts one result and hands a threshold crossing to the backend. Called
 * last by every path that ends a check: the backend may stop hc. */
static void record(gw_health_check_t *hc, int is_pass, const char *why)
{
    gw_server_t *s = hc->s;
    if (is_pass) {
        hc->nfailed = 0;
        if (hc->npassed < UINT32_MAX)
            hc->npassed++;
        uint32_t threshold = hc->bcfg->healthy_threshold > 0 ? hc->bcfg->healthy_threshold : 1;
        if (s->is_check_down && hc->npassed >= threshold) {
            GW_LOG_WARN("backend %s server %s: health check passed %u times: marked up",
                        s->pool->name, s->name, hc->npassed);
            gw_server_set_check_down(s, 0);
        }
        return;
    }
    hc->npassed = 0;
    if (hc->nfailed < UINT32_MAX)
        hc->nfailed++;
    uint32_t threshold = hc->bcfg->unhealthy_threshold > 0 ? hc->bcfg->unhealthy_threshold : 1;
    if (!s->is_check_down && hc->nfailed >= threshold) {
        GW_LOG_WARN("backend %s server %s: health check failed %u times (%s): marked down",
                    s->pool->name, s->name, hc->nfailed, why);
        gw_server_set_check_down(s, 1);
        return;
    }
    GW_LOG_DEBUG("backend %s server %s: health check failed (%s)", s->pool->name, s->name, why);
}

/* Ends the check in flight. The connection closes now; the next round is
 * armed once it has closed, so a new check never reuses a closing handle. */
static void check_end(gw_health_check_t *hc, int is_pass, const char *why)
{
    hc->state = HC_IDLE;
    uv_timer_stop(&hc->timer);
    if (hc->is_tcp_open) {
        hc->is_tcp_open = 0;
        uv_close((uv_handle_t *)&hc->tcp, on_tcp_close);
    } else {
        schedule_next(hc);
    }
    record(hc, is_pass, why);
}

static void check_fail_uv(gw_health_check_t *hc, const char *what, int err)
{
    char why[128];
    snprintf(why, sizeof(why), "%s: %s", what, uv_strerror(err));
    check_end(hc, 0, why);
}

static void check_judge_status(gw_health_check_t *hc)
{
    char why[64];
    int is_pass = hc->status >= (int)hc->bcfg->health_check_status_min &&
                  hc->status <= (int)hc->bcfg->health_check_status_max;
    snprintf(why, sizeof(why), "status %d", hc->status);
    check_end(hc, is_pass, why);
}

static void round_start(gw_health_check_t *hc)
{
    gw_server_t *s = hc->s;
    hc->round_started_ms = gw_worker_now_ms(hc->w);
    if (!s->has_addr) {
        /* Not resolved yet: no verdict either way; the resolver reports. */
        schedule_next(hc);
        return;
    }
    int rv = uv_tcp_init(&hc->w->loop, &hc->tcp);
    if (rv != 0) {
        check_fail_uv(hc, "cannot open a socket", rv);
        return;
    }
    hc->tcp.data = hc;
    hc->connect_req.data = hc;
    hc->write_req.data = hc;
    hc->nhandles_open++;
    hc->is_tcp_open = 1;
    hc->status = 0;
    proto_h1_response_reset(&hc->resp, 0);
    hc->state = HC_CONNECTING;
    uv_timer_start(&hc->timer, on_timer, hc->timeout_ms, 0);
    rv = uv_tcp_connect(&hc->connect_req, &hc->tcp, (const struct sockaddr *)&s->addr, on_connect);
    if (rv != 0)
        check_fail_uv(hc, "connect failed", rv);
}

static void on_timer(uv_timer_t *timer)
{
    gw_health_check_t *hc = timer->data;
    char why[64];
    switch (hc->state) {
    case HC_IDLE:
        round_start(hc);
        break;
    case HC_CONNECTING:
        snprintf(why, sizeof(why), "connect timed out after %llu ms",
                 (unsigned long long)hc->timeout_ms);
        check_end(hc, 0, why);
        break;
    default:
        snprintf(why, sizeof(why), "no response within %llu ms",
                 (unsigned long long)hc->timeout_ms);
        check_end(hc, 0, why);
        break;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_health_check_t *hc = req->data;
    /* Covers UV_ECANCELED: a check that ended or was stopped is idle. */
    if (hc->state != HC_CONNECTING)
        return;
    if (status != 0) {
        check_fail_uv(hc, "connect failed", status);
        return;
    }
    hc->state = HC_WAITING;
    int rv = uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
    if (rv != 0) {
        check_fail_uv(hc, "read failed", rv);
        return;
    }
    if (hc->tls_ctx != NULL) {
        /* HTTPS backends are checked over TLS, like the requests they get;
         * the request goes out once the handshake is done (on_read). */
        const char *name = hc->bcfg->tls_sni != NULL ? hc->bcfg->tls_sni : hc->s->cfg->addr.host;
        if (gw_tls_conn_init_client(&hc->tls, hc->tls_ctx, name,
                                    hc->bcfg->tls_verify ? name : NULL) != 0) {
            check_end(hc, 0, "cannot start TLS");
            return;
        }
        hc->is_tls = 1;
        const char *why = NULL;
        if (gw_tls_conn_handshake(&hc->tls, &why) < 0) {
            check_end(hc, 0, why);
            return;
        }
        gw_tls_conn_send_pending(&hc->tls, (uv_stream_t *)&hc->tcp);
        return;
    }
    uv_buf_t buf = uv_buf_init(hc->req, (unsigned)hc->req_len);

    rv = uv_write(&hc->write_req, (uv_stream_t *)&hc->tcp, &buf, 1, on_write);
    if (rv != 0)
        check_fail_uv(hc, "write failed", rv);
}

static void on_write(uv_write_t *req, int status)
{
    gw_health_check_t *hc = req->data;
    if (hc->state != HC_WAITING || status == 0)
        return;
    check_fail_uv(hc, "write failed", status);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gw_health_check_t *hc = handle->data;
    *buf = uv_buf_init(hc->rbuf, sizeof(hc->rbuf));
}

/* Response bytes (decrypted for TLS backends). */
static void on_plaintext(gw_health_check_t *hc, const uint8_t *data, size_t len)
{
    /* The body is not needed: the verdict is in as soon as the head is,
     * even when bytes after it do not parse. */
    ssize_t rv = proto_h1_response_feed(&hc->resp, data, len);
    if (hc->status != 0) {
        check_judge_status(hc);
        return;
    }
    if (rv < 0) {
        char why[128];
        snprintf(why, sizeof(why), "invalid response: %s",
                 hc->resp.why != NULL ? hc->resp.why : proto_strerror((int)rv));
        check_end(hc, 0, why);
    }
}

static void on_tls_bytes(gw_health_check_t *hc, const uint8_t *data, size_t len)
{
    uv_stream_t *stream = (uv_stream_t *)&hc->tcp;
    if (gw_tls_conn_put_cipher(&hc->tls, data, len) != 0) {
        check_end(hc, 0, "out of memory");
        return;
    }
    if (!hc->tls.is_handshake_done) {
        const char *why = NULL;
        int rv = gw_tls_conn_handshake(&hc->tls, &why);
        gw_tls_conn_send_pending(&hc->tls, stream);
        if (rv < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "TLS handshake failed: %s", why);
            check_end(hc, 0, msg);
            return;
        }
        if (rv == 0)
            return;
        if (gw_tls_conn_write(&hc->tls, (const uint8_t *)hc->req, hc->req_len) != 0) {
            check_end(hc, 0, "TLS write failed");
            return;
        }
        gw_tls_conn_send_pending(&hc->tls, stream);
    }
    uint8_t plain[HC_READ_BUF_SIZE];
    for (;;) {
        int n = gw_tls_conn_read(&hc->tls, plain, sizeof(plain));
        if (n < 0) {
            check_end(hc, 0, "TLS connection closed before a response");
            return;
        }
        if (n == 0)
            return;
        on_plaintext(hc, plain, (size_t)n);
        if (hc->state != HC_WAITING)
            return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_health_check_t *hc = stream->data;
    if (nread == 0 || hc->state != HC_WAITING)
        return;
    if (nread == UV_EOF) {
        check_end(hc, 0,
                  hc->resp.is_started ? "connection closed mid-head"
                                      : "connection closed before a response");
        return;
    }
    if (nread < 0) {
        check_fail_uv(hc, "read failed", (int)nread);
        return;
    }
    if (hc->is_tls)
        on_tls_bytes(hc, (const uint8_t *)buf->base, (size_t)nread);
    else
        on_plaintext(hc, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_tcp_close(uv_handle_t *handle)
{
    gw_health_check_t *hc = handle->data;
    if (hc->is_tls) {
        gw_tls_conn_free(&hc->tls);
        hc->is_tls = 0;
    }
    if (!hc->is_stopped)
        schedule_next(hc);
    hc_release(hc);
}

static void on_timer_close(uv_handle_t *handle)
{
    hc_release(handle->data);
}

static int resp_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    (void)f;
    (void)n;
    gw_health_check_t *hc = ud;
    hc->status = status;
    return 0;
}
