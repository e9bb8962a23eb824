/*
 * The glitch budget: a decaying score per client connection, charged by
 * the HTTP/2 frontend for each protocol oddity, and the allowances that let
 * an honest client send some PRIORITY, SETTINGS and PING frames for free.
 *
 * The score halves at each window boundary instead of decaying smoothly:
 * integer arithmetic, the same answer for the same times (unit tests), and
 * a client that keeps a steady rate r of weighted events settles near 2r,
 * so it trips only above threshold / 2 weight per second, or with a burst
 * of threshold in one window.
 */
#include "gateway/client/h2_glitch.h"

#include <stdio.h>
#include <string.h>

/* RFC 9113 frame types and flags, so this module needs no nghttp2. */
enum {
    FRAME_DATA = 0x0,
    FRAME_HEADERS = 0x1,
    FRAME_PRIORITY = 0x2,
    FRAME_SETTINGS = 0x4,
    FRAME_PING = 0x6,
    FRAME_PRIORITY_UPDATE = 0x10, /* RFC 9218 */
    FLAG_END_STREAM = 0x1,
    FLAG_ACK = 0x1,
    ERR_PROTOCOL = 0x1,
    ERR_FLOW_CONTROL = 0x3,
    ERR_STREAM_CLOSED = 0x5,
    ERR_FRAME_SIZE = 0x6,
    ERR_REFUSED_STREAM = 0x7,
    ERR_COMPRESSION = 0x9,
};

/* The largest frame payload every peer must accept (SETTINGS_MAX_FRAME_SIZE
 * default): a window at least this big lets a full frame through. */
#define FULL_FRAME 16384

/*
 * Weights, against the default threshold of 1000. A reset the client's bad
 * frame causes costs a stream set up and torn down, and maybe a backend
 * request; a 4xx costs a request head parsed and answered; a flood past its
 * allowance costs a frame each. Honest clients produce none of these in
 * numbers: a page of 100 requests all cancelled (rapid_reset) or all
 * refused with a 4xx (bad_request) weighs 500.
 */
static const struct {
    const char *name;
    uint32_t weight;
} kinds[GW_H2_GLITCH_NKINDS] = {
    [GW_H2_GLITCH_STREAM_ERROR] = {"stream_error", 10},
    [GW_H2_GLITCH_EMPTY_DATA] = {"empty_data", 5},
    [GW_H2_GLITCH_SMALL_WINDOW] = {"small_window_update", 5},
    [GW_H2_GLITCH_PRIORITY] = {"priority", 2},
    [GW_H2_GLITCH_SETTINGS] = {"settings", 10},
    [GW_H2_GLITCH_PING] = {"ping", 10},
    [GW_H2_GLITCH_BAD_REQUEST] = {"bad_request", 5},
    [GW_H2_GLITCH_RAPID_RESET] = {"rapid_reset", 5},
};

void gw_h2_glitch_init(gw_h2_glitch_t *g, uint32_t threshold, uint64_t now_ms)
{
    memset(g, 0, sizeof(*g));
    g->threshold = threshold;
    g->window_ms = now_ms;
}

/* Moves to the window holding now_ms: the score halves once per window
 * passed, and the allowances renew. */
static void advance(gw_h2_glitch_t *g, uint64_t now_ms)
{
    if (now_ms < g->window_ms + GW_H2_GLITCH_WINDOW_MS)
        return;
    uint64_t n = (now_ms - g->window_ms) / GW_H2_GLITCH_WINDOW_MS;
    g->score = n >= 32 ? 0 : g->score >> n;
    g->window_ms += n * GW_H2_GLITCH_WINDOW_MS;
    g->npriority = g->nsettings = g->nping = g->nheaders = 0;
}

uint32_t gw_h2_glitch_weight(gw_h2_glitch_kind_t kind)
{
    return (unsigned)kind < GW_H2_GLITCH_NKINDS ? kinds[kind].weight : 0;
}

const char *gw_h2_glitch_kind_str(gw_h2_glitch_kind_t kind)
{
    return (unsigned)kind < GW_H2_GLITCH_NKINDS ? kinds[kind].name : "?";
}

int gw_h2_glitch_add(gw_h2_glitch_t *g, gw_h2_glitch_kind_t kind, uint64_t now_ms)
{
    if ((unsigned)kind >= GW_H2_GLITCH_NKINDS)
        return 0;
    advance(g, now_ms);
    uint32_t w = kinds[kind].weight;
    g->score = g->score > UINT32_MAX - w ? UINT32_MAX : g->score + w;
    if (g->counts[kind] < UINT32_MAX)
        g->counts[kind]++;
    if (g->is_tripped || g->threshold == 0 || g->score <= g->threshold)
        return 0;
    g->is_tripped = 1;
    return 1;
}

/* Counts one use of an allowance; charges kind once it is used up. */
static int allowance(gw_h2_glitch_t *g, uint32_t *used, uint32_t free, gw_h2_glitch_kind_t kind,
                     uint64_t now_ms)
{
    if (*used < UINT32_MAX)
        (*used)++;
    return *used > free ? gw_h2_glitch_add(g, kind, now_ms) : 0;
}

int gw_h2_glitch_on_frame_head(gw_h2_glitch_t *g, uint8_t type, uint8_t flags, size_t length,
                               uint64_t now_ms)
{
    advance(g, now_ms);
    switch (type) {
    case FRAME_DATA:
        if (length == 0 && !(flags & FLAG_END_STREAM))
            return gw_h2_glitch_add(g, GW_H2_GLITCH_EMPTY_DATA, now_ms);
        return 0;
    case FRAME_HEADERS:
        if (g->nheaders < UINT32_MAX)
            g->nheaders++;
        return 0;
    case FRAME_PRIORITY:
    case FRAME_PRIORITY_UPDATE: {
        uint64_t free =
            GW_H2_GLITCH_PRIORITY_FREE + (uint64_t)g->nheaders * GW_H2_GLITCH_PRIORITY_PER_REQUEST;
        return allowance(g, &g->npriority, free > UINT32_MAX ? UINT32_MAX : (uint32_t)free,
                         GW_H2_GLITCH_PRIORITY, now_ms);
    }
    case FRAME_SETTINGS:
        if (flags & FLAG_ACK)
            return 0;
        return allowance(g, &g->nsettings, GW_H2_GLITCH_SETTINGS_FREE, GW_H2_GLITCH_SETTINGS,
                         now_ms);
    case FRAME_PING:
        return allowance(g, &g->nping, GW_H2_GLITCH_PING_FREE, GW_H2_GLITCH_PING, now_ms);
    default:
        return 0;
    }
}

int gw_h2_glitch_on_stream_error(gw_h2_glitch_t *g, uint64_t now_ms)
{
    if (g->nresets_owed < UINT32_MAX)
        g->nresets_owed++;
    return gw_h2_glitch_add(g, GW_H2_GLITCH_STREAM_ERROR, now_ms);
}

int gw_h2_glitch_on_reset_sent(gw_h2_glitch_t *g, uint32_t code, int has_request, uint64_t now_ms)
{
    switch (code) {
    case ERR_PROTOCOL:
    case ERR_FLOW_CONTROL:
    case ERR_STREAM_CLOSED:
    case ERR_FRAME_SIZE:
    case ERR_COMPRESSION:
        break;
    case ERR_REFUSED_STREAM:
        if (has_request)
            return 0; /* the gateway's own refusal: safe to retry */
        break;
    default:
        return 0;
    }
    if (g->nresets_owed > 0) {
        g->nresets_owed--;
        return 0;
    }
    return gw_h2_glitch_add(g, GW_H2_GLITCH_STREAM_ERROR, now_ms);
}

int gw_h2_glitch_is_small_window_update(uint32_t increment, int64_t window_after,
                                        int64_t full_window)
{
    if (increment == 0 || increment >= GW_H2_GLITCH_SMALL_INCREMENT || window_after >= FULL_FRAME)
        return 0;
    if (full_window < GW_H2_GLITCH_SMALL_INCREMENT)
        return 1; /* a tiny window of its own: every update is tiny */
    /* Half a window at a time is how nghttp2, h2 and browsers acknowledge. */
    return 2 * (int64_t)increment < full_window && window_after < full_window;
}

char *gw_h2_glitch_format(const gw_h2_glitch_t *g, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (int k = 0; k < GW_H2_GLITCH_NKINDS; k++) {
        if (g->counts[k] == 0)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s=%u", len > 0 ? " " : "", kinds[k].name,
                         (unsigned)g->counts[k]);
        if (n < 0 || (size_t)n >= cap - len)
            return buf; /* truncated, still terminated */
        len += (size_t)n;
    }
    if (len == 0)
        snprintf(buf, cap, "none");
    return buf;
}
