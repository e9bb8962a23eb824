/*
 * Intrusive doubly linked circular list, in the manner of libuv's queue.h.
 * A detached node points at itself, so gw_queue_remove() is idempotent and
 * teardown needs no "is it queued?" bookkeeping.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <stddef.h>

typedef struct gw_queue {
    struct gw_queue *prev, *next;
} gw_queue_t;

#define gw_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void gw_queue_init(gw_queue_t *q)
{
    q->prev = q->next = q;
}

static inline int gw_queue_empty(const gw_queue_t *q)
{
    return q->next == q;
}

static inline int gw_queue_is_linked(const gw_queue_t *n)
{
    return n->next != n;
}

static inline void gw_queue_insert_tail(gw_queue_t *head, gw_queue_t *n)
{
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
}

static inline void gw_queue_insert_head(gw_queue_t *head, gw_queue_t *n)
{
    n->prev = head;
    n->next = head->next;
    head->next->prev = n;
    head->next = n;
}

static inline void gw_queue_remove(gw_queue_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of src to dst (which must be empty); src ends empty. */
static inline void gw_queue_move(gw_queue_t *dst, gw_queue_t *src)
{
    if (gw_queue_empty(src)) {
        gw_queue_init(dst);
        return;
    }
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    gw_queue_init(src);
}

static inline gw_queue_t *gw_queue_first(gw_queue_t *head)
{
    return gw_queue_empty(head) ? NULL : head->next;
}

#endif
