/*
 * Shared configuration snapshots. A cfg_t that workers run on is allocated
 * here with a reference count (C11 atomics): each worker holds one on the
 * snapshot it runs, and each generation of backend pools retired by a
 * reload holds one on the snapshot its pools point into, so the snapshot is
 * freed by whichever thread lets go of it last. The snapshot is never
 * written once shared.
 */
#ifndef GW_CFG_REF_H
#define GW_CFG_REF_H

#include "config/config.h"

/* A new, zeroed cfg_t with one reference (the caller's), to fill with
 * cfg_from_args() before it is shared. NULL when out of memory. */
cfg_t *gw_cfg_ref_new(void);

/* Takes one more reference on a snapshot made by gw_cfg_ref_new(). */
void gw_cfg_ref_hold(const cfg_t *cfg);

/* Drops one reference; the last one frees the snapshot (cfg_free and the
 * memory). NULL is ignored. */
void gw_cfg_ref_release(const cfg_t *cfg);

#endif
