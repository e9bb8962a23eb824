/*
 * HTTP/1.1 response parsing for one upstream connection: llhttp in strict
 * mode underneath, events above that are ready for HTTP/2 (names lowercased,
 * connection-specific fields removed, 1xx reported apart from the final head).
 */
#ifndef PROTO_H1_RESPONSE_H
#define PROTO_H1_RESPONSE_H

#include <llhttp.h>
#include <sys/types.h>

#include "fields.h"
#include "proto.h"

/* Every callback returns 0 to go on or a negative value to stop parsing
 * (proto_h1_response_feed() then returns PROTO_E_CALLBACK). Header pointers
 * are valid only during the call. */
typedef struct proto_h1_response_cbs {
    /* Final head (status 200..999). Fields lowercased, in arrival order,
     * connection-specific ones (and those the Connection header names)
     * removed; content-length kept, except in a 204. Called before the
     * first body byte, and not before the feed() that completed the head
     * has parsed all its bytes: when the body's framing breaks within
     * them, the error comes without a head. */
    int (*on_head)(void *ud, int status, const proto_header_t *headers, size_t n);
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    /* Chunked trailer fields, same filtering as the head. Not called when
     * there are none. */
    int (*on_trailers)(void *ud, const proto_header_t *headers, size_t n);
    int (*on_complete)(void *ud);
    /* Optional: an interim response (status 100..199 but 101, which is an
     * error) before the final head, with the head's filtering and also
     * without content-length. May come any number of times, each one's
     * fields bounded like a head; the caller decides what to relay. */
    int (*on_informational)(void *ud, int status, const proto_header_t *headers, size_t n);
} proto_h1_response_cbs_t;

typedef struct proto_h1_response {
    llhttp_t parser;
    llhttp_settings_t settings;
    const proto_h1_response_cbs_t *cbs;
    void *ud;
    int is_head_request;
    proto_fields_t fields;    /* the head (or trailers) being read, with its size limit */
    int head_done;            /* final head parsed; later fields are trailers */
    int is_head_pending;      /* ... but not yet handed to on_head (flush_head) */
    int head_status;          /* its status, while pending */
    int is_complete;          /* final response fully read */
    int is_started;           /* at least one byte of a response was parsed */
    int keep_alive;           /* valid once complete */
    int keep_alive_timeout_s; /* the head's "Keep-Alive: timeout=N", or -1 */
    int err;                  /* PROTO_E_* recorded by a callback */
    const char *why;          /* short static reason of the last error */
    /* Telling an obs-fold from a value split across feed() calls: */
    const char *feed_data; /* bytes of the feed() in progress; NULL between calls */
    const char *feed_end;
    int is_value_cut; /* the last value piece ended where its feed() bytes did */
} proto_h1_response_t;

/* Prepares r. Heads (status line + fields, or trailers) over max_head_bytes
 * are refused with PROTO_E_TOO_LARGE. Returns 0 or PROTO_E_NOMEM. */
int proto_h1_response_init(proto_h1_response_t *r, const proto_h1_response_cbs_t *cbs, void *ud,
                           size_t max_head_bytes);

/* Readies r for the next response on the same connection. A response to
 * HEAD has no body whatever its fields say. */
void proto_h1_response_reset(proto_h1_response_t *r, int is_head_request);

/* Parses up to len bytes. Stops right after the final response completes and
 * returns how many bytes it consumed (bytes past the end are not consumed:
 * a caller that sees consumed < len knows the backend sent extra bytes).
 * Returns PROTO_E_BAD_RESPONSE, PROTO_E_UNSAFE_RESPONSE (e.g. 101, or a field
 * value HTTP/2 cannot carry), PROTO_E_TOO_LARGE or PROTO_E_CALLBACK. */
ssize_t proto_h1_response_feed(proto_h1_response_t *r, const uint8_t *data, size_t len);

/* The backend closed its side. Completes a close-delimited body (calling
 * on_complete) and returns 0, or returns PROTO_E_BAD_RESPONSE when the
 * response was cut short (no head, short Content-Length, unfinished chunked). */
int proto_h1_response_finish(proto_h1_response_t *r);

/* After completion: 1 when the connection may carry another request (not
 * close-delimited, no "Connection: close", HTTP/1.0 only with keep-alive). */
int proto_h1_response_can_reuse(const proto_h1_response_t *r);

void proto_h1_response_free(proto_h1_response_t *r);

#endif
