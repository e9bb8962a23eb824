/* Unit tests for proto/h2_watch.c: frame boundaries found in any split of
 * the input, and the RFC 9113 5.1 verdicts for frames on closed streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/h2_watch.h"

static size_t put_frame(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, int32_t id)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)((uint32_t)id >> 24);
    p[6] = (uint8_t)((uint32_t)id >> 16);
    p[7] = (uint8_t)((uint32_t)id >> 8);
    p[8] = (uint8_t)id;
    memset(p + 9, 0xab, len);
    return 9 + len;
}

/* Feeds in pieces of at most step bytes; records the DATA/HEADERS frames
 * found as "type:id:len" and checks that each header ends at the byte the
 * scan stopped on. */
static void scan_all(const uint8_t *in, size_t len, size_t step, char *out, size_t cap)
{
    proto_h2_watch_t w;
    size_t pos = 0, olen = 0;

    proto_h2_watch_init(&w, 0);
    out[0] = '\0';
    while (pos < len) {
        size_t piece = len - pos < step ? len - pos : step;
        size_t off = 0;
        while (off < piece) {
            proto_h2_frame_hd_t hd;
            int has_hd;
            size_t n = proto_h2_watch_scan(&w, in + pos + off, piece - off, &hd, &has_hd);
            assert_true(n > 0 && n <= piece - off);
            off += n;
            if (has_hd)
                olen += (size_t)snprintf(out + olen, cap - olen, "%u:%d:%u ", hd.type,
                                         (int)hd.stream_id, hd.length);
        }
        pos += piece;
    }
}

static void test_boundaries(void **state)
{
    uint8_t in[512];
    size_t n = 0;
    char want[256], got[256];

    (void)state;
    memcpy(in, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    n += put_frame(in + n, 6, 0x4, 0, 0);   /* SETTINGS */
    n += put_frame(in + n, 20, 0x1, 5, 1);  /* HEADERS */
    n += put_frame(in + n, 4, 0x3, 0, 1);   /* RST_STREAM */
    n += put_frame(in + n, 0, 0x0, 1, 1);   /* empty DATA */
    n += put_frame(in + n, 9, 0x8, 0, 0);   /* WINDOW_UPDATE, odd length */
    n += put_frame(in + n, 100, 0x0, 0, 3); /* DATA whose payload holds a fake header */
    n += put_frame(in + n, 9, 0x1, 4, 5);
    scan_all(in, n, n, want, sizeof(want));
    assert_string_equal(want, "1:1:20 0:1:0 0:3:100 1:5:9 ");
    for (size_t step = 1; step < 40; step++) {
        scan_all(in, n, step, got, sizeof(got));
        assert_string_equal(got, want);
    }
}

static proto_h2_frame_hd_t frame(uint8_t type, int32_t id)
{
    proto_h2_frame_hd_t hd = {.length = 4, .type = type, .flags = 0, .stream_id = id};
    return hd;
}

static void test_verdicts(void **state)
{
    proto_h2_watch_t w;
    proto_h2_frame_hd_t h1 = frame(PROTO_H2_FRAME_HEADERS, 1), d1 = frame(PROTO_H2_FRAME_DATA, 1);

    (void)state;
    proto_h2_watch_init(&w, 0);
    /* Stream 1 opens: nghttp2 decides. */
    assert_int_equal(proto_h2_watch_judge(&w, &h1, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &d1, 1), PROTO_H2_PASS);
    /* Ended by the client, then forgotten by nghttp2: connection error. */
    proto_h2_watch_closed(&w, 1, PROTO_H2_CLOSED_REMOTE_END);
    assert_int_equal(proto_h2_watch_judge(&w, &d1, 0), PROTO_H2_GOAWAY_CLOSED);
    assert_int_equal(proto_h2_watch_judge(&w, &h1, 0), PROTO_H2_GOAWAY_CLOSED);

    /* Reset by the client: one stream error, then ignored. */
    proto_h2_frame_hd_t h3 = frame(PROTO_H2_FRAME_HEADERS, 3), d3 = frame(PROTO_H2_FRAME_DATA, 3);
    assert_int_equal(proto_h2_watch_judge(&w, &h3, 0), PROTO_H2_PASS);
    proto_h2_watch_closed(&w, 3, PROTO_H2_CLOSED_PEER_RESET);
    assert_int_equal(proto_h2_watch_judge(&w, &d3, 0), PROTO_H2_RST_CLOSED);
    assert_int_equal(proto_h2_watch_judge(&w, &d3, 0), PROTO_H2_PASS);

    /* Reset by us: the client may still send; ignored. */
    proto_h2_frame_hd_t h5 = frame(PROTO_H2_FRAME_HEADERS, 5), d5 = frame(PROTO_H2_FRAME_DATA, 5);
    assert_int_equal(proto_h2_watch_judge(&w, &h5, 0), PROTO_H2_PASS);
    proto_h2_watch_closed(&w, 5, PROTO_H2_CLOSED_LOCAL_RESET);
    assert_int_equal(proto_h2_watch_judge(&w, &d5, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &h5, 0), PROTO_H2_PASS);

    /* Skipping 7 and 9 by opening 11: HEADERS on 9 later is PROTOCOL_ERROR. */
    proto_h2_frame_hd_t h11 = frame(PROTO_H2_FRAME_HEADERS, 11);
    proto_h2_frame_hd_t h9 = frame(PROTO_H2_FRAME_HEADERS, 9);
    assert_int_equal(proto_h2_watch_judge(&w, &h11, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &h9, 0), PROTO_H2_GOAWAY_PROTOCOL);

    /* Idle streams, even ids and stream 0 are nghttp2's. */
    proto_h2_frame_hd_t d13 = frame(PROTO_H2_FRAME_DATA, 13), d2 = frame(PROTO_H2_FRAME_DATA, 2);
    proto_h2_frame_hd_t d0 = frame(PROTO_H2_FRAME_DATA, 0);
    assert_int_equal(proto_h2_watch_judge(&w, &d13, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &d2, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &d0, 0), PROTO_H2_PASS);
}

/* The record is bounded: the oldest closed streams are forgotten, and a
 * frame on a forgotten stream is ignored as nghttp2 would. */
static void test_bounded(void **state)
{
    proto_h2_watch_t w;

    (void)state;
    proto_h2_watch_init(&w, 0);
    for (int32_t id = 1; id <= 2 * PROTO_H2_WATCH_CLOSED + 1; id += 2) {
        proto_h2_frame_hd_t h = frame(PROTO_H2_FRAME_HEADERS, id);
        assert_int_equal(proto_h2_watch_judge(&w, &h, 0), PROTO_H2_PASS);
        proto_h2_watch_closed(&w, id, PROTO_H2_CLOSED_REMOTE_END);
    }
    proto_h2_frame_hd_t oldest = frame(PROTO_H2_FRAME_DATA, 1);
    proto_h2_frame_hd_t newest = frame(PROTO_H2_FRAME_DATA, 2 * PROTO_H2_WATCH_CLOSED + 1);
    assert_int_equal(proto_h2_watch_judge(&w, &oldest, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &newest, 0), PROTO_H2_GOAWAY_CLOSED);

    /* After an h2c upgrade stream 1 exists and is not "skipped". */
    proto_h2_watch_init(&w, 1);
    proto_h2_frame_hd_t h3 = frame(PROTO_H2_FRAME_HEADERS, 3),
                        h1 = frame(PROTO_H2_FRAME_HEADERS, 1);
    assert_int_equal(proto_h2_watch_judge(&w, &h3, 0), PROTO_H2_PASS);
    assert_int_equal(proto_h2_watch_judge(&w, &h1, 0), PROTO_H2_PASS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
