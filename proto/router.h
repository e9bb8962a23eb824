/*
 * Which backend a request goes to: the configured routes, matched on the
 * request's host and path. Plain code without I/O, unit-tested.
 */
#ifndef PROTO_ROUTER_H
#define PROTO_ROUTER_H

#include <stddef.h>

#include "config/config.h"

/*
 * Returns the index (into cfg->backends) of the backend for a request with
 * this authority (host, optionally ":port" or "[v6]:port") and path.
 * A route matches when its host is absent, equal to the host (case-
 * insensitive), or "*.suffix" with exactly one more label before the
 * suffix; and its path prefix is absent or a prefix of the path. Among
 * matches the most specific wins: exact host over wildcard over any host,
 * then the longest path prefix, then the first declared. No match: the
 * default backend.
 */
size_t proto_route_pick(const cfg_t *cfg, const char *authority, size_t authority_len,
                        const char *path, size_t path_len);

#endif
