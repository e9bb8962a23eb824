/*
 * Fuzz target for proto/h1_request_parser: a byte stream of pipelined
 * requests fed whole, byte by byte and cut at points chosen by the input's
 * first bytes must give the same events and the same result each time, and
 * never touch memory outside the bytes it was given.
 *
 * Input: [k][max-head choice][k x 16-bit cut points][stream].
 */
#include "test/fuzz/fuzz.h"

#include "proto/h1_request_parser.h"

#define MAX_CUTS 8

typedef struct run {
    fz_log_t log;
    const uint8_t *lo, *hi; /* the stream, to check body pointers */
    int in_body;
} run_t;

static void log_fields(fz_log_t *l, const proto_header_t *h, size_t n)
{
    fz_log_int(l, (long long)n);
    for (size_t i = 0; i < n; i++) {
        fz_log_int(l, (long long)h[i].name_len);
        fz_log_bytes(l, h[i].name, h[i].name_len);
        fz_log_int(l, (long long)h[i].value_len);
        fz_log_bytes(l, h[i].value, h[i].value_len);
    }
}

static int on_head(void *ud, const proto_h1_req_head_t *h)
{
    run_t *r = ud;

    r->in_body = 0;
    fz_log_event(&r->log, 'H');
    fz_log_bytes(&r->log, h->method, h->method_len);
    fz_log_int(&r->log, (long long)h->target_len);
    fz_log_bytes(&r->log, h->target, h->target_len);
    fz_log_int(&r->log, (long long)h->path_len);
    fz_log_bytes(&r->log, h->path, h->path_len);
    fz_log_int(&r->log, h->authority != NULL ? (long long)h->authority_len : -1);
    if (h->authority != NULL)
        fz_log_bytes(&r->log, h->authority, h->authority_len);
    fz_log_int(&r->log, h->http_minor);
    fz_log_int(&r->log, h->content_length);
    fz_log_int(&r->log, h->flags);
    if (h->flags & PROTO_H1_REQ_UPGRADE_H2C)
        fz_log_bytes(&r->log, h->http2_settings, h->http2_settings_len);
    FZ_CHECK(h->target_len > 0 && h->path_len > 0);
    FZ_CHECK(h->http_minor == 0 || h->http_minor == 1);
    FZ_CHECK(!(h->flags & PROTO_H1_REQ_CHUNKED) || h->content_length == -1);
    log_fields(&r->log, h->headers, h->nheaders);
    return 0;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    run_t *r = ud;

    FZ_CHECK(data >= r->lo && data + len <= r->hi);
    if (!r->in_body)
        fz_log_event(&r->log, 'B');
    r->in_body = 1;
    fz_log_bytes(&r->log, data, len);
    return 0;
}

static int on_trailers(void *ud, const proto_header_t *h, size_t n)
{
    run_t *r = ud;

    r->in_body = 0;
    fz_log_event(&r->log, 'T');
    FZ_CHECK(n > 0);
    log_fields(&r->log, h, n);
    return 0;
}

static int on_complete(void *ud)
{
    run_t *r = ud;

    r->in_body = 0;
    fz_log_event(&r->log, 'C');
    return 0;
}

static const proto_h1_req_cbs_t cbs = {on_head, on_body, on_trailers, on_complete};

/* Feeds stream[0..len) in pieces ending at cuts[] (sorted, may repeat),
 * resetting after each request as the HTTP/1.1 frontend does. */
static void drive(run_t *r, size_t max_head, const uint8_t *stream, size_t len, const size_t *cuts,
                  size_t ncuts)
{
    proto_h1_req_parser_t p;
    size_t off = 0, c = 0;
    int rv = 0;

    fz_log_init(&r->log);
    r->lo = stream;
    r->hi = stream + len;
    r->in_body = 0;
    FZ_CHECK(proto_h1_req_parser_init(&p, &cbs, r, max_head) == 0);
    while (off < len && rv == 0) {
        size_t end = len;

        while (c < ncuts && cuts[c] <= off)
            c++;
        if (c < ncuts)
            end = cuts[c];
        while (off < end) {
            ssize_t n = proto_h1_req_parser_feed(&p, stream + off, end - off);
            if (n < 0) {
                rv = (int)n;
                FZ_CHECK(p.why != NULL);
                break;
            }
            FZ_CHECK((size_t)n <= end - off);
            off += (size_t)n;
            if (p.is_complete) {
                fz_log_event(&r->log, 'R');
                proto_h1_req_parser_reset(&p);
            } else {
                FZ_CHECK(off == end); /* an unfinished request takes every byte */
            }
        }
    }
    /* Which error is only compared as "an error": a head both too large and
     * malformed is refused as one or the other depending on where llhttp's
     * spans were cut, and either refusal is right. */
    fz_log_int(&r->log, rv < 0);
    fz_log_int(&r->log, proto_h1_req_parser_is_idle(&p));
    proto_h1_req_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t heads[] = {4096, 64, 256, 65536};
    fz_in_t in = {data, size};
    size_t ncuts = fz_byte(&in) % (MAX_CUTS + 1);
    size_t max_head = heads[fz_byte(&in) % 4];
    size_t cuts[MAX_CUTS];
    uint8_t *stream;
    run_t whole, split;

    fz_cuts(&in, ncuts, cuts);
    stream = fz_dup(in.p, in.n);

    drive(&whole, max_head, stream, in.n, NULL, 0);
    drive(&split, max_head, stream, in.n, cuts, ncuts);
    FZ_CHECK(whole.log.events == split.log.events && whole.log.hash == split.log.hash);
    if (in.n <= 512) {
        size_t every[512];
        for (size_t i = 0; i < in.n; i++)
            every[i] = i + 1;
        drive(&split, max_head, stream, in.n, every, in.n);
        FZ_CHECK(whole.log.events == split.log.events && whole.log.hash == split.log.hash);
    }
    free(stream);
    return 0;
}
