/* Unit tests for gateway/client/h2_glitch.c: the decaying glitch score, its
 * threshold, the free allowances, the reset and WINDOW_UPDATE classifiers
 * and the log format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/client/h2_glitch.h"

enum {
    T_DATA = 0x0,
    T_HEADERS = 0x1,
    T_PRIORITY = 0x2,
    T_RST_STREAM = 0x3,
    T_SETTINGS = 0x4,
    T_PING = 0x6,
    T_WINDOW_UPDATE = 0x8,
    T_PRIORITY_UPDATE = 0x10,
};

#define T0 1000000 /* an arbitrary start time, in ms */

/* Adds kind n times at now; returns how many of the calls returned 1. */
static int add_n(gw_h2_glitch_t *g, gw_h2_glitch_kind_t kind, int n, uint64_t now)
{
    int trips = 0;
    for (int i = 0; i < n; i++)
        trips += gw_h2_glitch_add(g, kind, now);
    return trips;
}

static void test_trips_once_past_the_threshold(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 100, T0);
    uint32_t w = gw_h2_glitch_weight(GW_H2_GLITCH_STREAM_ERROR);
    int under = (int)(100 / w); /* exactly at the threshold: not over it */
    assert_int_equal(add_n(&g, GW_H2_GLITCH_STREAM_ERROR, under, T0), 0);
    assert_int_equal(g.score, under * w);
    assert_int_equal(gw_h2_glitch_add(&g, GW_H2_GLITCH_STREAM_ERROR, T0), 1);
    assert_true(g.is_tripped);
    /* Once: the caller acts on the first trip only. */
    assert_int_equal(add_n(&g, GW_H2_GLITCH_STREAM_ERROR, 1000, T0), 0);
    assert_int_equal(g.counts[GW_H2_GLITCH_STREAM_ERROR], (uint32_t)under + 1001);
}

static void test_threshold_zero_never_trips(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 0, T0);
    assert_int_equal(add_n(&g, GW_H2_GLITCH_PING, 100000, T0), 0);
    assert_false(g.is_tripped);
    assert_int_equal(g.counts[GW_H2_GLITCH_PING], 100000);
}

static void test_score_halves_each_window(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000, T0);
    add_n(&g, GW_H2_GLITCH_STREAM_ERROR, 80, T0); /* 800 */
    assert_int_equal(g.score, 800);
    /* Still the same window: no decay. */
    gw_h2_glitch_add(&g, GW_H2_GLITCH_PRIORITY, T0 + GW_H2_GLITCH_WINDOW_MS - 1);
    assert_int_equal(g.score, 802);
    /* One window on: halved, then the new event added. */
    gw_h2_glitch_add(&g, GW_H2_GLITCH_PRIORITY, T0 + GW_H2_GLITCH_WINDOW_MS);
    assert_int_equal(g.score, 401 + 2);
    /* Three windows on: halved three times (from the new window start). */
    gw_h2_glitch_add(&g, GW_H2_GLITCH_PRIORITY, T0 + 4 * GW_H2_GLITCH_WINDOW_MS + 500);
    assert_int_equal(g.score, 403 / 8 + 2);
    /* A time before the window start counts as now. */
    gw_h2_glitch_add(&g, GW_H2_GLITCH_PRIORITY, T0);
    assert_int_equal(g.score, 403 / 8 + 4);
    /* Long idle: nothing left (no shift by 64 or more). */
    gw_h2_glitch_add(&g, GW_H2_GLITCH_PRIORITY, T0 + 1000ULL * GW_H2_GLITCH_WINDOW_MS);
    assert_int_equal(g.score, 2);
    assert_false(g.is_tripped);
}

/* A steady rate under half the threshold per window never trips; above it,
 * the score climbs over the threshold within a few windows. */
static void test_steady_rates(void **state)
{
    (void)state;
    static const struct {
        int per_window; /* stream errors (weight 10) per window */
        int want_trip;
    } cases[] = {
        {10, 0}, {40, 0}, {49, 0}, {50, 0}, {51, 1}, {60, 1}, {101, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_h2_glitch_t g;
        gw_h2_glitch_init(&g, 1000, T0);
        int trips = 0;
        for (int s = 0; s < 120; s++) {
            uint64_t now = T0 + (uint64_t)s * GW_H2_GLITCH_WINDOW_MS;
            trips += add_n(&g, GW_H2_GLITCH_STREAM_ERROR, cases[i].per_window, now);
        }
        assert_int_equal(trips, cases[i].want_trip);
    }
}

static void test_score_saturates(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, UINT32_MAX, T0);
    g.score = UINT32_MAX - 3;
    assert_int_equal(gw_h2_glitch_add(&g, GW_H2_GLITCH_STREAM_ERROR, T0), 0);
    assert_int_equal(g.score, UINT32_MAX);
    assert_int_equal(gw_h2_glitch_add(&g, GW_H2_GLITCH_BAD_REQUEST, 0), 0);
    assert_int_equal(gw_h2_glitch_add(&g, GW_H2_GLITCH_NKINDS, T0), 0); /* out of range */
}

static void test_empty_data(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000, T0);
    gw_h2_glitch_on_frame_head(&g, T_DATA, 0x1, 0, T0);  /* END_STREAM: how a body ends */
    gw_h2_glitch_on_frame_head(&g, T_DATA, 0x0, 1, T0);  /* one byte */
    gw_h2_glitch_on_frame_head(&g, T_DATA, 0x8, 10, T0); /* padding only: not empty here */
    assert_int_equal(g.counts[GW_H2_GLITCH_EMPTY_DATA], 0);
    gw_h2_glitch_on_frame_head(&g, T_DATA, 0x0, 0, T0);
    assert_int_equal(g.counts[GW_H2_GLITCH_EMPTY_DATA], 1);
    int trips = 0, n = 0;
    while (!trips && n < 10000) {
        trips = gw_h2_glitch_on_frame_head(&g, T_DATA, 0x0, 0, T0);
        n++;
    }
    assert_int_equal(trips, 1);
    assert_int_equal(n + 1, 1000 / gw_h2_glitch_weight(GW_H2_GLITCH_EMPTY_DATA) + 1);
}

/* Frames of type, free up to free per window, then charged as kind. */
static void check_allowance(uint8_t type, uint8_t flags, uint32_t free, gw_h2_glitch_kind_t kind)
{
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000000, T0);
    for (uint32_t i = 0; i < free; i++)
        gw_h2_glitch_on_frame_head(&g, type, flags, 8, T0 + i % 900);
    assert_int_equal(g.counts[kind], 0);
    assert_int_equal(g.score, 0);
    gw_h2_glitch_on_frame_head(&g, type, flags, 8, T0 + 900);
    assert_int_equal(g.counts[kind], 1);
    assert_int_equal(g.score, gw_h2_glitch_weight(kind));
    /* The next window renews the allowance. */
    for (uint32_t i = 0; i < free; i++)
        gw_h2_glitch_on_frame_head(&g, type, flags, 8, T0 + GW_H2_GLITCH_WINDOW_MS);
    assert_int_equal(g.counts[kind], 1);
}

static void test_allowances(void **state)
{
    (void)state;
    check_allowance(T_PRIORITY, 0, GW_H2_GLITCH_PRIORITY_FREE, GW_H2_GLITCH_PRIORITY);
    check_allowance(T_PRIORITY_UPDATE, 0, GW_H2_GLITCH_PRIORITY_FREE, GW_H2_GLITCH_PRIORITY);
    check_allowance(T_SETTINGS, 0, GW_H2_GLITCH_SETTINGS_FREE, GW_H2_GLITCH_SETTINGS);
    check_allowance(T_PING, 0, GW_H2_GLITCH_PING_FREE, GW_H2_GLITCH_PING);
    check_allowance(T_PING, 0x1, GW_H2_GLITCH_PING_FREE, GW_H2_GLITCH_PING); /* ACKs too */
}

static void test_settings_acks_are_free(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000, T0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(gw_h2_glitch_on_frame_head(&g, T_SETTINGS, 0x1, 0, T0), 0);
    assert_int_equal(g.score, 0);
}

/* Each request may bring its own PRIORITY and PRIORITY_UPDATE frames: a page
 * of 200 requests, each re-prioritized twice, costs nothing. */
static void test_priority_allowance_grows_with_requests(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000, T0);
    for (int i = 0; i < 200; i++) {
        gw_h2_glitch_on_frame_head(&g, T_HEADERS, 0x5, 40, T0);
        gw_h2_glitch_on_frame_head(&g, T_PRIORITY, 0, 5, T0);
        gw_h2_glitch_on_frame_head(&g, T_PRIORITY_UPDATE, 0, 7, T0);
    }
    assert_int_equal(g.score, 0);
    /* Beyond the grown allowance, each frame costs. */
    uint32_t free = GW_H2_GLITCH_PRIORITY_FREE + 200 * GW_H2_GLITCH_PRIORITY_PER_REQUEST;
    for (uint32_t i = 400; i < free; i++)
        gw_h2_glitch_on_frame_head(&g, T_PRIORITY, 0, 5, T0);
    assert_int_equal(g.score, 0);
    gw_h2_glitch_on_frame_head(&g, T_PRIORITY, 0, 5, T0);
    assert_int_equal(g.counts[GW_H2_GLITCH_PRIORITY], 1);
}

static void test_other_frames_are_free(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1, T0);
    static const uint8_t types[] = {T_HEADERS, T_RST_STREAM, T_WINDOW_UPDATE, 0x7, 0x9, 0xff};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(gw_h2_glitch_on_frame_head(&g, types[i % sizeof(types)], 0, 4, T0), 0);
    assert_int_equal(g.score, 0);
}

static void test_resets_sent(void **state)
{
    (void)state;
    static const struct {
        uint32_t code;
        int has_request;
        int charged;
    } cases[] = {
        {0x0, 1, 0},              /* NO_ERROR */
        {0x1, 1, 1},              /* PROTOCOL_ERROR: a malformed request */
        {0x1, 0, 1}, {0x2, 1, 0}, /* INTERNAL_ERROR: ours */
        {0x3, 1, 1},              /* FLOW_CONTROL_ERROR */
        {0x5, 0, 1},              /* STREAM_CLOSED */
        {0x6, 0, 1},              /* FRAME_SIZE_ERROR */
        {0x7, 1, 0},              /* REFUSED_STREAM of a request: the gateway's own */
        {0x7, 0, 1},              /* REFUSED_STREAM before any request: over the stream limit */
        {0x8, 1, 0},              /* CANCEL: ours */
        {0x9, 0, 1},              /* COMPRESSION_ERROR */
        {0xb, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_h2_glitch_t g;
        gw_h2_glitch_init(&g, 1000, T0);
        gw_h2_glitch_on_reset_sent(&g, cases[i].code, cases[i].has_request, T0);
        assert_int_equal(g.counts[GW_H2_GLITCH_STREAM_ERROR], cases[i].charged);
    }
}

/* A stream error charged on receipt is not charged again when its reset
 * leaves; resets nobody charged yet are. */
static void test_stream_error_is_charged_once(void **state)
{
    (void)state;
    gw_h2_glitch_t g;
    gw_h2_glitch_init(&g, 1000, T0);
    gw_h2_glitch_on_stream_error(&g, T0);
    gw_h2_glitch_on_stream_error(&g, T0);
    assert_int_equal(g.counts[GW_H2_GLITCH_STREAM_ERROR], 2);
    gw_h2_glitch_on_reset_sent(&g, 0x1, 1, T0);
    gw_h2_glitch_on_reset_sent(&g, 0x8, 1, T0); /* ours: owes nothing, pays nothing */
    gw_h2_glitch_on_reset_sent(&g, 0x1, 1, T0);
    assert_int_equal(g.counts[GW_H2_GLITCH_STREAM_ERROR], 2);
    gw_h2_glitch_on_reset_sent(&g, 0x1, 1, T0);
    assert_int_equal(g.counts[GW_H2_GLITCH_STREAM_ERROR], 3);
    assert_int_equal(g.score, 3 * gw_h2_glitch_weight(GW_H2_GLITCH_STREAM_ERROR));
}

static void test_small_window_updates(void **state)
{
    (void)state;
    static const struct {
        uint32_t increment;
        int64_t after, full;
        int is_small;
    } cases[] = {
        {1, 1, 65535, 1},       /* a window opened one byte at a time */
        {1023, 1023, 65535, 1}, /* still under one frame */
        {1024, 1024, 65535, 0}, /* not tiny */
        {100, 65535, 65535, 0}, /* fills the window after a small response */
        {100, 20000, 65535, 0}, /* room for a full frame */
        {100, 16383, 65535, 1}, /* not quite */
        {1, 1, 0, 1},           /* a zero window of its own, opened by the byte */
        {100, 100, 100, 1},     /* a tiny window of its own, "filled" */
        {1000, 1000, 2000, 0},  /* half a small window: how honest clients ack */
        {512, 600, 1024, 0},    /* likewise */
        {511, 600, 1024, 1},    /* less than half */
        {511, 1024, 1024, 0},   /* but filling it */
        {1000, 1000, 1000, 1},  /* a window under 1024 of its own */
        {0, 0, 65535, 0},       /* zero: nghttp2's own error, not this */
        {500, -100, 65535, 1},  /* a window below zero after SETTINGS shrank it */
        {500, 70000, 65535, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(
            gw_h2_glitch_is_small_window_update(cases[i].increment, cases[i].after, cases[i].full),
            cases[i].is_small);
}

static void test_names_and_format(void **state)
{
    (void)state;
    for (int k = 0; k < GW_H2_GLITCH_NKINDS; k++) {
        assert_string_not_equal(gw_h2_glitch_kind_str(k), "?");
        assert_true(gw_h2_glitch_weight(k) > 0);
    }
    assert_string_equal(gw_h2_glitch_kind_str(GW_H2_GLITCH_RAPID_RESET), "rapid_reset");
    assert_string_equal(gw_h2_glitch_kind_str(GW_H2_GLITCH_NKINDS), "?");
    assert_int_equal(gw_h2_glitch_weight(GW_H2_GLITCH_NKINDS), 0);

    gw_h2_glitch_t g;
    char buf[128];
    gw_h2_glitch_init(&g, 1000, T0);
    assert_string_equal(gw_h2_glitch_format(&g, buf, sizeof(buf)), "none");
    add_n(&g, GW_H2_GLITCH_RAPID_RESET, 3, T0);
    add_n(&g, GW_H2_GLITCH_EMPTY_DATA, 12, T0);
    assert_string_equal(gw_h2_glitch_format(&g, buf, sizeof(buf)), "empty_data=12 rapid_reset=3");
    /* Short buffers are cut, and still terminated. */
    char small[16];
    memset(small, 'x', sizeof(small));
    gw_h2_glitch_format(&g, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    assert_int_equal(strncmp(small, "empty_data=12", 13), 0);
    gw_h2_glitch_format(&g, small, 0); /* writes nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trips_once_past_the_threshold),
        cmocka_unit_test(test_threshold_zero_never_trips),
        cmocka_unit_test(test_score_halves_each_window),
        cmocka_unit_test(test_steady_rates),
        cmocka_unit_test(test_score_saturates),
        cmocka_unit_test(test_empty_data),
        cmocka_unit_test(test_allowances),
        cmocka_unit_test(test_settings_acks_are_free),
        cmocka_unit_test(test_priority_allowance_grows_with_requests),
        cmocka_unit_test(test_other_frames_are_free),
        cmocka_unit_test(test_resets_sent),
        cmocka_unit_test(test_stream_error_is_charged_once),
        cmocka_unit_test(test_small_window_updates),
        cmocka_unit_test(test_names_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
