/*
 * Intrusive doubly linked circular list, in the manner of libuv's queue.h.
 * A detached node points at itself, so proto_queue_remove() is idempotent and
 * teardown needs no "is it queued?" bookkeeping.
 */
#ifndef PROTO_QUEUE_H
#define PROTO_QUEUE_H

#include <stddef.h>

typedef struct proto_queue {
    struct proto_queue *prev, *next;
} proto_queue_t;

#define proto_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void proto_queue_init(proto_queue_t *q)
{
    q->prev = q->next = q;
}

static inline int proto_queue_empty(const proto_queue_t *q)
{
    return q->next == q;
}

static inline int proto_queue_is_linked(const proto_queue_t *n)
{
    return n->next != n;
}

static inline void proto_queue_insert_tail(proto_queue_t *head, proto_queue_t *n)
{
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
}

static inline void proto_queue_insert_head(proto_queue_t *head, proto_queue_t *n)
{
    n->prev = head;
    n->next = head->next;
    head->next->prev = n;
    head->next = n;
}

static inline void proto_queue_remove(proto_queue_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of src to dst (which must be empty); src ends empty. */
static inline void proto_queue_move(proto_queue_t *dst, proto_queue_t *src)
{
    if (proto_queue_empty(src)) {
        proto_queue_init(dst);
        return;
    }
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    proto_queue_init(src);
}

static inline proto_queue_t *proto_queue_first(proto_queue_t *head)
{
    return proto_queue_empty(head) ? NULL : head->next;
}

#endif
