/*
 * Upgraded requests (WebSockets): an exchange carried over its own backend
 * connection (gateway/backend/tunnel) instead of a pooled one. The frontend
 * builds the upgrade request head (proto/upgrade) and routes it as usual;
 * this module picks a server, opens the tunnel within max_tunnels, and
 * relays: the backend's answer goes to the frontend's on_head (status 101
 * for an open tunnel: each frontend says it its own way), its bytes through
 * x->resp_body and on_body, as for any response; the client's bytes reach
 * the tunnel through gw_exchange_req_body() and its end through
 * gw_exchange_req_end(). The exchange owns the tunnel and closes it when
 * freed; its access-log line counts the bytes each way.
 */
#ifndef GW_UPGRADE_H
#define GW_UPGRADE_H

#include "gateway/backend/pool.h"
#include "gateway/exchange.h"

/* 1 when this worker takes upgrades at all (max_tunnels > 0). */
int gw_upgrade_is_enabled(const gw_ctx_t *w);

/* Starts x (its head built by proto_upgrade_request) on a server of pool:
 * x hears on_head, on_body and on_fail like any exchange. Over
 * max_tunnels, or with no usable server, it fails with 503 at once. */
void gw_upgrade_start(gw_exchange_t *x, gw_pool_t *pool);

/* Fills key with a fresh Sec-WebSocket-Key (RFC 8441 5: the proxy makes
 * one for an HTTP/2 client). Returns 0, or negative when no random bytes
 * could be had. */
int gw_upgrade_new_key(char key[25]);

#endif
