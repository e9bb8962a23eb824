/* Unit tests for proto/fields.c. Every head is fed whole, cut at every
 * position, byte by byte and in random cuts, the way llhttp hands pieces
 * out, and must give the same fields each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/fields.h"

#define MAX_KV 4

typedef struct kv {
    const char *name, *value;
} kv_t;

/* ---- feeding pieces ---- */

/* Cuts of the name and value bytes of all fields laid end to end: cut[i] is
 * 1 when a piece ends before byte i. */
typedef struct cuts {
    unsigned char at[256];
} cuts_t;

/* Feeds s (a name when is_name, else a value) starting at offset pos of the
 * whole head, one call per piece. Returns the first non-zero rv. */
static int feed_part(proto_fields_t *fs, const char *s, int is_name, size_t pos, const cuts_t *c)
{
    size_t len = strlen(s), start = 0;

    for (size_t i = 1; i <= len; i++) {
        if (i < len && !c->at[pos + i])
            continue;
        int rv = is_name ? proto_fields_append_name(fs, s + start, i - start)
                         : proto_fields_append_value(fs, s + start, i - start);
        if (rv != 0)
            return rv;
        start = i;
    }
    return 0;
}

/* Feeds every field like llhttp's callbacks do: name pieces, name complete,
 * value pieces (none for an empty value), value complete. */
static int feed_fields(proto_fields_t *fs, const kv_t *in, size_t n, const cuts_t *c)
{
    size_t pos = 0;
    int rv;

    for (size_t k = 0; k < n; k++) {
        rv = feed_part(fs, in[k].name, 1, pos, c);
        if (rv != 0)
            return rv;
        pos += strlen(in[k].name);
        proto_fields_end_name(fs);
        rv = feed_part(fs, in[k].value, 0, pos, c);
        if (rv != 0)
            return rv;
        pos += strlen(in[k].value);
        proto_fields_end_value(fs);
    }
    return 0;
}

static size_t total_len(const kv_t *in, size_t n)
{
    size_t t = 0;

    for (size_t k = 0; k < n; k++)
        t += strlen(in[k].name) + strlen(in[k].value);
    return t;
}

static void check_fields(const proto_fields_t *fs, const kv_t *want, size_t n)
{
    assert_int_equal(fs->n, n);
    for (size_t k = 0; k < n; k++) {
        proto_header_t h = proto_fields_header(fs, &fs->list[k]);
        assert_int_equal(h.name_len, strlen(want[k].name));
        assert_memory_equal(h.name, want[k].name, h.name_len);
        assert_int_equal(h.value_len, strlen(want[k].value));
        if (h.value_len > 0)
            assert_memory_equal(h.value, want[k].value, h.value_len);
        assert_ptr_equal(h.name, proto_fields_name(fs, &fs->list[k]));
        assert_ptr_equal(h.value, proto_fields_value(fs, &fs->list[k]));
        assert_true(proto_fields_name_is(fs, &fs->list[k], want[k].name));
    }
}

/* ---- tests ---- */

static const struct split_case {
    const char *what;
    kv_t in[MAX_KV];
    kv_t want[MAX_KV];
    size_t n;
} split_cases[] = {
    {"one field", {{"Host", "example.com"}}, {{"host", "example.com"}}, 1},
    {"one byte each", {{"A", "b"}}, {{"a", "b"}}, 1},
    {"empty value", {{"X-Empty", ""}}, {{"x-empty", ""}}, 1},
    {"trailing OWS trimmed", {{"Accept", "text/html, */*  \t"}}, {{"accept", "text/html, */*"}}, 1},
    {"value of only OWS", {{"X-Ws", " \t "}}, {{"x-ws", ""}}, 1},
    {"leading and inner OWS kept", {{"X-In", " a \t b"}}, {{"x-in", " a \t b"}}, 1},
    {"several fields",
     {{"Content-Type", "text/plain"}, {"x-b", ""}, {"X-MiXeD", "KeepCase"}, {"Set-Cookie", "a=1"}},
     {{"content-type", "text/plain"}, {"x-b", ""}, {"x-mixed", "KeepCase"}, {"set-cookie", "a=1"}},
     4},
};

static void run_split(const struct split_case *tc, const cuts_t *c)
{
    proto_fields_t fs;

    assert_int_equal(proto_fields_init(&fs, 1 << 16, 15), 0);
    assert_int_equal(feed_fields(&fs, tc->in, tc->n, c), 0);
    check_fields(&fs, tc->want, tc->n);
    proto_fields_free(&fs);
}

static void test_split_pieces(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(split_cases) / sizeof(split_cases[0]); t++) {
        const struct split_case *tc = &split_cases[t];
        size_t total = total_len(tc->in, tc->n);
        cuts_t c;

        assert_true(total < sizeof(c.at));
        print_message("%s\n", tc->what);
        memset(&c, 0, sizeof(c)); /* whole */
        run_split(tc, &c);
        for (size_t cut = 1; cut < total; cut++) { /* one cut, at every position */
            memset(&c, 0, sizeof(c));
            c.at[cut] = 1;
            run_split(tc, &c);
        }
        memset(&c, 1, sizeof(c)); /* byte by byte */
        run_split(tc, &c);
        srand(7 + (unsigned)t);
        for (int round = 0; round < 200; round++) { /* random cuts */
            for (size_t i = 0; i < total; i++)
                c.at[i] = rand() % 3 == 0;
            run_split(tc, &c);
        }
    }
}

/* A piece of zero bytes changes nothing (llhttp may hand one out). */
static void test_empty_pieces(void **state)
{
    proto_fields_t fs;
    static const kv_t want[] = {{"x-a", "bc"}};

    (void)state;
    assert_int_equal(proto_fields_init(&fs, 1024, 0), 0);
    assert_int_equal(proto_fields_append_name(&fs, "X-", 2), 0);
    assert_int_equal(proto_fields_append_name(&fs, "", 0), 0);
    assert_int_equal(proto_fields_append_name(&fs, "A", 1), 0);
    proto_fields_end_name(&fs);
    assert_int_equal(proto_fields_append_value(&fs, "", 0), 0);
    assert_int_equal(proto_fields_append_value(&fs, "b", 1), 0);
    assert_int_equal(proto_fields_append_value(&fs, "c", 1), 0);
    proto_fields_end_value(&fs);
    check_fields(&fs, want, 1);
    proto_fields_free(&fs);
}

/* The limit counts line_bytes, every stored byte, and 4 per field (": " and
 * CRLF) from the moment the field's first name piece arrives. */
static const struct limit_case {
    const char *what;
    size_t max_bytes, line_bytes;
    const char *raw; /* stored before the fields (a reason phrase); may be NULL */
    kv_t in[MAX_KV];
    size_t n;
    int want_rv;
    size_t want_bytes; /* when want_rv is 0 */
} limit_cases[] = {
    {"nothing", 15, 15, NULL, {{NULL, NULL}}, 0, 0, 15},
    {"exactly at the limit", 21, 15, NULL, {{"a", "b"}}, 1, 0, 21},
    {"one value byte over", 20, 15, NULL, {{"a", "b"}}, 1, PROTO_E_TOO_LARGE, 0},
    {"name at the limit", 20, 15, NULL, {{"a", ""}}, 1, 0, 20},
    {"field overhead alone over", 18, 15, NULL, {{"a", ""}}, 1, PROTO_E_TOO_LARGE, 0},
    {"raw bytes count", 24, 15, "OK", {{"ab", "cd"}}, 1, PROTO_E_TOO_LARGE, 0},
    {"raw bytes at the limit", 25, 15, "OK", {{"ab", "cd"}}, 1, 0, 25},
    {"raw bytes alone over", 16, 15, "OK", {{NULL, NULL}}, 0, PROTO_E_TOO_LARGE, 0},
    {"line bytes over the limit", 10, 20, NULL, {{"a", "b"}}, 1, PROTO_E_TOO_LARGE, 0},
    {"second field over", 39, 20, NULL, {{"host", "x"}, {"accept", "*"}}, 2, PROTO_E_TOO_LARGE, 0},
    {"second field at the limit", 40, 20, NULL, {{"host", "x"}, {"accept", "*"}}, 2, 0, 40},
};

static void test_limits(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(limit_cases) / sizeof(limit_cases[0]); t++) {
        const struct limit_case *tc = &limit_cases[t];
        size_t total = total_len(tc->in, tc->n);
        cuts_t c;

        print_message("%s\n", tc->what);
        /* The same verdict however the bytes are cut. */
        for (size_t cut = 0; cut <= total; cut++) {
            proto_fields_t fs;
            int rv = 0;

            memset(&c, 0, sizeof(c));
            c.at[cut] = 1;
            assert_int_equal(proto_fields_init(&fs, tc->max_bytes, tc->line_bytes), 0);
            assert_int_equal(proto_fields_bytes(&fs), tc->line_bytes);
            if (tc->raw != NULL)
                rv = proto_fields_append(&fs, tc->raw, strlen(tc->raw));
            if (rv == 0)
                rv = feed_fields(&fs, tc->in, tc->n, &c);
            assert_int_equal(rv, tc->want_rv);
            if (rv == 0)
                assert_int_equal(proto_fields_bytes(&fs), tc->want_bytes);
            else
                assert_true(fs.len + tc->line_bytes <= tc->max_bytes || fs.len == 0);
            proto_fields_free(&fs);
        }
    }
}

/* A length near SIZE_MAX must not wrap the sum and pass the check. */
static void test_huge_length(void **state)
{
    proto_fields_t fs;

    (void)state;
    assert_int_equal(proto_fields_init(&fs, 100, 15), 0);
    assert_int_equal(proto_fields_append(&fs, "x", SIZE_MAX), PROTO_E_TOO_LARGE);
    assert_int_equal(proto_fields_append(&fs, "x", SIZE_MAX - 10), PROTO_E_TOO_LARGE);
    assert_int_equal(proto_fields_reserve(&fs, SIZE_MAX), PROTO_E_TOO_LARGE);
    assert_int_equal(fs.len, 0);
    assert_int_equal(proto_fields_append_name(&fs, "x", SIZE_MAX), PROTO_E_TOO_LARGE);
    proto_fields_free(&fs);
}

/* reserve() makes room without storing: the caller writes and counts. */
static void test_reserve(void **state)
{
    proto_fields_t fs;

    (void)state;
    assert_int_equal(proto_fields_init(&fs, 5000, 20), 0);
    assert_int_equal(proto_fields_append(&fs, "/a?q", 4), 0);
    assert_int_equal(proto_fields_reserve(&fs, 3000), 0);
    assert_true(fs.cap - fs.len >= 3000);
    assert_int_equal(fs.len, 4);
    memset(fs.buf + fs.len, 'z', 3000);
    fs.len += 3000;
    assert_memory_equal(fs.buf, "/a?q", 4);
    assert_int_equal(proto_fields_bytes(&fs), 3024);
    assert_int_equal(proto_fields_reserve(&fs, 5000 - 3024), 0);
    assert_int_equal(proto_fields_reserve(&fs, 5000 - 3024 + 1), PROTO_E_TOO_LARGE);
    proto_fields_free(&fs);
}

static void fill_two(proto_fields_t *fs)
{
    static const kv_t in[] = {{"Host", "a"}, {"X-Long", "0123456789"}};
    cuts_t c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(feed_fields(fs, in, 2, &c), 0);
}

static void test_clear_and_reuse(void **state)
{
    static const kv_t want[] = {{"host", "a"}, {"x-long", "0123456789"}};
    proto_fields_t fs;
    size_t cap, list_cap;

    (void)state;
    assert_int_equal(proto_fields_init(&fs, 1024, 15), 0);
    fill_two(&fs);
    check_fields(&fs, want, 2);
    assert_int_equal(fs.in_value, 1);

    /* Clear forgets the fields but keeps the memory. */
    cap = fs.cap;
    list_cap = fs.list_cap;
    proto_fields_clear(&fs);
    assert_int_equal(fs.n, 0);
    assert_int_equal(fs.len, 0);
    assert_int_equal(fs.in_value, 0);
    assert_int_equal(proto_fields_bytes(&fs), 15);
    assert_null(proto_fields_last(&fs));
    assert_int_equal(fs.cap, cap);
    assert_int_equal(fs.list_cap, list_cap);

    /* A name right after clear starts a new first field, at offset 0. */
    fill_two(&fs);
    check_fields(&fs, want, 2);
    assert_int_equal(fs.list[0].name_off, 0);

    /* Clear between a name and its value: the next name piece is a new field. */
    proto_fields_clear(&fs);
    assert_int_equal(proto_fields_append_name(&fs, "a", 1), 0);
    proto_fields_clear(&fs);
    assert_int_equal(proto_fields_append_name(&fs, "b", 1), 0);
    assert_int_equal(fs.n, 1);
    assert_int_equal(fs.list[0].name_len, 1);
    assert_int_equal(fs.buf[0], 'b');

    /* Free leaves it empty and usable: it grows again from nothing. */
    proto_fields_free(&fs);
    assert_null(fs.buf);
    assert_null(fs.list);
    assert_int_equal(proto_fields_bytes(&fs), 15);
    fill_two(&fs);
    check_fields(&fs, want, 2);
    proto_fields_free(&fs);
    proto_fields_free(&fs); /* twice is harmless */
}

/* Many fields: the list and the buffer both grow several times, and fields
 * kept as offsets read back intact after every move. */
static void test_many_fields(void **state)
{
    enum { N = 2000 };
    proto_fields_t fs;
    char name[32], value[32];

    (void)state;
    assert_int_equal(proto_fields_init(&fs, SIZE_MAX / 2, 20), 0);
    for (int i = 0; i < N; i++) {
        int nl = snprintf(name, sizeof(name), "X-Field-%d", i);
        int vl = snprintf(value, sizeof(value), "value %d ", i);

        /* Name in two pieces, value in two pieces. */
        assert_int_equal(proto_fields_append_name(&fs, name, 3), 0);
        assert_int_equal(proto_fields_append_name(&fs, name + 3, (size_t)nl - 3), 0);
        proto_fields_end_name(&fs);
        assert_int_equal(proto_fields_append_value(&fs, value, 2), 0);
        assert_int_equal(proto_fields_append_value(&fs, value + 2, (size_t)vl - 2), 0);
        proto_fields_end_value(&fs);
        assert_int_equal(fs.n, (size_t)i + 1);
    }
    assert_true(fs.list_cap >= N);
    assert_true(fs.cap > 1024);
    for (int i = 0; i < N; i++) {
        const proto_field_t *f = &fs.list[i];
        int nl = snprintf(name, sizeof(name), "x-field-%d", i);
        int vl = snprintf(value, sizeof(value), "value %d", i);

        assert_int_equal(f->name_len, (size_t)nl);
        assert_memory_equal(proto_fields_name(&fs, f), name, (size_t)nl);
        assert_int_equal(f->value_len, (size_t)vl);
        assert_memory_equal(proto_fields_value(&fs, f), value, (size_t)vl);
        assert_true(proto_fields_name_is(&fs, f, name));
    }
    assert_int_equal(proto_fields_bytes(&fs), 20 + fs.len + (size_t)N * 4);
    proto_fields_free(&fs);
}

static void test_name_is(void **state)
{
    proto_fields_t fs;
    const proto_field_t *f;

    (void)state;
    assert_int_equal(proto_fields_init(&fs, 1024, 0), 0);
    assert_int_equal(proto_fields_append_name(&fs, "Connection", 10), 0);
    proto_fields_end_name(&fs);
    assert_int_equal(proto_fields_append_value(&fs, "close", 5), 0);
    proto_fields_end_value(&fs);
    f = proto_fields_last(&fs);
    assert_true(proto_fields_name_is(&fs, f, "connection"));
    assert_false(proto_fields_name_is(&fs, f, "Connection")); /* names are lowercased */
    assert_false(proto_fields_name_is(&fs, f, "connectio"));
    assert_false(proto_fields_name_is(&fs, f, "connections"));
    assert_false(proto_fields_name_is(&fs, f, "close")); /* the value is not the name */
    proto_fields_free(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_pieces), cmocka_unit_test(test_empty_pieces),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_huge_length),
        cmocka_unit_test(test_reserve),      cmocka_unit_test(test_clear_and_reuse),
        cmocka_unit_test(test_many_fields),  cmocka_unit_test(test_name_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
