/*
 * What nghttp2 1.52 does not say about a client's frames. Once a stream
 * closes it is forgotten at once (announcing SETTINGS_NO_RFC7540_PRIORITIES
 * = 1 turns its closed-stream retention off), and DATA or HEADERS that
 * arrive for it later are silently ignored, as is HEADERS on a stream id the
 * client skipped. RFC 9113 §5.1 and §5.1.1 want an answer to both.
 *
 * The watch follows the frame boundaries of the client's bytes (the 24-byte
 * preface, then 9-byte frame headers whose payloads are skipped, nothing
 * decoded: nghttp2 parses the frames), remembers the latest closed streams
 * and how each closed, and the latest runs of skipped stream ids, and judges
 * each DATA or HEADERS frame for a stream nghttp2 no longer knows. Memory is
 * fixed: the oldest entries are forgotten, and a frame on a forgotten stream
 * is left to nghttp2 (ignored), which is what it did before.
 */
#ifndef PROTO_H2_WATCH_H
#define PROTO_H2_WATCH_H

#include <stddef.h>
#include <stdint.h>

/* Closed streams remembered per connection, and runs of skipped ids. */
#define PROTO_H2_WATCH_CLOSED 32
#define PROTO_H2_WATCH_SKIPPED 4

#define PROTO_H2_FRAME_DATA 0x0
#define PROTO_H2_FRAME_HEADERS 0x1

/* How a stream closed, which decides what a frame on it afterwards means. */
enum proto_h2_closed_kind {
    PROTO_H2_CLOSED_REMOTE_END,  /* the client had ended it (END_STREAM): a
                                    connection error of type STREAM_CLOSED */
    PROTO_H2_CLOSED_PEER_RESET,  /* the client reset it: a stream error */
    PROTO_H2_CLOSED_LOCAL_RESET, /* we reset it: the client may not know yet,
                                    so frames are ignored (RFC 9113 §5.1) */
};

/* What to answer a frame. */
enum proto_h2_verdict {
    PROTO_H2_PASS,            /* nghttp2 decides (or the frame is ignored) */
    PROTO_H2_RST_CLOSED,      /* RST_STREAM(STREAM_CLOSED) on the frame's stream */
    PROTO_H2_GOAWAY_CLOSED,   /* connection error STREAM_CLOSED */
    PROTO_H2_GOAWAY_PROTOCOL, /* connection error PROTOCOL_ERROR */
};

typedef struct proto_h2_frame_hd {
    uint32_t length;
    uint8_t type, flags;
    int32_t stream_id;
} proto_h2_frame_hd_t;

typedef struct proto_h2_watch {
    size_t preface_left;   /* bytes of the client preface still to pass */
    uint32_t payload_left; /* payload bytes of the current frame still to pass */
    uint8_t hd[9];         /* the frame header being read */
    uint8_t hd_len;
    int32_t max_stream_id; /* the highest stream id a HEADERS frame named */
    struct {
        int32_t id;
        uint8_t kind;        /* enum proto_h2_closed_kind */
        uint8_t is_answered; /* a stream error was sent for it already */
    } closed[PROTO_H2_WATCH_CLOSED];
    unsigned nclosed; /* entries written so far; the ring's next slot is nclosed % size */
    struct {
        int32_t lo, hi;
    } skipped[PROTO_H2_WATCH_SKIPPED];
    unsigned nskipped;
} proto_h2_watch_t;

/* Prepares w for a connection whose client starts with the preface.
 * first_stream_id is 1 after an h2c upgrade (stream 1 is open), else 0. */
void proto_h2_watch_init(proto_h2_watch_t *w, int32_t first_stream_id);

/*
 * Follows len bytes of the client's byte stream. Returns how many it went
 * through: all of them, or fewer when the last one completed the header of
 * a DATA or HEADERS frame, which is then in *hd and *has_hd is 1 (else 0).
 * The caller hands nghttp2 every byte before that last one, judges the
 * frame (proto_h2_watch_judge), then goes on from the last byte.
 */
size_t proto_h2_watch_scan(proto_h2_watch_t *w, const uint8_t *data, size_t len,
                           proto_h2_frame_hd_t *hd, int *has_hd);

/* Stream id closed, kind says how (enum proto_h2_closed_kind). */
void proto_h2_watch_closed(proto_h2_watch_t *w, int32_t id, int kind);

/*
 * What to answer a DATA or HEADERS frame (from proto_h2_watch_scan), once
 * every earlier byte went to nghttp2. is_known: nghttp2 still has the
 * stream, and handles it. Also notes a HEADERS frame that opens a stream
 * (and the ids it skips). A stream error is answered once per stream; later
 * frames on it pass. Returns an enum proto_h2_verdict.
 */
int proto_h2_watch_judge(proto_h2_watch_t *w, const proto_h2_frame_hd_t *hd, int is_known);

#endif
