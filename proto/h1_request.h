/*
 * HTTP/2 request (pseudo-headers + header list) -> HTTP/1.1 request head.
 * This is where a request is judged forwardable: anything that could be read
 * differently by the backend than by us is refused here, before any byte
 * reaches a backend.
 */
#ifndef PROTO_H1_REQUEST_H
#define PROTO_H1_REQUEST_H

#include "proto.h"

typedef struct proto_request {
    const char *method;
    size_t method_len;
    const char *scheme; /* "http" or "https"; used for X-Forwarded-Proto / Forwarded */
    size_t scheme_len;
    const char *authority; /* NULL when the client sent no :authority */
    size_t authority_len;
    const char *path;
    size_t path_len;
    const proto_header_t *headers; /* regular fields in arrival order, lowercase names */
    size_t nheaders;
    const char *client_addr; /* NUL-terminated numeric IPv4 or IPv6 address */
    int has_body;            /* 0 when END_STREAM came with HEADERS */
    /* Fields the gateway itself vouches for (e.g. the verified client
     * certificate subject): appended after the forwarded ones, and any
     * incoming field of the same name is dropped, so a client cannot forge
     * them. Names lowercase; values must pass proto_headers_valid_value; an
     * empty value only strips the incoming field. */
    const proto_header_t *extra;
    size_t nextra;
    /* This hop's Via entry ("2 h2gw"), added after any Via the client sent
     * (RFC 9110 7.6.3); NULL: none. */
    const char *via;
} proto_request_t;

typedef struct proto_h1_head {
    char *data; /* malloc'd head, "METHOD PATH HTTP/1.1\r\n...\r\n\r\n"; owned by the caller */
    size_t len;
    int is_chunked;         /* the body must be sent with chunked framing */
    int64_t content_length; /* -1 when the request carries no Content-Length */
    int is_idempotent;
} proto_h1_head_t;

/*
 * Builds the HTTP/1.1 head for req into out.
 *
 * Rules: the request line is ":method :path HTTP/1.1"; :path must start with
 * "/" (or be "*" for OPTIONS) and contain no byte <= 0x20 or 0x7f. Host comes
 * from :authority (or from a host field when :authority is absent); a host
 * field that differs from :authority is refused; neither is refused. Cookie
 * crumbs are joined into one "cookie" line with "; ". Connection-specific
 * fields are dropped, and so is "te" unless its value is "trailers". Any name
 * that is not a lowercase token or value that proto_headers_valid_value()
 * refuses is refused. Content-Length must be one decimal number (repeats must
 * agree); with has_body and no Content-Length the body goes chunked
 * ("transfer-encoding: chunked" is added); a POST/PUT/PATCH without body and
 * without Content-Length gets "content-length: 0". X-Forwarded-For gets
 * client_addr appended to any existing value (", " separated, all incoming
 * x-forwarded-for lines merged into one), X-Forwarded-Proto is set to scheme
 * (any incoming one replaced), and Forwarded gets "for=ADDR;proto=SCHEME"
 * appended (IPv6 as for="[addr]"). CONNECT, and any method outside
 * llhttp's table (proto_headers_is_known_method), are refused with
 * PROTO_E_NOT_IMPLEMENTED.
 *
 * Returns 0, PROTO_E_BAD_REQUEST (with *why set to a short static reason
 * when why is not NULL), PROTO_E_NOT_IMPLEMENTED or PROTO_E_NOMEM. On error
 * out holds nothing to free.
 */
int proto_h1_request_build(const proto_request_t *req, proto_h1_head_t *out, const char **why);

void proto_h1_head_free(proto_h1_head_t *head);

/*
 * Request trailer fields (HTTP/2 trailers, or those of a chunked HTTP/1.1
 * body) -> the fields the backend's last chunk carries, with the rules of
 * the request head: names must be lowercase tokens (a pseudo-field is
 * refused) and values pass proto_headers_valid_value(); the list, counted
 * as RFC 9113 6.5.2 does (name + value + 32 per field), must stay within
 * max_list_size. Fields that must not travel as trailers are left out:
 * connection-specific ones, te, those RFC 9110 6.5.1 rules out because
 * they frame or route the message (content-length, host, trailer, expect),
 * the forwarding fields the gateway writes itself (x-forwarded-for,
 * x-forwarded-proto, forwarded, via), and reserved_name (the field the
 * gateway vouches for, e.g. the client certificate subject; NULL: none),
 * so a client cannot forge in a trailer what the head would not pass.
 *
 * out has room for n fields and points into in. Returns the count kept,
 * PROTO_E_BAD_REQUEST (*why set to a short static reason when why is not
 * NULL) or PROTO_E_TOO_LARGE.
 */
int proto_h1_request_trailers(const proto_header_t *in, size_t n, const char *reserved_name,
                              size_t max_list_size, proto_header_t *out, const char **why);

#endif
