/*
 * The state of one HTTP/1.1 client connection and of the request it
 * serves, shared by the HTTP/1.1 frontend's modules: h1_frontend (parsing
 * requests, the connection, h2c Upgrade) and h1_reply (what goes back to
 * the client).
 */
#ifndef GW_H1_STATE_H
#define GW_H1_STATE_H

#include "gateway/client/client_conn.h"
#include "gateway/exchange.h"
#include "proto/buf.h"
#include "proto/h1_request_parser.h"

enum h1_framing {
    FRAME_NONE,    /* no body (HEAD, 204, 304, length 0) */
    FRAME_LENGTH,  /* the backend's Content-Length */
    FRAME_CHUNKED, /* chunked, for HTTP/1.1 clients */
    FRAME_CLOSE,   /* delimited by the close, for HTTP/1.0 clients */
};

typedef struct h1_client {
    gw_client_conn_t *conn;
    int is_tls;
    proto_h1_req_parser_t parser;
    proto_buf_t inbuf;    /* read but not parsed: the next pipelined requests */
    proto_buf_t pending;  /* output staged for the next on_flush */
    gw_exchange_t *x;     /* the request being served, or NULL */
    uint8_t *h2_settings; /* h2c upgrade waiting for on_flush: decoded HTTP2-Settings */
    size_t h2_settings_len;
    /* the request being served */
    int http_minor;
    int framing;                  /* enum h1_framing of the response */
    unsigned is_active : 1;       /* a request head was parsed and is not answered yet */
    unsigned is_head : 1;         /* it is a HEAD request */
    unsigned is_req_done : 1;     /* its last byte was parsed */
    unsigned is_resp_started : 1; /* the response head is staged */
    unsigned is_resp_done : 1;    /* the whole response is staged */
    unsigned is_keep_alive : 1;   /* another request may follow on the connection */
    unsigned is_refused : 1;      /* answered as malformed: nothing more is read */
    unsigned is_aborted : 1;      /* close without completing the response */
    unsigned is_draining : 1;
    unsigned is_processing : 1; /* process_input() is on the stack */
    unsigned is_upgrade : 1;    /* it asked for a WebSocket (gateway/upgrade.c) */
    unsigned is_tunnel : 1;     /* its 101 is staged: raw bytes both ways from here */
} h1_client_t;

static inline h1_client_t *gw_h1_client_of(const gw_exchange_t *x)
{
    return x->fe_conn;
}

/* Reads from the client stop or go on as the input held allows
 * (h1_frontend). */
void gw_h1_update_reading(h1_client_t *h);

#endif
