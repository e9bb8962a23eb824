/*
 * Fuzz target for proto/upgrade's 101 head parser: the bytes a backend
 * answers a WebSocket handshake with. The head is complete at exactly one
 * length: every shorter prefix is "incomplete" or an error (never a head),
 * a prefix that is already an error stays one as bytes are added, and the
 * whole input gives fields that point into it, with lowercase token names
 * and values HTTP/2 can carry. The status line check agrees with the head
 * parser, and the 101 filters keep a subset of the fields.
 *
 * Input: [max fields choice][bytes].
 */
#include "test/fuzz/fuzz.h"

#include "proto/headers.h"
#include "proto/upgrade.h"

#define MAX_FIELDS 64

static ssize_t parse(const uint8_t *data, size_t len, size_t max, int *status, proto_header_t *f,
                     size_t *n, char **copy)
{
    *copy = malloc(len ? len : 1);
    FZ_CHECK(*copy != NULL);
    memcpy(*copy, data, len);
    return proto_upgrade_parse_head(*copy, len, status, f, max, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    size_t max = fz_byte(&in) % (MAX_FIELDS + 1);
    proto_header_t f[MAX_FIELDS], kept[MAX_FIELDS];
    size_t n = 0;
    int status = 0;
    char *copy;

    ssize_t whole = parse(in.p, in.n, max, &status, f, &n, &copy);
    if (whole > 0) {
        FZ_CHECK((size_t)whole <= in.n);
        FZ_CHECK(status >= 100 && status <= 999);
        FZ_CHECK(n <= max);
        for (size_t i = 0; i < n; i++) {
            FZ_CHECK(f[i].name >= copy && f[i].name + f[i].name_len <= copy + whole);
            FZ_CHECK(f[i].value >= copy && f[i].value + f[i].value_len <= copy + whole);
            FZ_CHECK(proto_headers_valid_name(f[i].name, f[i].name_len, 1));
            FZ_CHECK(proto_headers_valid_value(f[i].value, f[i].value_len));
        }
        for (int for_h2 = 0; for_h2 < 2; for_h2++)
            FZ_CHECK(proto_upgrade_filter_101(f, n, kept, for_h2) <= n);
        int st = 0;
        FZ_CHECK(proto_upgrade_status(copy, (size_t)whole, &st) == 1 && st == status);
    }
    free(copy);

    /* Prefixes: at most every 7th, and the last few, to stay fast. */
    int was_error = 0;
    for (size_t cut = 0; cut < in.n; cut += cut + 8 < in.n ? 7 : 1) {
        size_t k = 0;
        int st = 0;
        ssize_t rv = parse(in.p, cut, max, &st, f, &k, &copy);
        free(copy);
        if (whole > 0 && cut < (size_t)whole)
            FZ_CHECK(rv <= 0);
        if (whole > 0 && cut >= (size_t)whole)
            FZ_CHECK(rv == whole);
        if (was_error)
            FZ_CHECK(rv < 0);
        was_error = rv < 0;
    }
    return 0;
}
