/* Unit tests for proto/priority.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include <cmocka.h>

#include "proto/priority.h"

/* A literal with its length, so cases may hold an embedded NUL. */
#define S(lit) lit, (sizeof(lit) - 1)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct parse_case {
    const char *value;
    size_t len;
    proto_priority_t start; /* out's value before the call; {3, 0} is the default */
    proto_priority_t want;  /* out's value after it */
    int applied;            /* the return value */
} parse_case_t;

/*
 * Parses c->value twice: in place, and from a heap copy of exactly len bytes
 * with no terminator, so ASan reports any read past len.
 */
static void run_case(const parse_case_t *c)
{
    proto_priority_t p = c->start;
    char *copy = malloc(c->len);
    int n;

    n = proto_priority_parse(c->value, c->len, &p);
    if (n != c->applied || p.urgency != c->want.urgency || p.incremental != c->want.incremental)
        print_error("case \"%.*s\": got u=%d i=%d applied=%d, want u=%d i=%d applied=%d\n",
                    (int)c->len, c->value, p.urgency, p.incremental, n, c->want.urgency,
                    c->want.incremental, c->applied);
    assert_int_equal(n, c->applied);
    assert_int_equal(p.urgency, c->want.urgency);
    assert_int_equal(p.incremental, c->want.incremental);

    assert_true(copy != NULL || c->len == 0);
    if (c->len > 0)
        memcpy(copy, c->value, c->len);
    p = c->start;
    assert_int_equal(proto_priority_parse(copy, c->len, &p), c->applied);
    assert_int_equal(p.urgency, c->want.urgency);
    assert_int_equal(p.incremental, c->want.incremental);
    free(copy);
}

static void run_cases(const parse_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        run_case(&cases[i]);
}

static void test_parse_valid(void **state)
{
    static const parse_case_t cases[] = {
        {S("u=0"), {3, 0}, {0, 0}, 1},
        {S("u=7, i"), {3, 0}, {7, 1}, 2},
        {S("i, u=2"), {3, 0}, {2, 1}, 2},
        {S("u=5;foo=bar"), {3, 0}, {5, 0}, 1},
        {S("  u=1 ,  i=?1  "), {3, 0}, {1, 1}, 2},
        {S("u=1,i"), {3, 0}, {1, 1}, 2},
        {S("i=?1"), {3, 0}, {3, 1}, 1},
        {S("i=?0"), {3, 1}, {3, 0}, 1},
        {S("u=3"), {6, 1}, {3, 1}, 1},
        {S("u=07"), {3, 0}, {7, 0}, 1}, /* RFC 8941 integers may have leading zeros */
        {S("u=-0"), {3, 0}, {0, 0}, 1},
        /* Parameters on u and i are allowed and ignored, whatever their type. */
        {S("u=3;a;b=?0;c=1.5;d=:AA==:;e=*tok;f=\"s\";g=-2"), {6, 0}, {3, 0}, 1},
        {S("u=2; a=1"), {3, 0}, {2, 0}, 1}, /* SP is allowed after ';' */
        {S("i;a=1;b"), {3, 0}, {3, 1}, 1},
        {S("i=?1;x=\"y\""), {3, 0}, {3, 1}, 1},
        {S("i=?0;x, u=6;y"), {3, 1}, {6, 0}, 2},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

static void test_parse_empty(void **state)
{
    static const parse_case_t cases[] = {
        {S(""), {3, 0}, {3, 0}, 0},
        {S("   "), {3, 0}, {3, 0}, 0},
        {S(""), {6, 1}, {6, 1}, 0},
        {S(" "), {0, 1}, {0, 1}, 0},
    };
    proto_priority_t p = {5, 1};

    (void)state;
    run_cases(cases, COUNT(cases));
    /* A NULL value of length 0 is an empty field. */
    assert_int_equal(proto_priority_parse(NULL, 0, &p), 0);
    assert_int_equal(p.urgency, 5);
    assert_int_equal(p.incremental, 1);
}

/* Well-formed members whose value is out of range or of the wrong type:
 * ignored, leaving out as it was (start is not the default, to show that). */
static void test_parse_invalid_values(void **state)
{
    static const parse_case_t cases[] = {
        {S("u=8"), {5, 1}, {5, 1}, 0},
        {S("u=-1"), {5, 1}, {5, 1}, 0},
        {S("u=1.5"), {5, 1}, {5, 1}, 0},
        {S("u=1.0"), {5, 1}, {5, 1}, 0},
        {S("u=\"3\""), {5, 1}, {5, 1}, 0},
        {S("u=x"), {5, 1}, {5, 1}, 0},
        {S("u"), {5, 1}, {5, 1}, 0}, /* Boolean true */
        {S("u=?1"), {5, 1}, {5, 1}, 0},
        {S("u=(1)"), {5, 1}, {5, 1}, 0},
        {S("u=:AQ==:"), {5, 1}, {5, 1}, 0},
        {S("u=999999999999999"), {5, 1}, {5, 1}, 0},
        {S("i=1"), {5, 1}, {5, 1}, 0},
        {S("i=0"), {5, 1}, {5, 1}, 0},
        {S("i=\"?1\""), {5, 0}, {5, 0}, 0},
        {S("i=(?1)"), {5, 0}, {5, 0}, 0},
        {S("i=x"), {5, 0}, {5, 0}, 0},
        {S("i=:AQ==:"), {5, 0}, {5, 0}, 0},
        /* One member ignored does not stop the other. */
        {S("u=8, i=?0"), {5, 1}, {5, 0}, 1},
        {S("i=1, u=0"), {5, 1}, {0, 1}, 1},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

/* Unknown members are walked over correctly, whatever they hide. */
static void test_parse_unknown_members(void **state)
{
    static const parse_case_t cases[] = {
        {S("foo=bar, u=1"), {3, 0}, {1, 0}, 1},
        {S("x=(a b);p=1, u=2"), {3, 0}, {2, 0}, 1},
        {S("k=:aGVsbG8=:, u=6"), {3, 0}, {6, 0}, 1},
        {S("s=\"a,b\\\"c\", u=4"), {3, 0}, {4, 0}, 1},
        {S("s=\"\\\\\", u=4"), {3, 0}, {4, 0}, 1},
        {S("s=\"u=1, i\", u=5"), {3, 0}, {5, 0}, 1},
        {S("x=(), u=5"), {3, 0}, {5, 0}, 1},
        {S("x=(1 \"a)\" ?0 :AA==:;q=2 -1.5 t);q, u=3"), {6, 0}, {3, 0}, 1},
        {S("*x=1.25, u=2"), {3, 0}, {2, 0}, 1},
        {S("a-b_c.d*9=-12.5, i"), {3, 0}, {3, 1}, 1},
        {S("t=*/foo:bar!#$%&'+^`|~, u=1"), {3, 0}, {1, 0}, 1},
        {S("d=123456789012.123, u=0"), {3, 0}, {0, 0}, 1},
        {S("n=-999999999999999, u=0"), {3, 0}, {0, 0}, 1},
        {S("ux=1, iu=?1, uu, ii"), {3, 0}, {3, 0}, 0},
        {S("foo"), {2, 1}, {2, 1}, 0},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

/* RFC 8941: the last of duplicate keys wins, and only its value is checked. */
static void test_parse_duplicates(void **state)
{
    static const parse_case_t cases[] = {
        {S("u=1, u=5"), {3, 0}, {5, 0}, 1},
        {S("u=5, i, u=1"), {3, 0}, {1, 1}, 2},
        {S("i, i=?0"), {3, 0}, {3, 0}, 1},
        {S("i=?0, i"), {3, 0}, {3, 1}, 1},
        /* The last u is out of range or not an Integer: the earlier one does
         * not come back, u is left as the caller had it. */
        {S("u=5, u=8"), {3, 0}, {3, 0}, 0},
        {S("u=2, u"), {6, 0}, {6, 0}, 0},
        {S("i, i=1"), {3, 0}, {3, 0}, 0},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

/* A syntax error stops the parse; complete members before it stand, the
 * broken member and everything after it are dropped. */
static void test_parse_syntax_errors(void **state)
{
    static const parse_case_t cases[] = {
        {S("u=1, @@@, u=5"), {3, 0}, {1, 0}, 1},
        {S("u=2, i=?2"), {3, 0}, {2, 0}, 1},
        {S("u=2, i=?2"), {3, 1}, {2, 1}, 1},
        {S("U=1"), {3, 0}, {3, 0}, 0}, /* keys are lowercase only */
        {S("u=1, U=2"), {3, 0}, {1, 0}, 1},
        {S("u=1, I"), {3, 0}, {1, 0}, 1},
        {S("u=1,"), {3, 0}, {1, 0}, 1},
        {S("u=1, "), {3, 0}, {1, 0}, 1},
        {S("u=1,,u=2"), {3, 0}, {1, 0}, 1},
        {S("u=1, ,u=2"), {3, 0}, {1, 0}, 1},
        {S(",u=1"), {3, 0}, {3, 0}, 0},
        /* A member must end at a comma or at the end of the value. */
        {S("u=1x"), {3, 0}, {3, 0}, 0},
        {S("u=1 i"), {3, 0}, {3, 0}, 0},
        {S("u=1 ;a"), {3, 0}, {3, 0}, 0},
        {S("i, u=1\0"), {3, 0}, {3, 1}, 1},
        {S("u=3, i=?1, u=1\0"), {3, 0}, {3, 1}, 2},
        {S("u=2;"), {3, 0}, {3, 0}, 0},
        {S("u=2;A=1"), {3, 0}, {3, 0}, 0},
        {S("u=2;a="), {3, 0}, {3, 0}, 0},
        {S("u =1"), {3, 0}, {3, 0}, 0},
        {S("u= 1"), {3, 0}, {3, 0}, 0},
        {S("u="), {3, 0}, {3, 0}, 0},
        {S("\tu=1"), {3, 0}, {3, 0}, 0}, /* only SP may lead the value */
        {S("u=4, i=?1 , x=@1"), {3, 0}, {4, 1}, 2},
        /* Broken values of every type, each after a good member. */
        {S("i, s=\"abc"), {3, 0}, {3, 1}, 1},
        {S("i, s=\"a\\"), {3, 0}, {3, 1}, 1},
        {S("i, s=\"\\n\""), {3, 0}, {3, 1}, 1},
        {S("i, s=\"\x01\""), {3, 0}, {3, 1}, 1},
        {S("i, s=\"\x7f\""), {3, 0}, {3, 1}, 1},
        {S("i, s=\"caf\xc3\xa9\""), {3, 0}, {3, 1}, 1},
        {S("i, k=:abc"), {3, 0}, {3, 1}, 1},
        {S("i, k=:ab$c:"), {3, 0}, {3, 1}, 1},
        {S("i, x=(1 2"), {3, 0}, {3, 1}, 1},
        {S("i, x=(1,2)"), {3, 0}, {3, 1}, 1},
        {S("i, x=(1\t2)"), {3, 0}, {3, 1}, 1},
        {S("i, x=((1))"), {3, 0}, {3, 1}, 1},
        {S("i, x=(1);"), {3, 0}, {3, 1}, 1},
        {S("i, d=1."), {3, 0}, {3, 1}, 1},
        {S("i, d=1.2345"), {3, 0}, {3, 1}, 1},
        {S("i, d=1234567890123.5"), {3, 0}, {3, 1}, 1},
        {S("i, d=1234567890123456"), {3, 0}, {3, 1}, 1},
        {S("i, d=1.2.3"), {3, 0}, {3, 1}, 1},
        {S("i, n=-"), {3, 0}, {3, 1}, 1},
        {S("i, n=-a"), {3, 0}, {3, 1}, 1},
        {S("i, b=?"), {3, 0}, {3, 1}, 1},
        {S("i, b=?true"), {3, 0}, {3, 1}, 1},
        {S("i, t=%x"), {3, 0}, {3, 1}, 1},
        {S("u=1, u=6x"), {3, 0}, {1, 0}, 1},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

static void test_parse_spacing(void **state)
{
    static const parse_case_t cases[] = {
        {S(" u=3"), {6, 0}, {3, 0}, 1},
        {S("u=4   "), {3, 0}, {4, 0}, 1},
        {S("u=5\t"), {3, 0}, {5, 0}, 1}, /* OWS after a member includes HTAB */
        {S("u=1\t,\ti"), {3, 0}, {1, 1}, 2},
        {S("u=6 , \t i"), {3, 0}, {6, 1}, 2},
        {S("u=6,\t\t \ti=?1 \t"), {3, 0}, {6, 1}, 2},
        {S("x=( a  b ), u=2"), {3, 0}, {2, 0}, 1},
        {S("x=(a;p=1  b) , u=2"), {3, 0}, {2, 0}, 1},
    };

    (void)state;
    run_cases(cases, COUNT(cases));
}

/* One call per field line, all into the same out. */
static void test_parse_merge(void **state)
{
    static const struct {
        const char *first, *second;
        proto_priority_t want;
    } cases[] = {
        {"u=1", "i", {1, 1}}, {"u=1, i", "u=9", {1, 1}}, {"u=6", "u=2, i=?0", {2, 0}},
        {"i", "", {3, 1}},    {"u=0", "@", {0, 0}},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        proto_priority_t p = proto_priority_default();
        proto_priority_parse(cases[i].first, strlen(cases[i].first), &p);
        proto_priority_parse(cases[i].second, strlen(cases[i].second), &p);
        assert_int_equal(p.urgency, cases[i].want.urgency);
        assert_int_equal(p.incremental, cases[i].want.incremental);
    }
}

/* Every prefix of a set of tricky values, each from an exact-length heap copy:
 * no overread (ASan), and out always stays within range. */
static void test_parse_prefixes(void **state)
{
    static const char *const values[] = {
        "u=1, i, x=(1 \"a)\" ?0 :AA==:;q=2 -1.5 t);q, s=\"a\\\"b\", k=:aGVsbG8=:, d=-1.250, "
        "t=*/a:b;p",
        "  u=7 ,\ti=?1;a=\"b\" ",
    };

    (void)state;
    for (size_t v = 0; v < COUNT(values); v++) {
        size_t len = strlen(values[v]);
        for (size_t k = 0; k <= len; k++) {
            char *copy = malloc(k);
            proto_priority_t p = proto_priority_default();
            int n;

            assert_true(copy != NULL || k == 0);
            if (k > 0)
                memcpy(copy, values[v], k);
            n = proto_priority_parse(copy, k, &p);
            assert_in_range(n, 0, 2);
            assert_in_range(p.urgency, 0, 7);
            assert_in_range(p.incremental, 0, 1);
            free(copy);
        }
    }
}

static void test_urgency_from_weight(void **state)
{
    static const struct {
        int weight;
        uint8_t urgency;
    } cases[] = {
        {1, 7},
        {2, 6},
        {4, 5},
        {8, 4},
        {16, 3},
        {32, 2},
        {64, 1},
        {128, 0},
        {256, 0},
        {0, 7},
        {-5, 7},
        {300, 0},
        {INT_MIN, 7},
        {INT_MAX, 0},
        /* Rounding on the log scale, around the midpoints 2^(n + 0.5). */
        {22, 3},
        {23, 2},
        {11, 4},
        {12, 3},
        {3, 5},
        {5, 5},
        {6, 4},
        {45, 2},
        {46, 1},
        {90, 1},
        {91, 0},
        {181, 0},
        {182, 0},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        assert_int_equal(proto_priority_urgency_from_weight(cases[i].weight), cases[i].urgency);
    assert_int_equal(proto_priority_urgency_from_weight(PROTO_WEIGHT_DEFAULT),
                     PROTO_URGENCY_DEFAULT);
}

/* Properties over the whole range: never more urgent for a smaller weight,
 * and doubling a weight moves exactly one level (log2 shifts by exactly 1,
 * and there are no ties to round differently). */
static void test_urgency_from_weight_scale(void **state)
{
    (void)state;
    for (int w = 1; w <= 256; w++) {
        uint8_t u = proto_priority_urgency_from_weight(w);
        assert_in_range(u, 0, 7);
        if (w > 1)
            assert_true(u <= proto_priority_urgency_from_weight(w - 1));
        if (w <= 128) {
            uint8_t u2 = proto_priority_urgency_from_weight(2 * w);
            assert_int_equal(u2, u > 0 ? u - 1 : 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_invalid_values),
        cmocka_unit_test(test_parse_unknown_members),
        cmocka_unit_test(test_parse_duplicates),
        cmocka_unit_test(test_parse_syntax_errors),
        cmocka_unit_test(test_parse_spacing),
        cmocka_unit_test(test_parse_merge),
        cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_urgency_from_weight),
        cmocka_unit_test(test_urgency_from_weight_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
