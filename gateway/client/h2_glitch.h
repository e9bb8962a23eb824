/*
 * The HTTP/2 glitch budget of one client connection: protocol oddities that
 * cost the gateway work but no honest client produces in numbers (resets
 * its bad frames cause, empty DATA, tiny WINDOW_UPDATEs, PRIORITY, SETTINGS
 * and PING floods, requests the gateway answers with a 4xx itself, streams
 * reset before their answer began). Each adds a weight to a score that
 * halves every second; past the threshold the connection is to be ended
 * with GOAWAY(ENHANCE_YOUR_CALM), as HAProxy's glitches threshold does.
 *
 * Pure bookkeeping: no I/O, no clock of its own (the caller passes the
 * time), no nghttp2 session. The HTTP/2 frontend feeds it from nghttp2's
 * callbacks and acts when it trips.
 */
#ifndef GW_H2_GLITCH_H
#define GW_H2_GLITCH_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_h2_glitch_kind {
    GW_H2_GLITCH_STREAM_ERROR, /* a client frame made the server reset a stream
                                  (MadeYouReset, CVE-2025-8671) */
    GW_H2_GLITCH_EMPTY_DATA,   /* DATA without payload and without END_STREAM */
    GW_H2_GLITCH_SMALL_WINDOW, /* a tiny WINDOW_UPDATE that leaves the window small */
    GW_H2_GLITCH_PRIORITY,     /* PRIORITY or PRIORITY_UPDATE past the allowance */
    GW_H2_GLITCH_SETTINGS,     /* SETTINGS past the allowance */
    GW_H2_GLITCH_PING,         /* PING past the allowance */
    GW_H2_GLITCH_BAD_REQUEST,  /* a request the gateway answered with a 4xx itself */
    GW_H2_GLITCH_RAPID_RESET,  /* the client reset a stream before its response head */
    GW_H2_GLITCH_NKINDS
} gw_h2_glitch_kind_t;

/* The score halves at the end of each window; allowances renew with it. */
#define GW_H2_GLITCH_WINDOW_MS 1000

/* Free PRIORITY/PRIORITY_UPDATE frames per window, plus this many per
 * HEADERS frame received in it (a client may re-prioritize each request). */
#define GW_H2_GLITCH_PRIORITY_FREE 100
#define GW_H2_GLITCH_PRIORITY_PER_REQUEST 4
/* Free SETTINGS (not counting ACKs) and PING frames per window. */
#define GW_H2_GLITCH_SETTINGS_FREE 10
#define GW_H2_GLITCH_PING_FREE 20

/* WINDOW_UPDATEs below this increment may be tiny
 * (gw_h2_glitch_is_small_window_update()). */
#define GW_H2_GLITCH_SMALL_INCREMENT 1024

typedef struct gw_h2_glitch {
    uint32_t threshold;                   /* 0: never trips (events are still counted) */
    uint32_t score;                       /* weighted events, halved each window */
    uint64_t window_ms;                   /* start of the current window */
    uint32_t counts[GW_H2_GLITCH_NKINDS]; /* charged events by kind, never decayed */
    /* This window's use of the allowances. */
    uint32_t npriority, nsettings, nping, nheaders;
    /* Stream errors charged on receipt whose RST_STREAM is still to be sent
     * (so that the reset is not charged a second time). */
    uint32_t nresets_owed;
    unsigned is_tripped : 1;
} gw_h2_glitch_t;

/* Starts an empty budget at now_ms. threshold 0 disables tripping. */
void gw_h2_glitch_init(gw_h2_glitch_t *g, uint32_t threshold, uint64_t now_ms);

/* Charges one event of kind at now_ms (time never goes backwards; an
 * earlier time counts as now). Returns 1 exactly once: on the event that
 * first takes the score over the threshold; then 0 forever. */
int gw_h2_glitch_add(gw_h2_glitch_t *g, gw_h2_glitch_kind_t kind, uint64_t now_ms);

/* A frame header arrived (type, flags and length as on the wire; the
 * constants are RFC 9113's). Charges what the header alone tells: an empty
 * DATA frame without END_STREAM, PRIORITY, PRIORITY_UPDATE, SETTINGS (not
 * ACKs) and PING beyond their allowances; a HEADERS frame adds to the
 * PRIORITY allowance. Returns what gw_h2_glitch_add() returns. */
int gw_h2_glitch_on_frame_head(gw_h2_glitch_t *g, uint8_t type, uint8_t flags, size_t length,
                               uint64_t now_ms);

/* nghttp2 found a stream error in a client frame (its invalid-frame
 * callback): charges GW_H2_GLITCH_STREAM_ERROR now, before the rest of the
 * input is read, and remembers that the RST_STREAM it causes is paid for.
 * Returns what gw_h2_glitch_add() returns. */
int gw_h2_glitch_on_stream_error(gw_h2_glitch_t *g, uint64_t now_ms);

/* An RST_STREAM with code (RFC 9113 7) went to the client; has_request
 * tells whether the stream had reached the gateway as a request. Charges
 * GW_H2_GLITCH_STREAM_ERROR for the codes only a client's fault produces
 * (PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR,
 * COMPRESSION_ERROR, and REFUSED_STREAM for a stream refused before it
 * became a request: over the concurrency limit), unless
 * gw_h2_glitch_on_stream_error() already charged it. The gateway's own
 * resets (INTERNAL_ERROR, CANCEL, REFUSED_STREAM of a request) are never
 * charged. Returns what gw_h2_glitch_add() returns. */
int gw_h2_glitch_on_reset_sent(gw_h2_glitch_t *g, uint32_t code, int has_request, uint64_t now_ms);

/* 1 when a WINDOW_UPDATE of increment (> 0) that left the window at
 * window_after is tiny: under GW_H2_GLITCH_SMALL_INCREMENT, with the window
 * still under one full-sized frame (16384), and either the client's full
 * window (full_window: its initial window size) itself under
 * GW_H2_GLITCH_SMALL_INCREMENT, or the increment under half of it and the
 * window not full again. Honest clients acknowledge half a window at a time,
 * or fill the window again after a small response. */
int gw_h2_glitch_is_small_window_update(uint32_t increment, int64_t window_after,
                                        int64_t full_window);

/* The weight one event of kind adds. */
uint32_t gw_h2_glitch_weight(gw_h2_glitch_kind_t kind);

/* The short name of kind for logs ("rapid_reset"), "?" when out of range. */
const char *gw_h2_glitch_kind_str(gw_h2_glitch_kind_t kind);

/* Writes the non-zero counts as "kind=N kind=N" (or "none") into buf,
 * always NUL-terminated when cap > 0 (truncated if short). Returns buf. */
char *gw_h2_glitch_format(const gw_h2_glitch_t *g, char *buf, size_t cap);

#endif
