/*
 * Active HTTP health checks of one backend server: every
 * health_check_interval_ms a GET of health_check_path on a fresh
 * connection (gateway/backend/h1conn, over TLS for tls = on backends, like
 * the requests), judged by the response status. Consecutive results past
 * healthy_threshold / unhealthy_threshold become verdicts handed to the
 * target's on_verdict; the pool acts on them.
 */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include <sys/socket.h>

#include "config/config.h"
#include "gateway/backend/h1conn.h"
#include "gateway/core/ctx.h"

typedef struct gw_health_check gw_health_check_t;

/* The server checked; every pointer outlives the check. */
typedef struct gw_health_target {
    const char *backend_name;
    const char *server_name; /* host:port, for logs */
    const char *host;        /* for Host and TLS */
    unsigned port;
    const struct sockaddr_storage *addr;
    const int *has_addr; /* a round is skipped, neither pass nor failure, while 0 */
    const int *is_down;  /* the current verdict (servers start up) */
    /* A threshold was crossed. The last thing a check does, so it may stop
     * the check. */
    void (*on_verdict)(void *arg, int is_down);
    gw_metrics_backend_t *metrics; /* every check counted as pass or fail; may be NULL */
    void *arg;
} gw_health_target_t;

/* Starts periodic checks of target t: GET <path> HTTP/1.1 with Host
 * (IPv6 in brackets, the port unless 80), User-Agent: h2gw-health-check
 * and Connection: close. A status within [health_check_status_min,
 * health_check_status_max] passes; a connect error, a reset, EOF before the
 * head, an invalid response, another status or the timeout
 * (min(interval, connect_timeout + response_timeout)) fails. One check at a
 * time; the next starts one interval after the previous one started; the
 * first 100 ms after start. Returns NULL on allocation failure. */
gw_health_check_t *gw_health_check_start(gw_ctx_t *w, const gw_health_target_t *t,
                                         const gw_h1conn_cfg_t *conn_cfg,
                                         const cfg_backend_t *bcfg);

/* Stops checking; a check in flight is abandoned without a verdict. Safe
 * with NULL. The target is never touched after this returns. */
void gw_health_check_stop(gw_health_check_t *hc);

#endif
