/*
 * Listeners: own the listening sockets and their handles (the poll, the
 * accept pause, certificate watches); accept client connections, and
 * choose each connection's protocol. A TLS listener picks it by ALPN after
 * the handshake (h2, else HTTP/1.1); a cleartext one sniffs the first
 * bytes (the HTTP/2 preface means HTTP/2 with prior knowledge, a plausible
 * HTTP/1.x request line HTTP/1.1, which may still upgrade to h2c, anything
 * else is closed).
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <uv.h>

#include "config/config.h"
#include "gateway/client/client_conn.h"
#include "gateway/core/ctx.h"
#include "gateway/core/log.h"
#include "gateway/tls/tls.h"

/* A listener lives on the heap, owned by its worker until
 * gw_listener_close(), then by its own handles: it frees itself once the
 * last has closed. Its connections point only at its origin, which they
 * share by reference, so they never keep the listener itself alive. */
typedef struct gw_listener {
    int fd;                 /* the listening socket (-1 once stopped) */
    uv_poll_t poll;         /* readable: connections wait */
    int has_poll;           /* poll is initialised and must be closed */
    uv_timer_t pause_timer; /* accepting resumes when it fires */
    gw_ctx_t *w;
    const cfg_listener_t *cfg;
    gw_client_origin_t *origin;                  /* what its connections see of it: one reference */
    char name[CFG_NAME_MAX + CFG_HOST_MAX + 16]; /* for logs: section name and address */
    int is_listening;
    int is_closed;          /* gw_listener_close: freed when nclosing reaches 0 */
    unsigned nclosing;      /* handles whose close callback has not run yet */
    uv_fs_event_t *watches; /* watch_certificates: one per directory */
    size_t nwatches;
    uv_timer_t reload_timer; /* gathers a burst of file events into one reload */
    int has_reload_timer;
    uint64_t naccepted;       /* counted for the shutdown summary */
    uint64_t npauses;         /* accept failures that paused accepting */
    gw_log_limit_t log_limit; /* refusals and accept errors: once a second */
} gw_listener_t;

/* Opens a listening socket on cfg's address; port, when not 0, replaces
 * the configured one (workers after the first join the port the first got
 * for port 0). is_shared: SO_REUSEPORT, for one of a set of sockets, one
 * per worker, among which the kernel spreads the connections; is_first:
 * the first of such a set, which first binds alone so that a port another
 * process holds is refused rather than silently shared with it. Blocks on
 * nothing and touches no loop, so any thread may open a worker's sockets.
 * Returns the socket (the caller's) or a negative error, logged with the
 * listener's name and the address. */
int gw_listener_bind(const cfg_listener_t *cfg, uint16_t port, int is_shared, int is_first);

/* The port socket fd is bound to (0 if unknown). */
uint16_t gw_listener_fd_port(int fd);

/* A new listener of w accepting on fd, a socket from gw_listener_bind()
 * that the listener owns from here on, also on failure. cfg is one of the
 * listeners of w->cfg, which the listener's origin holds a reference on.
 * Loads TLS material and watches its directories when asked to. On worker
 * 0 it prints "listening on ADDR:PORT" on stdout, which users and tests
 * read the port from. Runs on w's thread. Returns 0 and the listener in
 * *out, or a negative error (logged). */
int gw_listener_start(gw_listener_t **out, gw_ctx_t *w, const cfg_listener_t *cfg, int fd);

/* The port the listener is bound to. */
uint16_t gw_listener_port(const gw_listener_t *l);

/* Stops accepting (drain or shutdown) and closes the listener's handles;
 * the listener stays the worker's. Connections already accepted go on.
 * Idempotent. */
void gw_listener_stop(gw_listener_t *l);

/* Stops the listener if it still accepts and gives it up: it frees itself
 * once its handles have closed. Connections it accepted go on, holding its
 * origin. */
void gw_listener_close(gw_listener_t *l);

/* A reload: the listener (same address) now follows cfg, a listener of
 * the worker's new snapshot (w->cfg). Certificates and ticket keys are
 * loaded again from it (on failure the old ones stay and -1 is returned)
 * and watched directories follow it. Connections already open keep their
 * TLS context; they read the new cfg through the origin they share. */
int gw_listener_update(gw_listener_t *l, const cfg_listener_t *cfg);

/* Reloads certificates and ticket keys (a watched file changed).
 * New connections get the new material; on failure the old stays. */
void gw_listener_reload_tls(gw_listener_t *l);

#endif
