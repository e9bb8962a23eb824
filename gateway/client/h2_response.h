/*
 * What goes back to an HTTP/2 client: response heads, interim responses,
 * bodies (straight from the exchange's buffer into the connection's output)
 * and trailers, the gateway's own short error answers, and the frontend ops
 * the exchange calls.
 */
#ifndef GW_H2_RESPONSE_H
#define GW_H2_RESPONSE_H

#include "gateway/client/h2_state.h"

/* The exchange's view of an HTTP/2 stream. */
extern const gw_frontend_ops_t gw_h2_frontend_ops;

/* Answers x with a short text error of this status. */
void gw_h2_reply_error(gw_exchange_t *x, int status);

/* The data provider of every response body, and the DATA frames it leaves
 * in place (NGHTTP2_DATA_FLAG_NO_COPY). */
ssize_t gw_h2_on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud);
int gw_h2_on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                       size_t length, nghttp2_data_source *src, void *ud);

#endif
