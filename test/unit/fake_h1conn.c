/*
 * A fake transport for the pool's unit test: gw_h1conn_* (and the health
 * checks and TLS contexts the pool also calls) replaced at link time, so
 * that test_pool.c decides when a connect completes or fails and sees what
 * the pool opened, idled and closed.
 */
#include "test/unit/fake_h1conn.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/backend/health.h"

fake_net_t fake_net;

gw_h1conn_t *gw_h1conn_connect(gw_ctx_t *w, const struct sockaddr *addr, const char *name,
                               const gw_h1conn_cfg_t *cfg, const gw_h1conn_owner_ops_t *ops,
                               void *owner, gw_err_t *err, char *why, size_t why_len)
{
    (void)addr;
    (void)name;
    if (fake_net.connect_err != GW_OK) {
        *err = fake_net.connect_err;
        strncpy(why, "fake connect error", why_len - 1);
        return NULL;
    }
    gw_h1conn_t *c = calloc(1, sizeof(*c));
    c->w = w;
    c->cfg = cfg;
    c->owner_ops = ops;
    c->owner = owner;
    c->state = GW_H1CONN_CONNECTING;
    proto_queue_init(&c->owner_node);
    proto_queue_init(&c->owner_all_node);
    fake_net.conns[fake_net.nconns++] = c;
    fake_net.nconnects++;
    return c;
}

void fake_net_connected(gw_h1conn_t *c, gw_err_t err)
{
    if (err == GW_OK)
        c->state = GW_H1CONN_READY;
    c->owner_ops->on_connected(c, err, err == GW_OK ? NULL : "fake failure");
}

void gw_h1conn_close(gw_h1conn_t *c)
{
    if (c == NULL || c->state == GW_H1CONN_CLOSED)
        return;
    c->state = GW_H1CONN_CLOSED;
    fake_net.ncloses++;
}

void gw_h1conn_set_idle(gw_h1conn_t *c, uint64_t timeout_ms)
{
    (void)timeout_ms;
    c->state = GW_H1CONN_READY;
    fake_net.nidles++;
}

uint64_t gw_h1conn_idle_timeout(const gw_h1conn_t *c, uint64_t dflt)
{
    (void)c;
    return dflt;
}

void gw_h1conn_abort(gw_h1conn_t *c, gw_err_t err, const char *why)
{
    (void)c;
    (void)err;
    (void)why;
}

void fake_net_free(void)
{
    for (size_t i = 0; i < fake_net.nconns; i++)
        free(fake_net.conns[i]);
    memset(&fake_net, 0, sizeof(fake_net));
}

gw_health_check_t *gw_health_check_start(gw_ctx_t *w, const gw_health_target_t *t,
                                         const gw_h1conn_cfg_t *conn_cfg, const cfg_backend_t *bcfg)
{
    (void)w;
    (void)t;
    (void)conn_cfg;
    (void)bcfg;
    return NULL;
}

void gw_health_check_stop(gw_health_check_t *hc)
{
    (void)hc;
}

gw_tls_ctx_t *gw_tls_client_ctx_new(const cfg_backend_t *b, char *err, size_t errlen)
{
    (void)b;
    (void)err;
    (void)errlen;
    return NULL;
}

void gw_tls_ctx_unref(gw_tls_ctx_t *ctx)
{
    (void)ctx;
}
