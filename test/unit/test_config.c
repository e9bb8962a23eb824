/* Unit tests for config/config.c. */
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

/* ---- helpers ---- */

/* Output captured from one cfg_from_args() or cfg_load_file() call. */
typedef struct capture {
    char *out_buf, *err_buf;
    size_t out_len, err_len;
    FILE *out, *err;
} capture_t;

static void cap_open(capture_t *c)
{
    memset(c, 0, sizeof(*c));
    c->out = open_memstream(&c->out_buf, &c->out_len);
    c->err = open_memstream(&c->err_buf, &c->err_len);
    assert_non_null(c->out);
    assert_non_null(c->err);
}

static void cap_close(capture_t *c)
{
    fclose(c->out);
    fclose(c->err);
}

static void cap_free(capture_t *c)
{
    free(c->out_buf);
    free(c->err_buf);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs cfg_from_args on a NULL-terminated list (argv[0] added). */
static int run_args(cfg_t *cfg, capture_t *cap, const char *const *args)
{
    char *argv[64];
    int argc = 0, rv;

    argv[argc++] = "h2gw";
    for (; *args != NULL; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    cap_open(cap);
    rv = cfg_from_args(cfg, argc, argv, cap->out, cap->err);
    cap_close(cap);
    return rv;
}

static char tmp_path[64];

static const char *write_tmp(const char *text)
{
    int fd;

    strcpy(tmp_path, "/tmp/h2gw-test-XXXXXX");
    fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmp_path;
}

/* ---- value parsers ---- */

static void test_parse_addr(void **state)
{
    static const struct {
        const char *in, *host;
        int port;
    } ok[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"[::1]:8080", "::1", 8080},
        {"[2001:db8::1]:443", "2001:db8::1", 443},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
        {"localhost:80", "localhost", 80},
        {"backend-1.svc.cluster.local:8000", "backend-1.svc.cluster.local", 8000},
        {":8080", "0.0.0.0", 8080},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"h:65535", "h", 65535},
        {"h:00080", "h", 80},
    };
    static const char *const bad[] = {
        "xyz",     "",       ":",      "h:",     "h:-1",      "h:65536", "h:99999999",
        "h:8o",    "h:80 ",  " h:80",  "::1:80", "[::1]",     "[::1]80", "[]:80",
        "[::1:80", "h h:80", "h/x:80", "h:+80",  "h:0000080", "[::1]:",  "a@b:80",
    };
    cfg_addr_t a;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(&a, 0xaa, sizeof(a));
        assert_int_equal(cfg_parse_addr(ok[i].in, &a), 0);
        assert_string_equal(a.host, ok[i].host);
        assert_int_equal(a.port, ok[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cfg_parse_addr(bad[i], &a) != -1) {
            fprintf(stderr, "accepted '%s'\n", bad[i]);
            fail();
        }
    }
    /* The host must fit CFG_HOST_MAX with its NUL. */
    {
        char s[CFG_HOST_MAX + 8];
        memset(s, 'a', CFG_HOST_MAX - 1);
        strcpy(s + CFG_HOST_MAX - 1, ":80");
        assert_int_equal(cfg_parse_addr(s, &a), 0);
        assert_int_equal(strlen(a.host), CFG_HOST_MAX - 1);
        memset(s, 'a', CFG_HOST_MAX);
        strcpy(s + CFG_HOST_MAX, ":80");
        assert_int_equal(cfg_parse_addr(s, &a), -1);
    }
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        {"250ms", 250},
        {"5s", 5000},
        {"2m", 120000},
        {"1h", 3600000},
        {"7", 7000},
        {"0", 0},
        {"0ms", 0},
        {"10S", 10000},
        {"3MS", 3},
        {"007s", 7000},
        {"18446744073709551615ms", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "-1",
        "-1s",
        "+1s",
        "1.5s",
        "1 s",
        " 1s",
        "1s ",
        "1d",
        "1sec",
        "5x",
        "1hh",
        "18446744073709551615s",
        "18446744073709551616ms",
        "99999999999999999999",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cfg_parse_duration_ms(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cfg_parse_duration_ms(bad[i], &v) != -1) {
            fprintf(stderr, "accepted '%s'\n", bad[i]);
            fail();
        }
    }
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *in;
        uint64_t v;
    } ok[] = {
        {"512", 512},           {"0", 0},          {"64k", 65536},
        {"64K", 65536},         {"64kb", 65536},   {"64KB", 65536},
        {"1m", 1048576},        {"16M", 16777216}, {"1g", 1073741824},
        {"2Gb", 2147483648ULL}, {"100b", 100},     {"16777216k", 17179869184ULL},
    };
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "+1",
        "1.5k",
        "1 k",
        "1kib",
        "1t",
        "1kk",
        "1bk",
        " 1",
        "1 ",
        "18446744073709551616",
        "17179869184g",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cfg_parse_size(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cfg_parse_size(bad[i], &v) != -1) {
            fprintf(stderr, "accepted '%s'\n", bad[i]);
            fail();
        }
    }
}

static void test_parse_bool_uint(void **state)
{
    static const char *const yes[] = {"on", "yes", "true", "1", "ON", "Yes", "TRUE"};
    static const char *const no[] = {"off", "no", "false", "0", "OFF", "No", "False"};
    static const char *const bad_bool[] = {"", "y", "n", "2", "enable", "on ", "truee"};
    static const char *const bad_uint[] = {
        "", "-1", "+1", "1.0", "0x10", "1 ", " 1", "1e3", "18446744073709551616"};
    int b;
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = -1;
        assert_int_equal(cfg_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
        assert_int_equal(cfg_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    for (size_t i = 0; i < sizeof(bad_bool) / sizeof(bad_bool[0]); i++)
        assert_int_equal(cfg_parse_bool(bad_bool[i], &b), -1);

    assert_int_equal(cfg_parse_uint("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cfg_parse_uint("18446744073709551615", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(cfg_parse_uint("0042", &v), 0);
    assert_int_equal(v, 42);
    for (size_t i = 0; i < sizeof(bad_uint) / sizeof(bad_uint[0]); i++)
        assert_int_equal(cfg_parse_uint(bad_uint[i], &v), -1);
}

static void test_log_level_str(void **state)
{
    (void)state;
    assert_string_equal(cfg_log_level_str(CFG_LOG_ERROR), "error");
    assert_string_equal(cfg_log_level_str(CFG_LOG_WARN), "warn");
    assert_string_equal(cfg_log_level_str(CFG_LOG_INFO), "info");
    assert_string_equal(cfg_log_level_str(CFG_LOG_DEBUG), "debug");
    assert_string_equal(cfg_log_level_str(42), "unknown");
    assert_string_equal(cfg_log_level_str(-1), "unknown");
}

static void test_defaults(void **state)
{
    cfg_t cfg;

    (void)state;
    memset(&cfg, 0x5a, sizeof(cfg));
    cfg_defaults(&cfg);
    assert_string_equal(cfg.listen.host, "");
    assert_string_equal(cfg.backend.host, "");
    assert_int_equal(cfg.backend_max_connections, 100);
    assert_int_equal(cfg.backend_idle_timeout_ms, 4000);
    assert_int_equal(cfg.backend_connect_timeout_ms, 3000);
    assert_int_equal(cfg.backend_response_timeout_ms, 60000);
    assert_int_equal(cfg.max_concurrent_streams, 100);
    assert_int_equal(cfg.max_header_list_size, 64 * 1024);
    assert_int_equal(cfg.request_buffer_size, 64 * 1024);
    assert_int_equal(cfg.response_buffer_size, 256 * 1024);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.log_level, CFG_LOG_WARN);
    assert_string_equal(cfg.config_file, "");
    assert_int_equal(cfg.check_only, 0);
}

/* ---- flags ---- */

static void test_flags_both_forms(void **state)
{
    static const char *const args[] = {"--listen",
                                       ":8443",
                                       "--backend=[::1]:8080",
                                       "--backend-max-connections",
                                       "7",
                                       "--backend-idle-timeout=250ms",
                                       "--backend-connect-timeout",
                                       "1m",
                                       "--backend-response-timeout=2",
                                       "--max-concurrent-streams",
                                       "2147483647",
                                       "--max-header-list-size=1k",
                                       "--request-buffer-size",
                                       "16m",
                                       "--response-buffer-size=1g",
                                       "--max-connections",
                                       "5",
                                       "--log-level=DEBUG",
                                       NULL};
    cfg_t cfg;
    capture_t cap;

    (void)state;
    assert_int_equal(run_args(&cfg, &cap, args), CFG_RUN);
    assert_string_equal(cap.err_buf, "");
    assert_string_equal(cap.out_buf, "");
    assert_string_equal(cfg.listen.host, "0.0.0.0");
    assert_int_equal(cfg.listen.port, 8443);
    assert_string_equal(cfg.backend.host, "::1");
    assert_int_equal(cfg.backend.port, 8080);
    assert_int_equal(cfg.backend_max_connections, 7);
    assert_int_equal(cfg.backend_idle_timeout_ms, 250);
    assert_int_equal(cfg.backend_connect_timeout_ms, 60000);
    assert_int_equal(cfg.backend_response_timeout_ms, 2000);
    assert_int_equal(cfg.max_concurrent_streams, 2147483647);
    assert_int_equal(cfg.max_header_list_size, 1024);
    assert_int_equal(cfg.request_buffer_size, 16 * 1024 * 1024);
    assert_int_equal(cfg.response_buffer_size, 1024 * 1024 * 1024);
    assert_int_equal(cfg.max_connections, 5);
    assert_int_equal(cfg.log_level, CFG_LOG_DEBUG);
    assert_int_equal(cfg.check_only, 0);
    cap_free(&cap);
}

static void test_flags_last_wins(void **state)
{
    static const char *const args[] = {"--listen", ":1", "--backend", "b:2", "--listen=:3", NULL};
    cfg_t cfg;
    capture_t cap;

    (void)state;
    assert_int_equal(run_args(&cfg, &cap, args), CFG_RUN);
    assert_int_equal(cfg.listen.port, 3);
    cap_free(&cap);
}

static void test_flag_errors(void **state)
{
    static const struct {
        const char *args[8];
        const char *err; /* exact stderr */
    } cases[] = {
        {{"--listen", ":1", "--backend", "b:2", "--bogus", "x", NULL},
         "h2gw: unknown option '--bogus'\nh2gw: unexpected argument 'x' (options start with --)\n"},
        {{"--listen", ":1", "--backend=b:2", "--bogus=1", NULL},
         "h2gw: unknown option '--bogus'\n"},
        {{"--listen", ":1", "--backend", NULL}, "h2gw: option '--backend' requires a value\n"},
        {{"--backend", "--listen", ":1", NULL}, "h2gw: option '--backend' requires a value\n"},
        {{"--listen", ":1", "--backend", "xyz", NULL},
         "h2gw: --backend: invalid address 'xyz' (expected HOST:PORT or [IPv6]:PORT)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-max-connections", "0", NULL},
         "h2gw: --backend-max-connections: '0' is out of range (1..100000)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-max-connections=x", NULL},
         "h2gw: --backend-max-connections: invalid number 'x'\n"},
        {{"--listen", ":1", "--backend", "b:2", "--request-buffer-size=32m", NULL},
         "h2gw: --request-buffer-size: '32m' is out of range (16k..16m)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--max-header-list-size=1023", NULL},
         "h2gw: --max-header-list-size: '1023' is out of range (1k..16m)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-idle-timeout=0", NULL},
         "h2gw: --backend-idle-timeout: '0' is out of range (1ms..24h)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-idle-timeout=soon", NULL},
         "h2gw: --backend-idle-timeout: invalid duration 'soon' (expected e.g. 250ms, 5s, 2m, "
         "1h)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--response-buffer-size=big", NULL},
         "h2gw: --response-buffer-size: invalid size 'big' (expected e.g. 512, 64k, 16m, 1g)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--max-concurrent-streams=2147483648", NULL},
         "h2gw: --max-concurrent-streams: '2147483648' is out of range (1..2147483647)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--log-level", "loud", NULL},
         "h2gw: --log-level: invalid log level 'loud' (expected error, warn, info or debug)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--check=yes", NULL},
         "h2gw: option '--check' takes no value\n"},
        {{"--backend", "b:2", NULL}, "h2gw: --listen is required\n"},
        {{"--listen", ":1", NULL}, "h2gw: --backend is required\n"},
        {{NULL}, "h2gw: --listen is required\nh2gw: --backend is required\n"},
        {{"--listen", ":1", "--backend", "b:0", NULL},
         "h2gw: --backend: port 0 cannot be connected to\n"},
        {{"--listen", ":1", "--backend", "b:2", "-", NULL},
         "h2gw: unexpected argument '-' (options start with --)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--", NULL},
         "h2gw: unexpected argument '--' (options start with --)\n"},
        /* Every error is reported, not just the first. */
        {{"--listen", "nope", "--backend", "nope", "--max-connections=0", NULL},
         "h2gw: --listen: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n"
         "h2gw: --backend: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n"
         "h2gw: --max-connections: '0' is out of range (1..10000000)\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_t cfg;
        capture_t cap;
        int rv = run_args(&cfg, &cap, cases[i].args);

        if (rv != CFG_EXIT_USAGE || strcmp(cap.err_buf, cases[i].err) != 0) {
            fprintf(stderr, "case %zu: rv %d\n got [%s]\nwant [%s]\n", i, rv, cap.err_buf,
                    cases[i].err);
            fail();
        }
        assert_string_equal(cap.out_buf, "");
        cap_free(&cap);
    }
}

static void test_help_version_check(void **state)
{
    static const char *const help[] = {"--listen", "bad", "--help", NULL};
    static const char *const short_help[] = {"-h", NULL};
    static const char *const version[] = {"--version", NULL};
    static const char *const check[] = {"--check", "--listen", ":1", "--backend", "b:2", NULL};
    static const char *const check_bad[] = {"--check", "--listen", ":1", NULL};
    cfg_t cfg;
    capture_t cap;

    (void)state;
    assert_int_equal(run_args(&cfg, &cap, help), CFG_EXIT_OK);
    assert_non_null(strstr(cap.out_buf, "usage: h2gw"));
    /* Generated from the table: every option, its default and its file key. */
    assert_non_null(strstr(cap.out_buf, "--backend-max-connections N"));
    assert_non_null(strstr(cap.out_buf, "(default 100)"));
    assert_non_null(strstr(cap.out_buf, "[backend] max_connections"));
    assert_non_null(strstr(cap.out_buf, "--response-buffer-size SIZE"));
    assert_non_null(strstr(cap.out_buf, "(default 256k)"));
    assert_non_null(strstr(cap.out_buf, "--log-level error|warn|info|debug"));
    assert_non_null(strstr(cap.out_buf, "--backend-scheduling priority|fifo"));
    assert_non_null(strstr(cap.out_buf, "--config FILE"));
    assert_non_null(strstr(cap.out_buf, "--check\n"));
    assert_non_null(strstr(cap.out_buf, "--version\n"));
    assert_string_equal(cap.err_buf, "");
    cap_free(&cap);

    assert_int_equal(run_args(&cfg, &cap, short_help), CFG_EXIT_OK);
    assert_non_null(strstr(cap.out_buf, "usage: h2gw"));
    cap_free(&cap);

    assert_int_equal(run_args(&cfg, &cap, version), CFG_EXIT_OK);
    assert_string_equal(cap.out_buf, "h2gw " H2GW_VERSION "\n");
    cap_free(&cap);

    assert_int_equal(run_args(&cfg, &cap, check), CFG_EXIT_OK);
    assert_string_equal(cap.out_buf, "h2gw: configuration OK\n");
    assert_string_equal(cap.err_buf, "");
    assert_int_equal(cfg.check_only, 1);
    cap_free(&cap);

    assert_int_equal(run_args(&cfg, &cap, check_bad), CFG_EXIT_USAGE);
    assert_string_equal(cap.out_buf, "");
    assert_string_equal(cap.err_buf, "h2gw: --backend is required\n");
    cap_free(&cap);
}

/* ---- file ---- */

static void test_file_ok(void **state)
{
    static const char text[] = "; h2gw example\n"
                               "# both comment styles\n"
                               "[gateway]\n"
                               "max_concurrent_streams = 250\n"
                               "max_header_list_size = 32k ; inline comment\n"
                               "request_buffer_size=128k\n"
                               "response_buffer_size = 1m\n"
                               "max_connections = 20000\n"
                               "log_level = info\n"
                               "\n"
                               "[listen public]\n"
                               "    address = [::]:8443\n"
                               "\n"
                               "[backend]\n"
                               "\tserver = app.internal:8080\n"
                               "max_connections = 32\n"
                               "idle_timeout = 90s\n"
                               "connect_timeout = 500ms\n"
                               "response_timeout = 2m\n"
                               "response_timeout = 3m\n" /* repeats: last wins */
                               "[gateway]\n"
                               "Max_Connections = 30000\n";
    cfg_t cfg;
    capture_t cap;
    const char *path = write_tmp(text);

    (void)state;
    cfg_defaults(&cfg);
    cap_open(&cap);
    assert_int_equal(cfg_load_file(&cfg, path, cap.err), 0);
    cap_close(&cap);
    assert_string_equal(cap.err_buf, "");
    assert_int_equal(cfg.max_concurrent_streams, 250);
    assert_int_equal(cfg.max_header_list_size, 32 * 1024);
    assert_int_equal(cfg.request_buffer_size, 128 * 1024);
    assert_int_equal(cfg.response_buffer_size, 1024 * 1024);
    assert_int_equal(cfg.max_connections, 30000);
    assert_int_equal(cfg.log_level, CFG_LOG_INFO);
    assert_string_equal(cfg.listen.host, "::");
    assert_int_equal(cfg.listen.port, 8443);
    assert_string_equal(cfg.backend.host, "app.internal");
    assert_int_equal(cfg.backend.port, 8080);
    assert_int_equal(cfg.backend_max_connections, 32);
    assert_int_equal(cfg.backend_idle_timeout_ms, 90000);
    assert_int_equal(cfg.backend_connect_timeout_ms, 500);
    assert_int_equal(cfg.backend_response_timeout_ms, 180000);
    cap_free(&cap);
    unlink(path);
}

static void test_file_errors(void **state)
{
    static const char text[] = "address = :1\n"                 /* 1 */
                               "[gateway]\n"                    /* 2 */
                               "max_connections = 0\n"          /* 3 */
                               "bogus = 1\n"                    /* 4 */
                               "log_level = loud\n"             /* 5 */
                               "[nope]\n"                       /* 6 */
                               "whatever = 1\n"                 /* 7: not reported again */
                               "[listen]\n"                     /* 8 */
                               "address = nope\n"               /* 9 */
                               "this line has no equals sign\n" /* 10 */
                               "[backend\n"                     /* 11 */
                               "[backend a]\n"                  /* 12 */
                               "server = b:80\n"                /* 13 */
                               "[backend b]\n"                  /* 14 */
                               "server = c:80\n"                /* 15: not applied */
                               "[gateway]\n"                    /* 16 */
                               "request_buffer_size = 1g\n";    /* 17 */
    cfg_t cfg;
    capture_t cap;
    const char *path = write_tmp(text);
    char want[2048];
    int n;

    (void)state;
    cfg_defaults(&cfg);
    cap_open(&cap);
    n = cfg_load_file(&cfg, path, cap.err);
    cap_close(&cap);
    snprintf(want, sizeof(want),
             "%1$s:1: 'address' is outside of any section\n"
             "%1$s:3: max_connections: '0' is out of range (1..10000000)\n"
             "%1$s:4: unknown key 'bogus' in [gateway]\n"
             "%1$s:5: log_level: invalid log level 'loud' (expected error, warn, info or debug)\n"
             "%1$s:6: unknown section [nope]\n"
             "%1$s:9: address: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n"
             "%1$s:10: expected 'key = value' or '[section]'\n"
             "%1$s:11: unterminated section header (missing ']')\n"
             "%1$s:14: only one [backend] section is supported (first was [backend a])\n"
             "%1$s:17: request_buffer_size: '1g' is out of range (16k..16m)\n",
             path);
    assert_string_equal(cap.err_buf, want);
    assert_int_equal(n, count_lines(want));
    /* Good lines still applied; bad ones left the defaults. */
    assert_string_equal(cfg.backend.host, "b");
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.request_buffer_size, 64 * 1024);
    cap_free(&cap);
    unlink(path);
}

static void test_file_sections(void **state)
{
    static const char text[] = "\xef\xbb\xbf; starts with a UTF-8 BOM\n" /* 1 */
                               "[ gateway ]\n"                           /* 2 */
                               "log_level = error\n"                     /* 3 */
                               "[listen  public ]\n"                     /* 4 */
                               "address = :81\n"                         /* 5 */
                               "[listen public]\n"                       /* 6: same name */
                               "address = :82\n"                         /* 7 */
                               "[backend]\n"                             /* 8 */
                               "server = a:1\n"                          /* 9 */
                               "[backend other]\n"                       /* 10 */
                               "server = b:2\n"                          /* 11 */
                               "[gateway extra]\n"                       /* 12 */
                               "max_connections = 3\n"                   /* 13 */
                               "[listener]\n"                            /* 14 */
                               "[]\n"                                    /* 15 */
                               "[listen ;x]\n"                           /* 16 */
                               "address:83\n";                           /* 17 */
    cfg_t cfg;
    capture_t cap;
    const char *path = write_tmp(text);
    char want[1024];
    int n;

    (void)state;
    cfg_defaults(&cfg);
    cap_open(&cap);
    n = cfg_load_file(&cfg, path, cap.err);
    cap_close(&cap);
    snprintf(want, sizeof(want),
             "%1$s:10: only one [backend] section is supported (first was [backend])\n"
             "%1$s:12: unknown section [gateway extra]\n"
             "%1$s:14: unknown section [listener]\n"
             "%1$s:15: unknown section []\n"
             "%1$s:16: only one [listen] section is supported (first was [listen public])\n",
             path);
    assert_string_equal(cap.err_buf, want);
    assert_int_equal(n, 5);
    assert_int_equal(cfg.log_level, CFG_LOG_ERROR);
    assert_int_equal(cfg.listen.port, 82);
    assert_string_equal(cfg.backend.host, "a");
    assert_int_equal(cfg.max_connections, 10000);
    cap_free(&cap);
    unlink(path);
}

static void test_file_long_line(void **state)
{
    char text[1024];
    cfg_t cfg;
    capture_t cap;
    const char *path;
    char want[256];
    int n;

    (void)state;
    n = snprintf(text, sizeof(text), "[gateway]\nlog_level = %0400d\nmax_connections = 7\n", 0);
    assert_true(n > 0);
    path = write_tmp(text);
    cfg_defaults(&cfg);
    cap_open(&cap);
    assert_int_equal(cfg_load_file(&cfg, path, cap.err), 1);
    cap_close(&cap);
    snprintf(want, sizeof(want), "%s:2: line too long (at most 197 characters)\n", path);
    assert_string_equal(cap.err_buf, want);
    assert_int_equal(cfg.max_connections, 7); /* the next line is still line 3, and read */
    cap_free(&cap);
    unlink(path);
}

static void test_file_missing(void **state)
{
    cfg_t cfg;
    capture_t cap;

    (void)state;
    cfg_defaults(&cfg);
    cap_open(&cap);
    assert_int_equal(cfg_load_file(&cfg, "/nonexistent/h2gw.ini", cap.err), 1);
    cap_close(&cap);
    assert_string_equal(cap.err_buf,
                        "/nonexistent/h2gw.ini: cannot open: No such file or directory\n");
    cap_free(&cap);
}

static void test_flags_override_file(void **state)
{
    static const char text[] = "[listen]\naddress = :8080\n"
                               "[backend]\nserver = app:80\nmax_connections = 7\n"
                               "[gateway]\nlog_level = debug\n";
    const char *path = write_tmp(text);
    /* The flag before --config still wins over the file. */
    const char *const args[] = {"--backend-max-connections", "5", "--config", path,
                                "--log-level=error",         NULL};
    const char *const bad_file[] = {"--config", "/nonexistent/x.ini", "--listen", "nope", NULL};
    cfg_t cfg;
    capture_t cap;

    (void)state;
    assert_int_equal(run_args(&cfg, &cap, args), CFG_RUN);
    assert_string_equal(cap.err_buf, "");
    assert_int_equal(cfg.backend_max_connections, 5);
    assert_int_equal(cfg.log_level, CFG_LOG_ERROR);
    assert_int_equal(cfg.listen.port, 8080);      /* from the file */
    assert_string_equal(cfg.backend.host, "app"); /* from the file */
    assert_string_equal(cfg.config_file, path);
    cap_free(&cap);

    /* File errors and flag errors are all reported. */
    assert_int_equal(run_args(&cfg, &cap, bad_file), CFG_EXIT_USAGE);
    assert_string_equal(cap.err_buf,
                        "/nonexistent/x.ini: cannot open: No such file or directory\n"
                        "h2gw: --listen: invalid address 'nope' (expected HOST:PORT or "
                        "[IPv6]:PORT)\n");
    cap_free(&cap);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),       cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),       cmocka_unit_test(test_parse_bool_uint),
        cmocka_unit_test(test_log_level_str),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_both_forms), cmocka_unit_test(test_flags_last_wins),
        cmocka_unit_test(test_flag_errors),      cmocka_unit_test(test_help_version_check),
        cmocka_unit_test(test_file_ok),          cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_sections),    cmocka_unit_test(test_file_long_line),
        cmocka_unit_test(test_file_missing),     cmocka_unit_test(test_flags_override_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
