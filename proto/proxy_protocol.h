/*
 * PROXY protocol v1 (text) and v2 (binary) header parsing, as sent by an L4
 * load balancer in front of h2gw (HAProxy's spec, proxy-protocol.txt). The
 * header carries the real client address, which replaces the TCP peer's in
 * logs and forwarding headers.
 */
#ifndef PROTO_PROXY_PROTOCOL_H
#define PROTO_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* Longest header: v1 is at most 107 bytes; v2 is 16 + a 16-bit length, but
 * we refuse v2 headers longer than this (TLVs beyond it are not needed). */
#define PROTO_PROXY_MAX_HEADER 1024

typedef struct proto_proxy_info {
    int is_local;      /* v2 LOCAL or v1 UNKNOWN: keep the TCP peer address */
    int family;        /* AF_INET or AF_INET6 when !is_local */
    char src_addr[64]; /* numeric, NUL-terminated */
    uint16_t src_port;
    char dst_addr[64];
    uint16_t dst_port;
} proto_proxy_info_t;

/*
 * Parses a PROXY header at the start of data.
 *
 * Returns the header length (> 0) when a complete, valid header was parsed
 * (bytes after it belong to the application protocol), 0 when more bytes are
 * needed (data is a valid prefix of a header, shorter than the whole), or -1
 * when data is not a valid PROXY header (v1 or v2), including a v1 line over
 * 107 bytes, a v2 header over PROTO_PROXY_MAX_HEADER, a bad signature,
 * version or command, an address block shorter than its family needs, or
 * v1 addresses/ports that do not parse. v2 UNIX addresses are accepted as
 * is_local. Never reads beyond len.
 */
int proto_proxy_parse(const uint8_t *data, size_t len, proto_proxy_info_t *out);

#endif
