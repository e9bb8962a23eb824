/*
 * HTTP/1.1 frontend: one client connection that speaks HTTP/1.1 (cleartext,
 * or TLS with ALPN http/1.1). Requests are parsed one at a time
 * (proto/h1_request_parser) and each becomes an exchange on the same pool
 * and scheduler as HTTP/2 streams; pipelined requests wait, buffered, until
 * the answer before them is out, so answers stay in order. A cleartext
 * request may upgrade the connection to HTTP/2 (h2c, RFC 7540 §3.2).
 */
#ifndef GW_H1_CLIENT_H
#define GW_H1_CLIENT_H

#include "gateway/client/client_conn.h"

extern const gw_client_proto_t gw_h1_client_proto;

/* Creates the HTTP/1.1 state of c (whose proto must already be
 * gw_h1_client_proto). is_tls sets the scheme forwarded to the backend
 * ("https" or "http") and rules out the h2c upgrade. Returns 0 or -1 (out
 * of memory). */
int gw_h1_client_attach(gw_client_conn_t *c, int is_tls);

#endif
