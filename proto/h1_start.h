/*
 * How a cleartext HTTP/1.1 connection begins: whether its first bytes can
 * be a request line (the listener's sniff, once they are not the HTTP/2
 * preface), and the base64url HTTP2-Settings payload an h2c Upgrade
 * carries. Pure code, no I/O.
 */
#ifndef PROTO_H1_START_H
#define PROTO_H1_START_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Whether the first bytes of a cleartext connection, which turned out not to
 * be the HTTP/2 preface, may start an HTTP/1.x request: optional empty
 * lines, a token, SP, and a first line that names an "HTTP/" version. Only
 * the shape that tells an HTTP client from anything else is checked; the
 * request parser judges the rest (and answers a malformed line with a 400).
 * The bytes are a followed by b (the sniffed prefix and the read in
 * progress); when they end before the line does, the answer is 1.
 * Returns 1 (plausible) or 0 (TLS on a cleartext port, an HTTP/2 client
 * with a broken preface, noise: nothing an HTTP/1.1 answer would help).
 */
int proto_h1_request_line_plausible(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * Decodes base64url (RFC 4648 §5) without padding, as in HTTP2-Settings;
 * trailing '=' padding is tolerated. Returns the decoded length, or -1 when
 * in holds a byte outside the alphabet, an impossible length, or when the
 * result would not fit in out_cap bytes.
 */
ssize_t proto_h1_base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap);

#endif
