/*
 * WebSocket upgrades, the pure half: recognising an HTTP/1.1 client's
 * "Upgrade: websocket" request, the fields an upgraded request carries to
 * the backend (RFC 6455 4.1, RFC 8441 5), the Sec-WebSocket-Key a proxy
 * makes for HTTP/2 clients, parsing the backend's 101 head, and the 101's
 * fields as each kind of client may receive them. No I/O, no randomness:
 * the caller brings the random bytes.
 */
#ifndef PROTO_UPGRADE_H
#define PROTO_UPGRADE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/h1_request.h"
#include "proto/proto.h"

/* Room for the fields proto_upgrade_request() adds, besides the caller's. */
#define PROTO_UPGRADE_EXTRA_MAX 4
/* A base64 Sec-WebSocket-Key of 16 bytes and its NUL. */
#define PROTO_UPGRADE_KEY_LEN 24

/* 1 when an HTTP/1.1 request asks for a WebSocket: GET, "Upgrade:
 * websocket" and "Connection: upgrade" (any case, in lists), no body. */
int proto_upgrade_is_websocket(const char *method, size_t method_len, const proto_header_t *f,
                               size_t n, int has_body);

/* Writes the standard base64 of 16 random bytes (RFC 6455 4.1: the nonce of
 * Sec-WebSocket-Key) into key, NUL-terminated (PROTO_UPGRADE_KEY_LEN + 1). */
void proto_upgrade_key(const uint8_t random16[16], char key[PROTO_UPGRADE_KEY_LEN + 1]);

/*
 * Turns req into the HTTP/1.1 upgrade request for a WebSocket: method GET,
 * no body, and in extra (capacity cap, at least req->nextra +
 * PROTO_UPGRADE_EXTRA_MAX) the caller's extra fields followed by
 * "upgrade: websocket", "connection: upgrade", "sec-websocket-key: key"
 * when key is not NULL (an HTTP/2 client sends none; any it sent is
 * dropped), and "sec-websocket-version: 13" when the client sent none.
 * req->extra then points at extra. Returns 0, or PROTO_E_NOMEM when cap is
 * too small.
 */
int proto_upgrade_request(proto_request_t *req, proto_header_t *extra, size_t cap, const char *key);

/*
 * Parses the head of a backend response that starts data (len bytes).
 * Returns 0 while the head is incomplete, the head's length (up to and
 * including the empty line) once it is complete, or PROTO_E_BAD_RESPONSE
 * (the status line or a field line is malformed, bare LF, obs-fold) or
 * PROTO_E_TOO_LARGE (more than max fields). On success *status is the
 * status code and fields[0..*n) point into data, names lowercased in place.
 */
ssize_t proto_upgrade_parse_head(char *data, size_t len, int *status, proto_header_t *fields,
                                 size_t max, size_t *n);

/* The status of the status line starting data, when the whole line is in
 * (1); 0 when it is not yet; PROTO_E_BAD_RESPONSE when it is not one. */
int proto_upgrade_status(const char *data, size_t len, int *status);

/*
 * The fields of a backend's 101 that a client gets. for_h2: the HTTP/2
 * client's 200 (RFC 8441 5): connection-specific fields, Sec-WebSocket-Accept
 * and framing fields removed; else the HTTP/1.1 client's 101: Connection
 * and Upgrade kept (they are the handshake), the other connection-specific
 * fields and framing fields removed. Copies the views into out (room for
 * n). Returns the count.
 */
size_t proto_upgrade_filter_101(const proto_header_t *in, size_t n, proto_header_t *out,
                                int for_h2);

/* The value of the first field called name (lowercase) in f[0..n), or
 * NULL; its length in *len. */
const char *proto_upgrade_field(const proto_header_t *f, size_t n, const char *name, size_t *len);

/* The Sec-WebSocket-Key of a request head built by proto_h1_request_build
 * (lowercase names, one field per line), or NULL; its length in *len. */
const char *proto_upgrade_head_key(const char *head, size_t head_len, size_t *len);

/* RFC 6455 4.2.2: the string whose SHA-1 (base64) Sec-WebSocket-Accept
 * must be, the key followed by the protocol's GUID. Writes it into out
 * (cap bytes) and returns its length, or 0 when it does not fit. */
size_t proto_upgrade_accept_input(const char *key, size_t key_len, char *out, size_t cap);

#endif
