/*
 * Which waiting exchange gets the next free backend connection.
 *
 * This is plain data structure code (no libuv, no I/O) so that it can be
 * unit-tested alone. Entries are embedded in their owners (exchanges); the
 * scheduler allocates only its per-(connection, urgency) buckets and
 * per-weight flows, and frees them as they empty.
 *
 * Order of dispatch in PROTO_SCHED_PRIORITY mode:
 *   1. lowest urgency number first (RFC 9218: 0 is most urgent);
 *   2. within one urgency, round robin across client connections, in runs
 *      of up to `quantum` dispatches per connection (deficit round robin);
 *   3. within one connection and urgency, stride scheduling across weights
 *      (weight 256 gets 8 dispatches for each one of weight 32), arrival
 *      order among equal weights;
 *   4. an entry that has waited max_wait_ms goes first, whatever its
 *      urgency (no starvation);
 *   5. an entry whose RFC 7540 parent is still waiting yields to it.
 * PROTO_SCHED_FIFO mode is arrival order, for comparison.
 */
#ifndef PROTO_SCHEDULER_H
#define PROTO_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/queue.h"

#define PROTO_SCHED_LEVELS 8

enum proto_sched_mode { PROTO_SCHED_PRIORITY, PROTO_SCHED_FIFO };

struct proto_sched_bucket;
struct proto_sched_flow;

typedef struct proto_sched_entry {
    /* set by the caller before proto_sched_enqueue() */
    const void *owner; /* fairness key: the client connection */
    uint8_t urgency;   /* 0..7 */
    uint16_t weight;   /* 1..256 */
    /* owned by the scheduler */
    proto_queue_t flow_node; /* in its flow, arrival order */
    proto_queue_t age_node;  /* in the scheduler, arrival order */
    struct proto_sched_flow *flow;
    uint64_t enqueued_ms;
} proto_sched_entry_t;

/* Returns the entry of e's parent stream when that parent is itself
 * waiting in this scheduler, else NULL. */
typedef proto_sched_entry_t *(*proto_sched_parent_fn)(proto_sched_entry_t *e);

typedef struct proto_sched {
    int mode;
    uint64_t max_wait_ms;
    proto_sched_parent_fn parent_of;          /* NULL: no dependency tree */
    proto_queue_t age;                        /* every waiting entry, oldest first */
    proto_queue_t levels[PROTO_SCHED_LEVELS]; /* per urgency: ring of non-empty buckets */
    struct proto_sched_bucket **table;        /* (owner, urgency) -> bucket */
    size_t table_size, nbuckets;
    size_t len;
    uint32_t quantum; /* dispatches a connection gets in a row; 1 by default */
} proto_sched_t;

/* Prepares an empty scheduler. Returns 0 or -1 (out of memory). */
int proto_sched_init(proto_sched_t *s, int mode, uint64_t max_wait_ms,
                     proto_sched_parent_fn parent_of);

/* Sets how many entries of one connection (and urgency) go in a row
 * before the next connection's turn (at least 1). */
static inline void proto_sched_set_quantum(proto_sched_t *s, uint32_t quantum)
{
    s->quantum = quantum > 0 ? quantum : 1;
}

/* Frees the scheduler's own memory; entries still queued are forgotten. */
void proto_sched_free(proto_sched_t *s);

/* Queues e. urgency is clamped to 0..7 and weight to 1..256. Returns 0 or
 * -1 when out of memory (e is not queued then). */
int proto_sched_enqueue(proto_sched_t *s, proto_sched_entry_t *e, uint64_t now_ms);

/* Removes and returns the entry that goes next among those with urgency <=
 * max_urgency (PROTO_SCHED_LEVELS - 1 for all), or NULL when none waits. */
proto_sched_entry_t *proto_sched_dequeue(proto_sched_t *s, uint64_t now_ms, int max_urgency);

/* Takes e out; does nothing when e is not queued. */
void proto_sched_remove(proto_sched_t *s, proto_sched_entry_t *e);

/* Re-prioritizes a queued e, keeping its age. Returns 0 or -1 (out of
 * memory: e is then still queued with its old priority). */
int proto_sched_update(proto_sched_t *s, proto_sched_entry_t *e, int urgency, int weight);

/* The entry that has waited longest, or NULL. */
static inline proto_sched_entry_t *proto_sched_oldest(proto_sched_t *s)
{
    proto_queue_t *n = proto_queue_first(&s->age);
    return n != NULL ? proto_container_of(n, proto_sched_entry_t, age_node) : NULL;
}

static inline int proto_sched_is_queued(const proto_sched_entry_t *e)
{
    return proto_queue_is_linked(&e->age_node);
}

static inline size_t proto_sched_len(const proto_sched_t *s)
{
    return s->len;
}

/* Initializes an entry that was never queued (idempotent remove works). */
static inline void proto_sched_entry_init(proto_sched_entry_t *e)
{
    proto_queue_init(&e->flow_node);
    proto_queue_init(&e->age_node);
    e->flow = NULL;
}

#endif
