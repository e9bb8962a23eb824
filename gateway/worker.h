/*
 * A worker: one uv loop, its listeners, its client connections and its
 * backend pools. Everything a worker owns is touched only by its thread.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <uv.h>

#include "config/config.h"
#include "gateway/client/listener.h"
#include "proto/queue.h"
#include "gateway/backend/h1conn.h"

#define GW_READ_BUF_SIZE (64 * 1024)

typedef struct gw_worker {
    uv_loop_t loop;
    const cfg_t *cfg;
    int index;                /* 0 runs on the main thread and reports ports */
    gw_listener_t *listeners; /* one per configured listener */
    size_t nlisteners;
    gw_pool_t *pools; /* one per configured backend */
    size_t npools;
    uv_prepare_t flush; /* writes every dirty connection once per loop turn */
    uv_idle_t kick;     /* active while output waits for the next turn */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;   /* bounds a graceful drain */
    proto_queue_t dirty;         /* client connections with output to gather */
    proto_queue_t dirty_upconns; /* backend connections with request bytes to write */
    proto_queue_t clients;       /* every open client connection */
    uint32_t nclients;
    int is_draining;
    struct gw_access_log *access_log; /* NULL: off */
    /* Every reader copies or parses its bytes before its read callback
     * returns, so one buffer serves all connections of the loop. */
    char read_buf[GW_READ_BUF_SIZE];
} gw_worker_t;

/* Binds every listener, loads TLS material and sets up the pools. ports
 * (one per listener, or NULL) are the ports worker 0 got, for listeners
 * configured with port 0. Returns 0 or a negative error (logged). */
int gw_worker_init(gw_worker_t *w, const cfg_t *cfg, int index, const uint16_t *ports);

/* Runs the loop until a drain finishes, then closes every handle and frees
 * what the worker allocated. */
int gw_worker_run(gw_worker_t *w);

/* Closes every handle and frees what the worker allocated; also after a
 * failed gw_worker_init(). Returns uv_loop_close()'s result. */
int gw_worker_teardown(gw_worker_t *w);

/* Starts a graceful drain: stop accepting, GOAWAY to every client, finish
 * what is in flight, exit when nothing is left or the drain timer fires. */
void gw_worker_drain(gw_worker_t *w);

/* Called by a client connection when it is gone; ends a drain when last. */
void gw_worker_on_client_closed(gw_worker_t *w);

/* The pool of the backend a request goes to. */
gw_pool_t *gw_worker_pool_for(gw_worker_t *w, const char *authority, size_t authority_len,
                              const char *path, size_t path_len);

/* libuv alloc callback handing out the worker's shared read buffer. */
void gw_worker_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

uint64_t gw_worker_now_ms(const gw_worker_t *w);

#endif
