/*
 * Stream priority, as HTTP/2 clients express it, reduced to what the
 * upstream scheduler orders by: an urgency level and a weight.
 *
 * RFC 9218: the `priority` request field (and PRIORITY_UPDATE frames) carry
 * a Structured Field Dictionary with `u` (urgency 0..7, default 3, lower is
 * more urgent) and `i` (incremental, boolean, default false).
 *
 * RFC 7540 §5.3: each stream has a weight 1..256 (default 16) and a parent.
 * Weights are relative shares between siblings; a root-level weight is
 * also mapped to an urgency so that the two schemes share one scale.
 */
#ifndef PROTO_PRIORITY_H
#define PROTO_PRIORITY_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_URGENCY_DEFAULT 3
#define PROTO_URGENCY_LEVELS 8
#define PROTO_WEIGHT_DEFAULT 16

typedef struct proto_priority {
    uint8_t urgency;     /* 0 (most urgent) .. 7 */
    uint8_t incremental; /* 0 or 1 */
} proto_priority_t;

/*
 * Parses an RFC 9218 priority field value (RFC 8941 dictionary) into *out,
 * starting from out's current values, so a caller merging several field
 * lines calls it once per line with the same out. Tolerant by design, as
 * RFC 9218 §4 asks: unknown members are ignored; a `u` that is not an
 * integer in 0..7 or an `i` that is not a boolean leaves that member as it
 * was; a syntax error stops parsing and keeps what was read before it.
 * Never fails. Returns the number of members applied (for tests and logs).
 */
int proto_priority_parse(const char *value, size_t len, proto_priority_t *out);

/* Default priority: urgency 3, not incremental. */
static inline proto_priority_t proto_priority_default(void)
{
    proto_priority_t p = {PROTO_URGENCY_DEFAULT, 0};
    return p;
}

/*
 * Maps an RFC 7540 weight (1..256, clamped) to an urgency on a log scale:
 * the default weight 16 is urgency 3, and each doubling of the weight is one
 * level more urgent: 256 -> 0, 32 -> 2, 16 -> 3, 8 -> 4, 4 -> 5, 2 -> 6,
 * 1 -> 7. Weights between powers of two round to the nearer level on the
 * log scale (22 -> 3, 23 -> 2), so every weight from 91 up is urgency 0.
 * The reason: RFC 7540 weights are shares, RFC 9218 urgencies are ranks;
 * a client that gives a root stream 16x the default weight (256, as
 * browsers do for HTML and CSS) means "much more important", which on a
 * rank scale is the top of it.
 */
uint8_t proto_priority_urgency_from_weight(int weight);

#endif
