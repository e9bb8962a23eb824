/*
 * Which waiting exchange gets the next free backend connection. For now
 * first come, first served; the priority scheduler replaces the body of
 * these functions without changing their callers.
 */
#ifndef GW_SCHEDULER_H
#define GW_SCHEDULER_H

#include <stddef.h>

#include "gateway/queue.h"

struct gw_exchange;

typedef struct gw_sched {
    gw_queue_t waiting;
    size_t len;
} gw_sched_t;

void gw_sched_init(gw_sched_t *s);

/* Queues x (through x->sched_node). x must not be queued already. */
void gw_sched_enqueue(gw_sched_t *s, struct gw_exchange *x);

/* Removes and returns the exchange that goes next, or NULL when none waits. */
struct gw_exchange *gw_sched_dequeue(gw_sched_t *s);

/* Takes x out of the queue; does nothing when x is not queued. */
void gw_sched_remove(gw_sched_t *s, struct gw_exchange *x);

static inline size_t gw_sched_len(const gw_sched_t *s)
{
    return s->len;
}

#endif
