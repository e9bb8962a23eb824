/*
 * HTTP/1.1 request parsing for one client connection: llhttp in strict mode
 * underneath, plus the checks llhttp 8.1 does not make, so that a request
 * reaches a backend only when every HTTP/1.1 reader would frame it the way
 * we do (no request smuggling): one Content-Length or exactly
 * "Transfer-Encoding: chunked", never both; CRLF line ends only; no obs-fold;
 * token field names; no control bytes in values; one Host.
 *
 * The parser stops after each complete request, so a connection answers
 * pipelined requests one at a time, in order.
 */
#ifndef PROTO_H1_REQUEST_PARSER_H
#define PROTO_H1_REQUEST_PARSER_H

#include <llhttp.h>
#include <stdint.h>
#include <sys/types.h>

#include "fields.h"
#include "proto.h"

/* proto_h1_req_head_t.flags */
enum {
    PROTO_H1_REQ_HAS_BODY = 0x01,        /* chunked, or Content-Length > 0 */
    PROTO_H1_REQ_CHUNKED = 0x02,         /* "Transfer-Encoding: chunked" */
    PROTO_H1_REQ_EXPECT_CONTINUE = 0x04, /* HTTP/1.1 "Expect: 100-continue" with a body */
    PROTO_H1_REQ_UPGRADE_H2C = 0x08,     /* a valid RFC 7540 §3.2 upgrade request, see below */
    PROTO_H1_REQ_KEEP_ALIVE = 0x10,      /* the client keeps the connection after the response */
    PROTO_H1_REQ_ABSOLUTE_FORM = 0x20,   /* the target was an absolute http(s) URI */
};

/* A request head, valid during on_head only. */
typedef struct proto_h1_req_head {
    const char *method; /* e.g. "GET"; NUL-terminated, static */
    size_t method_len;
    const char *target; /* the request-target exactly as received */
    size_t target_len;
    /* What HTTP/2 would call :path: the target itself in origin-form ("/..."),
     * the path and query of an absolute-form target ("/" when empty), or "*"
     * (OPTIONS only). */
    const char *path;
    size_t path_len;
    /* The authority of an absolute-form target (the Host field is then to be
     * ignored, RFC 9112 §3.2.2), else the Host field value; NULL when neither
     * exists (HTTP/1.0 without Host). */
    const char *authority;
    size_t authority_len;
    int http_minor;         /* 0 or 1 (the major version is always 1) */
    int64_t content_length; /* -1 when absent */
    /* Every field in arrival order, names lowercased, values without
     * surrounding whitespace. Nothing is removed: choosing what to forward
     * is the caller's job. */
    const proto_header_t *headers;
    size_t nheaders;
    /* The HTTP2-Settings value (base64url) when UPGRADE_H2C is set. */
    const char *http2_settings;
    size_t http2_settings_len;
    unsigned flags; /* PROTO_H1_REQ_* */
} proto_h1_req_head_t;

/* Every callback returns 0 to go on or a negative value to stop parsing
 * (proto_h1_req_parser_feed() then returns PROTO_E_CALLBACK). Pointers are
 * valid only during the call. */
typedef struct proto_h1_req_cbs {
    int (*on_head)(void *ud, const proto_h1_req_head_t *head);
    /* Body bytes, de-chunked; they point into the bytes given to feed(). */
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    /* Trailer fields of a chunked body, checked like the head's. Not called
     * when there are none. */
    int (*on_trailers)(void *ud, const proto_header_t *headers, size_t n);
    int (*on_complete)(void *ud);
} proto_h1_req_cbs_t;

/* Tracks the raw head bytes for what llhttp lets through (bare LF, runs of
 * spaces in the request line, a line starting with whitespace). */
typedef struct proto_h1_req_scan {
    unsigned line;       /* lines of the head seen so far (request line = 1) */
    unsigned line_bytes; /* bytes of the current line, CR and LF excluded */
    unsigned spaces;     /* SPs in the request line */
    unsigned char prev;  /* the byte before, across feeds */
} proto_h1_req_scan_t;

/* Longer than any method llhttp knows: only this much of one is kept. */
#define PROTO_H1_METHOD_KEEP 16

typedef struct proto_h1_req_parser {
    llhttp_t parser;
    llhttp_settings_t settings;
    const proto_h1_req_cbs_t *cbs;
    void *ud;
    /* Target and field bytes of the head (or trailers) being read, with the
     * head size limit. */
    proto_fields_t fields;
    size_t target_off, target_len; /* the request-target, in fields.buf */
    proto_h1_req_scan_t scan;
    int is_head_paused; /* llhttp stopped after the head, for our checks */
    int head_done;      /* head delivered; later fields are trailers */
    int is_chunked;
    int is_complete; /* request fully read; feed() takes nothing more until reset */
    int is_started;  /* at least one byte of this request was fed */
    int err;         /* PROTO_E_* */
    const char *why; /* short static reason of the error */
    unsigned char last_byte, last_byte2; /* last two bytes of the previous feeds */
    /* Telling an obs-fold from a value split across feed() calls: */
    const char *feed_data;     /* bytes of the feed() in progress; NULL between calls */
    unsigned char prev_non_ws; /* last byte of the earlier feeds that is not SP or HTAB */
    /* The request line's method as far as read: llhttp does not say what it
     * refused, and a token it does not know is a 501, not a 400. */
    char method[PROTO_H1_METHOD_KEEP];
    size_t method_len;
    int method_state;      /* enum method_state in the .c file */
    int is_method_refused; /* llhttp refused it: waiting for the token's end */
} proto_h1_req_parser_t;

/* Prepares p. Heads (request line + fields) and trailer blocks over
 * max_head_bytes are refused with PROTO_E_TOO_LARGE. Returns 0 or
 * PROTO_E_NOMEM. */
int proto_h1_req_parser_init(proto_h1_req_parser_t *p, const proto_h1_req_cbs_t *cbs, void *ud,
                             size_t max_head_bytes);

/* Readies p for the next request on the same connection (also after an
 * error). */
void proto_h1_req_parser_reset(proto_h1_req_parser_t *p);

/*
 * Parses up to len bytes. Stops right after a request completes and returns
 * how many bytes it consumed; bytes past the end belong to the next request
 * and are not consumed (feed them again after proto_h1_req_parser_reset()).
 * Until then every call returns 0.
 *
 * Returns PROTO_E_BAD_REQUEST (malformed or ambiguous: answer 400 and close),
 * PROTO_E_NOT_IMPLEMENTED (CONNECT, a method outside llhttp's table, or a
 * transfer coding other than chunked: 501), PROTO_E_TOO_LARGE (431), PROTO_E_NOMEM or
 * PROTO_E_CALLBACK. The error sticks until reset; p->why holds a short static reason.
 */
ssize_t proto_h1_req_parser_feed(proto_h1_req_parser_t *p, const uint8_t *data, size_t len);

/* 1 when no byte of a request was fed since init or reset. */
static inline int proto_h1_req_parser_is_idle(const proto_h1_req_parser_t *p)
{
    return !p->is_started;
}

void proto_h1_req_parser_free(proto_h1_req_parser_t *p);

#endif
