/*
 * Fuzz target for proto/h1_response: the bytes a backend sends on one
 * keep-alive connection (1xx heads, final heads, bodies, trailers, several
 * responses in a row), fed whole, byte by byte and cut at points chosen by
 * the input, must give the same events each time. Which requests were HEAD
 * comes from the input too: a HEAD response has no body whatever its fields
 * say. (CONNECT is never sent to a backend - proto_h1_request_build refuses
 * it - so there is no CONNECT response to parse.) A head is handed out only
 * once the bytes of the feed() that completed it parsed cleanly, so whether
 * a head right before an error is seen depends on the cuts: such a head is
 * left out of the comparison.
 *
 * Input: [k][HEAD bits][max-head choice][k x 16-bit cut points][stream].
 */
#include "test/fuzz/fuzz.h"

#include "proto/h1_response.h"

#define MAX_CUTS 8

typedef struct run {
    fz_log_t log;
    const uint8_t *lo, *hi;
    int in_body;
    fz_log_t before_head; /* the log before the last head ... */
    int is_head_last;     /* ... while nothing was logged after it */
} run_t;

static void log_fields(fz_log_t *l, const proto_header_t *h, size_t n)
{
    fz_log_int(l, (long long)n);
    for (size_t i = 0; i < n; i++) {
        /* HTTP/2 carries these as they are: lowercase names, clean values. */
        for (size_t j = 0; j < h[i].name_len; j++)
            FZ_CHECK(!(h[i].name[j] >= 'A' && h[i].name[j] <= 'Z'));
        FZ_CHECK(h[i].name_len > 0);
        fz_log_int(l, (long long)h[i].name_len);
        fz_log_bytes(l, h[i].name, h[i].name_len);
        fz_log_int(l, (long long)h[i].value_len);
        fz_log_bytes(l, h[i].value, h[i].value_len);
    }
}

static int on_head(void *ud, int status, const proto_header_t *h, size_t n)
{
    run_t *r = ud;

    r->in_body = 0;
    FZ_CHECK(status >= 200 && status <= 999);
    r->before_head = r->log;
    r->is_head_last = 1;
    fz_log_event(&r->log, 'H');
    fz_log_int(&r->log, status);
    log_fields(&r->log, h, n);
    return 0;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    run_t *r = ud;

    FZ_CHECK(data >= r->lo && data + len <= r->hi);
    r->is_head_last = 0;
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
    r->is_head_last = 0;
    FZ_CHECK(n > 0);
    fz_log_event(&r->log, 'T');
    log_fields(&r->log, h, n);
    return 0;
}

static int on_complete(void *ud)
{
    run_t *r = ud;

    r->in_body = 0;
    r->is_head_last = 0;
    fz_log_event(&r->log, 'C');
    return 0;
}

/* Interim heads: a 1xx status (101 is an error, never an event) and the
 * same field checks as final heads. */
static int on_info(void *ud, int status, const proto_header_t *h, size_t n)
{
    run_t *r = ud;

    FZ_CHECK(status >= 100 && status <= 199 && status != 101);
    FZ_CHECK(!r->in_body);
    fz_log_event(&r->log, 'I');
    fz_log_int(&r->log, status);
    log_fields(&r->log, h, n);
    return 0;
}

static const proto_h1_response_cbs_t cbs = {on_head, on_body, on_trailers, on_complete, on_info};

/* Feeds the stream like the upstream connection does: after a complete
 * response the connection is reused only when the parser allows it, and the
 * next response is parsed from the bytes left over. At the end the backend
 * closes, which may complete a close-delimited body. */
static void drive(run_t *r, size_t max_head, unsigned head_bits, const uint8_t *stream, size_t len,
                  const size_t *cuts, size_t ncuts)
{
    proto_h1_response_t p;
    size_t off = 0, c = 0;
    unsigned nresp = 0;
    int rv = 0, is_closed = 0;

    fz_log_init(&r->log);
    r->lo = stream;
    r->hi = stream + len;
    r->in_body = 0;
    r->is_head_last = 0;
    FZ_CHECK(proto_h1_response_init(&p, &cbs, r, max_head) == 0);
    proto_h1_response_reset(&p, head_bits & 1);
    while (off < len && rv == 0 && !is_closed) {
        size_t end = len;

        while (c < ncuts && cuts[c] <= off)
            c++;
        if (c < ncuts)
            end = cuts[c];
        while (off < end) {
            ssize_t n = proto_h1_response_feed(&p, stream + off, end - off);
            if (n < 0) {
                rv = (int)n;
                FZ_CHECK(p.why != NULL);
                if (r->is_head_last)
                    r->log = r->before_head; /* see the top of this file */
                break;
            }
            FZ_CHECK((size_t)n <= end - off);
            off += (size_t)n;
            if (!p.is_complete) {
                FZ_CHECK(off == end);
                break;
            }
            fz_log_event(&r->log, 'R');
            if (!proto_h1_response_can_reuse(&p)) {
                is_closed = 1;
                break;
            }
            nresp++;
            proto_h1_response_reset(&p, (head_bits >> (nresp % 8)) & 1);
        }
    }
    if (rv == 0 && !is_closed) {
        rv = proto_h1_response_finish(&p);
        fz_log_event(&r->log, 'F');
    }
    fz_log_int(&r->log, rv < 0);
    fz_log_int(&r->log, p.is_complete ? proto_h1_response_can_reuse(&p) : -1);
    proto_h1_response_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t heads[] = {4096, 64, 256, 65536};
    fz_in_t in = {data, size};
    size_t ncuts = fz_byte(&in) % (MAX_CUTS + 1);
    unsigned head_bits = fz_byte(&in);
    size_t max_head = heads[fz_byte(&in) % 4];
    size_t cuts[MAX_CUTS];
    uint8_t *stream;
    run_t whole, split;

    fz_cuts(&in, ncuts, cuts);
    stream = fz_dup(in.p, in.n);

    drive(&whole, max_head, head_bits, stream, in.n, NULL, 0);
    drive(&split, max_head, head_bits, stream, in.n, cuts, ncuts);
    FZ_CHECK(whole.log.events == split.log.events && whole.log.hash == split.log.hash);
    if (in.n <= 512) {
        size_t every[512];
        for (size_t i = 0; i < in.n; i++)
            every[i] = i + 1;
        drive(&split, max_head, head_bits, stream, in.n, every, in.n);
        FZ_CHECK(whole.log.events == split.log.events && whole.log.hash == split.log.hash);
    }
    free(stream);
    return 0;
}
