/*
 * HTTP/1.1 chunked framing of request bodies (RFC 9112 7.1): the size line
 * before each chunk and the last chunk, with or without trailer fields.
 * Pure code.
 */
#ifndef PROTO_CHUNKED_H
#define PROTO_CHUNKED_H

#include <stddef.h>

#include "proto.h"

/* Room for the longest size line: 16 hex digits and CRLF. */
#define PROTO_CHUNK_LINE_MAX 24

#define PROTO_CHUNK_CRLF "\r\n"
#define PROTO_CHUNK_LAST "0\r\n\r\n"
#define PROTO_CHUNK_LAST_LEN 5

/* Writes the size line of a chunk of len (> 0) bytes ("1a2f\r\n") into out,
 * which has PROTO_CHUNK_LINE_MAX bytes. Returns its length. */
size_t proto_chunk_size_line(char *out, size_t len);

/* The bytes proto_chunk_last_write() writes for these n trailer fields. */
size_t proto_chunk_last_size(const proto_header_t *trailers, size_t n);

/* Writes the last chunk with its trailer section into out, which has
 * proto_chunk_last_size() bytes: "0\r\n", then "name: value\r\n" per field,
 * then "\r\n" (with n == 0 that is PROTO_CHUNK_LAST). The fields are
 * written as given: the caller has checked them (names tokens, values
 * without CR, LF or NUL). Returns the length. */
size_t proto_chunk_last_write(char *out, const proto_header_t *trailers, size_t n);

#endif
