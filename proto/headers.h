/*
 * Header field rules shared by request and response translation: which
 * fields are connection-specific, which bytes HTTP/1.1 can carry, which
 * methods are idempotent, which ones the gateway knows.
 */
#ifndef PROTO_HEADERS_H
#define PROTO_HEADERS_H

#include "proto.h"

/* 1 when the lowercase name is connection-specific and never forwarded by an
 * intermediary (RFC 9110 §7.6.1, RFC 9113 §8.2.2): connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, http2-settings. "te" is not
 * listed here: requests keep "te: trailers" (see proto_h1_request_build). */
int proto_headers_is_connection_specific(const char *name, size_t len);

/* 1 when name is a non-empty RFC 9110 token (tchar only). When lowercase_only,
 * uppercase letters are refused too, as HTTP/2 requires. */
int proto_headers_valid_name(const char *name, size_t len, int lowercase_only);

/* 1 when value can be written on an HTTP/1.1 header line and every HTTP/1.1
 * reader takes it as we do: no control byte but HTAB (no NUL, CR, LF, DEL),
 * and no leading or trailing SP / HTAB. Empty is valid. obs-text (0x80-0xff)
 * is allowed. */
int proto_headers_valid_value(const char *value, size_t len);

/* 1 when the method is idempotent (RFC 9110 §9.2.2): GET HEAD OPTIONS TRACE
 * PUT DELETE. Case-sensitive, as methods are. */
int proto_headers_is_idempotent_method(const char *method, size_t len);

/* 1 when the method is in llhttp's table of HTTP methods, the ones the
 * HTTP/1.1 frontend can parse (CONNECT included, though it is refused
 * elsewhere). Any other token is a method the gateway does not implement
 * (501), whichever frontend it came through. Case-sensitive. */
int proto_headers_is_known_method(const char *method, size_t len);

/* 1 when the comma-separated list (a Connection header value, with optional
 * whitespace around elements) contains name, compared case-insensitively. */
int proto_headers_list_contains(const char *list, size_t list_len, const char *name,
                                size_t name_len);

/* 1 when a and b are equal ignoring ASCII case. */
int proto_headers_name_eq(const char *a, size_t a_len, const char *b, size_t b_len);

/* The standard reason phrase of a status code (RFC 9110 §15), or "" (RFC
 * 9112 §4 allows an empty one). */
const char *proto_reason_phrase(int status);

/* Content-Length = 1*DIGIT, nothing else: no sign, no spaces, no list.
 * Returns 0 and the value, or -1 (empty, another byte, or over INT64_MAX). */
int proto_headers_parse_content_length(const char *s, size_t n, int64_t *out);

#endif
