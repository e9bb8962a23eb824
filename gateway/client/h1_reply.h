/*
 * What goes back to an HTTP/1.1 client: response heads (with the framing
 * the client can read: Content-Length, chunked, or the close for HTTP/1.0),
 * interim responses, bodies and trailers, a WebSocket's 101 and the bytes
 * after it, the gateway's own short answers, and the frontend ops the
 * exchange calls. Output is staged in h->pending and moved into the
 * connection's gather buffer only from on_flush.
 */
#ifndef GW_H1_REPLY_H
#define GW_H1_REPLY_H

#include "gateway/client/h1_state.h"

/* The exchange's view of an HTTP/1.1 request. */
extern const gw_frontend_ops_t gw_h1_frontend_ops;

/* Stages bytes of a response head. Returns 0 or PROTO_E_NOMEM. */
int gw_h1_stage_str(h1_client_t *h, const char *s);

/* Stages a complete short text answer with this status. */
void gw_h1_stage_error(h1_client_t *h, int status, uint32_t retry_after_s);

/* Client bytes for the WebSocket tunnel after its 101. Returns 0 or -1. */
int gw_h1_to_tunnel(h1_client_t *h, const uint8_t *data, size_t len);

/* Moves the staged head into the connection's output, and then as much of
 * the response body as one write takes. Return 0 or negative. */
int gw_h1_move_pending(gw_client_conn_t *c, h1_client_t *h);
int gw_h1_write_body(gw_client_conn_t *c, h1_client_t *h);

#endif
