/*
 * GET /metrics: every worker's counters (gateway/core/metrics.h), summed,
 * in the Prometheus text exposition format 0.0.4, with HELP and TYPE
 * lines. Label names come from here, label values that are gateway facts
 * from the workers' counters (backend names) and the gw_err table (error
 * causes).
 * Pure rendering: the caller (the worker, through the admin listener)
 * gathers what is read.
 */
#ifndef GW_OPS_METRICS_H
#define GW_OPS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "gateway/core/metrics.h"

/* The content type of the page. */
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A certificate a listener serves. */
typedef struct gw_metrics_cert {
    const char *subject; /* RFC 2253 */
    int64_t not_after;   /* Unix seconds */
} gw_metrics_cert_t;

/* What one scrape reads. The workers' counters are read with relaxed
 * atomic loads: other threads may be moving them meanwhile. */
typedef struct gw_metrics_scrape {
    const gw_metrics_t *const *workers;
    size_t nworkers;
    const gw_metrics_cert_t *certs; /* one series per distinct subject */
    size_t ncerts;
} gw_metrics_scrape_t;

/* Renders the page into a malloc'd buffer (*out, *len; the caller frees
 * it). Returns 0, or -1 when out of memory (nothing to free then). */
int gw_metrics_render(const gw_metrics_scrape_t *s, char **out, size_t *len);

#endif
