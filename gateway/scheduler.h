/*
 * Which waiting exchange gets the next free backend connection.
 *
 * This is plain data structure code (no libuv, no I/O) so that it can be
 * unit-tested alone. Entries are embedded in their owners (exchanges); the
 * scheduler allocates only its per-(connection, urgency) buckets and
 * per-weight flows, and frees them as they empty.
 *
 * Order of dispatch in GW_SCHED_PRIORITY mode:
 *   1. lowest urgency number first (RFC 9218: 0 is most urgent);
 *   2. within one urgency, round robin across client connections;
 *   3. within one connection and urgency, stride scheduling across weights
 *      (weight 256 gets 8 dispatches for each one of weight 32), arrival
 *      order among equal weights;
 *   4. an entry that has waited max_wait_ms goes first, whatever its
 *      urgency (no starvation);
 *   5. an entry whose RFC 7540 parent is still waiting yields to it.
 * GW_SCHED_FIFO mode is arrival order, for comparison.
 */
#ifndef GW_SCHEDULER_H
#define GW_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/queue.h"

#define GW_SCHED_LEVELS 8

enum gw_sched_mode { GW_SCHED_PRIORITY, GW_SCHED_FIFO };

struct gw_sched_bucket;
struct gw_sched_flow;

typedef struct gw_sched_entry {
    /* set by the caller before gw_sched_enqueue() */
    const void *owner; /* fairness key: the client connection */
    uint8_t urgency;   /* 0..7 */
    uint16_t weight;   /* 1..256 */
    /* owned by the scheduler */
    gw_queue_t flow_node; /* in its flow, arrival order */
    gw_queue_t age_node;  /* in the scheduler, arrival order */
    struct gw_sched_flow *flow;
    uint64_t enqueued_ms;
} gw_sched_entry_t;

/* Returns the entry of e's parent stream when that parent is itself
 * waiting in this scheduler, else NULL. */
typedef gw_sched_entry_t *(*gw_sched_parent_fn)(gw_sched_entry_t *e);

typedef struct gw_sched {
    int mode;
    uint64_t max_wait_ms;
    gw_sched_parent_fn parent_of;       /* NULL: no dependency tree */
    gw_queue_t age;                     /* every waiting entry, oldest first */
    gw_queue_t levels[GW_SCHED_LEVELS]; /* per urgency: ring of non-empty buckets */
    struct gw_sched_bucket **table;     /* (owner, urgency) -> bucket */
    size_t table_size, nbuckets;
    size_t len;
} gw_sched_t;

/* Prepares an empty scheduler. Returns 0 or -1 (out of memory). */
int gw_sched_init(gw_sched_t *s, int mode, uint64_t max_wait_ms, gw_sched_parent_fn parent_of);

/* Frees the scheduler's own memory; entries still queued are forgotten. */
void gw_sched_free(gw_sched_t *s);

/* Queues e. urgency is clamped to 0..7 and weight to 1..256. Returns 0 or
 * -1 when out of memory (e is not queued then). */
int gw_sched_enqueue(gw_sched_t *s, gw_sched_entry_t *e, uint64_t now_ms);

/* Removes and returns the entry that goes next among those with urgency <=
 * max_urgency (GW_SCHED_LEVELS - 1 for all), or NULL when none waits. */
gw_sched_entry_t *gw_sched_dequeue(gw_sched_t *s, uint64_t now_ms, int max_urgency);

/* Takes e out; does nothing when e is not queued. */
void gw_sched_remove(gw_sched_t *s, gw_sched_entry_t *e);

/* Re-prioritizes a queued e, keeping its age. Returns 0 or -1 (out of
 * memory: e is then still queued with its old priority). */
int gw_sched_update(gw_sched_t *s, gw_sched_entry_t *e, int urgency, int weight);

/* The entry that has waited longest, or NULL. */
static inline gw_sched_entry_t *gw_sched_oldest(gw_sched_t *s)
{
    gw_queue_t *n = gw_queue_first(&s->age);
    return n != NULL ? gw_container_of(n, gw_sched_entry_t, age_node) : NULL;
}

static inline int gw_sched_is_queued(const gw_sched_entry_t *e)
{
    return gw_queue_is_linked(&e->age_node);
}

static inline size_t gw_sched_len(const gw_sched_t *s)
{
    return s->len;
}

/* Initializes an entry that was never queued (idempotent remove works). */
static inline void gw_sched_entry_init(gw_sched_entry_t *e)
{
    gw_queue_init(&e->flow_node);
    gw_queue_init(&e->age_node);
    e->flow = NULL;
}

#endif
