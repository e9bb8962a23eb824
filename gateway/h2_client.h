/*
 * HTTP/2 frontend: one nghttp2 server session per client connection. Each
 * request stream becomes an exchange; the response comes back through a data
 * provider that defers while the exchange's buffer is empty.
 */
#ifndef GW_H2_CLIENT_H
#define GW_H2_CLIENT_H

#include "gateway/client_conn.h"

extern const gw_client_proto_t gw_h2_client_proto;

/* Creates the session for c and queues the server SETTINGS. Returns 0 or -1. */
int gw_h2_client_attach(gw_client_conn_t *c);

#endif
