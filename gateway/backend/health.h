/*
 * Active HTTP health checks of one backend server: a GET of the backend's
 * health_check_path on a fresh connection every health_check_interval_ms,
 * judged by the response status. Thresholds of consecutive results turn
 * into gw_server_set_check_down() verdicts; the backend acts on them.
 */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include "gateway/backend/pool.h"

typedef struct gw_health_check gw_health_check_t;

/* Starts periodic checks of s (s->pool->bcfg->health_check_path is set):
 * every health_check_interval_ms, connect to s->addr (the round is skipped,
 * neither a pass nor a failure, while !s->has_addr), send
 *   GET <path> HTTP/1.1, Host: <s->cfg->addr.host> (IPv6 in brackets, no
 *   port), User-Agent: h2gw-health-check, Connection: close
 * and read the response head. A status within [health_check_status_min,
 * health_check_status_max] passes; a connect error, a reset, EOF before the
 * head, an invalid response, a status out of range or the timeout fails.
 * One check is in flight at a time, bounded by min(interval,
 * connect_timeout_ms + response_timeout_ms); the next starts one interval
 * after the previous one started. The first runs 100 ms after start.
 *
 * After healthy_threshold passes in a row a server that is check-down
 * (s->is_check_down; servers start up) gets gw_server_set_check_down(s, 0);
 * after unhealthy_threshold failures in a row an up one gets
 * gw_server_set_check_down(s, 1); that function is expected to store the
 * verdict in s->is_check_down. Both transitions are logged at warn level.
 * gw_server_set_check_down() is the last thing a check does, so it may call
 * gw_health_check_stop().
 *
 * Plain TCP only: a backend with tls set is checked without TLS. s and its
 * pool must outlive the check until gw_health_check_stop(). Returns NULL on
 * allocation failure. */
gw_health_check_t *gw_health_check_start(gw_server_t *s);

/* Stops checking; an in-flight check is abandoned without a verdict. Safe
 * with NULL. Memory is freed by the close callbacks of the check's handles,
 * so the loop must run once more (a worker's teardown does); s is never
 * touched after this returns. */
void gw_health_check_stop(gw_health_check_t *hc);

#endif
