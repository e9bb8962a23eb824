#include "proto/scheduler.h"

#include <stdlib.h>

/* Stride scheduling: a flow of weight w advances its pass by STRIDE / w per
 * dispatch; the flow with the smallest pass goes next. 2^20 is divisible by
 * every power of two up to 256 and keeps other weights' error below 0.1%. */
#define STRIDE (1u << 20)

/* The dependency walk is bounded so that a malformed tree cannot loop. */
#define MAX_PARENT_DEPTH 64

/* All waiting entries of one weight within a bucket, in arrival order. */
typedef struct proto_sched_flow {
    struct proto_sched_flow *next;
    struct proto_sched_bucket *bucket;
    uint64_t pass;
    uint16_t weight;
    proto_queue_t entries;
} proto_sched_flow_t;

/* Waiting entries of one client connection at one urgency level. */
typedef struct proto_sched_bucket {
    struct proto_sched_bucket *hash_next;
    const void *owner;
    uint8_t urgency;
    uint64_t vtime; /* pass of the last dispatch: where new flows start */
    uint32_t run;   /* dispatches in a row at the head of its ring */
    proto_queue_t ring_node;
    proto_sched_flow_t *flows;
    size_t len;
} proto_sched_bucket_t;

int proto_sched_init(proto_sched_t *s, int mode, uint64_t max_wait_ms,
                     proto_sched_parent_fn parent_of)
{
    s->mode = mode;
    s->max_wait_ms = max_wait_ms;
    s->parent_of = parent_of;
    proto_queue_init(&s->age);
    for (int i = 0; i < PROTO_SCHED_LEVELS; i++)
        proto_queue_init(&s->levels[i]);
    s->table_size = 64;
    s->nbuckets = 0;
    s->len = 0;
    s->quantum = 1;
    s->table = calloc(s->table_size, sizeof(*s->table));
    return s->table != NULL ? 0 : -1;
}

static void bucket_free(proto_sched_bucket_t *b)
{
    proto_sched_flow_t *f = b->flows;
    while (f != NULL) {
        proto_sched_flow_t *next = f->next;
        free(f);
        f = next;
    }
    free(b);
}

void proto_sched_free(proto_sched_t *s)
{
    /* Detach the entries still waiting: left linked, they would still look
     * queued and a later proto_sched_remove() (an exchange freed after its
     * pool) would use the flows freed below. table is NULL when init failed
     * or after a first free; there is nothing to detach then. */
    proto_queue_t *n;
    while (s->table != NULL && (n = proto_queue_first(&s->age)) != NULL) {
        proto_sched_entry_t *e = proto_container_of(n, proto_sched_entry_t, age_node);
        proto_queue_remove(&e->age_node);
        proto_queue_init(&e->flow_node);
        e->flow = NULL;
    }
    s->len = 0;
    for (size_t i = 0; s->table != NULL && i < s->table_size; i++) {
        proto_sched_bucket_t *b = s->table[i];
        while (b != NULL) {
            proto_sched_bucket_t *next = b->hash_next;
            bucket_free(b);
            b = next;
        }
    }
    free(s->table);
    s->table = NULL;
}

static size_t bucket_hash(const void *owner, int urgency, size_t size)
{
    uint64_t h = (uint64_t)(uintptr_t)owner * 0x9e3779b97f4a7c15ull ^ (uint64_t)urgency;
    h ^= h >> 29;
    return (size_t)(h & (size - 1));
}

/* Doubles the table when it is as full as it is large; on failure the
 * table stays as it is, only slower. */
static void table_grow(proto_sched_t *s)
{
    size_t size = s->table_size * 2;
    proto_sched_bucket_t **t = calloc(size, sizeof(*t));
    if (t == NULL)
        return;
    for (size_t i = 0; i < s->table_size; i++) {
        proto_sched_bucket_t *b = s->table[i];
        while (b != NULL) {
            proto_sched_bucket_t *next = b->hash_next;
            size_t h = bucket_hash(b->owner, b->urgency, size);
            b->hash_next = t[h];
            t[h] = b;
            b = next;
        }
    }
    free(s->table);
    s->table = t;
    s->table_size = size;
}

static proto_sched_bucket_t *bucket_get(proto_sched_t *s, const void *owner, int urgency)
{
    size_t h = bucket_hash(owner, urgency, s->table_size);
    for (proto_sched_bucket_t *b = s->table[h]; b != NULL; b = b->hash_next) {
        if (b->owner == owner && b->urgency == urgency)
            return b;
    }
    proto_sched_bucket_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->owner = owner;
    b->urgency = (uint8_t)urgency;
    b->hash_next = s->table[h];
    s->table[h] = b;
    proto_queue_insert_tail(&s->levels[urgency], &b->ring_node);
    if (++s->nbuckets > s->table_size)
        table_grow(s);
    return b;
}

static void bucket_release(proto_sched_t *s, proto_sched_bucket_t *b)
{
    proto_sched_bucket_t **p = &s->table[bucket_hash(b->owner, b->urgency, s->table_size)];
    while (*p != b)
        p = &(*p)->hash_next;
    *p = b->hash_next;
    proto_queue_remove(&b->ring_node);
    s->nbuckets--;
    bucket_free(b);
}

static proto_sched_flow_t *flow_get(proto_sched_bucket_t *b, int weight)
{
    for (proto_sched_flow_t *f = b->flows; f != NULL; f = f->next) {
        if (f->weight == weight)
            return f;
    }
    proto_sched_flow_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->bucket = b;
    f->weight = (uint16_t)weight;
    /* A new flow starts one stride after the bucket's present, so it
     * neither jumps ahead of flows already waiting nor owes them a debt. */
    f->pass = b->vtime + STRIDE / (unsigned)weight;
    proto_queue_init(&f->entries);
    f->next = b->flows;
    b->flows = f;
    return f;
}

static void flow_release(proto_sched_flow_t *f)
{
    proto_sched_bucket_t *b = f->bucket;
    proto_sched_flow_t **p = &b->flows;
    while (*p != f)
        p = &(*p)->next;
    *p = f->next;
    free(f);
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Puts e into the bucket and flow of its present priority. */
static int place(proto_sched_t *s, proto_sched_entry_t *e)
{
    proto_sched_bucket_t *b = bucket_get(s, e->owner, e->urgency);
    if (b == NULL)
        return -1;
    proto_sched_flow_t *f = flow_get(b, e->weight);
    if (f == NULL) {
        if (b->len == 0)
            bucket_release(s, b);
        return -1;
    }
    proto_queue_insert_tail(&f->entries, &e->flow_node);
    e->flow = f;
    b->len++;
    return 0;
}

/* Takes e out of its flow and bucket (not out of the age list). */
static void unplace(proto_sched_t *s, proto_sched_entry_t *e)
{
    proto_sched_flow_t *f = e->flow;
    proto_sched_bucket_t *b = f->bucket;
    proto_queue_remove(&e->flow_node);
    e->flow = NULL;
    if (proto_queue_empty(&f->entries))
        flow_release(f);
    if (--b->len == 0)
        bucket_release(s, b);
}

int proto_sched_enqueue(proto_sched_t *s, proto_sched_entry_t *e, uint64_t now_ms)
{
    e->urgency = (uint8_t)clamp(e->urgency, 0, PROTO_SCHED_LEVELS - 1);
    e->weight = (uint16_t)clamp(e->weight, 1, 256);
    if (place(s, e) != 0)
        return -1;
    e->enqueued_ms = now_ms;
    proto_queue_insert_tail(&s->age, &e->age_node);
    s->len++;
    return 0;
}

void proto_sched_remove(proto_sched_t *s, proto_sched_entry_t *e)
{
    if (!proto_sched_is_queued(e))
        return;
    proto_queue_remove(&e->age_node);
    unplace(s, e);
    s->len--;
}

int proto_sched_update(proto_sched_t *s, proto_sched_entry_t *e, int urgency, int weight)
{
    if (!proto_sched_is_queued(e))
        return 0;
    urgency = clamp(urgency, 0, PROTO_SCHED_LEVELS - 1);
    weight = clamp(weight, 1, 256);
    if (urgency == e->urgency && weight == e->weight)
        return 0;
    uint8_t old_urgency = e->urgency;
    uint16_t old_weight = e->weight;
    unplace(s, e);
    e->urgency = (uint8_t)urgency;
    e->weight = (uint16_t)weight;
    if (place(s, e) == 0)
        return 0;
    e->urgency = old_urgency;
    e->weight = old_weight;
    if (place(s, e) != 0) {
        /* Not even the old place could be allocated again: drop it from the
         * age list too, so that the scheduler stays consistent. */
        proto_queue_remove(&e->age_node);
        s->len--;
    }
    return -1;
}

/* The next entry by urgency, then round robin across connections, then
 * stride across weights. */
static proto_sched_entry_t *pick_by_priority(proto_sched_t *s, int max_urgency)
{
    for (int level = 0; level <= max_urgency; level++) {
        proto_queue_t *ring = proto_queue_first(&s->levels[level]);
        if (ring == NULL)
            continue;
        proto_sched_bucket_t *b = proto_container_of(ring, proto_sched_bucket_t, ring_node);
        proto_sched_flow_t *best = b->flows;
        for (proto_sched_flow_t *f = b->flows->next; f != NULL; f = f->next) {
            if (f->pass < best->pass)
                best = f;
        }
        return proto_container_of(proto_queue_first(&best->entries), proto_sched_entry_t,
                                  flow_node);
    }
    return NULL;
}

proto_sched_entry_t *proto_sched_dequeue(proto_sched_t *s, uint64_t now_ms, int max_urgency)
{
    if (s->len == 0)
        return NULL;
    max_urgency = clamp(max_urgency, 0, PROTO_SCHED_LEVELS - 1);

    proto_sched_entry_t *e = NULL;
    proto_queue_t *oldest = proto_queue_first(&s->age);
    proto_sched_entry_t *o = proto_container_of(oldest, proto_sched_entry_t, age_node);
    if (s->mode == PROTO_SCHED_FIFO) {
        /* Strict arrival order: the head waits for a connection it may use
         * rather than being overtaken. */
        e = o->urgency <= max_urgency ? o : NULL;
    } else if (now_ms - o->enqueued_ms >= s->max_wait_ms && o->urgency <= max_urgency) {
        e = o;
    } else {
        e = pick_by_priority(s, max_urgency);
    }
    if (e == NULL)
        return NULL;

    if (s->parent_of != NULL) {
        /* A waiting RFC 7540 parent goes first only when it is at least as
         * urgent: a browser's chain of background images never holds back
         * the urgent fetch that names one of them as its parent. */
        for (int depth = 0; depth < MAX_PARENT_DEPTH; depth++) {
            proto_sched_entry_t *p = s->parent_of(e);
            if (p == NULL || !proto_sched_is_queued(p) || p->urgency > e->urgency ||
                p->urgency > max_urgency)
                break;
            e = p;
        }
    }

    /* Charge the dispatch to the flow (stride) and send the connection to
     * the back of its level's ring (round robin), then take e out. */
    proto_sched_flow_t *f = e->flow;
    proto_sched_bucket_t *b = f->bucket;
    /* The bucket's present is its least advanced flow, not the flow that
     * went: aging or a parent can send one that is far ahead, and new
     * flows must not start behind everything already queued. */
    b->vtime = f->pass;
    for (proto_sched_flow_t *g = b->flows; g != NULL; g = g->next) {
        if (g->pass < b->vtime)
            b->vtime = g->pass;
    }
    f->pass += STRIDE / f->weight;
    /* The bucket at the head of its ring keeps its turn for a run of
     * `quantum` dispatches; one served out of turn (aging, a parent) goes
     * to the back at once, as a run of its own. */
    int is_head = proto_queue_first(&s->levels[b->urgency]) == &b->ring_node;
    if (!is_head || ++b->run >= s->quantum) {
        b->run = 0;
        proto_queue_remove(&b->ring_node);
        proto_queue_insert_tail(&s->levels[b->urgency], &b->ring_node);
    }
    proto_sched_remove(s, e);
    return e;
}
