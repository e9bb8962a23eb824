/*
 * Reading the configuration again (SIGHUP), the checks only the gateway
 * can make (certificates and keys load and match, backend TLS contexts),
 * and what a reload changes: which listeners keep their sockets and which
 * need new ones. Runs on worker 0's thread: reading files at reload is
 * allowed there; worker 0 then opens the new sockets and the workers swap
 * to the new snapshot through their async handles (gateway/worker.c).
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
 * top of it. Then checks certificates (gw_reload_check_tls), what a reload
 * cannot change (workers, the admin address) and that no new listener
 * wants an address a running listener holds, against running. Every error
 * is logged, one line each; returns a new snapshot (gateway/core/cfg_ref.h,
 * one reference: the caller's), or NULL when anything failed. Binds
 * nothing: whether new addresses are free is learnt by binding them. */
const cfg_t *gw_reload_load(int argc, char **argv, const cfg_t *running);

/* The listener of cfg named name, or NULL. */
const cfg_listener_t *gw_reload_find_listener(const cfg_t *cfg, const char *name);

/* The listener of running that l, a listener of a reloaded snapshot,
 * continues on the same sockets (same name, same address), or NULL when
 * l needs new sockets: it is new, or its address changed. A running
 * listener no new one continues stops accepting once the reload is
 * applied. */
const cfg_listener_t *gw_reload_kept_listener(const cfg_t *running, const cfg_listener_t *l);

#endif
