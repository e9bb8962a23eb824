/* Unit tests for proto/scheduler.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proto/scheduler.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define ALL (PROTO_SCHED_LEVELS - 1)
#define NO_AGING UINT64_MAX
#define DEFAULT_WEIGHT 16

/* Fairness keys: only the addresses matter. */
static int owner_keys[4096];

static const void *owner(int i)
{
    return &owner_keys[i];
}

static void entry_set(proto_sched_entry_t *e, const void *o, int urgency, int weight)
{
    proto_sched_entry_init(e);
    e->owner = o;
    e->urgency = (uint8_t)urgency;
    e->weight = (uint16_t)weight;
}

static void enqueue(proto_sched_t *s, proto_sched_entry_t *e, uint64_t now)
{
    size_t len = proto_sched_len(s);

    assert_int_equal(proto_sched_enqueue(s, e, now), 0);
    assert_true(proto_sched_is_queued(e));
    assert_int_equal(proto_sched_len(s), len + 1);
}

/* Dequeues and returns the index of the entry in base[0..n), or -1 for NULL. */
static int dequeue_index(proto_sched_t *s, proto_sched_entry_t *base, size_t n, uint64_t now,
                         int max_urgency)
{
    size_t len = proto_sched_len(s);
    proto_sched_entry_t *e = proto_sched_dequeue(s, now, max_urgency);

    if (e == NULL) {
        assert_int_equal(proto_sched_len(s), len);
        return -1;
    }
    assert_false(proto_sched_is_queued(e));
    assert_int_equal(proto_sched_len(s), len - 1);
    assert_true((uintptr_t)e >= (uintptr_t)base && (uintptr_t)e < (uintptr_t)(base + n));
    return (int)(e - base);
}

/* Nothing left: no entry, and every bucket and flow has been freed. */
static void assert_drained(proto_sched_t *s)
{
    assert_null(proto_sched_dequeue(s, 0, ALL));
    assert_int_equal(proto_sched_len(s), 0);
    assert_int_equal(s->nbuckets, 0);
    assert_true(proto_queue_empty(&s->age));
    for (int i = 0; i < PROTO_SCHED_LEVELS; i++)
        assert_true(proto_queue_empty(&s->levels[i]));
}

/* ---- dispatch order, table-driven (tests 1, 2 and 6) ---- */

typedef struct seq_case {
    const char *name;
    size_t n;
    uint8_t owner[16]; /* index into owner_keys */
    uint8_t urgency[16];
    uint16_t weight[16]; /* 0 stands for DEFAULT_WEIGHT */
    int want[16];        /* entry indices in PROTO_SCHED_PRIORITY dispatch order */
} seq_case_t;

/* Queues c's entries in index order at t=0 and dequeues them all; FIFO mode
 * must give arrival order whatever the priorities. */
static void run_seq_case_runs(const seq_case_t *c, int mode, uint32_t quantum)
{
    proto_sched_entry_t e[16];
    proto_sched_t s;

    assert_int_equal(proto_sched_init(&s, mode, NO_AGING, NULL), 0);
    proto_sched_set_quantum(&s, quantum);
    for (size_t i = 0; i < c->n; i++) {
        entry_set(&e[i], owner(c->owner[i]), c->urgency[i],
                  c->weight[i] != 0 ? c->weight[i] : DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 0);
    }
    for (size_t i = 0; i < c->n; i++) {
        int want = mode == PROTO_SCHED_FIFO ? (int)i : c->want[i];
        int got = dequeue_index(&s, e, c->n, 0, ALL);
        if (got != want)
            print_error("case \"%s\" (%s): dispatch %zu got entry %d, want %d\n", c->name,
                        mode == PROTO_SCHED_FIFO ? "fifo" : "priority", i, got, want);
        assert_int_equal(got, want);
    }
    assert_drained(&s);
    proto_sched_free(&s);
}

static void run_seq_case(const seq_case_t *c, int mode)
{
    run_seq_case_runs(c, mode, 1);
}

/* One owner, one weight: urgency decides, arrival order breaks ties. */
static const seq_case_t urgency_cases[] = {
    {"ten u=7 then one u=0",
     11,
     {0},
     {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0},
     {0},
     {10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
    {"mixed levels", 10, {0}, {5, 2, 7, 0, 3, 3, 1, 6, 4, 0}, {0}, {3, 9, 6, 1, 4, 5, 8, 0, 7, 2}},
    {"descending", 8, {0}, {7, 6, 5, 4, 3, 2, 1, 0}, {0}, {7, 6, 5, 4, 3, 2, 1, 0}},
    {"ascending", 8, {0}, {0, 1, 2, 3, 4, 5, 6, 7}, {0}, {0, 1, 2, 3, 4, 5, 6, 7}},
    {"equal keeps arrival order", 6, {0}, {3, 3, 3, 3, 3, 3}, {0}, {0, 1, 2, 3, 4, 5}},
    {"interleaved pairs", 6, {0}, {1, 0, 1, 0, 1, 0}, {0}, {1, 3, 5, 0, 2, 4}},
    {"single", 1, {0}, {4}, {0}, {0}},
};

/* Round robin across owners within one urgency; levels still come first. */
static const seq_case_t owner_cases[] = {
    {"three owners in blocks",
     12,
     {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2},
     {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}},
    {"three owners interleaved",
     9,
     {0, 1, 2, 0, 1, 2, 0, 1, 2},
     {3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 1, 2, 3, 4, 5, 6, 7, 8}},
    {"ring in order of first arrival",
     9,
     {2, 2, 2, 1, 1, 1, 0, 0, 0},
     {3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 3, 6, 1, 4, 7, 2, 5, 8}},
    {"uneven backlogs",
     9,
     {0, 0, 0, 0, 0, 0, 1, 2, 2},
     {3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 6, 7, 1, 8, 2, 3, 4, 5}},
    {"owners at different levels do not alternate",
     6,
     {1, 1, 1, 0, 0, 0},
     {2, 2, 2, 1, 1, 1},
     {0},
     {3, 4, 5, 0, 1, 2}},
    {"round robin per level", 4, {0, 1, 0, 1}, {3, 3, 0, 0}, {0}, {2, 3, 0, 1}},
    /* Weights do not matter across owners: each owner gets its turn. */
    {"weights do not cross owners",
     6,
     {0, 0, 0, 1, 1, 1},
     {3, 3, 3, 3, 3, 3},
     {256, 256, 256, 1, 1, 1},
     {0, 3, 1, 4, 2, 5}},
};

/* Runs of up to 3 dispatches per owner before the next owner's turn. */
static const seq_case_t run_cases[] = {
    {"three owners in blocks",
     12,
     {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2},
     {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 1, 2, 4, 5, 6, 8, 9, 10, 3, 7, 11}},
    {"a short backlog ends its run early",
     9,
     {0, 0, 0, 0, 0, 0, 1, 2, 2},
     {3, 3, 3, 3, 3, 3, 3, 3, 3},
     {0},
     {0, 1, 2, 6, 7, 8, 3, 4, 5}},
    {"levels still come first",
     8,
     {0, 0, 0, 0, 1, 1, 1, 1},
     {3, 3, 3, 3, 1, 1, 3, 3},
     {0},
     {4, 5, 0, 1, 2, 6, 7, 3}},
    {"weights within a run",
     6,
     {0, 0, 0, 1, 1, 1},
     {3, 3, 3, 3, 3, 3},
     {256, 256, 1, 16, 16, 16},
     {0, 1, 2, 3, 4, 5}},
};

static void test_urgency_order(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(urgency_cases); i++)
        run_seq_case(&urgency_cases[i], PROTO_SCHED_PRIORITY);
}

static void test_owner_round_robin(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(owner_cases); i++)
        run_seq_case(&owner_cases[i], PROTO_SCHED_PRIORITY);
}

static void test_owner_runs(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(run_cases); i++)
        run_seq_case_runs(&run_cases[i], PROTO_SCHED_PRIORITY, 3);
    /* FIFO is arrival order whatever the runs. */
    for (size_t i = 0; i < COUNT(run_cases); i++)
        run_seq_case_runs(&run_cases[i], PROTO_SCHED_FIFO, 3);
}

/* An owner served out of turn (its entry aged) does not cut the run of the
 * owner at the head of the ring. */
static void test_owner_runs_out_of_turn(void **state)
{
    static const int want[][5] = {{0, 3, 1, 4, 2}, {0, 3, 1, 2, 4}}; /* quantum 1, 4 */
    static const uint32_t quanta[] = {1, 4};

    (void)state;
    for (size_t q = 0; q < COUNT(quanta); q++) {
        proto_sched_entry_t e[5];
        proto_sched_t s;
        assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, 100, NULL), 0);
        proto_sched_set_quantum(&s, quanta[q]);
        /* Owner 0 comes first (head of the ring); owner 1's e[3] is the
         * second oldest and ages at t=100. */
        entry_set(&e[0], owner(0), 3, DEFAULT_WEIGHT);
        entry_set(&e[3], owner(1), 3, DEFAULT_WEIGHT);
        entry_set(&e[1], owner(0), 3, DEFAULT_WEIGHT);
        entry_set(&e[2], owner(0), 3, DEFAULT_WEIGHT);
        entry_set(&e[4], owner(1), 3, DEFAULT_WEIGHT);
        enqueue(&s, &e[0], 0);
        enqueue(&s, &e[3], 0);
        enqueue(&s, &e[1], 50);
        enqueue(&s, &e[2], 50);
        enqueue(&s, &e[4], 50);
        assert_int_equal(dequeue_index(&s, e, 5, 60, ALL), want[q][0]);
        for (int i = 1; i < 5; i++)
            assert_int_equal(dequeue_index(&s, e, 5, 100, ALL), want[q][i]);
        assert_drained(&s);
        proto_sched_free(&s);
    }
}

/* A connection with a long backlog does not hold back a newcomer. */
static void test_owner_newcomer(void **state)
{
    enum { N = 500 };
    static proto_sched_entry_t e[N + 1]; /* e[N] is owner B's */
    proto_sched_t s;
    int first[2];

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < N; i++) {
        entry_set(&e[i], owner(0), 3, DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 0);
    }
    entry_set(&e[N], owner(1), 3, DEFAULT_WEIGHT);
    enqueue(&s, &e[N], 0);

    first[0] = dequeue_index(&s, e, N + 1, 0, ALL);
    first[1] = dequeue_index(&s, e, N + 1, 0, ALL);
    assert_true(first[0] == N || first[1] == N);
    /* A's entries come out in arrival order around it. */
    int next = 0;
    for (int k = 0; k < 2; k++) {
        if (first[k] != N)
            assert_int_equal(first[k], next++);
    }
    while (next < N)
        assert_int_equal(dequeue_index(&s, e, N + 1, 0, ALL), next++);
    assert_drained(&s);
    proto_sched_free(&s);
}

static void test_fifo_order(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(urgency_cases); i++)
        run_seq_case(&urgency_cases[i], PROTO_SCHED_FIFO);
    for (size_t i = 0; i < COUNT(owner_cases); i++)
        run_seq_case(&owner_cases[i], PROTO_SCHED_FIFO);
}

/* The oldest entry blocks the line when it may not use the connection. */
static void test_fifo_head_of_line(void **state)
{
    proto_sched_entry_t e[3];
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_FIFO, NO_AGING, NULL), 0);
    entry_set(&e[0], owner(0), 5, DEFAULT_WEIGHT);
    entry_set(&e[1], owner(1), 1, DEFAULT_WEIGHT);
    entry_set(&e[2], owner(0), 0, DEFAULT_WEIGHT);
    for (int i = 0; i < 3; i++)
        enqueue(&s, &e[i], (uint64_t)i);

    assert_int_equal(dequeue_index(&s, e, 3, 10, 2), -1);
    assert_int_equal(dequeue_index(&s, e, 3, 10, 4), -1);
    assert_int_equal(dequeue_index(&s, e, 3, 10, 5), 0);
    assert_int_equal(dequeue_index(&s, e, 3, 10, 0), -1); /* e[1] is u=1 */
    assert_int_equal(dequeue_index(&s, e, 3, 10, 1), 1);
    assert_int_equal(dequeue_index(&s, e, 3, 10, 0), 2);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* ---- weights (test 3) ---- */

typedef struct weight_case {
    uint16_t w1, w2;
    double want; /* dispatches of w1 per dispatch of w2 */
} weight_case_t;

/*
 * One owner and urgency; KEEP entries of each weight stay queued (each
 * dispatched entry is queued again at the tail, like a fresh request of the
 * same weight). Checks the dispatch ratio and arrival order within a weight.
 */
static void run_weight_case(const weight_case_t *c)
{
    enum { KEEP = 50, N = 2 * KEEP, DISPATCHES = 10000 };
    proto_sched_entry_t e[N];
    unsigned seq[N], next_seq = 0, last_seq[2] = {0, 0};
    unsigned count[2] = {0, 0};
    proto_sched_t s;

    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    /* Even indices have w1, odd w2; queued interleaved. */
    for (int i = 0; i < N; i++) {
        entry_set(&e[i], owner(0), 3, i % 2 == 0 ? c->w1 : c->w2);
        enqueue(&s, &e[i], 0);
        seq[i] = ++next_seq;
    }
    for (int k = 0; k < DISPATCHES; k++) {
        int i = dequeue_index(&s, e, N, 0, ALL);
        assert_true(i >= 0);
        int g = i % 2;
        count[g]++;
        assert_true(seq[i] > last_seq[g]);
        if (c->w1 == c->w2) /* one flow: strict arrival order */
            assert_true(seq[i] > last_seq[1 - g]);
        last_seq[g] = seq[i];
        entry_set(&e[i], owner(0), 3, g == 0 ? c->w1 : c->w2);
        enqueue(&s, &e[i], 0);
        seq[i] = ++next_seq;
    }
    assert_int_equal(proto_sched_len(&s), N);
    double ratio = count[1] > 0 ? (double)count[0] / count[1] : 1e9;
    if (ratio < c->want * 0.9 || ratio > c->want * 1.1)
        print_error("weights %u:%u: %u vs %u dispatches (ratio %.4f, want %.4f)\n", c->w1, c->w2,
                    count[0], count[1], ratio, c->want);
    assert_true(count[0] > 0 && count[1] > 0);
    assert_true(ratio >= c->want * 0.9 && ratio <= c->want * 1.1);
    proto_sched_free(&s);
}

static void test_weights(void **state)
{
    static const weight_case_t cases[] = {
        {256, 32, 8.0},  {32, 256, 1.0 / 8},  {2, 4, 0.5}, {4, 2, 2.0},     {16, 16, 1.0},
        {256, 1, 256.0}, {100, 3, 100.0 / 3}, {1, 1, 1.0}, {220, 110, 2.0},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_weight_case(&cases[i]);
}

/* A weight whose flow empties and comes back does not get ahead of the
 * flows that kept waiting: with 256 vs 32 and one entry of each, exactly 8
 * heavy dispatches per light one still holds. */
static void test_weights_refilled_flow(void **state)
{
    proto_sched_entry_t heavy, light;
    proto_sched_t s;
    unsigned nheavy = 0, nlight = 0;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    entry_set(&heavy, owner(0), 3, 256);
    entry_set(&light, owner(0), 3, 32);
    enqueue(&s, &heavy, 0);
    enqueue(&s, &light, 0);
    for (int k = 0; k < 9000; k++) {
        proto_sched_entry_t *e = proto_sched_dequeue(&s, 0, ALL);
        assert_non_null(e);
        if (e == &heavy)
            nheavy++;
        else
            nlight++;
        enqueue(&s, e, 0);
    }
    assert_in_range(nheavy, 7900, 8100);
    assert_in_range(nlight, 900, 1100);
    proto_sched_free(&s);
}

/* ---- aging (test 4) ---- */

typedef struct aging_case {
    uint64_t now;
    int want_old; /* the u=7 entry from t=0 goes first */
} aging_case_t;

/* Queues the old u=7 entry at t=0 and u=0 entries at t=500, 600, 700, 800. */
static void aging_setup(proto_sched_t *s, proto_sched_entry_t e[5])
{
    assert_int_equal(proto_sched_init(s, PROTO_SCHED_PRIORITY, 1000, NULL), 0);
    entry_set(&e[0], owner(0), 7, DEFAULT_WEIGHT);
    enqueue(s, &e[0], 0);
    for (int i = 1; i < 5; i++) {
        entry_set(&e[i], owner(1), 0, DEFAULT_WEIGHT);
        enqueue(s, &e[i], 400 + 100 * (uint64_t)i);
    }
}

static void test_aging(void **state)
{
    static const aging_case_t cases[] = {
        {0, 0}, {500, 0}, {900, 0}, {999, 0}, {1000, 1}, {1001, 1}, {5000, 1},
    };
    proto_sched_entry_t e[5];
    proto_sched_t s;

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        aging_setup(&s, e);
        assert_int_equal(dequeue_index(&s, e, 5, cases[i].now, ALL), cases[i].want_old ? 0 : 1);
        proto_sched_free(&s);
    }

    /* The same scenario over time. */
    aging_setup(&s, e);
    assert_int_equal(dequeue_index(&s, e, 5, 900, ALL), 1);
    assert_int_equal(dequeue_index(&s, e, 5, 950, ALL), 2);
    assert_int_equal(dequeue_index(&s, e, 5, 1000, ALL), 0);
    assert_int_equal(dequeue_index(&s, e, 5, 1000, ALL), 3);
    assert_int_equal(dequeue_index(&s, e, 5, 1000, ALL), 4);
    assert_drained(&s);
    proto_sched_free(&s);

    /* An aged entry still obeys max_urgency. */
    aging_setup(&s, e);
    assert_int_equal(dequeue_index(&s, e, 5, 2000, 3), 1);
    assert_int_equal(dequeue_index(&s, e, 5, 2000, ALL), 0);
    proto_sched_free(&s);

    /* Once everything has aged, dispatch is oldest first. */
    aging_setup(&s, e);
    for (int i = 0; i < 5; i++)
        assert_int_equal(dequeue_index(&s, e, 5, 10000, ALL), i);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* max_wait_ms = 0: every entry has aged at once, so priority mode is FIFO. */
static void test_aging_zero_wait(void **state)
{
    proto_sched_entry_t e[4];
    proto_sched_t s;
    static const uint8_t urgency[] = {7, 0, 5, 1};

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, 0, NULL), 0);
    for (int i = 0; i < 4; i++) {
        entry_set(&e[i], owner(i), urgency[i], DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 100);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(dequeue_index(&s, e, 4, 100, ALL), i);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* ---- max_urgency filter (test 5) ---- */

static void test_max_urgency(void **state)
{
    proto_sched_entry_t e[2];
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    entry_set(&e[0], owner(0), 5, DEFAULT_WEIGHT); /* older, less urgent */
    entry_set(&e[1], owner(0), 1, DEFAULT_WEIGHT);
    enqueue(&s, &e[0], 0);
    enqueue(&s, &e[1], 0);

    assert_int_equal(dequeue_index(&s, e, 2, 0, 0), -1);
    assert_int_equal(dequeue_index(&s, e, 2, 0, 2), 1);
    assert_int_equal(dequeue_index(&s, e, 2, 0, 2), -1);
    assert_int_equal(dequeue_index(&s, e, 2, 0, 4), -1);
    assert_true(proto_sched_is_queued(&e[0]));
    assert_int_equal(proto_sched_len(&s), 1);
    assert_int_equal(dequeue_index(&s, e, 2, 0, ALL), 0);
    assert_drained(&s);

    /* Out-of-range limits are clamped: -1 acts as 0, 100 as 7. */
    entry_set(&e[0], owner(0), 0, DEFAULT_WEIGHT);
    entry_set(&e[1], owner(0), 7, DEFAULT_WEIGHT);
    enqueue(&s, &e[0], 0);
    enqueue(&s, &e[1], 0);
    assert_int_equal(dequeue_index(&s, e, 2, 0, -1), 0);
    assert_int_equal(dequeue_index(&s, e, 2, 0, -1), -1);
    assert_int_equal(dequeue_index(&s, e, 2, 0, 100), 1);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* ---- the parent_of hook (test 7) ---- */

/* An exchange-like owner of an entry, with its RFC 7540 parent. */
typedef struct node {
    int id;
    proto_sched_entry_t entry;
    struct node *parent;
} node_t;

/* Returns the parent whether it waits or not: the scheduler must check. */
static proto_sched_entry_t *node_parent_of(proto_sched_entry_t *e)
{
    node_t *n = proto_container_of(e, node_t, entry);
    return n->parent != NULL ? &n->parent->entry : NULL;
}

typedef struct parent_case {
    const char *name;
    size_t n;
    int parent[8]; /* index of the parent node, -1 for none */
    uint8_t urgency[8];
    size_t nq;
    int enqueue[8]; /* nodes queued, in this order; the others never are */
    int max_urgency;
    size_t nwant;
    int want[8]; /* nodes dispatched, in order, before NULL */
} parent_case_t;

static void run_parent_case(const parent_case_t *c)
{
    node_t nodes[8];
    proto_sched_t s;

    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, node_parent_of), 0);
    for (size_t i = 0; i < c->n; i++) {
        nodes[i].id = (int)i;
        nodes[i].parent = c->parent[i] >= 0 ? &nodes[c->parent[i]] : NULL;
        entry_set(&nodes[i].entry, owner(0), c->urgency[i], DEFAULT_WEIGHT);
    }
    for (size_t i = 0; i < c->nq; i++)
        enqueue(&s, &nodes[c->enqueue[i]].entry, 0);
    for (size_t i = 0; i <= c->nwant; i++) {
        proto_sched_entry_t *e = proto_sched_dequeue(&s, 0, c->max_urgency);
        int got = e != NULL ? proto_container_of(e, node_t, entry)->id : -1;
        int want = i < c->nwant ? c->want[i] : -1;
        if (got != want)
            print_error("case \"%s\": dispatch %zu got node %d, want %d\n", c->name, i, got, want);
        assert_int_equal(got, want);
    }
    assert_int_equal(proto_sched_len(&s), c->nq - c->nwant);
    proto_sched_free(&s);
}

static void test_parent_of(void **state)
{
    static const parent_case_t cases[] = {
        {"child queued before parent", 2, {-1, 0}, {3, 3}, 2, {1, 0}, ALL, 2, {0, 1}},
        {"chain queued child first", 3, {-1, 0, 1}, {3, 3, 3}, 3, {2, 1, 0}, ALL, 3, {0, 1, 2}},
        {"chain queued middle first", 3, {-1, 0, 1}, {3, 3, 3}, 3, {1, 2, 0}, ALL, 3, {0, 1, 2}},
        {"siblings wait for their parent",
         3,
         {-1, 0, 0},
         {3, 3, 3},
         3,
         {1, 2, 0},
         ALL,
         3,
         {0, 1, 2}},
        {"parent never queued", 2, {-1, 0}, {3, 3}, 1, {1}, ALL, 1, {1}},
        {"grandparent never queued", 3, {-1, 0, 1}, {3, 3, 3}, 2, {2, 1}, ALL, 2, {1, 2}},
        /* The parent goes first by urgency; then the child's parent is gone. */
        {"parent already dispatched", 2, {-1, 0}, {0, 3}, 2, {1, 0}, ALL, 2, {0, 1}},
        /* A parent holds a child back only when it is at least as urgent. */
        {"less urgent parent does not hold back", 2, {-1, 0}, {7, 0}, 2, {1, 0}, ALL, 2, {1, 0}},
        /* Chromium: images (u=3) in one exclusive chain, then a fetch with
         * priority high (u=1) whose RFC 7540 parent is a waiting image. */
        {"urgent fetch under an image chain",
         6,
         {-1, 0, 1, 2, 3, 3},
         {3, 3, 3, 3, 3, 1},
         6,
         {0, 1, 2, 3, 4, 5},
         ALL,
         6,
         {5, 0, 1, 2, 3, 4}},
        {"parent above max_urgency does not block", 2, {-1, 0}, {5, 1}, 2, {1, 0}, 2, 1, {1}},
        {"walk stops below a parent above max_urgency",
         3,
         {-1, 0, 1},
         {6, 2, 2},
         3,
         {2, 1, 0},
         3,
         2,
         {1, 2}},
        {"own parent", 1, {0}, {3}, 1, {0}, ALL, 1, {0}},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        run_parent_case(&cases[i]);
}

/* A malformed tree (a cycle, a long chain) must not hang the scheduler. */
static void test_parent_of_malformed(void **state)
{
    enum { N = 200 };
    static node_t nodes[N];
    proto_sched_t s;
    int seen[2] = {0, 0};

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, node_parent_of), 0);
    for (int i = 0; i < 2; i++) {
        nodes[i].id = i;
        nodes[i].parent = &nodes[1 - i];
        entry_set(&nodes[i].entry, owner(0), 3, DEFAULT_WEIGHT);
        enqueue(&s, &nodes[i].entry, 0);
    }
    for (int k = 0; k < 2; k++) {
        proto_sched_entry_t *e = proto_sched_dequeue(&s, 0, ALL);
        assert_non_null(e);
        seen[proto_container_of(e, node_t, entry)->id]++;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_drained(&s);

    /* A chain longer than the walk's bound: still every node exactly once,
     * and the root (node 0) once the walk can reach it. */
    for (int i = 0; i < N; i++) {
        nodes[i].id = i;
        nodes[i].parent = i > 0 ? &nodes[i - 1] : NULL;
        entry_set(&nodes[i].entry, owner(0), 3, DEFAULT_WEIGHT);
    }
    for (int i = N - 1; i >= 0; i--)
        enqueue(&s, &nodes[i].entry, 0);
    int done[N] = {0};
    for (int k = 0; k < N; k++) {
        proto_sched_entry_t *e = proto_sched_dequeue(&s, 0, ALL);
        assert_non_null(e);
        int id = proto_container_of(e, node_t, entry)->id;
        assert_int_equal(done[id], 0);
        done[id] = 1;
    }
    assert_drained(&s);
    proto_sched_free(&s);
}

/* ---- remove (test 8) ---- */

static void test_remove(void **state)
{
    proto_sched_entry_t e[6], never;
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < 5; i++) {
        entry_set(&e[i], owner(0), 3, DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 0);
    }
    entry_set(&e[5], owner(1), 3, DEFAULT_WEIGHT); /* alone in its bucket */
    enqueue(&s, &e[5], 0);
    assert_int_equal(s.nbuckets, 2);

    proto_sched_remove(&s, &e[2]); /* middle */
    assert_false(proto_sched_is_queued(&e[2]));
    assert_int_equal(proto_sched_len(&s), 5);
    proto_sched_remove(&s, &e[0]); /* head */
    assert_int_equal(proto_sched_len(&s), 4);
    proto_sched_remove(&s, &e[5]); /* last of its bucket */
    assert_int_equal(proto_sched_len(&s), 3);
    assert_int_equal(s.nbuckets, 1);

    /* Twice, and never queued: no-ops. */
    proto_sched_remove(&s, &e[2]);
    proto_sched_remove(&s, &e[0]);
    proto_sched_remove(&s, &e[5]);
    entry_set(&never, owner(0), 3, DEFAULT_WEIGHT);
    proto_sched_remove(&s, &never);
    assert_int_equal(proto_sched_len(&s), 3);

    /* A removed entry may be queued again; it goes to the back. */
    enqueue(&s, &e[0], 0);
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 1);
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 3);
    proto_sched_remove(&s, &e[0]); /* tail */
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 4);
    assert_drained(&s);

    /* Removing a dispatched entry is a no-op too. */
    enqueue(&s, &e[1], 0);
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 1);
    proto_sched_remove(&s, &e[1]);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* Removing the last entry of one weight keeps the other weights going, and
 * removing every entry of a level empties the level's ring. */
static void test_remove_flows_and_levels(void **state)
{
    proto_sched_entry_t e[6];
    proto_sched_t s;
    static const struct {
        uint8_t urgency;
        uint16_t weight;
    } spec[] = {{2, 256}, {2, 32}, {2, 256}, {5, 16}, {5, 16}, {2, 1}};

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < 6; i++) {
        entry_set(&e[i], owner(0), spec[i].urgency, spec[i].weight);
        enqueue(&s, &e[i], 0);
    }
    proto_sched_remove(&s, &e[1]); /* the only weight-32 entry */
    proto_sched_remove(&s, &e[5]); /* the only weight-1 entry */
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 0);
    assert_int_equal(dequeue_index(&s, e, 6, 0, ALL), 2);
    proto_sched_remove(&s, &e[3]);
    proto_sched_remove(&s, &e[4]);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* Freeing with entries still queued leaks nothing (checked under ASan). */
static void test_free_with_entries(void **state)
{
    enum { N = 300 };
    static proto_sched_entry_t e[N];
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, 1000, NULL), 0);
    for (int i = 0; i < N; i++) {
        entry_set(&e[i], owner(i % 97), i % PROTO_SCHED_LEVELS, 1 + (i * 37) % 256);
        enqueue(&s, &e[i], (uint64_t)i);
    }
    assert_non_null(proto_sched_dequeue(&s, 500, ALL));
    proto_sched_free(&s);
    assert_null(s.table);

    /* Forgotten entries are detached: an exchange freed after its pool
     * still calls remove (and may call update), which must do nothing. */
    assert_int_equal(proto_sched_len(&s), 0);
    for (int i = 0; i < N; i++) {
        assert_false(proto_sched_is_queued(&e[i]));
        assert_int_equal(proto_sched_update(&s, &e[i], 0, 256), 0);
        proto_sched_remove(&s, &e[i]);
    }
    assert_null(proto_sched_dequeue(&s, 500, ALL));

    /* Freeing an empty scheduler, and freeing twice, is fine as well. */
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_FIFO, 0, NULL), 0);
    proto_sched_free(&s);
    proto_sched_free(&s);
}

/* ---- update (test 9) ---- */

static void test_update(void **state)
{
    proto_sched_entry_t e[5], never;
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < 3; i++) {
        entry_set(&e[i], owner(0), 7, DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 0);
    }
    entry_set(&e[3], owner(1), 3, DEFAULT_WEIGHT);
    enqueue(&s, &e[3], 0);
    entry_set(&e[4], owner(0), 3, DEFAULT_WEIGHT);
    enqueue(&s, &e[4], 0);

    assert_int_equal(proto_sched_update(&s, &e[1], 0, DEFAULT_WEIGHT), 0);
    assert_true(proto_sched_is_queued(&e[1]));
    assert_int_equal(e[1].urgency, 0);
    assert_int_equal(proto_sched_len(&s), 5);
    assert_int_equal(dequeue_index(&s, e, 5, 0, ALL), 1);

    /* The same priority again keeps the entry's place. */
    assert_int_equal(proto_sched_update(&s, &e[3], 3, DEFAULT_WEIGHT), 0);
    assert_int_equal(dequeue_index(&s, e, 5, 0, ALL), 3);

    /* Not queued: dispatched or never queued. Nothing changes. */
    assert_int_equal(proto_sched_update(&s, &e[1], 7, 1), 0);
    assert_false(proto_sched_is_queued(&e[1]));
    assert_int_equal(e[1].urgency, 0);
    entry_set(&never, owner(0), 4, DEFAULT_WEIGHT);
    assert_int_equal(proto_sched_update(&s, &never, 0, 256), 0);
    assert_false(proto_sched_is_queued(&never));
    assert_int_equal(proto_sched_len(&s), 3);

    /* Down to u=7: e[4] now waits behind e[0] and e[2]. */
    assert_int_equal(proto_sched_update(&s, &e[4], 7, DEFAULT_WEIGHT), 0);
    assert_int_equal(dequeue_index(&s, e, 5, 0, ALL), 0);
    assert_int_equal(dequeue_index(&s, e, 5, 0, ALL), 2);
    assert_int_equal(dequeue_index(&s, e, 5, 0, ALL), 4);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* A new weight moves the entry to its new flow; the stride follows it. */
static void test_update_weight(void **state)
{
    enum { N = 40 };
    proto_sched_entry_t e[N];
    proto_sched_t s;
    int heavy = 0;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < N; i++) {
        entry_set(&e[i], owner(0), 3, 32);
        enqueue(&s, &e[i], 0);
    }
    /* Half of them become weight 256 (odd indices). */
    for (int i = 1; i < N; i += 2)
        assert_int_equal(proto_sched_update(&s, &e[i], 3, 256), 0);
    assert_int_equal(proto_sched_len(&s), N);
    /* In the first 18 dispatches the heavy flow gets about 16. */
    for (int k = 0; k < 18; k++) {
        int i = dequeue_index(&s, e, N, 0, ALL);
        assert_true(i >= 0);
        heavy += i % 2;
    }
    assert_in_range(heavy, 15, 17);
    while (proto_sched_dequeue(&s, 0, ALL) != NULL)
        ;
    assert_drained(&s);
    proto_sched_free(&s);
}

/* Reprioritizing keeps the time of arrival, so aging still applies. */
static void test_update_keeps_age(void **state)
{
    proto_sched_entry_t e[4];
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, 1000, NULL), 0);
    entry_set(&e[0], owner(0), 0, DEFAULT_WEIGHT);
    enqueue(&s, &e[0], 0);
    for (int i = 1; i < 4; i++) {
        entry_set(&e[i], owner(1), 0, DEFAULT_WEIGHT);
        enqueue(&s, &e[i], 400 + 100 * (uint64_t)i);
    }
    assert_int_equal(proto_sched_update(&s, &e[0], 7, 256), 0);
    assert_int_equal(e[0].enqueued_ms, 0);
    assert_int_equal(dequeue_index(&s, e, 4, 900, ALL), 1);
    assert_int_equal(dequeue_index(&s, e, 4, 1000, ALL), 0);
    assert_int_equal(dequeue_index(&s, e, 4, 1000, ALL), 2);
    proto_sched_free(&s);
}

/* ---- clamping (test 10) ---- */

typedef struct clamp_case {
    int urgency, weight; /* as set (enqueue) or passed (update) */
    int want_urgency, want_weight;
} clamp_case_t;

static void test_clamping(void **state)
{
    static const clamp_case_t cases[] = {
        {200, 16, 7, 16}, {7, 0, 7, 1},         {0, 1000, 0, 256}, {8, 257, 7, 256},
        {0, 1, 0, 1},     {255, 65535, 7, 256}, {3, 256, 3, 256},
    };
    proto_sched_entry_t e, other;
    proto_sched_t s;

    (void)state;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (size_t i = 0; i < COUNT(cases); i++) {
        const clamp_case_t *c = &cases[i];

        /* The fields are uint8_t/uint16_t: these values all fit. */
        entry_set(&e, owner(0), c->urgency, c->weight);
        enqueue(&s, &e, 0);
        assert_int_equal(e.urgency, c->want_urgency);
        assert_int_equal(e.weight, c->want_weight);
        if (c->want_urgency > 0)
            assert_null(proto_sched_dequeue(&s, 0, c->want_urgency - 1));
        assert_ptr_equal(proto_sched_dequeue(&s, 0, c->want_urgency), &e);

        /* update() clamps its int arguments the same way. */
        entry_set(&e, owner(0), 1, 2);
        enqueue(&s, &e, 0);
        assert_int_equal(proto_sched_update(&s, &e, c->urgency, c->weight), 0);
        assert_int_equal(e.urgency, c->want_urgency);
        assert_int_equal(e.weight, c->want_weight);
        assert_ptr_equal(proto_sched_dequeue(&s, 0, c->want_urgency), &e);
        assert_drained(&s);
    }

    /* Negative arguments to update() clamp to the bottom of the range. */
    entry_set(&e, owner(0), 5, 5);
    entry_set(&other, owner(0), 0, DEFAULT_WEIGHT);
    enqueue(&s, &other, 0);
    enqueue(&s, &e, 0);
    assert_int_equal(proto_sched_update(&s, &e, -3, -100), 0);
    assert_int_equal(e.urgency, 0);
    assert_int_equal(e.weight, 1);
    assert_ptr_equal(proto_sched_dequeue(&s, 0, 0), &other);
    assert_ptr_equal(proto_sched_dequeue(&s, 0, 0), &e);
    assert_drained(&s);
    proto_sched_free(&s);
}

/* ---- scale (test 11) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic across platforms. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void test_scale(void **state)
{
    enum { N = 100000, OWNERS = 1000 };
    proto_sched_entry_t *e = calloc(N, sizeof(*e));
    unsigned char *seen = calloc(N, 1);
    proto_sched_t s;
    struct timespec t0, t1, t2;

    (void)state;
    assert_non_null(e);
    assert_non_null(seen);
    rng_state = 0x9e3779b97f4a7c15ull;
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        uint64_t r = rng_next();
        entry_set(&e[i], owner((int)(r % OWNERS)), (int)((r >> 16) % PROTO_SCHED_LEVELS),
                  1 + (int)((r >> 24) % 256));
        assert_int_equal(proto_sched_enqueue(&s, &e[i], 1000), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(proto_sched_len(&s), N);
    assert_true(s.nbuckets <= (size_t)OWNERS * PROTO_SCHED_LEVELS);
    assert_true(s.table_size >= s.nbuckets);

    int last_urgency = 0;
    for (int k = 0; k < N; k++) {
        proto_sched_entry_t *x = proto_sched_dequeue(&s, 1000, ALL);
        assert_non_null(x);
        size_t i = (size_t)(x - e);
        assert_true(i < N);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        assert_true(x->urgency >= last_urgency);
        last_urgency = x->urgency;
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    assert_drained(&s);
    print_message("    scale: %d entries, %d owners: enqueue %.1f ms, dequeue %.1f ms\n", N, OWNERS,
                  elapsed_ms(&t0, &t1), elapsed_ms(&t1, &t2));
    proto_sched_free(&s);
    free(seen);
    free(e);
}

/* Round robin holds with many owners: every window of OWNERS dispatches
 * serves each owner once. */
static void test_scale_round_robin(void **state)
{
    enum { OWNERS = 1000, PER = 10, N = OWNERS * PER };
    proto_sched_entry_t *e = calloc(N, sizeof(*e));
    int *last_round = calloc(OWNERS, sizeof(int));
    proto_sched_t s;

    (void)state;
    assert_non_null(e);
    assert_non_null(last_round);
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    for (int i = 0; i < N; i++) { /* owner by owner */
        entry_set(&e[i], owner(i / PER), 4, 1 + i % 256);
        enqueue(&s, &e[i], 0);
    }
    for (int k = 0; k < N; k++) {
        int i = dequeue_index(&s, e, N, 0, ALL);
        assert_true(i >= 0);
        int o = i / PER, round = k / OWNERS + 1;
        assert_int_equal(o, k % OWNERS);
        assert_int_equal(last_round[o], round - 1);
        last_round[o] = round;
    }
    assert_drained(&s);
    proto_sched_free(&s);
    free(last_round);
    free(e);
}

/* The (owner, urgency) table grows with the number of buckets and still
 * finds every bucket afterwards. */
static void test_table_growth(void **state)
{
    enum { OWNERS = 4096, N = OWNERS * PROTO_SCHED_LEVELS };
    proto_sched_entry_t *first = calloc(N, sizeof(*first));
    proto_sched_entry_t *second = calloc(N, sizeof(*second));
    proto_sched_t s;
    size_t initial;

    (void)state;
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(proto_sched_init(&s, PROTO_SCHED_PRIORITY, NO_AGING, NULL), 0);
    initial = s.table_size;
    for (int i = 0; i < N; i++) {
        entry_set(&first[i], owner(i / PROTO_SCHED_LEVELS), i % PROTO_SCHED_LEVELS, DEFAULT_WEIGHT);
        enqueue(&s, &first[i], 0);
        assert_int_equal(s.nbuckets, (size_t)i + 1);
        assert_true(s.table_size >= s.nbuckets);
    }
    assert_true(s.table_size > initial);
    assert_int_equal(s.table_size & (s.table_size - 1), 0); /* a power of two */

    /* The same keys again: found, not duplicated. */
    for (int i = 0; i < N; i++) {
        entry_set(&second[i], owner(i / PROTO_SCHED_LEVELS), i % PROTO_SCHED_LEVELS,
                  DEFAULT_WEIGHT);
        enqueue(&s, &second[i], 0);
    }
    assert_int_equal(s.nbuckets, N);

    /* Every first entry out; each bucket still holds its second one. */
    for (int i = 0; i < N; i++)
        proto_sched_remove(&s, &first[i]);
    assert_int_equal(s.nbuckets, N);
    assert_int_equal(proto_sched_len(&s), N);

    /* Level 0 first, one entry per owner, owners in order of arrival. */
    for (int k = 0; k < OWNERS; k++)
        assert_ptr_equal(proto_sched_dequeue(&s, 0, 0), &second[k * PROTO_SCHED_LEVELS]);
    assert_null(proto_sched_dequeue(&s, 0, 0));
    for (int i = 0; i < N; i++)
        proto_sched_remove(&s, &second[i]);
    assert_drained(&s);
    proto_sched_free(&s);
    free(second);
    free(first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urgency_order),
        cmocka_unit_test(test_owner_round_robin),
        cmocka_unit_test(test_owner_newcomer),
        cmocka_unit_test(test_owner_runs),
        cmocka_unit_test(test_owner_runs_out_of_turn),
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_fifo_head_of_line),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_weights_refilled_flow),
        cmocka_unit_test(test_aging),
        cmocka_unit_test(test_aging_zero_wait),
        cmocka_unit_test(test_max_urgency),
        cmocka_unit_test(test_parent_of),
        cmocka_unit_test(test_parent_of_malformed),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_remove_flows_and_levels),
        cmocka_unit_test(test_free_with_entries),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_update_weight),
        cmocka_unit_test(test_update_keeps_age),
        cmocka_unit_test(test_clamping),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_scale_round_robin),
        cmocka_unit_test(test_table_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
