/*
 * The state of one HTTP/2 client connection and of the requests it is
 * reading, shared by the modules of the HTTP/2 frontend: h2_frontend (the
 * session, its callbacks and the connection), h2_response (what goes back
 * to the client) and h2_priority (urgency and the RFC 7540 tree).
 */
#ifndef GW_H2_STATE_H
#define GW_H2_STATE_H

#include <nghttp2/nghttp2.h>

#include "gateway/client/client_conn.h"
#include "gateway/client/h2_glitch.h"
#include "gateway/client/h2_mem.h"
#include "gateway/client/h2_push.h"
#include "gateway/exchange.h"
#include "proto/fields.h"
#include "proto/h2_watch.h"

typedef struct h2_client {
    gw_client_conn_t *conn;
    nghttp2_session *session;
    proto_queue_t exchanges;
    /* After an h2c upgrade nothing is sent until the client's first bytes
     * (its preface) arrive: a client reading the 101 may not be ready for
     * more than a little HTTP/2 behind it (curl 7.88 fails past 32 KiB). */
    int is_awaiting_preface;
    /* The two-step GOAWAY of a drain: first a notice (last stream id
     * 2^31-1) and a PING; the real last stream id once the PING comes
     * back (one round trip: streams the client sent meanwhile are in) or
     * when the drain asks again (1 s). */
    int is_shutdown_noticed;
    int is_goaway_sent;
    gw_h2_glitch_t glitch; /* abuse budget (h2_glitch_threshold) */
    /* Closed streams nghttp2 has forgotten (RFC 9113 5.1). */
    proto_h2_watch_t watch;
    int32_t peer_reset_id; /* the stream of the RST_STREAM being received */
    gw_h2_push_t push;     /* server push from Link rel=preload (h2_push.c) */
    gw_h2_mem_t mem;       /* the session's allocator; outlives the session */
    /* Input came since the session last gave back its idle pages. */
    int is_mem_dirty;
} h2_client_t;

/* A request's fields as nghttp2 hands them over, copied (nghttp2's buffers
 * do not outlive the callback) into the same field store the HTTP/1.1
 * parsers use. Bounded by max_header_list_size, counted the RFC 9113 6.5.2
 * way. */
typedef struct h2_request {
    proto_fields_t fs; /* every field, pseudo-header fields included */
    proto_field_t method, authority, path;
    proto_field_t protocol; /* RFC 8441 :protocol */
    int has_protocol;
    size_t nregular; /* fields that are not pseudo-header fields */
    int has_authority;
    size_t list_size; /* name + value + 32 per field */
    int is_too_large;
} h2_request_t;

static inline h2_client_t *gw_h2_client_of(const gw_exchange_t *x)
{
    return x->fe_conn;
}

/* The exchange of a stream, or NULL. */
gw_exchange_t *gw_h2_stream_exchange(nghttp2_session *session, int32_t stream_id);

/* Counts one oddity against the connection's glitch budget (h2_frontend). */
void gw_h2_note_glitch(h2_client_t *h, gw_h2_glitch_kind_t kind);

#endif
