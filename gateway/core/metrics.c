#include "gateway/core/metrics.h"

#include <stdio.h>
#include <stdlib.h>

void gw_metrics_init(gw_metrics_t *m)
{
    /* Zero bytes are valid initial values for the atomics. */
    memset(m, 0, sizeof(*m));
}

gw_metrics_backend_t *gw_metrics_backend(gw_metrics_t *m, const char *name)
{
    gw_metrics_backend_t *_Atomic *link = &m->backends;
    gw_metrics_backend_t *b;
    while ((b = atomic_load_explicit(link, memory_order_relaxed)) != NULL) {
        if (strcmp(b->name, name) == 0)
            return b;
        link = &b->next;
    }
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    snprintf(b->name, sizeof(b->name), "%s", name);
    /* Published complete: a scraper that sees the link sees the name. */
    atomic_store_explicit(link, b, memory_order_release);
    return b;
}

void gw_metrics_free(gw_metrics_t *m)
{
    gw_metrics_backend_t *b = atomic_load(&m->backends);
    while (b != NULL) {
        gw_metrics_backend_t *next = atomic_load(&b->next);
        free(b);
        b = next;
    }
    atomic_store(&m->backends, NULL);
}
