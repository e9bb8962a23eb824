/*
 * Allocation failure in every proto/ and config/ entry point that
 * allocates: each scenario runs with the Nth allocation failing, for N = 1,
 * 2, ... until a run needs no failure. Every failing run must return its
 * error (PROTO_E_NOMEM, or errors counted by config/), crash nowhere and
 * leave no block allocated; the run without failure must succeed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "proto/buf.h"
#include "proto/fields.h"
#include "proto/h1_request.h"
#include "proto/h1_request_parser.h"
#include "proto/h1_response.h"
#include "test/unit/failalloc.h"

#define MAX_RUNS 100000

/* A scenario returns 0 when it succeeded, or the error it returned; it
 * frees what it made either way. */
typedef int (*scenario_fn)(void *arg);

/* Runs fn with the 1st, 2nd, ... allocation failing; returns how many
 * failing runs there were. */
static long fail_each(scenario_fn fn, void *arg, int want_err)
{
    long before = failalloc_live();

    for (long n = 1; n < MAX_RUNS; n++) {
        int rv;

        failalloc_arm(n);
        rv = fn(arg);
        failalloc_disarm();
        if (failalloc_live() != before) {
            fprintf(stderr, "allocation %ld failing: %ld blocks leaked\n", n,
                    failalloc_live() - before);
            fail();
        }
        if (!failalloc_has_failed()) {
            assert_int_equal(rv, 0);
            if (getenv("FAILALLOC_VERBOSE") != NULL)
                fprintf(stderr, "%ld failing runs\n", n - 1);
            return n - 1;
        }
        if (rv != want_err) {
            fprintf(stderr, "allocation %ld failing: returned %d, want %d\n", n, rv, want_err);
            fail();
        }
    }
    fail_msg("never ran without a failure");
    return 0;
}

/* ---- proto ---- */

static int run_fields(void *arg)
{
    proto_fields_t fs;
    char name[16], value[200];
    int rv;

    (void)arg;
    if ((rv = proto_fields_init(&fs, 1 << 20, 20)) != 0)
        return rv;
    memset(value, 'v', sizeof(value));
    /* More fields than the first list holds, more bytes than the first
     * buffer: both grow. */
    for (int i = 0; i < 40 && rv == 0; i++) {
        int n = snprintf(name, sizeof(name), "Field-%d", i);
        if ((rv = proto_fields_append_name(&fs, name, (size_t)n)) != 0)
            break;
        proto_fields_end_name(&fs);
        if ((rv = proto_fields_append_value(&fs, value, sizeof(value))) != 0)
            break;
        proto_fields_end_value(&fs);
    }
    if (rv == 0)
        assert_int_equal(fs.n, 40);
    proto_fields_free(&fs);
    return rv;
}

static void test_fields(void **state)
{
    (void)state;
    assert_true(fail_each(run_fields, NULL, PROTO_E_NOMEM) >= 3);
}

static int run_buf(void *arg)
{
    proto_buf_t b, dst;
    static char chunk[7000];
    int rv = 0;

    (void)arg;
    proto_buf_init(&b);
    proto_buf_init(&dst);
    for (int i = 0; i < 12; i++) {
        size_t len = proto_buf_len(&b);
        if ((rv = proto_buf_append(&b, chunk, sizeof(chunk))) != 0) {
            assert_int_equal(proto_buf_len(&b), len); /* nothing appended */
            break;
        }
    }
    if (rv == 0) {
        assert_int_equal(proto_buf_len(&b), 12 * sizeof(chunk));
        proto_buf_move(&dst, &b, SIZE_MAX, 2);
    }
    proto_buf_free(&b);
    proto_buf_free(&dst);
    return rv;
}

static void test_buf(void **state)
{
    (void)state;
    assert_true(fail_each(run_buf, NULL, PROTO_E_NOMEM) >= 2);
}

static int run_h1_request(void *arg)
{
    static char long_value[3000];
    proto_header_t hs[] = {
        {"cookie", 6, "a=1", 3},
        {"accept", 6, "*/*", 3},
        {"x-long", 6, long_value, sizeof(long_value)},
        {"cookie", 6, "b=2", 3},
        {"x-forwarded-for", 15, "10.0.0.1", 8},
        {"forwarded", 9, "for=10.0.0.1", 12},
    };
    proto_header_t extra[] = {{"x-client-subject", 16, "CN=a", 4}};
    proto_request_t req = {
        .method = "POST",
        .method_len = 4,
        .scheme = "https",
        .scheme_len = 5,
        .authority = "example.com",
        .authority_len = 11,
        .path = "/upload",
        .path_len = 7,
        .headers = hs,
        .nheaders = sizeof(hs) / sizeof(hs[0]),
        .client_addr = "2001:db8::1",
        .has_body = 1,
        .extra = extra,
        .nextra = 1,
    };
    proto_h1_head_t out;
    const char *why = NULL;
    int rv;

    (void)arg;
    memset(long_value, 'x', sizeof(long_value));
    rv = proto_h1_request_build(&req, &out, &why);
    if (rv != 0) {
        assert_null(out.data);
        return rv;
    }
    assert_true(out.is_chunked);
    proto_h1_head_free(&out);
    return 0;
}

static void test_h1_request(void **state)
{
    (void)state;
    assert_true(fail_each(run_h1_request, NULL, PROTO_E_NOMEM) >= 1);
}

static int on_req_head(void *ud, const proto_h1_req_head_t *h)
{
    (void)ud;
    (void)h;
    return 0;
}

static int on_any_body(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return 0;
}

static int on_any_trailers(void *ud, const proto_header_t *h, size_t n)
{
    (void)ud;
    (void)h;
    (void)n;
    return 0;
}

static int on_any_complete(void *ud)
{
    (*(int *)ud)++;
    return 0;
}

/* A head with many fields (past the parsers' on-stack field views) and
 * long values, a chunked body and trailers. */
static char *many_fields(const char *start, const char *framing)
{
    size_t cap = 64 * 1024, n;
    char *s = malloc(cap);

    assert_non_null(s);
    n = (size_t)snprintf(s, cap, "%s", start);
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(s + n, cap - n, "X-Field-%d: %0100d\r\n", i, i);
    n += (size_t)snprintf(s + n, cap - n,
                          "%s\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n", framing);
    return s;
}

static int run_h1_req_parser(void *arg)
{
    static const proto_h1_req_cbs_t cbs = {on_req_head, on_any_body, on_any_trailers,
                                           on_any_complete};
    const char *input = arg;
    proto_h1_req_parser_t p;
    int ncomplete = 0;
    ssize_t rv;

    if ((rv = proto_h1_req_parser_init(&p, &cbs, &ncomplete, 64 * 1024)) != 0) {
        proto_h1_req_parser_free(&p);
        return (int)rv;
    }
    /* In two pieces, so that fields straddle feeds too. */
    rv = proto_h1_req_parser_feed(&p, (const uint8_t *)input, 1500);
    if (rv >= 0)
        rv = proto_h1_req_parser_feed(&p, (const uint8_t *)input + 1500, strlen(input) - 1500);
    proto_h1_req_parser_free(&p);
    if (rv < 0)
        return (int)rv;
    assert_int_equal(rv, strlen(input) - 1500);
    assert_int_equal(ncomplete, 1);
    return 0;
}

static void test_h1_req_parser(void **state)
{
    char *input = many_fields("POST /p HTTP/1.1\r\nHost: x\r\n", "Transfer-Encoding: chunked\r\n");

    (void)state;
    assert_true(fail_each(run_h1_req_parser, input, PROTO_E_NOMEM) >= 4);
    free(input);
}

static int on_resp_head(void *ud, int status, const proto_header_t *h, size_t n)
{
    (void)ud;
    (void)status;
    (void)h;
    (void)n;
    return 0;
}

static int run_h1_response(void *arg)
{
    static const proto_h1_response_cbs_t cbs = {on_resp_head, on_any_body, on_any_trailers,
                                                on_any_complete, on_resp_head};
    const char *input = arg;
    proto_h1_response_t r;
    int ncomplete = 0;
    ssize_t rv;

    if ((rv = proto_h1_response_init(&r, &cbs, &ncomplete, 64 * 1024)) != 0) {
        proto_h1_response_free(&r);
        return (int)rv;
    }
    rv = proto_h1_response_feed(&r, (const uint8_t *)input, 1500);
    if (rv >= 0)
        rv = proto_h1_response_feed(&r, (const uint8_t *)input + 1500, strlen(input) - 1500);
    proto_h1_response_free(&r);
    if (rv < 0)
        return (int)rv;
    assert_int_equal(ncomplete, 1);
    return 0;
}

static void test_h1_response(void **state)
{
    char *input = many_fields("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
                              "Transfer-Encoding: chunked\r\n");

    (void)state;
    assert_true(fail_each(run_h1_response, input, PROTO_E_NOMEM) >= 4);
    free(input);
}

/* ---- config ---- */

typedef struct cfg_run {
    const char *const *argv; /* NULL-terminated, without argv[0] */
    FILE *err;
    int want; /* CFG_RUN or CFG_CHECK */
} cfg_run_t;

static int run_cfg(void *arg)
{
    cfg_run_t *c = arg;
    char *argv[32] = {"h2gw"};
    int argc = 1, rv;
    cfg_t cfg;

    for (; c->argv[argc - 1] != NULL; argc++)
        argv[argc] = (char *)c->argv[argc - 1];
    rv = cfg_from_args(&cfg, argc, argv, c->err, c->err);
    cfg_free(&cfg);
    if (rv == c->want)
        return 0;
    return rv;
}

static char conf_path[64], cert_path[64], key_path[64];

static void write_tmp(char *path, const char *text)
{
    int fd;

    strcpy(path, "/tmp/h2gw-failalloc-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_config(void **state)
{
    char conf[2048];
    FILE *err = getenv("FAILALLOC_VERBOSE") ? stderr : fopen("/dev/null", "w");

    (void)state;
    assert_non_null(err);
    write_tmp(cert_path, "-----BEGIN CERTIFICATE-----\n");
    write_tmp(key_path, "-----BEGIN PRIVATE KEY-----\n");
    snprintf(conf, sizeof(conf),
             "[gateway]\naccess_log = /tmp/h2gw-access.log\n"
             "[listen tls]\naddress = 127.0.0.1:8443\ntls_cert = %s\ntls_key = %s\n"
             "tls_ciphers = ECDHE+AESGCM\nclient_cert_header = x-client-subject\n"
             "verify_client = optional\ntls_client_ca = %s\n"
             "[listen]\naddress = :8080\n"
             "[backend default]\nserver = 127.0.0.1:8081\nserver = 127.0.0.1:8082 weight=3\n"
             "health_check_path = /healthz\n"
             "[backend api]\nserver = api.example:80\ntls = on\ntls_sni = api\n"
             "[route a]\nhost = *.example.com\npath_prefix = /api\nbackend = api\n",
             cert_path, key_path, cert_path);
    write_tmp(conf_path, conf);
    {
        const char *const file_and_flags[] = {"--config",
                                              conf_path,
                                              "--backend",
                                              "10.0.0.1:80",
                                              "--backend=10.0.0.2:80 weight=2",
                                              "--tls-cert",
                                              cert_path,
                                              "--tls-key",
                                              key_path,
                                              "--backend-health-check-path=/up",
                                              "--access-log",
                                              "-",
                                              NULL};
        const char *const flags_only[] = {"--listen",          ":9000", "--backend", "a.example:1",
                                          "--backend-tls-sni", "a",     NULL};
        const char *const check[] = {"--config", conf_path, "--check", NULL};
        cfg_run_t runs[] = {
            {file_and_flags, err, CFG_RUN},
            {flags_only, err, CFG_RUN},
            {check, err, CFG_CHECK},
        };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
            assert_true(fail_each(run_cfg, &runs[i], CFG_EXIT_USAGE) >= 2);
    }
    unlink(conf_path);
    unlink(cert_path);
    unlink(key_path);
    fclose(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),      cmocka_unit_test(test_buf),
        cmocka_unit_test(test_h1_request),  cmocka_unit_test(test_h1_req_parser),
        cmocka_unit_test(test_h1_response), cmocka_unit_test(test_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
