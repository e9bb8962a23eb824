/*
 * HTTP/2 server push from Link: rel=preload (as nghttpx and h2o do it).
 * When a final 2xx response to a client's GET carries `Link: </path>;
 * rel=preload` for the request's own authority, without nopush, and the
 * client allows push, a PUSH_PROMISE goes out before the response HEADERS
 * and the promised GET is fetched like a client request (same routing,
 * pool and scheduler, at urgency 7) and answered on the promised stream.
 *
 * This module owns a connection's push budget (push_max_per_connection,
 * each path once) and the promises not yet on the wire. It knows nothing of
 * the frontend's connection object: a pushed exchange borrows its parent's
 * frontend ops and connection, and sits beside it in the connection's list
 * of exchanges, so the frontend answers, resets and frees it like any
 * other stream's.
 */
#ifndef GW_H2_PUSH_H
#define GW_H2_PUSH_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>

#include "gateway/exchange.h"

typedef struct gw_h2_push_entry gw_h2_push_entry_t;

typedef struct gw_h2_push {
    gw_h2_push_entry_t *entries; /* one per push */
    uint32_t npushed;
    uint32_t cap; /* push_max_per_connection when entries was made (a reload may change it) */
} gw_h2_push_t;

/* An empty push state (all zero also is one). */
void gw_h2_push_init(gw_h2_push_t *p);

/* Frees the push state. Pushed exchanges are the frontend's to free. */
void gw_h2_push_free(gw_h2_push_t *p);

/*
 * x's final response head (status, fields f[0..n)) is about to be submitted
 * on session: submits a PUSH_PROMISE on x's stream for each Link rel=preload
 * target that qualifies (see above), each with a new exchange (its head
 * built, not started) kept until the frame is sent. Does nothing when
 * server_push is off, the client disabled push, or the budget is spent.
 * Never fails x: a push that cannot be made is skipped.
 */
void gw_h2_push_on_head(gw_h2_push_t *p, nghttp2_session *session, gw_exchange_t *x, int status,
                        const proto_header_t *f, size_t n);

/* A frame was sent: a PUSH_PROMISE's exchange becomes the promised
 * stream's user data and starts (or is freed when the stream is already
 * gone). Other frames are ignored. */
void gw_h2_push_on_frame_send(gw_h2_push_t *p, nghttp2_session *session,
                              const nghttp2_frame *frame);

/* A frame could not be sent: a PUSH_PROMISE's exchange is freed. Other
 * frames are ignored. */
void gw_h2_push_on_frame_not_send(gw_h2_push_t *p, const nghttp2_frame *frame);

#endif
