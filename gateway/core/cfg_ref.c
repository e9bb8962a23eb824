#include "gateway/core/cfg_ref.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct snapshot {
    cfg_t cfg; /* first: a cfg_t pointer is the snapshot's */
    atomic_uint refs;
} snapshot_t;

static snapshot_t *of(const cfg_t *cfg)
{
    return (snapshot_t *)((char *)(uintptr_t)cfg - offsetof(snapshot_t, cfg));
}

cfg_t *gw_cfg_ref_new(void)
{
    snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    return &s->cfg;
}

void gw_cfg_ref_hold(const cfg_t *cfg)
{
    atomic_fetch_add_explicit(&of(cfg)->refs, 1, memory_order_relaxed);
}

void gw_cfg_ref_release(const cfg_t *cfg)
{
    if (cfg == NULL)
        return;
    snapshot_t *s = of(cfg);
    /* acq_rel: every thread's reads of the snapshot happen before its free. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    cfg_free(&s->cfg);
    free(s);
}
