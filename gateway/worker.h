/*
 * A worker: one loop (its context, gateway/core/ctx), its listeners, its
 * client connections and its backend pools, wired together; signals and
 * the drain. Everything a worker owns is touched only by its thread. The
 * worker sits on top: it includes the modules, none of them includes it.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "config/config.h"
#include "gateway/backend/pool.h"
#include "gateway/client/listener.h"
#include "gateway/core/ctx.h"
#include "gateway/ops/admin.h"

/* What a reload replaced in one worker: the snapshot, the pools that point
 * into it and the access log. The pools drain (no new exchanges); once none
 * is used they are closed, and at the next check freed with the rest. */
typedef struct gw_generation {
    const cfg_t *cfg; /* one reference */
    gw_pool_t *pools;
    size_t npools;
    struct gw_access_log *access_log; /* closed once no write is in flight */
    int is_closed;                    /* pools closed: free at the next check */
    struct gw_generation *next;
} gw_generation_t;

/* A reload on its way to one worker: the new snapshot and, for each of its
 * listeners, the socket worker 0 opened for this worker (-1: the running
 * listener of that name keeps its own). The worker takes the sockets it
 * starts listeners on; freeing closes the others. */
typedef struct gw_handoff {
    const cfg_t *cfg; /* one reference */
    size_t nfds;
    int fds[]; /* one per listener of cfg */
} gw_handoff_t;

typedef struct gw_worker {
    gw_ctx_t ctx;              /* first: the modules see only this */
    gw_listener_t **listeners; /* one per configured listener, each the worker's */
    size_t nlisteners;
    gw_pool_t *pools; /* one per configured backend */
    size_t npools;
    uv_prepare_t flush; /* runs the deferred tasks once per loop turn */
    uv_idle_t kick;     /* active while tasks wait for the next turn */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t trim_timer;                 /* gives memory back after a burst */
    uint32_t peak_clients, peak_exchanges; /* since the last trim */
    uv_timer_t drain_timer;                /* drain_delay, then shutdown_timeout */
    uv_timer_t goaway_timer;               /* the second GOAWAY of a drain */
    int is_drain_pending; /* a signal came: not ready; listeners close after drain_delay */
    /* Liveness: every worker stamps heartbeat_ms (uv_hrtime, shared by all
     * threads) from a 250 ms timer; worker 0's admin reads the others'. */
    uv_timer_t heartbeat;
    _Atomic uint64_t heartbeat_ms;
    atomic_int is_running; /* 0 once the loop has returned */
    /* Worker 0 only: the admin listener (NULL: off) and every worker,
     * set by main before the loops run. */
    gw_admin_t *admin;
    struct gw_worker *peers;
    uint32_t npeers;
    /* Reload (SIGHUP, read by worker 0 on its thread): worker 0 opens the
     * sockets of new and moved listeners for every worker, hands each worker
     * the new snapshot and its sockets in pending and wakes it with
     * reload_async; the worker swaps its pools, listeners and log and keeps
     * the old pools in retired until they are unused. */
    int argc; /* worker 0: the process's arguments, read again on reload */
    char **argv;
    struct gw_worker *leader;    /* worker 0, for every worker: counts the swaps */
    atomic_uint reload_left;     /* worker 0: workers yet to take the last reload */
    atomic_int is_reload_failed; /* worker 0: a worker could not swap to it */
    uv_async_t reload_async;
    _Atomic(gw_handoff_t *) pending;
    gw_generation_t *retired;
    uv_timer_t reap_timer; /* closes and frees retired generations */
    uint64_t nofile;
} gw_worker_t;

/* Binds every listener, loads TLS material and sets up the pools. The
 * worker holds a reference on cfg (gateway/core/cfg_ref.h) until its
 * teardown or a reload replaces it. ports
 * (one per listener, or NULL) are the ports worker 0 got, for listeners
 * configured with port 0. nofile is the process's descriptor limit: this
 * worker's share of it, after every backend pool's, bounds its clients.
 * Returns 0 or a negative error (logged). */
int gw_worker_init(gw_worker_t *w, const cfg_t *cfg, int index, const uint16_t *ports,
                   uint64_t nofile);

/* Runs the loop until a drain finishes, then closes every handle and frees
 * what the worker allocated. */
int gw_worker_run(gw_worker_t *w);

/* Closes every handle and frees what the worker allocated; also after a
 * failed gw_worker_init(). Returns uv_loop_close()'s result. */
int gw_worker_teardown(gw_worker_t *w);

/* Reads the configuration again and, when it is valid and the sockets of
 * new and moved listeners could all be opened, hands it to every worker
 * (worker 0 only; SIGHUP calls it). Refused while the previous reload is
 * still being taken. Logs the outcome. */
void gw_worker_reload(gw_worker_t *w);

/* Starts a graceful drain: stop accepting, GOAWAY to every client, finish
 * what is in flight, exit when nothing is left or shutdown_timeout fires. */
void gw_worker_drain(gw_worker_t *w);

#endif
