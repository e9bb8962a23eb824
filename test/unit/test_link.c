/* Unit tests for proto/link.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/link.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the walk over one value should report, link-values in order, each
 * as "target|preload|nopush|as|u", joined with " ". */
typedef struct link_case {
    const char *value;
    const char *want;
} link_case_t;

static const link_case_t cases[] = {
    {"</style.css>; rel=preload; as=style", "/style.css|1|0|style|-1"},
    {"</a.js>; rel=\"preload\"; as=\"script\"", "/a.js|1|0|script|-1"},
    {"</a.js>;rel=PreLoad", "/a.js|1|0||-1"},
    {"</a.js> ; rel = preload ; nopush", "/a.js|1|1||-1"},
    {"</a.js>; rel=\"prefetch preload\"", "/a.js|1|0||-1"},
    {"</a.js>; rel=\"preloader\"", "/a.js|0|0||-1"},
    {"</a.js>; rel=prefetch; rel=preload", "/a.js|0|0||-1"},
    {"</a.css>; rel=preload, </b.js>; rel=preload; as=script; u=2",
     "/a.css|1|0||-1 /b.js|1|0|script|2"},
    {"</a,b.css>; rel=preload; title=\"x, y\", </c>; rel=preload", "/a,b.css|1|0||-1 /c|1|0||-1"},
    {"<https://example.com/x>; rel=preload; NOPUSH", "https://example.com/x|1|1||-1"},
    {"junk, </ok>; rel=preload", "/ok|1|0||-1"},
    {"junk \"with, comma\", </ok>; rel=preload", "/ok|1|0||-1"},
    {"</x>; rel=preload; u=9", "/x|1|0||-1"},
    {"</x>; rel=preload; u=3; u=5", "/x|1|0||3"},
    {"</x> junk; rel=preload", "/x|1|0||-1"},
    {"</x>; rel=\"preload", "/x|1|0||-1"},
    {"</x>; title=\"unterminated, </y>; rel=preload", "/x|0|0||-1"},
    {"</x>; rel=\"a\\\"b preload\"", "/x|1|0||-1"},
    {"</x>; rel", "/x|0|0||-1"},
    {"</x>; rel=", "/x|0|0||-1"},
    {"<>; rel=preload", "|1|0||-1"},
    {"</unterminated; rel=preload", ""},
    {"", ""},
    {" , ,, ", ""},
    {";;;", ""},
    {"<", ""},
    {">", ""},
    {"\"", ""},
    {"</a>;;;, </b>", "/a|0|0||-1 /b|0|0||-1"},
};

static void describe(const char *value, size_t len, char *out, size_t cap)
{
    size_t pos = 0, used = 0;
    proto_link_t l;
    out[0] = '\0';
    while (proto_link_next(value, len, &pos, &l)) {
        assert_true(pos <= len);
        int n = snprintf(out + used, cap - used, "%s%.*s|%d|%d|%.*s|%d", used > 0 ? " " : "",
                         (int)l.target_len, l.target, l.is_preload, l.is_nopush,
                         l.as != NULL ? (int)l.as_len : 0, l.as != NULL ? l.as : "", l.urgency);
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    assert_int_equal(pos, len);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len = strlen(cases[i].value);
        /* An exact-size heap copy: ASan catches a read past len. */
        char *copy = malloc(len ? len : 1);
        memcpy(copy, cases[i].value, len);
        char got[512];
        describe(copy, len, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i, cases[i].value, got,
                     cases[i].want);
        free(copy);
    }
}

/* Every prefix of every case parses without reading past its end. */
static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len = strlen(cases[i].value);
        for (size_t k = 0; k <= len; k++) {
            char *copy = malloc(k ? k : 1);
            memcpy(copy, cases[i].value, k);
            char got[512];
            describe(copy, k, got, sizeof(got));
            free(copy);
        }
    }
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    static const char alphabet[] = "<>;,=\" \t\\/aprelodsnuh0123";
    srand(12);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 40);
        char *s = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            s[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        size_t pos = 0;
        proto_link_t l;
        int guard = 0;
        while (proto_link_next(s, len, &pos, &l)) {
            assert_true(l.target >= s && l.target + l.target_len <= s + len);
            if (l.as != NULL)
                assert_true(l.as >= s && l.as + l.as_len <= s + len);
            assert_true(++guard <= 40);
        }
        proto_link_has_preload(s, len);
        free(s);
    }
}

static void test_has_preload(void **state)
{
    (void)state;
    assert_true(proto_link_has_preload("</a>; rel=preload", 17));
    assert_true(proto_link_has_preload("</a>, </b>; rel=preload; nopush", 31));
    assert_false(proto_link_has_preload("</a>; rel=stylesheet", 20));
    assert_false(proto_link_has_preload("", 0));
}

static void test_preload_fields(void **state)
{
    (void)state;
    proto_header_t f[] = {
        {"content-type", 12, "text/html", 9},
        {"Link", 4, "</a.css>; rel=preload", 21},
        {"link", 4, "</>; rel=canonical", 18},
        {"link", 4, "</b.js>; rel=preload; as=script", 31},
    };
    proto_header_t out[4];
    assert_int_equal(proto_link_preload_fields(f, 4, out, 4), 2);
    assert_ptr_equal(out[0].value, f[1].value);
    assert_ptr_equal(out[1].value, f[3].value);
    assert_int_equal(proto_link_preload_fields(f, 4, out, 1), 1);
    assert_int_equal(proto_link_preload_fields(f, 0, out, 4), 0);
}

static void test_local_path(void **state)
{
    (void)state;
    static const struct {
        const char *target, *want; /* want NULL: not on this origin */
    } paths[] = {
        {"/style.css", "/style.css"},
        {"/a?b=1#frag", "/a?b=1"},
        {"/", "/"},
        {"//evil.example/x", NULL},
        {"style.css", NULL},
        {"", NULL},
        {"#x", NULL},
        {"https://www.example.com/x.js", "/x.js"},
        {"HTTP://WWW.EXAMPLE.COM/x.js", "/x.js"},
        {"https://www.example.com", "/"},
        {"https://www.example.com#top", "/"},
        {"https://www.example.com:8443/x", NULL},
        {"https://other.example/x", NULL},
        {"https://user@www.example.com/x", NULL},
        {"ftp://www.example.com/x", NULL},
        {"https:/", NULL},
    };
    for (size_t i = 0; i < COUNT(paths); i++) {
        size_t tlen = strlen(paths[i].target), len = 0;
        char *copy = malloc(tlen ? tlen : 1);
        memcpy(copy, paths[i].target, tlen);
        proto_link_t l = {.target = copy, .target_len = tlen, .urgency = -1};
        const char *got = proto_link_local_path(&l, "www.example.com", 15, &len);
        if (paths[i].want == NULL) {
            if (got != NULL)
                fail_msg("\"%s\": got \"%.*s\", want none", paths[i].target, (int)len, got);
        } else if (got == NULL || len != strlen(paths[i].want) ||
                   memcmp(got, paths[i].want, len) != 0) {
            fail_msg("\"%s\": got \"%.*s\", want \"%s\"", paths[i].target, got ? (int)len : 4,
                     got ? got : "none", paths[i].want);
        }
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_has_preload),
        cmocka_unit_test(test_preload_fields),
        cmocka_unit_test(test_local_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
