/*
 * Listeners: accept client connections, and choose each connection's
 * protocol. A TLS listener picks it by ALPN after the handshake (h2, else
 * HTTP/1.1); a cleartext one sniffs the first bytes (the HTTP/2 preface
 * means HTTP/2 with prior knowledge, a plausible HTTP/1.x request line
 * HTTP/1.1, which may still upgrade to h2c, anything else is closed).
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <uv.h>

#include "config/config.h"
#include "gateway/client/client_conn.h"
#include "gateway/core/ctx.h"
#include "gateway/core/log.h"
#include "gateway/tls/tls.h"

typedef struct gw_listener {
    int fd;                 /* the listening socket (-1 once stopped) */
    uv_poll_t poll;         /* readable: connections wait */
    int has_poll;           /* poll is initialised and must be closed */
    uv_timer_t pause_timer; /* accepting resumes when it fires */
    gw_ctx_t *w;
    const cfg_listener_t *cfg;
    gw_client_origin_t origin;                   /* what its connections see of it */
    char name[CFG_NAME_MAX + CFG_HOST_MAX + 16]; /* for logs: section name and address */
    int is_listening;
    uv_fs_event_t *watches; /* watch_certificates: one per directory */
    size_t nwatches;
    uv_timer_t reload_timer; /* gathers a burst of file events into one reload */
    int has_reload_timer;
    uint64_t naccepted;       /* counted for the shutdown summary */
    uint64_t npauses;         /* accept failures that paused accepting */
    gw_log_limit_t log_limit; /* refusals and accept errors: once a second */
} gw_listener_t;

/* Loads TLS material, binds and listens. With several workers every
 * worker binds the same address (SO_REUSEPORT) and the kernel spreads the
 * connections; port, when not 0, replaces the configured one (so that
 * workers after the first join the port the first got for port 0).
 * Returns 0 or a negative error. */
int gw_listener_start(gw_listener_t *l, gw_ctx_t *w, const cfg_listener_t *cfg, uint16_t port);

/* The port the listener is bound to. */
uint16_t gw_listener_port(const gw_listener_t *l);

/* Stops accepting (drain or shutdown); closes the listener's handles. */
void gw_listener_stop(gw_listener_t *l);

/* A reload: the listener (same address) now follows cfg, a listener of the
 * new snapshot. Certificates and ticket keys are loaded again from it (on
 * failure the old ones stay and -1 is returned) and watched directories
 * follow it. Connections already open keep their TLS context. */
int gw_listener_update(gw_listener_t *l, const cfg_listener_t *cfg);

/* Reloads certificates and ticket keys (a watched file changed).
 * New connections get the new material; on failure the old stays. */
void gw_listener_reload_tls(gw_listener_t *l);

#endif
