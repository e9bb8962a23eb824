/*
 * The admin listener: GET /livez, GET /readyz and GET /metrics over
 * HTTP/1.1, answered by h2gw itself (never proxied), one request per
 * connection (Connection: close). It runs on one loop (worker 0's) and
 * knows nothing of workers or pools: the worker gives it two checks and
 * the metrics page through gw_admin_ops_t. It touches nothing on the
 * request path.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include "config/config.h"

/* Each check returns 1 when the answer is yes, else 0 with a one-line
 * reason (no newline) written to why. Both run on the admin's loop. */
typedef struct gw_admin_ops {
    void *arg;
    int (*is_live)(void *arg, char *why, size_t cap);
    int (*is_ready)(void *arg, char *why, size_t cap);
    /* The /metrics page (Prometheus text format) in a malloc'd buffer the
     * admin frees. Returns 0, or -1 (a 503). NULL: no /metrics (404). */
    int (*metrics)(void *arg, char **body, size_t *len);
} gw_admin_ops_t;

typedef struct gw_admin gw_admin_t;

/* Binds addr on loop and prints "admin listening on HOST:PORT" on stdout.
 * Returns the admin, or NULL (the error is logged). */
gw_admin_t *gw_admin_start(uv_loop_t *loop, const cfg_addr_t *addr, const gw_admin_ops_t *ops);

/* Closes the listener and every admin connection; the memory goes in their
 * close callbacks (the loop must run once more). NULL is fine. */
void gw_admin_stop(gw_admin_t *a);

/* The answer to GET /metrics, which gw_admin_answer() leaves to the
 * caller (its body has no fixed size). */
#define GW_ADMIN_METRICS 0

/* What the admin answers for one request line, apart from the I/O: the
 * status (200, 400, 404, 405, 503) and the body (a line ending in '\n')
 * written to body, or GW_ADMIN_METRICS. line is the request line without
 * its CRLF. */
int gw_admin_answer(const gw_admin_ops_t *ops, const char *line, size_t len, char *body,
                    size_t cap);

#endif
