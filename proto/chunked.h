/*
 * HTTP/1.1 chunked framing of request bodies (RFC 9112 7.1): the size line
 * before each chunk and the last chunk. Pure code.
 */
#ifndef PROTO_CHUNKED_H
#define PROTO_CHUNKED_H

#include <stddef.h>

/* Room for the longest size line: 16 hex digits and CRLF. */
#define PROTO_CHUNK_LINE_MAX 24

#define PROTO_CHUNK_CRLF "\r\n"
#define PROTO_CHUNK_LAST "0\r\n\r\n"
#define PROTO_CHUNK_LAST_LEN 5

/* Writes the size line of a chunk of len (> 0) bytes ("1a2f\r\n") into out,
 * which has PROTO_CHUNK_LINE_MAX bytes. Returns its length. */
size_t proto_chunk_size_line(char *out, size_t len);

#endif
