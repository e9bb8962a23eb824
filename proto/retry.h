/*
 * Whether a failed attempt of a proxied request is tried again, and at what
 * cost. Pure code: the exchange gathers the facts, this decides.
 */
#ifndef PROTO_RETRY_H
#define PROTO_RETRY_H

#include <stdint.h>

/* Free retries after stale keep-alive failures, per request. */
#define PROTO_RETRY_STALE_MAX 3

typedef struct proto_retry_facts {
    unsigned is_idempotent : 1;     /* the method may be sent twice (RFC 9110 9.2.2) */
    unsigned is_replayable : 1;     /* every body byte sent so far is kept */
    unsigned is_resp_head_sent : 1; /* the client saw a response head */
    unsigned is_server_fault : 1;   /* the failure counts against the server */
    unsigned is_stale : 1;          /* a reused connection died before any response byte */
    uint32_t stale_retries;         /* free retries used so far */
    uint32_t retries_left;          /* counted retries left (the backend's retries) */
} proto_retry_facts_t;

enum proto_retry {
    PROTO_RETRY_NO,
    PROTO_RETRY_FREE,    /* the pool's fault: costs no retry */
    PROTO_RETRY_COUNTED, /* the server's fault: uses one retry, on another server if any */
};

/*
 * A retry is invisible to the client only if nothing of the earlier attempt
 * can have had an effect the client would notice twice: the method is
 * idempotent, the whole body sent so far can be sent again, and no response
 * byte reached the client (nginx's rule: a non-idempotent request is never
 * retried once sent). A stale keep-alive failure is free a few times; a
 * server's failure uses up one of the backend's retries; anything else
 * (timeouts of the client, local shortages, queue limits) is not retried.
 */
enum proto_retry proto_retry_decide(const proto_retry_facts_t *f);

#endif
