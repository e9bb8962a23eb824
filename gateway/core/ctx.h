/*
 * The worker context: what every module of one worker shares and nothing
 * more. It owns the loop, the config snapshot, the clock, the shared read
 * buffer and the list of work deferred to the end of the loop turn (output
 * flushes, pool dispatch) and the worker's metrics. It includes no other
 * gateway module but core/metrics.h (which includes none); the worker
 * (gateway/worker.c) embeds it and fills the two hooks that reach up.
 */
#ifndef GW_CTX_H
#define GW_CTX_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "gateway/core/metrics.h"
#include "proto/queue.h"

#define GW_READ_BUF_SIZE (64 * 1024)

struct gw_pool;
struct gw_access_log;
typedef struct gw_ctx gw_ctx_t;

/* A piece of work for the end of this loop turn. A task is queued at most
 * once however often it is asked for; run() may queue it again (it then
 * runs in the next round). */
typedef struct gw_task {
    proto_queue_t node;
    void (*run)(struct gw_task *t);
} gw_task_t;

struct gw_ctx {
    uv_loop_t loop;
    const cfg_t *cfg;
    int index;             /* worker number; 0 reports ports */
    proto_queue_t tasks;   /* gw_task_t waiting for the end of the turn */
    proto_queue_t clients; /* every open client connection */
    uint32_t nclients;
    uint32_t max_clients; /* max_connections, or less if descriptors are short */
    uint32_t nexchanges;  /* open, for the trim after a burst */
    uint32_t ntunnels;    /* open tunnels (gateway/backend/tunnel.c writes it) */
    int is_draining;
    struct gw_access_log *access_log; /* NULL: off */
    gw_metrics_t metrics;             /* this worker's; read by worker 0's admin */
    /* This hop's Via entries (RFC 9110 7.6.3) by the protocol received:
     * requests from HTTP/2, HTTP/1.1 and HTTP/1.0 clients, and responses
     * from the HTTP/1.1 backends; empty when via = off. */
    char via_h2[72], via_h11[72], via_h10[72], via_resp[72];
    /* Set by the worker: the pool a request goes to, and the news that a
     * client connection is gone (a drain ends with the last one). */
    struct gw_pool *(*pool_for)(gw_ctx_t *w, const char *authority, size_t authority_len,
                                const char *path, size_t path_len);
    void (*on_client_closed)(gw_ctx_t *w);
    /* Every reader copies or parses its bytes before its read callback
     * returns, so one buffer serves all connections of the loop. */
    char read_buf[GW_READ_BUF_SIZE];
};

static inline void gw_task_init(gw_task_t *t, void (*run)(gw_task_t *t))
{
    proto_queue_init(&t->node);
    t->run = run;
}

/* Queues t for the end of this loop turn (idempotent). */
static inline void gw_ctx_defer(gw_ctx_t *w, gw_task_t *t)
{
    if (!proto_queue_is_linked(&t->node))
        proto_queue_insert_tail(&w->tasks, &t->node);
}

/* Takes t off the queue, if it is on it. */
static inline void gw_task_cancel(gw_task_t *t)
{
    proto_queue_remove(&t->node);
}

/* Fills the Via entries from cfg->via. */
void gw_ctx_set_via(gw_ctx_t *w);

/* The Via entry for a request in HTTP/major.minor (major 2: HTTP/2), or
 * NULL when via = off. */
const char *gw_ctx_via_request(const gw_ctx_t *w, int major, int minor);

/* Runs the tasks queued now, in order; those queued meanwhile wait for the
 * next call. Returns 1 when tasks are left. */
int gw_ctx_run_tasks(gw_ctx_t *w);

/* libuv alloc callback handing out the shared read buffer. */
void gw_ctx_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

static inline uint64_t gw_ctx_now_ms(const gw_ctx_t *w)
{
    return uv_now(&w->loop);
}

#endif
