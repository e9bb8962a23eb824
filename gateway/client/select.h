/*
 * A client connection's protocol: the first one (the preface sniffer, or a
 * wait for the TLS handshake), then HTTP/2 or HTTP/1.1.
 */
#ifndef GW_SELECT_H
#define GW_SELECT_H

#include "gateway/client/client_conn.h"

/* Gives a new connection its first protocol. */
void gw_select_first_protocol(gw_client_conn_t *c);

/* Chooses the application protocol once TLS is up, by ALPN. Returns 0 or
 * negative (the connection closes). */
int gw_select_application(gw_client_conn_t *c, const char *alpn);

#endif
