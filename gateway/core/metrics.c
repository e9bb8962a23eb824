#include "gateway/core/metrics.h"

#include <stdlib.h>

int gw_metrics_init(gw_metrics_t *m, size_t nbackends)
{
    memset(m, 0, sizeof(*m));
    /* calloc's zeroes are valid initial values for the atomics. */
    m->backends = calloc(nbackends + 1, sizeof(*m->backends));
    if (m->backends == NULL)
        return -1;
    m->nbackends = nbackends;
    return 0;
}

void gw_metrics_free(gw_metrics_t *m)
{
    free(m->backends);
    m->backends = NULL;
    m->nbackends = 0;
}
