/*
 * Shared vocabulary of the pure protocol layer: the header field view and the
 * error codes. Nothing here allocates or touches I/O.
 */
#ifndef PROTO_PROTO_H
#define PROTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* A header field as a pair of byte ranges. Never NUL-terminated by contract;
 * who owns the bytes is stated by every function that hands one out. */
typedef struct proto_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} proto_header_t;

/* Negative error codes of proto_* functions. 0 is success. */
enum {
    PROTO_E_NOMEM = -1,           /* allocation failed */
    PROTO_E_BAD_REQUEST = -2,     /* the client's request cannot be forwarded: 400 */
    PROTO_E_NOT_IMPLEMENTED = -3, /* a method we do not proxy (CONNECT): 501 */
    PROTO_E_BAD_RESPONSE = -4,    /* the backend's response is malformed: 502 / RST */
    PROTO_E_UNSAFE_RESPONSE = -5, /* well-formed HTTP/1.1 that HTTP/2 cannot carry: 502 */
    PROTO_E_TOO_LARGE = -6,       /* a head over its configured limit */
    PROTO_E_CALLBACK = -7,        /* a user callback asked to stop */
};

/* Short English text for a PROTO_E_* code, for logs. */
const char *proto_strerror(int err);

#endif
