/*
 * The test origin: an HTTP/1.1 server used by integration tests, `make run`
 * and benchmarks. One uv loop, one thread.
 *
 *   origin.c   command line, listener, signals
 *   conn.c     one client connection: reads, llhttp request parser, output
 *              queue (one write in flight), keep-alive and close paths
 *   routes.c   the endpoints (see README.md)
 *
 * Memory per connection is bounded: the unparsed input left over when the
 * connection stops parsing (at most one read, OR_READ_BUF), the request head
 * (OR_MAX_HEAD bytes, OR_MAX_FIELDS fields) and the output queue (parsing stops
 * while more than OR_OUT_HIGH bytes wait; streamed bodies point at a static
 * pattern instead of being copied).
 */
#ifndef H2GW_TEST_ORIGIN_H
#define H2GW_TEST_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <openssl/evp.h>
#include <uv.h>

#define OR_READ_BUF (64 * 1024)
#define OR_MAX_HEAD (128 * 1024) /* request target + header + trailer bytes */
#define OR_MAX_FIELDS 512        /* header + trailer fields per request */
#define OR_OUT_HIGH (256 * 1024) /* stop parsing requests while this much output waits */
#define OR_MAX_SEGS 32           /* pieces gathered into one uv_write */
#define OR_STREAM_CHUNK (64 * 1024)
#define OR_STREAM_BATCH 4 /* streamed chunks queued per write */
#define OR_LINGER_MS 1000 /* how long a half-closed connection drains the client */
#define OR_DROP_IDLE_MS 50

/* The body of /bytes: byte i is OR_PATTERN[i % OR_PATTERN_LEN]. */
#define OR_PATTERN "0123456789abcdefghijklmnopqrstuvwxyz"
#define OR_PATTERN_LEN 36

typedef struct or_buf {
    char *data;
    size_t len, cap;
} or_buf_t;

/* Offsets into or_request_t.head. */
typedef struct or_field {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
    uint8_t is_trailer;
} or_field_t;

typedef enum or_route {
    OR_ROUTE_NOT_FOUND = 0,
    OR_ROUTE_BAD_ARG,
    OR_ROUTE_ECHO,
    OR_ROUTE_BYTES,
    OR_ROUTE_DELAY,
    OR_ROUTE_CHUNKED,
    OR_ROUTE_STATUS,
    OR_ROUTE_CLOSE_MID_BODY,
    OR_ROUTE_MALFORMED,
    OR_ROUTE_HEADERS,
    OR_ROUTE_CLOSE,
    OR_ROUTE_HTTP10,
    OR_ROUTE_CLOSE_DELIMITED,
    OR_ROUTE_CONTINUE,
    OR_ROUTE_STATS,
    OR_ROUTE_RESET_STATS,
    OR_ROUTE_DROP_IDLE,
    OR_ROUTE_KILL_NEXT,
    OR_ROUTE_EARLY_HINTS,
} or_route_t;

typedef enum or_field_state { OR_FIELD_NONE, OR_FIELD_NAME, OR_FIELD_VALUE } or_field_state_t;

/* The request being parsed; reset at each message begin. */
typedef struct or_request {
    or_buf_t head; /* request target at offset 0, then field names and values */
    uint32_t url_len;
    or_field_t *fields;
    size_t nfields, fields_cap;
    or_field_state_t field_state;
    uint8_t is_trailers; /* headers are complete: further fields are trailers */
    uint8_t is_head;     /* HEAD: the response never has a body */
    uint8_t is_keep_alive;
    uint8_t is_hashing;
    uint8_t method, http_major, http_minor;
    int err_status; /* set by a callback that fails the request (431) */
    uint64_t body_len;
    uint32_t path_off, path_len, query_off, query_len;
    or_route_t route;
    uint64_t arg; /* N of /bytes/N, /delay/MS, /status/N */
    uint8_t is_chunked_arg;
} or_request_t;

/* A piece of pending output: `ext` static memory, or out.data + off. */
typedef struct or_seg {
    const char *ext;
    size_t off, len;
} or_seg_t;

typedef enum or_close_mode {
    OR_CLOSE_NONE,
    OR_CLOSE_GRACEFUL,  /* flush, shutdown, drain the client briefly, close */
    OR_CLOSE_DROP_IDLE, /* flush, then close OR_DROP_IDLE_MS later */
} or_close_mode_t;

typedef enum or_resp { OR_RESP_NONE, OR_RESP_DELAY, OR_RESP_STREAM } or_resp_t;

typedef enum or_timer_kind {
    OR_TIMER_NONE,
    OR_TIMER_DELAY,
    OR_TIMER_DROP,
    OR_TIMER_LINGER
} or_timer_kind_t;

typedef struct or_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    int open_handles; /* freed when both handles' close callbacks ran */
    llhttp_t parser;
    uint64_t id;   /* connection_id */
    uint64_t nreq; /* requests begun on this connection */
    or_request_t req;
    EVP_MD_CTX *md;

    /* Unparsed input: the shared read buffer during on_read, else in_store. */
    const char *in;
    size_t in_off, in_len;
    char *in_store;

    /* Output: `out` fills while `inflight` is being written. */
    or_buf_t out, inflight;
    or_seg_t segs[OR_MAX_SEGS];
    size_t nsegs;

    /* A response that is not complete when its request is dispatched. */
    or_resp_t resp;
    uint64_t stream_off, stream_left;
    uint8_t is_stream_chunked;

    or_close_mode_t close_mode;
    or_timer_kind_t timer_kind;
    uint8_t is_closed;  /* uv_close called: callbacks do nothing */
    uint8_t is_reading; /* uv_read_start in effect */
    uint8_t is_writing; /* wreq in flight */
    uint8_t is_shutting;
    uint8_t is_lingering; /* shut down: reads are discarded until EOF or timer */
    uint8_t peer_eof;
    uint8_t msg_done; /* on_message_complete paused the parser */
    uint8_t kill;     /* on_message_begin wants the connection reset */
} or_conn_t;

typedef struct or_stats {
    uint64_t connections_accepted; /* since start or /reset-stats */
    uint64_t requests;             /* requests dispatched, since start or /reset-stats */
    uint64_t open_connections;
} or_stats_t;

extern or_stats_t or_stats;
extern int or_kill_next; /* /kill-next armed */

/* conn.c */

/* Set up parser settings and the SHA-256 implementation. 0 or -1. */
int or_conn_global_init(void);
void or_conn_global_free(void);

/* Accept one pending connection from `server` and start reading it. */
void or_conn_accept(uv_stream_t *server);

/* Close a connection now (shutdown path: signals). Idempotent. */
void or_conn_hard_close(or_conn_t *c);

/* Queue output. Data is copied, except that or_out_static only references
 * `p`, which must stay valid for the life of the process. */
void or_out_append(or_conn_t *c, const void *p, size_t n);
void or_out_str(or_conn_t *c, const char *s);
void or_out_printf(or_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void or_out_static(or_conn_t *c, const char *p, size_t n);

/* The current response is fully queued: take the next request, or close if
 * the request did not allow keep-alive. */
void or_conn_end_response(or_conn_t *c);

/* Run `kind`'s action `ms` from now (delay: routes.c or_route_delay_fire). */
void or_conn_start_timer(or_conn_t *c, or_timer_kind_t kind, uint64_t ms);

/* SHA-256 context of this connection, initialised for a new digest; NULL on failure. */
EVP_MD_CTX *or_conn_digest_begin(or_conn_t *c);

/* routes.c */

/* Headers are complete: pick the route, start hashing, send 100 Continue. */
void or_route_head(or_conn_t *c);
/* The request is complete: queue its response (or start it). */
void or_route_dispatch(or_conn_t *c);
/* Queue the next batch of a streamed /bytes body. */
void or_route_stream_pump(or_conn_t *c);
/* The /delay timer fired. */
void or_route_delay_fire(or_conn_t *c);
/* Free the scratch buffer (at exit). */
void or_route_global_free(void);

#endif
