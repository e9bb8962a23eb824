/*
 * Accepting client connections and choosing their protocol. A cleartext
 * connection is sniffed: the HTTP/2 connection preface selects HTTP/2 with
 * prior knowledge; anything else is HTTP/1.1 (which may still upgrade to h2c).
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include "gateway/client_conn.h"

struct gw_worker;

/* Binds and listens on the configured address. Returns 0 or a uv error. */
int gw_listener_start(struct gw_worker *w);

/* Stops accepting (drain or shutdown). */
void gw_listener_stop(struct gw_worker *w);

/* Gives a new connection its first protocol: the preface sniffer. */
void gw_listener_select_protocol(gw_client_conn_t *c);

#endif
