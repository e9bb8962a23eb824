/*
 * Helpers shared by the libFuzzer targets in test/fuzz/: reading choices
 * from the front of the input, a transcript that two runs of a parser can be
 * compared by, and a check that aborts with a message (libFuzzer then saves
 * the input). Header-only so that every target stays one file.
 */
#ifndef FUZZ_FUZZ_H
#define FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An abort() that says which property broke: a failed check is a finding,
 * not a crash of the harness. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input, consumed from the front for choices and from wherever the
 * target likes for data. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in_t;

static inline uint8_t fz_byte(fz_in_t *in)
{
    uint8_t b;

    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

static inline uint16_t fz_u16(fz_in_t *in)
{
    uint16_t hi = fz_byte(in);
    return (uint16_t)(hi << 8 | fz_byte(in));
}

/* What a parser reported, reduced to a hash and a count: a run fed in one
 * piece and a run fed in many must end with the same transcript. Bodies are
 * hashed as one byte stream, so how they were cut does not count. */
typedef struct fz_log {
    uint64_t hash;
    size_t events;
} fz_log_t;

/* FZ_VERBOSE=1 in the environment prints every logged event, to see where
 * two runs part. */
static inline int fz_verbose(void)
{
    static int v = -1;

    if (v < 0)
        v = getenv("FZ_VERBOSE") != NULL;
    return v;
}

static inline void fz_log_init(fz_log_t *l)
{
    if (fz_verbose())
        fprintf(stderr, "\n--- run\n");
    l->hash = 1469598103934665603ull;
    l->events = 0;
}

static inline void fz_log_bytes(fz_log_t *l, const void *data, size_t len)
{
    const uint8_t *p = data;

    if (fz_verbose())
        fprintf(stderr, "[%.*s]", (int)len, (const char *)data);
    for (size_t i = 0; i < len; i++) {
        l->hash ^= p[i];
        l->hash *= 1099511628211ull;
    }
}

static inline void fz_log_event(fz_log_t *l, char tag)
{
    l->events++;
    if (fz_verbose())
        fprintf(stderr, "\n%c", tag);
    fz_log_bytes(l, &tag, 1);
}

static inline void fz_log_int(fz_log_t *l, long long v)
{
    fz_log_bytes(l, &v, sizeof(v));
}

/* A heap copy of exactly len bytes, so that ASan catches a read past the
 * end that a larger fuzzer buffer would hide. */
static inline uint8_t *fz_dup(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);

    FZ_CHECK(p != NULL);
    if (len > 0)
        memcpy(p, data, len);
    return p;
}

static inline int fz_cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Takes ncuts cut points from in (two bytes each) and places them, sorted,
 * in the bytes that are left of in afterwards: where the stream that
 * follows is split. */
static inline void fz_cuts(fz_in_t *in, size_t ncuts, size_t *cuts)
{
    uint16_t raw[64];

    FZ_CHECK(ncuts <= 64);
    for (size_t i = 0; i < ncuts; i++)
        raw[i] = fz_u16(in);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = in->n ? raw[i] % in->n : 0;
    qsort(cuts, ncuts, sizeof(cuts[0]), fz_cmp_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
