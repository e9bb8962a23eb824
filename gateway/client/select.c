/*
 * Which protocol a client connection speaks: a cleartext connection sniffs
 * its first bytes (the HTTP/2 preface means HTTP/2 with prior knowledge, a
 * plausible HTTP/1.x request line HTTP/1.1, which may still upgrade to h2c,
 * and anything else is closed unanswered); a TLS one waits for the
 * handshake and follows ALPN (h2, else HTTP/1.1).
 */
#include "gateway/client/select.h"

#include <string.h>

#include "gateway/client/h1_frontend.h"
#include "gateway/client/h2_frontend.h"
#include "gateway/core/log.h"
#include "proto/h1_start.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)
/* "PRI * HTTP/2.0\r\n": a client that sent this much speaks HTTP/2, whatever
 * follows (no HTTP/1.x request line reads so). */
#define H2_PREFACE_LINE_LEN 16

/* Switches c to proto and replays the bytes seen so far plus data. */
static int switch_protocol(gw_client_conn_t *c, const gw_client_proto_t *proto, const uint8_t *data,
                           size_t len)
{
    c->proto = proto;
    gw_client_conn_note_protocol(c);
    if (proto == &gw_h2_client_proto && gw_h2_client_attach(c) != 0)
        return -1;
    if (proto == &gw_h1_client_proto && gw_h1_client_attach(c, c->is_tls) != 0)
        return -1;
    if (c->sniff_len > 0) {
        int rv = proto->on_read(c, c->sniff, c->sniff_len);
        c->sniff_len = 0;
        if (rv < 0)
            return rv;
    }
    return len > 0 ? proto->on_read(c, data, len) : 0;
}

/* Reads until the bytes either match the whole HTTP/2 preface or stop
 * matching it; only the prefix seen so far is buffered (24 bytes at most).
 * Bytes that are neither close the connection without an answer (RFC 9113
 * 3.4: an invalid preface is a connection error): an HTTP/1.1 400 would
 * reach an HTTP/2 client as a frame header it cannot make sense of. */
static int sniff_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    size_t need = H2_PREFACE_LEN - c->sniff_len;
    size_t take = len < need ? len : need;
    if (memcmp(data, h2_preface + c->sniff_len, take) != 0) {
        size_t same = 0;
        while (data[same] == (uint8_t)h2_preface[c->sniff_len + same])
            same++;
        if (c->sniff_len + same >= H2_PREFACE_LINE_LEN ||
            !proto_h1_request_line_plausible(c->sniff, c->sniff_len, data, len)) {
            GW_LOG_DEBUG("client %s:%d: neither the HTTP/2 preface nor an HTTP/1.x request: "
                         "closed",
                         c->peer_addr, c->peer_port);
            return -1;
        }
        return switch_protocol(c, &gw_h1_client_proto, data, len);
    }
    if (take < need) {
        memcpy(c->sniff + c->sniff_len, data, take);
        c->sniff_len += take;
        return 0;
    }
    return switch_protocol(c, &gw_h2_client_proto, data, len);
}

/* Before the protocol is known there is nothing of ours to write (TLS
 * handshake bytes are added by the transport). */
static int waiting_on_flush(gw_client_conn_t *c)
{
    (void)c;
    return 1;
}

static const gw_client_proto_t sniff_proto = {
    .name = "sniff",
    .on_read = sniff_on_read,
    .on_flush = waiting_on_flush,
};

static int handshake_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    (void)c, (void)data, (void)len;
    return -1; /* unreachable: the transport delivers nothing before ALPN */
}

static const gw_client_proto_t handshake_proto = {
    .name = "tls-handshake",
    .on_read = handshake_on_read,
    .on_flush = waiting_on_flush,
};

void gw_select_first_protocol(gw_client_conn_t *c)
{
    c->proto = c->is_tls ? &handshake_proto : &sniff_proto;
}

int gw_select_application(gw_client_conn_t *c, const char *alpn)
{
    if (strcmp(alpn, "h2") == 0)
        return switch_protocol(c, &gw_h2_client_proto, NULL, 0);
    return switch_protocol(c, &gw_h1_client_proto, NULL, 0); /* http/1.1 or no ALPN */
}
