/*
 * Reading the configuration again (SIGHUP) and the checks only the gateway
 * can make (certificates and keys load and match, backend TLS contexts).
 * Runs on worker 0's thread: reading files at reload is allowed there; the
 * workers then swap to the new snapshot through their async handles
 * (gateway/worker.c).
 */
#ifndef GW_RELOAD_H
#define GW_RELOAD_H

#include <stdio.h>

#include "config/config.h"

/* Loads every certificate/key pair of every listener and every backend
 * TLS context, as the workers would, and prints each failure to err as
 * "FILE:LINE: ..." (the line of the key or certificate at fault) or
 * "h2gw: ..." for what flags gave. Returns the number of errors. */
int gw_reload_check_tls(const cfg_t *cfg, FILE *err);

/* Reads the configuration as at start: argv are the process's arguments,
 * so the file is read again and the flags given at start stay applied on
 * top of it. Then checks certificates (gw_reload_check_tls) and what a
 * reload cannot change (listener names and addresses, workers, the admin
 * address) against running. Every error is logged, one line each; returns
 * a new snapshot (gateway/core/cfg_ref.h, one reference: the caller's), or
 * NULL when anything failed. */
const cfg_t *gw_reload_load(int argc, char **argv, const cfg_t *running);

/* The listener of cfg named name, or NULL. A reload matches the running
 * listeners to the new ones by name (gw_reload_load made sure each has
 * one at the same address). */
const cfg_listener_t *gw_reload_find_listener(const cfg_t *cfg, const char *name);

#endif
