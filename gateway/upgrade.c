#include "gateway/upgrade.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "gateway/core/log.h"
#include "proto/headers.h"
#include "proto/upgrade.h"

static int tun_on_head(void *ud, int status, const proto_header_t *f, size_t n);
static int tun_on_data(void *ud, const uint8_t *data, size_t len);
static void tun_on_end(void *ud);
static void tun_on_written(void *ud, size_t n);
static void tun_on_error(void *ud, gw_err_t err, const char *why);

static const gw_tunnel_ops_t tunnel_ops = {
    tun_on_head, tun_on_data, tun_on_end, tun_on_written, tun_on_error,
};

int gw_upgrade_is_enabled(const gw_ctx_t *w)
{
    return w->cfg->max_tunnels > 0;
}

int gw_upgrade_new_key(char key[25])
{
    uint8_t rnd[16];
    /* Synchronous: getrandom(2) on Linux, which does not block once the
     * kernel's pool is ready (long before a gateway serves requests). */
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0)
        return -1;
    proto_upgrade_key(rnd, key);
    return 0;
}

/* Round robin over the servers that are up: a tunnel is long-lived and
 * outside the pool, so the pool's counters say nothing about it. */
static gw_server_t *pick_server(gw_pool_t *p, const gw_server_t *avoid)
{
    uint64_t now = gw_ctx_now_ms(p->w);
    for (size_t i = 0; i < p->nservers; i++) {
        gw_server_t *s = &p->servers[(p->rr_next + i) % p->nservers];
        if (s != avoid && gw_server_is_up(s, now)) {
            p->rr_next = (p->rr_next + i + 1) % p->nservers;
            return s;
        }
    }
    return NULL;
}

/* The tunnel failed: it goes, and the exchange ends as any failed one
 * does (a status before the head, a reset or close after it). */
static void end_with(gw_exchange_t *x, gw_err_t err, const char *why)
{
    gw_tunnel_close(x->tunnel);
    x->tunnel = NULL;
    gw_exchange_fail(x, err, why);
}

/* Opens x's tunnel on a server other than avoid, if one is up. Returns 0,
 * or -1 when x has failed. */
static int connect_to(gw_exchange_t *x, const gw_server_t *avoid)
{
    gw_server_t *s = pick_server(x->pool, avoid);
    if (s == NULL && avoid != NULL)
        s = pick_server(x->pool, NULL);
    if (s == NULL) {
        gw_exchange_fail(x, GW_E_ALL_DOWN, "every server of the backend is down");
        return -1;
    }
    x->server = s;
    x->wait_ms = 0;
    x->attempt_ms = gw_ctx_now_ms(x->w);
    x->state = GW_X_SENDING;
    gw_err_t err = GW_OK;
    char why[128];
    x->tunnel =
        gw_tunnel_connect(x->w, (const struct sockaddr *)&s->addr, s->cfg->addr.host,
                          &x->pool->conn_cfg, x->w->cfg->tunnel_idle_timeout_ms, x->head.data,
                          x->head.len, &tunnel_ops, x, &err, why, sizeof(why));
    if (x->tunnel == NULL) {
        gw_exchange_fail(x, err, why);
        return -1;
    }
    return 0;
}

void gw_upgrade_start(gw_exchange_t *x, gw_pool_t *pool)
{
    gw_ctx_t *w = x->w;
    x->pool = pool;
    pool->nexchanges++; /* a reload retires the pool only after its tunnels */
    x->is_started = 1;
    x->is_upgrade = 1;
    x->queued_ms = gw_ctx_now_ms(w);
    if (w->ntunnels >= w->cfg->max_tunnels) {
        x->retry_after_s = 1;
        gw_exchange_fail(x, GW_E_TUNNEL_LIMIT, "max_tunnels reached");
        return;
    }
    x->retries_left = pool->bcfg->retries;
    if (connect_to(x, NULL) != 0)
        return;
    /* The client may have ended its side with its request already. */
    if (x->is_req_end)
        gw_tunnel_shutdown(x->tunnel);
}

/* RFC 6455 4.2.2: the backend proves it read this handshake by answering
 * the key sent (ours for an HTTP/2 client, the client's own otherwise)
 * with its SHA-1. A 101 without it may come from something that is not a
 * WebSocket server at all. Returns 1 when the accept value matches. */
static int is_accept_right(const gw_exchange_t *x, const proto_header_t *f, size_t n)
{
    size_t key_len = 0, accept_len = 0;
    const char *key = proto_upgrade_head_key(x->head.data, x->head.len, &key_len);
    const char *accept = proto_upgrade_field(f, n, "sec-websocket-accept", &accept_len);
    char input[256];
    size_t input_len =
        key != NULL ? proto_upgrade_accept_input(key, key_len, input, sizeof(input)) : 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    unsigned char want[64];
    if (accept == NULL || input_len == 0 ||
        EVP_Digest(input, input_len, md, &md_len, EVP_sha1(), NULL) != 1)
        return 0;
    int want_len = EVP_EncodeBlock(want, md, (int)md_len);
    return want_len > 0 && (size_t)want_len == accept_len && memcmp(want, accept, accept_len) == 0;
}

static int tun_on_head(void *ud, int status, const proto_header_t *f, size_t n)
{
    gw_exchange_t *x = ud;
    if (status == 101 && !is_accept_right(x, f, n)) {
        gw_pool_report(x->pool, x->server, 0, "bad Sec-WebSocket-Accept", x->attempt_ms);
        end_with(x, GW_E_BAD_RESPONSE, "101 without the right Sec-WebSocket-Accept");
        return 0; /* the tunnel is closed: it reads no further */
    }
    int has_body = 1;
    if (status != 101) {
        if (status == 204 || status == 304)
            has_body = 0;
        for (size_t i = 0; i < n; i++) {
            if (proto_headers_name_eq(f[i].name, f[i].name_len, "content-length", 14))
                has_body = !(f[i].value_len == 1 && f[i].value[0] == '0');
        }
    }
    /* The server answered: passive health counts it as it counts a
     * response head (5xx too when fail_on_5xx). */
    int is_failure = status >= 500 && x->pool->bcfg->fail_on_5xx;
    gw_pool_report(x->pool, x->server, !is_failure, "5xx response", x->attempt_ms);
    x->state = GW_X_RECEIVING;
    x->resp_status = status;
    if (x->fe->on_head(x, status, f, n, has_body) != 0)
        return -1;
    x->is_resp_head_sent = 1;
    if (status == 101)
        GW_LOG_DEBUG("backend %s server %s stream %d: tunnel open", x->pool->name, x->server->name,
                     (int)x->stream_id);
    return 0;
}

static int tun_on_data(void *ud, const uint8_t *data, size_t len)
{
    gw_exchange_t *x = ud;
    if (proto_buf_append(&x->resp_body, data, len) != 0)
        return PROTO_E_NOMEM;
    /* The client is slower than the backend: stop reading until it has
     * drained half (gw_exchange_resp_read resumes). */
    if (proto_buf_len(&x->resp_body) >= x->w->cfg->response_buffer_size)
        gw_tunnel_pause_read(x->tunnel);
    x->fe->on_body(x);
    return 0;
}

static void tun_on_end(void *ud)
{
    gw_exchange_t *x = ud;
    x->state = GW_X_DONE;
    x->is_resp_done = 1;
    /* An answer other than 101 ends the connection's use: it is never
     * reused, and the client's later bytes are dropped. */
    if (!gw_tunnel_is_open(x->tunnel)) {
        gw_tunnel_close(x->tunnel);
        x->tunnel = NULL;
    }
    x->fe->on_body(x);
}

static void tun_on_written(void *ud, size_t n)
{
    gw_exchange_t *x = ud;
    x->req_body_acked += n;
    x->req_body_credited += n;
    x->fe->on_req_body_written(x, n);
}

static void tun_on_error(void *ud, gw_err_t err, const char *why)
{
    gw_exchange_t *x = ud;
    /* Before an answer, a failure is the server's like any request's
     * (refused, timed out, closed early); a tunnel that ends later says
     * nothing about the server's health. */
    if (!x->is_resp_head_sent && gw_err_info(err)->is_server_fault)
        gw_pool_report(x->pool, x->server, 0, why, x->attempt_ms);
    /* A connection that never opened carried nothing: another server may
     * take the tunnel (within retries). Runs on the failed tunnel's stack,
     * which only closes it and touches it no more. */
    if ((err == GW_E_CONNECT || err == GW_E_CONNECT_TIMEOUT) && x->retries_left > 0 &&
        x->pool->nservers > 1) {
        gw_server_t *failed = x->server;
        x->retries_left--;
        x->nretries++;
        GW_LOG_INFO("backend %s server %s stream %d: %s; tunnel retried on another server",
                    x->pool->name, failed->name, (int)x->stream_id, why);
        gw_tunnel_close(x->tunnel);
        x->tunnel = NULL;
        if (connect_to(x, failed) == 0 && x->is_req_end)
            gw_tunnel_shutdown(x->tunnel);
        return;
    }
    end_with(x, err, why);
}
