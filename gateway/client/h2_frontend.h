/*
 * HTTP/2 frontend: one nghttp2 server session per client connection. Each
 * request stream becomes an exchange; the response comes back through a data
 * provider that defers while the exchange's buffer is empty.
 */
#ifndef GW_H2_CLIENT_H
#define GW_H2_CLIENT_H

#include "gateway/client/client_conn.h"
#include "gateway/exchange.h"

extern const gw_client_proto_t gw_h2_client_proto;

/* Creates the session for c and queues the server SETTINGS. Returns 0 or -1. */
int gw_h2_client_attach(gw_client_conn_t *c);

/*
 * Switches c to HTTP/2 after an h2c Upgrade (RFC 7540 §3.2) whose
 * "101 Switching Protocols" the caller writes. settings is the decoded
 * HTTP2-Settings payload. x is the upgrading request's exchange, its head
 * built and its request complete but not started: it becomes stream 1
 * (answered there) and this connection owns it from now on. The client's
 * connection preface is expected next on the wire; nothing is sent before
 * it arrives.
 *
 * On success c->proto and c->proto_state are the HTTP/2 ones (the caller
 * frees its own state) and 0 is returned. Returns -1 when out of memory or
 * when nghttp2 refuses the settings; nothing changed then and the caller
 * still owns x.
 */
int gw_h2_client_attach_upgrade(gw_client_conn_t *c, const uint8_t *settings, size_t settings_len,
                                gw_exchange_t *x);

#endif
