/*
 * Frame boundaries and recently closed streams of an HTTP/2 client
 * connection; see h2_watch.h for why nghttp2 needs this beside it.
 */
#include "proto/h2_watch.h"

#include <string.h>

#define PREFACE_LEN 24
#define FRAME_HD_LEN 9

void proto_h2_watch_init(proto_h2_watch_t *w, int32_t first_stream_id)
{
    memset(w, 0, sizeof(*w));
    w->preface_left = PREFACE_LEN;
    w->max_stream_id = first_stream_id;
}

size_t proto_h2_watch_scan(proto_h2_watch_t *w, const uint8_t *data, size_t len,
                           proto_h2_frame_hd_t *hd, int *has_hd)
{
    size_t i = 0;

    *has_hd = 0;
    while (i < len) {
        if (w->preface_left > 0 || w->payload_left > 0) {
            size_t left = w->preface_left > 0 ? w->preface_left : w->payload_left;
            size_t n = len - i < left ? len - i : left;
            if (w->preface_left > 0)
                w->preface_left -= n;
            else
                w->payload_left -= (uint32_t)n;
            i += n;
            continue;
        }
        w->hd[w->hd_len++] = data[i++];
        if (w->hd_len < FRAME_HD_LEN)
            continue;
        w->hd_len = 0;
        hd->length = (uint32_t)w->hd[0] << 16 | (uint32_t)w->hd[1] << 8 | w->hd[2];
        hd->type = w->hd[3];
        hd->flags = w->hd[4];
        hd->stream_id = (int32_t)(((uint32_t)w->hd[5] & 0x7f) << 24 | (uint32_t)w->hd[6] << 16 |
                                  (uint32_t)w->hd[7] << 8 | w->hd[8]);
        w->payload_left = hd->length;
        if (hd->type == PROTO_H2_FRAME_DATA || hd->type == PROTO_H2_FRAME_HEADERS) {
            *has_hd = 1;
            return i;
        }
    }
    return i;
}

void proto_h2_watch_closed(proto_h2_watch_t *w, int32_t id, int kind)
{
    unsigned slot = w->nclosed++ % PROTO_H2_WATCH_CLOSED;
    w->closed[slot].id = id;
    w->closed[slot].kind = (uint8_t)kind;
    w->closed[slot].is_answered = 0;
}

/* A new stream skipping ids: remember the run (odd ids lo..hi). */
static void note_skipped(proto_h2_watch_t *w, int32_t lo, int32_t hi)
{
    unsigned slot = w->nskipped++ % PROTO_H2_WATCH_SKIPPED;
    w->skipped[slot].lo = lo;
    w->skipped[slot].hi = hi;
}

int proto_h2_watch_judge(proto_h2_watch_t *w, const proto_h2_frame_hd_t *hd, int is_known)
{
    int32_t id = hd->stream_id;

    /* Stream 0 and even ids (we push nothing) are nghttp2's to refuse. */
    if ((hd->type != PROTO_H2_FRAME_DATA && hd->type != PROTO_H2_FRAME_HEADERS) || id <= 0 ||
        id % 2 == 0)
        return PROTO_H2_PASS;
    if (id > w->max_stream_id) {
        /* An idle stream: HEADERS opens it, DATA is nghttp2's error. Ids
         * between are closed now without ever having been open (RFC 9113
         * §5.1.1). */
        if (hd->type == PROTO_H2_FRAME_HEADERS) {
            if (id > w->max_stream_id + 2)
                note_skipped(w, w->max_stream_id + 2, id - 2);
            w->max_stream_id = id;
        }
        return PROTO_H2_PASS;
    }
    if (is_known)
        return PROTO_H2_PASS;
    unsigned n = w->nclosed < PROTO_H2_WATCH_CLOSED ? w->nclosed : PROTO_H2_WATCH_CLOSED;
    for (unsigned k = 0; k < n; k++) {
        unsigned slot = (w->nclosed - 1 - k) % PROTO_H2_WATCH_CLOSED;
        if (w->closed[slot].id != id)
            continue;
        switch (w->closed[slot].kind) {
        case PROTO_H2_CLOSED_REMOTE_END:
            return PROTO_H2_GOAWAY_CLOSED;
        case PROTO_H2_CLOSED_PEER_RESET:
            if (w->closed[slot].is_answered)
                return PROTO_H2_PASS;
            w->closed[slot].is_answered = 1;
            return PROTO_H2_RST_CLOSED;
        default:
            return PROTO_H2_PASS;
        }
    }
    n = w->nskipped < PROTO_H2_WATCH_SKIPPED ? w->nskipped : PROTO_H2_WATCH_SKIPPED;
    for (unsigned k = 0; k < n; k++) {
        if (id >= w->skipped[k].lo && id <= w->skipped[k].hi)
            return PROTO_H2_GOAWAY_PROTOCOL;
    }
    return PROTO_H2_PASS;
}
