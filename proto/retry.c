#include "proto/retry.h"

enum proto_retry proto_retry_decide(const proto_retry_facts_t *f)
{
    if (f->is_resp_head_sent || !f->is_idempotent || !f->is_replayable)
        return PROTO_RETRY_NO;
    if (f->is_stale && f->stale_retries < PROTO_RETRY_STALE_MAX)
        return PROTO_RETRY_FREE;
    if ((f->is_server_fault || f->is_stale) && f->retries_left > 0)
        return PROTO_RETRY_COUNTED;
    return PROTO_RETRY_NO;
}
