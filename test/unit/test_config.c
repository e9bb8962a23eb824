/* Unit tests for config/: value parsers, flags, the INI file, validation. */
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

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

/* Readable PEM-named files for certificate options (contents are not parsed
 * by config/), made once for the whole run. */
static char pem_cert[64], pem_key[64], pem_ca[64];

static void make_tmp(char *path, const char *text)
{
    int fd;

    strcpy(path, "/tmp/h2gw-test-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int group_setup(void **state)
{
    (void)state;
    make_tmp(pem_cert, "-----BEGIN CERTIFICATE-----\n");
    make_tmp(pem_key, "-----BEGIN PRIVATE KEY-----\n");
    make_tmp(pem_ca, "-----BEGIN CERTIFICATE-----\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(pem_cert);
    unlink(pem_key);
    unlink(pem_ca);
    return 0;
}

/* One cfg_from_args() or cfg_load_file() call: its config file, output and
 * result. run_done() frees everything, so ASan sees every path. */
typedef struct run {
    cfg_t cfg;
    char conf[64]; /* the config file, "" when none */
    char *out_buf, *err_buf;
    size_t out_len, err_len;
    int rv;
} run_t;

/* Returns a heap copy of tmpl with @FILE@ (the run's config file), @CERT@,
 * @KEY@ and @CA@ (readable files) replaced. */
static char *subst(const run_t *r, const char *tmpl)
{
    static const char *const tokens[] = {"@FILE@", "@CERT@", "@KEY@", "@CA@"};
    const char *values[] = {r != NULL ? r->conf : "", pem_cert, pem_key, pem_ca};
    size_t cap = strlen(tmpl) * 8 + 1, n = 0;
    char *out = malloc(cap);

    assert_non_null(out);
    while (*tmpl != '\0') {
        size_t k = 0;
        while (k < COUNT(tokens) && strncmp(tmpl, tokens[k], strlen(tokens[k])) != 0)
            k++;
        if (k < COUNT(tokens)) {
            assert_true(n + strlen(values[k]) < cap);
            memcpy(out + n, values[k], strlen(values[k]));
            n += strlen(values[k]);
            tmpl += strlen(tokens[k]);
        } else {
            assert_true(n + 1 < cap);
            out[n++] = *tmpl++;
        }
    }
    out[n] = '\0';
    return out;
}

static void write_conf(run_t *r, const char *text)
{
    char *s = subst(r, text);

    make_tmp(r->conf, s);
    free(s);
}

/* cfg_from_args with "--config FILE" first when conf is not NULL, then args
 * (a NULL-terminated list, @...@ substituted). */
static void run_args_conf(run_t *r, const char *conf, const char *const *args)
{
    char *argv[128];
    int argc = 0;
    FILE *out, *err;

    memset(r, 0, sizeof(*r));
    argv[argc++] = strdup("h2gw");
    if (conf != NULL) {
        write_conf(r, conf);
        argv[argc++] = strdup("--config");
        argv[argc++] = strdup(r->conf);
    }
    for (; args != NULL && *args != NULL; args++) {
        assert_true(argc < 127);
        argv[argc++] = subst(r, *args);
    }
    argv[argc] = NULL;
    out = open_memstream(&r->out_buf, &r->out_len);
    err = open_memstream(&r->err_buf, &r->err_len);
    assert_non_null(out);
    assert_non_null(err);
    r->rv = cfg_from_args(&r->cfg, argc, argv, out, err);
    fclose(out);
    fclose(err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
}

static void run_args(run_t *r, const char *const *args)
{
    run_args_conf(r, NULL, args);
}

/* cfg_defaults + cfg_load_file; rv is the error count. */
static void load(run_t *r, const char *text)
{
    FILE *err;

    memset(r, 0, sizeof(*r));
    write_conf(r, text);
    cfg_defaults(&r->cfg);
    err = open_memstream(&r->err_buf, &r->err_len);
    assert_non_null(err);
    r->rv = cfg_load_file(&r->cfg, r->conf, err);
    fclose(err);
}

static void run_done(run_t *r)
{
    cfg_free(&r->cfg);
    free(r->out_buf);
    free(r->err_buf);
    if (r->conf[0] != '\0')
        unlink(r->conf);
}

/* Asserts the exact stderr (@...@ substituted). */
static void assert_err(const run_t *r, const char *want_tmpl)
{
    char *want = subst(r, want_tmpl);

    if (strcmp(r->err_buf != NULL ? r->err_buf : "", want) != 0) {
        print_error(" got [%s]\nwant [%s]\n", r->err_buf, want);
        free(want);
        fail();
    }
    free(want);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
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
    for (size_t i = 0; i < COUNT(ok); i++) {
        memset(&a, 0xaa, sizeof(a));
        assert_int_equal(cfg_parse_addr(ok[i].in, &a), 0);
        assert_string_equal(a.host, ok[i].host);
        assert_int_equal(a.port, ok[i].port);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (cfg_parse_addr(bad[i], &a) != -1) {
            print_error("accepted '%s'\n", bad[i]);
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

static void test_parse_server(void **state)
{
    static const struct {
        const char *in, *host;
        int port;
        uint32_t weight;
    } ok[] = {
        {"127.0.0.1:8081", "127.0.0.1", 8081, 1},
        {"app:80 weight=3", "app", 80, 3},
        {"app:80   weight=1000", "app", 80, 1000},
        {"app:80\tweight=1", "app", 80, 1},
        {"app:80 WEIGHT=7", "app", 80, 7},
        {"[::1]:443 weight=2", "::1", 443, 2},
        {"app:80 ", "app", 80, 1},
        {"app:80 weight=007", "app", 80, 7},
    };
    static const char *const bad[] = {
        "",
        "app",
        ":80",   /* a server needs a host */
        "app:0", /* and a port that can be connected to */
        "app:80 weight=0",
        "app:80 weight=1001",
        "app:80 weight=",
        "app:80 weight=-1",
        "app:80 weight=2 ",
        "app:80 weight 2",
        "app:80 w=2",
        "app:80 weight=2 extra",
        "app:80 2",
        " app:80",
        "app:80x",
        "app:80,b:81",
    };
    cfg_server_t s;

    (void)state;
    for (size_t i = 0; i < COUNT(ok); i++) {
        memset(&s, 0xaa, sizeof(s));
        if (cfg_parse_server(ok[i].in, &s) != 0) {
            print_error("refused '%s'\n", ok[i].in);
            fail();
        }
        assert_string_equal(s.addr.host, ok[i].host);
        assert_int_equal(s.addr.port, ok[i].port);
        assert_int_equal(s.weight, ok[i].weight);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        memset(&s, 0x5a, sizeof(s));
        if (cfg_parse_server(bad[i], &s) != -1) {
            print_error("accepted '%s'\n", bad[i]);
            fail();
        }
        assert_int_equal(s.weight, 0x5a5a5a5a); /* out untouched on failure */
    }
}

static void test_parse_status_range(void **state)
{
    static const struct {
        const char *in;
        uint32_t lo, hi;
    } ok[] = {
        {"200-399", 200, 399}, {"204", 204, 204},       {"200-200", 200, 200},
        {"0-0", 0, 0},         {"0100-0599", 100, 599}, {"4294967295", UINT32_MAX, UINT32_MAX},
    };
    static const char *const bad[] = {
        "",    "-",       "200-",     "-399", "399-200",  "200 - 399",  " 200",         "200 ",
        "2xx", "200-3xx", "200-399-", "+200", "200..399", "4294967296", "1-4294967296",
    };
    uint32_t lo, hi;

    (void)state;
    for (size_t i = 0; i < COUNT(ok); i++) {
        lo = hi = 12345;
        assert_int_equal(cfg_parse_status_range(ok[i].in, &lo, &hi), 0);
        assert_int_equal(lo, ok[i].lo);
        assert_int_equal(hi, ok[i].hi);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        lo = hi = 12345;
        if (cfg_parse_status_range(bad[i], &lo, &hi) != -1) {
            print_error("accepted '%s'\n", bad[i]);
            fail();
        }
        assert_int_equal(lo, 12345);
        assert_int_equal(hi, 12345);
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
    for (size_t i = 0; i < COUNT(ok); i++) {
        assert_int_equal(cfg_parse_duration_ms(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].ms);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (cfg_parse_duration_ms(bad[i], &v) != -1) {
            print_error("accepted '%s'\n", bad[i]);
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
    for (size_t i = 0; i < COUNT(ok); i++) {
        assert_int_equal(cfg_parse_size(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (cfg_parse_size(bad[i], &v) != -1) {
            print_error("accepted '%s'\n", bad[i]);
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
    for (size_t i = 0; i < COUNT(yes); i++) {
        b = -1;
        assert_int_equal(cfg_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
        assert_int_equal(cfg_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    for (size_t i = 0; i < COUNT(bad_bool); i++)
        assert_int_equal(cfg_parse_bool(bad_bool[i], &b), -1);

    assert_int_equal(cfg_parse_uint("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cfg_parse_uint("18446744073709551615", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(cfg_parse_uint("0042", &v), 0);
    assert_int_equal(v, 42);
    for (size_t i = 0; i < COUNT(bad_uint); i++)
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

/* ---- defaults ---- */

static void assert_listener_defaults(const cfg_listener_t *l)
{
    assert_int_equal(l->ncerts, 0);
    assert_null(l->certs);
    assert_null(l->tls_ciphers);
    assert_int_equal(l->tls_min_version, CFG_TLS_1_2);
    assert_null(l->tls_ticket_key_file);
    assert_null(l->tls_client_ca);
    assert_int_equal(l->verify_client, CFG_VERIFY_OFF);
    assert_null(l->client_cert_header);
    assert_int_equal(l->watch_certificates, 0);
    assert_int_equal(l->proxy_protocol, 0);
}

static void assert_backend_defaults(const cfg_backend_t *b)
{
    assert_int_equal(b->max_connections, 100);
    assert_int_equal(b->idle_timeout_ms, 4000);
    assert_int_equal(b->connect_timeout_ms, 3000);
    assert_int_equal(b->response_timeout_ms, 60000);
    assert_int_equal(b->io_timeout_ms, 60000);
    assert_int_equal(b->retries, 1);
    assert_int_equal(b->lb, CFG_LB_LEAST_OUTSTANDING);
    assert_int_equal(b->resolve_interval_ms, 30000);
    assert_int_equal(b->max_fails, 5);
    assert_int_equal(b->eject_time_ms, 10000);
    assert_int_equal(b->eject_time_max_ms, 300000);
    assert_int_equal(b->fail_on_5xx, 0);
    assert_null(b->health_check_path);
    assert_int_equal(b->health_check_interval_ms, 5000);
    assert_int_equal(b->healthy_threshold, 2);
    assert_int_equal(b->unhealthy_threshold, 3);
    assert_int_equal(b->health_check_status_min, 200);
    assert_int_equal(b->health_check_status_max, 399);
    assert_int_equal(b->queue_length, 1024);
    assert_int_equal(b->queue_timeout_ms, 30000);
    assert_int_equal(b->max_request_body, 0);
    assert_int_equal(b->scheduling, CFG_SCHED_PRIORITY);
    assert_int_equal(b->priority_max_wait_ms, 1000);
    assert_int_equal(b->priority_reserved_connections, 0);
    assert_int_equal(b->tls, 0);
    assert_null(b->tls_sni);
    assert_null(b->tls_ca_file);
    assert_int_equal(b->tls_verify, 1);
}

static void test_defaults(void **state)
{
    cfg_t cfg;
    run_t r;

    (void)state;
    memset(&cfg, 0x5a, sizeof(cfg));
    cfg_defaults(&cfg);
    assert_int_equal(cfg.nlisteners, 0);
    assert_null(cfg.listeners);
    assert_int_equal(cfg.nbackends, 0);
    assert_null(cfg.backends);
    assert_int_equal(cfg.nroutes, 0);
    assert_null(cfg.routes);
    assert_int_equal(cfg.default_backend, 0);
    assert_int_equal(cfg.max_concurrent_streams, 100);
    assert_int_equal(cfg.max_header_list_size, 64 * 1024);
    assert_int_equal(cfg.request_buffer_size, 64 * 1024);
    assert_int_equal(cfg.response_buffer_size, 256 * 1024);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.client_idle_timeout_ms, 180000);
    assert_int_equal(cfg.tls_handshake_timeout_ms, 10000);
    assert_int_equal(cfg.h2_glitch_threshold, 1000);
    assert_int_equal(cfg.log_level, CFG_LOG_WARN);
    assert_null(cfg.access_log);
    assert_null(cfg.config_file);
    assert_int_equal(cfg.check_only, 0);
    cfg_free(&cfg);
    cfg_free(&cfg); /* an emptied cfg may be freed again */

    /* Every section starts from the defaults, whatever came before it. */
    load(&r, "[listen a]\n"
             "tls_min_version = 1.3\n"
             "[listen]\n"
             "[backend b]\n"
             "retries = 9\n"
             "scheduling = fifo\n"
             "[backend]\n"
             "[route r]\n");
    assert_int_equal(r.rv, 0);
    assert_int_equal(r.cfg.nlisteners, 2);
    assert_string_equal(r.cfg.listeners[1].name, "");
    assert_int_equal(r.cfg.listeners[1].line, 3);
    assert_int_equal(r.cfg.listeners[1].has_addr, 0);
    assert_listener_defaults(&r.cfg.listeners[1]);
    assert_int_equal(r.cfg.nbackends, 2);
    assert_string_equal(r.cfg.backends[1].name, "default");
    assert_int_equal(r.cfg.backends[1].line, 7);
    assert_int_equal(r.cfg.backends[1].nservers, 0);
    assert_backend_defaults(&r.cfg.backends[1]);
    assert_int_equal(r.cfg.nroutes, 1);
    assert_string_equal(r.cfg.routes[0].name, "r");
    assert_null(r.cfg.routes[0].host);
    assert_null(r.cfg.routes[0].path_prefix);
    assert_string_equal(r.cfg.routes[0].backend, "");
    run_done(&r);
}

/* ---- flags ---- */

static void test_flags_both_forms(void **state)
{
    static const char *const args[] = {
        /* gateway */
        "--max-concurrent-streams", "2147483647", "--max-header-list-size=1k",
        "--request-buffer-size", "16m", "--response-buffer-size=1g", "--max-connections", "5",
        "--client-idle-timeout=90s", "--tls-handshake-timeout", "2s", "--log-level=DEBUG",
        "--access-log", "-", "--h2-glitch-threshold=0",
        /* listener */
        "--listen", ":8443", "--tls-cert=@CERT@", "--tls-key", "@KEY@", "--tls-ciphers",
        "ECDHE+AESGCM", "--tls-min-version=1.3", "--tls-ticket-key-file", "@KEY@",
        "--tls-client-ca=@CA@", "--verify-client", "optional", "--client-cert-header=x-client-cert",
        "--watch-certificates", "yes", "--proxy-protocol=on",
        /* backend */
        "--backend=[::1]:8080", "--backend-max-connections", "7", "--backend-idle-timeout=250ms",
        "--backend-connect-timeout", "1m", "--backend-response-timeout=2", "--backend-io-timeout",
        "3s", "--backend-retries=0", "--backend-lb", "round-robin", "--backend-resolve-interval=1h",
        "--backend-max-fails", "0", "--backend-eject-time=1s", "--backend-eject-time-max", "2s",
        "--backend-fail-on-5xx=true", "--backend-health-check-path", "/healthz?full=1",
        "--backend-health-check-interval=1s", "--backend-healthy-threshold", "1",
        "--backend-unhealthy-threshold=100", "--backend-health-check-status", "204",
        "--backend-queue-length=0", "--backend-queue-timeout", "100ms",
        "--backend-max-request-body=10m", "--backend-scheduling", "FIFO", "--priority-max-wait=5s",
        "--priority-reserved-connections", "6", "--backend-tls=on", "--backend-tls-sni",
        "app.example.com", "--backend-tls-ca-file=@CA@", "--backend-tls-verify", "off", NULL};
    run_t r;
    const cfg_listener_t *l;
    const cfg_backend_t *b;

    (void)state;
    run_args(&r, args);
    assert_err(&r, "");
    assert_int_equal(r.rv, CFG_RUN);
    assert_string_equal(r.out_buf, "");
    assert_int_equal(r.cfg.max_concurrent_streams, 2147483647);
    assert_int_equal(r.cfg.h2_glitch_threshold, 0);
    assert_int_equal(r.cfg.max_header_list_size, 1024);
    assert_int_equal(r.cfg.request_buffer_size, 16 * 1024 * 1024);
    assert_int_equal(r.cfg.response_buffer_size, 1024 * 1024 * 1024);
    assert_int_equal(r.cfg.max_connections, 5);
    assert_int_equal(r.cfg.client_idle_timeout_ms, 90000);
    assert_int_equal(r.cfg.tls_handshake_timeout_ms, 2000);
    assert_int_equal(r.cfg.log_level, CFG_LOG_DEBUG);
    assert_string_equal(r.cfg.access_log, "-");
    assert_null(r.cfg.config_file);
    assert_int_equal(r.cfg.check_only, 0);

    /* The flag listener is named "" and was made by flags (line 0). */
    assert_int_equal(r.cfg.nlisteners, 1);
    l = &r.cfg.listeners[0];
    assert_string_equal(l->name, "");
    assert_int_equal(l->line, 0);
    assert_int_equal(l->has_addr, 1);
    assert_string_equal(l->addr.host, "0.0.0.0");
    assert_int_equal(l->addr.port, 8443);
    assert_int_equal(l->ncerts, 1);
    assert_string_equal(l->certs[0].cert_file, pem_cert);
    assert_string_equal(l->certs[0].key_file, pem_key);
    assert_int_equal(l->certs[0].cert_line, 0);
    assert_int_equal(l->certs[0].key_line, 0);
    assert_string_equal(l->tls_ciphers, "ECDHE+AESGCM");
    assert_int_equal(l->tls_min_version, CFG_TLS_1_3);
    assert_string_equal(l->tls_ticket_key_file, pem_key);
    assert_string_equal(l->tls_client_ca, pem_ca);
    assert_int_equal(l->verify_client, CFG_VERIFY_OPTIONAL);
    assert_string_equal(l->client_cert_header, "x-client-cert");
    assert_int_equal(l->watch_certificates, 1);
    assert_int_equal(l->proxy_protocol, 1);

    /* The flag backend is "default". */
    assert_int_equal(r.cfg.nbackends, 1);
    assert_int_equal(r.cfg.default_backend, 0);
    b = &r.cfg.backends[0];
    assert_string_equal(b->name, "default");
    assert_int_equal(b->line, 0);
    assert_int_equal(b->nservers, 1);
    assert_string_equal(b->servers[0].addr.host, "::1");
    assert_int_equal(b->servers[0].addr.port, 8080);
    assert_int_equal(b->servers[0].weight, 1);
    assert_int_equal(b->max_connections, 7);
    assert_int_equal(b->idle_timeout_ms, 250);
    assert_int_equal(b->connect_timeout_ms, 60000);
    assert_int_equal(b->response_timeout_ms, 2000);
    assert_int_equal(b->io_timeout_ms, 3000);
    assert_int_equal(b->retries, 0);
    assert_int_equal(b->lb, CFG_LB_ROUND_ROBIN);
    assert_int_equal(b->resolve_interval_ms, 3600000);
    assert_int_equal(b->max_fails, 0);
    assert_int_equal(b->eject_time_ms, 1000);
    assert_int_equal(b->eject_time_max_ms, 2000);
    assert_int_equal(b->fail_on_5xx, 1);
    assert_string_equal(b->health_check_path, "/healthz?full=1");
    assert_int_equal(b->health_check_interval_ms, 1000);
    assert_int_equal(b->healthy_threshold, 1);
    assert_int_equal(b->unhealthy_threshold, 100);
    assert_int_equal(b->health_check_status_min, 204);
    assert_int_equal(b->health_check_status_max, 204);
    assert_int_equal(b->queue_length, 0);
    assert_int_equal(b->queue_timeout_ms, 100);
    assert_int_equal(b->max_request_body, 10 * 1024 * 1024);
    assert_int_equal(b->scheduling, CFG_SCHED_FIFO);
    assert_int_equal(b->priority_max_wait_ms, 5000);
    assert_int_equal(b->priority_reserved_connections, 6);
    assert_int_equal(b->tls, 1);
    assert_string_equal(b->tls_sni, "app.example.com");
    assert_string_equal(b->tls_ca_file, pem_ca);
    assert_int_equal(b->tls_verify, 0);
    assert_int_equal(r.cfg.nroutes, 0);
    run_done(&r);
}

static void test_flags_repeated(void **state)
{
    /* A scalar's last value wins; --backend adds servers; a string is
     * replaced (and the old one freed: ASan would see a leak). */
    static const char *const args[] = {"--backend",
                                       "a:1",
                                       "--listen",
                                       ":1",
                                       "--backend=b:2 weight=5",
                                       "--max-connections=3",
                                       "--access-log",
                                       "/var/log/a",
                                       "--backend",
                                       "c:3",
                                       "--max-connections=4",
                                       "--access-log=/var/log/b",
                                       NULL};
    run_t r;
    const cfg_backend_t *b;

    (void)state;
    run_args(&r, args);
    assert_err(&r, "");
    assert_int_equal(r.rv, CFG_RUN);
    assert_int_equal(r.cfg.max_connections, 4);
    assert_string_equal(r.cfg.access_log, "/var/log/b");
    assert_int_equal(r.cfg.nbackends, 1);
    b = &r.cfg.backends[0];
    assert_int_equal(b->nservers, 3);
    assert_string_equal(b->servers[0].addr.host, "a");
    assert_int_equal(b->servers[0].weight, 1);
    assert_string_equal(b->servers[1].addr.host, "b");
    assert_int_equal(b->servers[1].weight, 5);
    assert_string_equal(b->servers[2].addr.host, "c");
    assert_int_equal(b->servers[2].addr.port, 3);
    run_done(&r);
}

static void test_flags_listen_twice(void **state)
{
    static const char *const twice[] = {"--listen", ":1", "--backend", "b:2", "--listen=:3", NULL};
    static const char *const thrice[] = {"--listen", ":1",       "--listen", ":2", "--backend",
                                         "b:2",      "--listen", ":3",       NULL};
    run_t r;

    (void)state;
    run_args(&r, twice);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: --listen given twice; use a config file for several listeners\n");
    run_done(&r);

    /* Said once, however many there are. */
    run_args(&r, thrice);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: --listen given twice; use a config file for several listeners\n");
    run_done(&r);
}

static void test_flags_tls_pairing(void **state)
{
    static const char *const two[] = {"--listen",   ":443",   "--backend",      "b:2",
                                      "--tls-cert", "@CERT@", "--tls-cert",     "@CA@",
                                      "--tls-key",  "@KEY@",  "--tls-key=@CA@", NULL};
    static const char *const key_first[] = {
        "--listen", ":443",      "--backend", "b:2",       "--tls-key", "@KEY@", "--tls-cert",
        "@CERT@",   "--tls-key", "@KEY@",     "--tls-key", "@KEY@",     NULL};
    static const char *const no_key[] = {"--listen",   ":443",   "--backend", "b:2",
                                         "--tls-cert", "@CERT@", "--tls-key", "@KEY@",
                                         "--tls-cert", "@CA@",   NULL};
    /* Certificates without --listen make the flag listener, address-less. */
    static const char *const no_listen[] = {"--backend", "b:2",   "--tls-cert", "@CERT@",
                                            "--tls-key", "@KEY@", NULL};
    run_t r;
    const cfg_listener_t *l;

    (void)state;
    /* The n-th key pairs with the n-th certificate. */
    run_args(&r, two);
    assert_err(&r, "");
    assert_int_equal(r.rv, CFG_RUN);
    l = &r.cfg.listeners[0];
    assert_int_equal(l->ncerts, 2);
    assert_string_equal(l->certs[0].cert_file, pem_cert);
    assert_string_equal(l->certs[0].key_file, pem_key);
    assert_string_equal(l->certs[1].cert_file, pem_ca);
    assert_string_equal(l->certs[1].key_file, pem_ca);
    run_done(&r);

    run_args(&r, key_first);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: --tls-key without --tls-cert\n"
                   "h2gw: --tls-key without --tls-cert\n");
    run_done(&r);

    run_args(&r, no_key);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: --tls-cert '@CA@' has no --tls-key\n");
    run_done(&r);

    run_args(&r, no_listen);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: listener options given without --listen\n");
    assert_int_equal(r.cfg.nlisteners, 1);
    run_done(&r);
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
         "h2gw: --backend: invalid server 'xyz' (expected HOST:PORT or HOST:PORT weight=N; port "
         "1..65535, weight 1..1000)\n"},
        {{"--listen", ":1", "--backend", "b:0", NULL},
         "h2gw: --backend: invalid server 'b:0' (expected HOST:PORT or HOST:PORT weight=N; port "
         "1..65535, weight 1..1000)\n"},
        {{"--listen", ":1", "--backend", "b:2 weight=0", NULL},
         "h2gw: --backend: invalid server 'b:2 weight=0' (expected HOST:PORT or HOST:PORT "
         "weight=N; port 1..65535, weight 1..1000)\n"},
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
        {{"--listen", ":1", "--backend", "b:2", "--backend-max-request-body=lots", NULL},
         "h2gw: --backend-max-request-body: invalid size 'lots' (expected e.g. 512, 64k, 16m, "
         "1g)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--max-concurrent-streams=2147483648", NULL},
         "h2gw: --max-concurrent-streams: '2147483648' is out of range (1..2147483647)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-retries=11", NULL},
         "h2gw: --backend-retries: '11' is out of range (0..10)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-max-fails=1001", NULL},
         "h2gw: --backend-max-fails: '1001' is out of range (0..1000)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-healthy-threshold=0", NULL},
         "h2gw: --backend-healthy-threshold: '0' is out of range (1..100)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-queue-length=10000001", NULL},
         "h2gw: --backend-queue-length: '10000001' is out of range (0..10000000)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--log-level", "loud", NULL},
         "h2gw: --log-level: invalid log level 'loud' (expected error, warn, info or debug)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-lb=random", NULL},
         "h2gw: --backend-lb: invalid load balancing 'random' (expected least-outstanding or "
         "round-robin)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--tls-min-version=1.1", NULL},
         "h2gw: --tls-min-version: invalid TLS version '1.1' (expected 1.2 or 1.3)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--verify-client=yes", NULL},
         "h2gw: --verify-client: invalid client verification 'yes' (expected off, optional or "
         "require)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--proxy-protocol=maybe", NULL},
         "h2gw: --proxy-protocol: invalid boolean 'maybe' (expected on/off, yes/no, true/false, "
         "1/0)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-status=2xx", NULL},
         "h2gw: --backend-health-check-status: invalid status range '2xx' (expected e.g. 200-399 "
         "or 204)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-status=399-200", NULL},
         "h2gw: --backend-health-check-status: invalid status range '399-200' (expected e.g. "
         "200-399 or 204)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-status=99-399", NULL},
         "h2gw: --backend-health-check-status: '99-399' is out of range (100..599)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-status=200-600", NULL},
         "h2gw: --backend-health-check-status: '200-600' is out of range (100..599)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-path=healthz", NULL},
         "h2gw: --backend-health-check-path: invalid path 'healthz' (must start with / and have "
         "no spaces)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--backend-health-check-path=/a b", NULL},
         "h2gw: --backend-health-check-path: invalid path '/a b' (must start with / and have no "
         "spaces)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--client-cert-header=X-Cert", NULL},
         "h2gw: --client-cert-header: invalid header name 'X-Cert' (expected a lowercase token, "
         "e.g. x-client-cert)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--client-cert-header=x cert", NULL},
         "h2gw: --client-cert-header: invalid header name 'x cert' (expected a lowercase token, "
         "e.g. x-client-cert)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--access-log=", NULL},
         "h2gw: --access-log: empty value\n"},
        {{"--listen", ":1", "--backend", "b:2", "--tls-cert=", NULL},
         "h2gw: --tls-cert: empty value\n"},
        {{"--listen", ":1", "--backend", "b:2", "--check=yes", NULL},
         "h2gw: option '--check' takes no value\n"},
        {{"--listen", ":1", "--backend", "b:2", "--config=", NULL},
         "h2gw: --config: empty value\n"},
        {{"--backend", "b:2", NULL},
         "h2gw: no listener (give --listen HOST:PORT or a [listen NAME] section)\n"},
        {{"--listen", ":1", NULL},
         "h2gw: no backend (give --backend HOST:PORT or a [backend NAME] section)\n"},
        {{NULL},
         "h2gw: no listener (give --listen HOST:PORT or a [listen NAME] section)\n"
         "h2gw: no backend (give --backend HOST:PORT or a [backend NAME] section)\n"},
        {{"--listen", ":1", "--backend", "b:2", "-", NULL},
         "h2gw: unexpected argument '-' (options start with --)\n"},
        {{"--listen", ":1", "--backend", "b:2", "--", NULL},
         "h2gw: unexpected argument '--' (options start with --)\n"},
        /* Route keys have no flags. */
        {{"--listen", ":1", "--backend", "b:2", "--host=x", NULL},
         "h2gw: unknown option '--host'\n"},
        /* Every error is reported, not just the first. */
        {{"--listen", "nope", "--backend", "nope", "--max-connections=0", NULL},
         "h2gw: --listen: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n"
         "h2gw: --backend: invalid server 'nope' (expected HOST:PORT or HOST:PORT weight=N; port "
         "1..65535, weight 1..1000)\n"
         "h2gw: --max-connections: '0' is out of range (1..10000000)\n"},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        run_t r;

        run_args(&r, cases[i].args);
        if (r.rv != CFG_EXIT_USAGE || strcmp(r.err_buf, cases[i].err) != 0) {
            print_error("case %zu: rv %d\n got [%s]\nwant [%s]\n", i, r.rv, r.err_buf,
                        cases[i].err);
            fail();
        }
        assert_string_equal(r.out_buf, "");
        run_done(&r);
    }
}

static void test_help_version_check(void **state)
{
    static const char *const help[] = {"--listen", "bad", "--help", NULL};
    static const char *const short_help[] = {"-h", NULL};
    static const char *const version[] = {"--version", NULL};
    static const char *const check[] = {"--check", "--listen", ":1", "--backend", "b:2", NULL};
    static const char *const check_bad[] = {"--check", "--listen", ":1", NULL};
    /* Lines the help must have, generated from the table. */
    static const char *const want[] = {
        "usage: h2gw",
        "\ngateway options:\n  --workers N\n",
        "\n  --max-concurrent-streams N\n",
        "\n      config file: [gateway] max_concurrent_streams\n",
        "\n  --response-buffer-size SIZE\n",
        "(default 256k)",
        "\n  --log-level error|warn|info|debug\n",
        "\n  --access-log FILE\n",
        "\n  --config FILE\n      INI file to read first; flags override it\n",
        "\n  --check\n",
        "\n  --version\n",
        "\nlistener options (flags apply to --listen):\n  --listen HOST:PORT\n",
        "\n      config file: [listen NAME] address\n",
        "\n  --tls-cert FILE\n",
        "\n  --tls-min-version 1.2|1.3\n",
        "\n  --verify-client off|optional|require\n",
        "\n  --watch-certificates on|off\n",
        "\nbackend options (flags apply to the backend named default):\n  --backend HOST:PORT\n",
        "\n      config file: [backend NAME] server\n",
        "\n  --backend-max-connections N\n",
        "(default 100)",
        "\n      config file: [backend NAME] max_connections\n",
        "\n  --backend-lb least-outstanding|round-robin\n",
        "\n  --backend-scheduling priority|fifo\n",
        "\n  --backend-health-check-status RANGE\n",
        "(default 200-399)",
        "\n  --backend-max-request-body SIZE\n",
        "\n  --backend-tls-verify on|off\n",
        "\nroute keys (file only):\n  host HOST\n",
        "\n      config file: [route NAME] host\n",
        "\n  path_prefix PREFIX\n",
        "\n  backend NAME\n",
    };
    run_t r;

    (void)state;
    run_args(&r, help);
    assert_int_equal(r.rv, CFG_EXIT_OK);
    for (size_t i = 0; i < COUNT(want); i++) {
        if (strstr(r.out_buf, want[i]) == NULL) {
            print_error("help lacks [%s]\n", want[i]);
            fail();
        }
    }
    /* Groups come in order. */
    assert_true(strstr(r.out_buf, "gateway options:") < strstr(r.out_buf, "listener options"));
    assert_true(strstr(r.out_buf, "listener options") < strstr(r.out_buf, "backend options"));
    assert_true(strstr(r.out_buf, "backend options") < strstr(r.out_buf, "route keys"));
    assert_err(&r, "");
    run_done(&r);

    run_args(&r, short_help);
    assert_int_equal(r.rv, CFG_EXIT_OK);
    assert_non_null(strstr(r.out_buf, "usage: h2gw"));
    run_done(&r);

    run_args(&r, version);
    assert_int_equal(r.rv, CFG_EXIT_OK);
    assert_string_equal(r.out_buf, "h2gw " H2GW_VERSION "\n");
    run_done(&r);

    /* The gateway checks certificates, then says OK. */
    run_args(&r, check);
    assert_int_equal(r.rv, CFG_CHECK);
    assert_string_equal(r.out_buf, "");
    assert_err(&r, "");
    assert_int_equal(r.cfg.check_only, 1);
    run_done(&r);

    run_args(&r, check_bad);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_string_equal(r.out_buf, "");
    assert_err(&r, "h2gw: no backend (give --backend HOST:PORT or a [backend NAME] section)\n");
    run_done(&r);
}

/* ---- file ---- */

static void test_file_ok(void **state)
{
    static const char text[] = "; h2gw example\n"                        /* 1 */
                               "# both comment styles\n"                 /* 2 */
                               "[gateway]\n"                             /* 3 */
                               "max_concurrent_streams = 250\n"          /* 4 */
                               "max_header_list_size = 32k ; inline\n"   /* 5 */
                               "request_buffer_size=128k\n"              /* 6 */
                               "response_buffer_size = 1m\n"             /* 7 */
                               "stream_read_timeout = 20s\n"             /* 8 */
                               "log_level = info\n"                      /* 9 */
                               "access_log = /var/log/h2gw.log\n"        /* 10 */
                               "client_idle_timeout = 5m\n"              /* 11 */
                               "\n"                                      /* 12 */
                               "[listen public]\n"                       /* 13 */
                               "    address = [::]:8443\n"               /* 14 */
                               "tls_cert = @CERT@\n"                     /* 15 */
                               "tls_cert = @CA@\n"                       /* 16 */
                               "tls_key = @KEY@\n"                       /* 17 */
                               "tls_key = @CA@\n"                        /* 18 */
                               "verify_client = require\n"               /* 19 */
                               "tls_client_ca = @CA@\n"                  /* 20 */
                               "client_cert_header = x-client-subject\n" /* 21 */
                               "[listen admin]\n"                        /* 22 */
                               "address = 127.0.0.1:9000\n"              /* 23 */
                               "proxy_protocol = on\n"                   /* 24 */
                               "[backend]\n"                             /* 25 */
                               "\tserver = app.internal:8080\n"          /* 26 */
                               "server = app2.internal:8080 weight=3\n"  /* 27 */
                               "max_connections = 32\n"                  /* 28 */
                               "response_timeout = 3m\n"                 /* 29 */
                               "io_timeout = 2m\n"                       /* 30 */
                               "health_check_status = 200-299\n"         /* 31 */
                               "[backend api]\n"                         /* 32 */
                               "server = api:80\n"                       /* 33 */
                               "LB = round-robin\n"                      /* 34 */
                               "[route api]\n"                           /* 35 */
                               "host = *.API.example.com\n"              /* 36 */
                               "path_prefix = /v1/\n"                    /* 37 */
                               "backend = api\n"                         /* 38 */
                               "[route rest]\n"                          /* 39 */
                               "backend = default\n"                     /* 40 */
                               "[gateway]\n"                             /* 41 */
                               "Max_Connections = 30000\n";              /* 42: [gateway] again */
    run_t r;
    const cfg_listener_t *l;
    const cfg_backend_t *b;

    (void)state;
    load(&r, text);
    assert_err(&r, "");
    assert_int_equal(r.rv, 0);
    assert_string_equal(r.cfg.config_file, r.conf);
    assert_int_equal(r.cfg.max_concurrent_streams, 250);
    assert_int_equal(r.cfg.max_header_list_size, 32 * 1024);
    assert_int_equal(r.cfg.request_buffer_size, 128 * 1024);
    assert_int_equal(r.cfg.response_buffer_size, 1024 * 1024);
    assert_int_equal(r.cfg.max_connections, 30000);
    assert_int_equal(r.cfg.log_level, CFG_LOG_INFO);
    assert_string_equal(r.cfg.access_log, "/var/log/h2gw.log");
    assert_int_equal(r.cfg.client_idle_timeout_ms, 300000);

    assert_int_equal(r.cfg.nlisteners, 2);
    l = &r.cfg.listeners[0];
    assert_string_equal(l->name, "public");
    assert_int_equal(l->line, 13);
    assert_string_equal(l->addr.host, "::");
    assert_int_equal(l->addr.port, 8443);
    assert_int_equal(l->ncerts, 2);
    assert_string_equal(l->certs[0].cert_file, pem_cert);
    assert_string_equal(l->certs[0].key_file, pem_key);
    assert_int_equal(l->certs[0].cert_line, 15);
    assert_int_equal(l->certs[0].key_line, 17);
    assert_string_equal(l->certs[1].cert_file, pem_ca);
    assert_string_equal(l->certs[1].key_file, pem_ca);
    assert_int_equal(l->certs[1].cert_line, 16);
    assert_int_equal(l->certs[1].key_line, 18);
    assert_int_equal(l->verify_client, CFG_VERIFY_REQUIRE);
    assert_string_equal(l->tls_client_ca, pem_ca);
    assert_string_equal(l->client_cert_header, "x-client-subject");
    assert_int_equal(l->proxy_protocol, 0);
    l = &r.cfg.listeners[1];
    assert_string_equal(l->name, "admin");
    assert_int_equal(l->line, 22);
    assert_string_equal(l->addr.host, "127.0.0.1");
    assert_int_equal(l->proxy_protocol, 1);
    assert_int_equal(l->ncerts, 0);
    assert_int_equal(l->verify_client, CFG_VERIFY_OFF); /* not [listen public]'s */

    assert_int_equal(r.cfg.nbackends, 2);
    b = &r.cfg.backends[0];
    assert_string_equal(b->name, "default");
    assert_int_equal(b->line, 25);
    assert_int_equal(b->nservers, 2);
    assert_string_equal(b->servers[0].addr.host, "app.internal");
    assert_int_equal(b->servers[0].weight, 1);
    assert_string_equal(b->servers[1].addr.host, "app2.internal");
    assert_int_equal(b->servers[1].weight, 3);
    assert_int_equal(b->max_connections, 32);
    assert_int_equal(b->response_timeout_ms, 180000);
    assert_int_equal(b->io_timeout_ms, 120000);
    assert_int_equal(b->health_check_status_min, 200);
    assert_int_equal(b->health_check_status_max, 299);
    assert_int_equal(b->lb, CFG_LB_LEAST_OUTSTANDING);
    b = &r.cfg.backends[1];
    assert_string_equal(b->name, "api");
    assert_int_equal(b->lb, CFG_LB_ROUND_ROBIN);
    assert_int_equal(b->max_connections, 100);

    assert_int_equal(r.cfg.nroutes, 2);
    assert_string_equal(r.cfg.routes[0].name, "api");
    assert_int_equal(r.cfg.routes[0].line, 35);
    assert_string_equal(r.cfg.routes[0].host, "*.api.example.com"); /* lowercased */
    assert_string_equal(r.cfg.routes[0].path_prefix, "/v1/");
    assert_string_equal(r.cfg.routes[0].backend, "api");
    assert_string_equal(r.cfg.routes[1].name, "rest");
    assert_null(r.cfg.routes[1].host);

    /* Validation resolves the routes and the default backend. */
    {
        FILE *err = tmpfile();
        assert_int_equal(cfg_validate(&r.cfg, err), 0);
        fclose(err);
    }
    assert_int_equal(r.cfg.routes[0].backend_index, 1);
    assert_int_equal(r.cfg.routes[1].backend_index, 0);
    assert_int_equal(r.cfg.default_backend, 0);
    run_done(&r);
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
                               "server = a:1\n"                 /* 11: a backend key */
                               "[backend\n"                     /* 12 */
                               "[backend a]\n"                  /* 13 */
                               "server = b\n"                   /* 14 */
                               "server = b:80 weight=x\n"       /* 15 */
                               "address = :1\n"                 /* 16 */
                               "health_check_path = healthz\n"  /* 17 */
                               "tls_cert = /x.pem\n"            /* 18: a listener key */
                               "[route r]\n"                    /* 19 */
                               "host = a.example.com:443\n"     /* 20 */
                               "host = \n"                      /* 21 */
                               "path_prefix = api\n"            /* 22 */
                               "backend = a b\n"                /* 23 */
                               "max_connections = 1\n"          /* 24 */
                               "[gateway]\n"                    /* 25 */
                               "request_buffer_size = 1g\n"     /* 26 */
                               "access_log =\n";                /* 27 */
    run_t r;
    char want[4096];

    (void)state;
    load(&r, text);
    snprintf(want, sizeof(want),
             "@FILE@:1: 'address' is outside of any section\n"
             "@FILE@:3: max_connections: '0' is out of range (1..10000000)\n"
             "@FILE@:4: unknown key 'bogus' in [gateway]\n"
             "@FILE@:5: log_level: invalid log level 'loud' (expected error, warn, info or debug)\n"
             "@FILE@:6: unknown section [nope]\n"
             "@FILE@:9: address: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n"
             "@FILE@:10: expected 'key = value' or '[section]'\n"
             "@FILE@:11: unknown key 'server' in [listen]\n"
             "@FILE@:12: unterminated section header (missing ']')\n"
             "@FILE@:14: server: invalid server 'b' (expected HOST:PORT or HOST:PORT weight=N; "
             "port 1..65535, weight 1..1000)\n"
             "@FILE@:15: server: invalid server 'b:80 weight=x' (expected HOST:PORT or HOST:PORT "
             "weight=N; port 1..65535, weight 1..1000)\n"
             "@FILE@:16: unknown key 'address' in [backend]\n"
             "@FILE@:17: health_check_path: invalid path 'healthz' (must start with / and have no "
             "spaces)\n"
             "@FILE@:18: unknown key 'tls_cert' in [backend]\n"
             "@FILE@:20: host: invalid host 'a.example.com:443' (hosts are compared without a "
             "port)\n"
             "@FILE@:21: host: empty value\n"
             "@FILE@:22: path_prefix: invalid path 'api' (must start with / and have no spaces)\n"
             "@FILE@:23: backend: invalid name 'a b' (letters, digits, '.', '-' or '_', at most "
             "63)\n"
             "@FILE@:24: unknown key 'max_connections' in [route]\n"
             "@FILE@:26: request_buffer_size: '1g' is out of range (16k..16m)\n"
             "@FILE@:27: access_log: empty value\n");
    assert_err(&r, want);
    assert_int_equal(r.rv, count_lines(want));
    /* Good lines still applied; bad ones left the defaults. */
    assert_int_equal(r.cfg.nbackends, 1);
    assert_int_equal(r.cfg.backends[0].nservers, 0);
    assert_null(r.cfg.backends[0].health_check_path);
    assert_int_equal(r.cfg.max_connections, 10000);
    assert_int_equal(r.cfg.request_buffer_size, 64 * 1024);
    assert_int_equal(r.cfg.nlisteners, 1);
    assert_int_equal(r.cfg.listeners[0].has_addr, 0);
    assert_null(r.cfg.routes[0].host);
    run_done(&r);
}

static void test_file_sections(void **state)
{
    static const char text[] = "\xef\xbb\xbf; starts with a UTF-8 BOM\n" /* 1 */
                               "[ gateway ]\n"                           /* 2 */
                               "log_level = error\n"                     /* 3 */
                               "[listen  public ]\n"                     /* 4 */
                               "address = :81\n"                         /* 5 */
                               "[listen public]\n"                       /* 6: same name */
                               "address = :82\n"                         /* 7: not applied */
                               "[backend]\n"                             /* 8: "default" */
                               "server = a:1\n"                          /* 9 */
                               "[backend default]\n"                     /* 10: the same */
                               "server = b:2\n"                          /* 11 */
                               "[gateway extra]\n"                       /* 12 */
                               "max_connections = 3\n"                   /* 13 */
                               "[listener]\n"                            /* 14 */
                               "[]\n"                                    /* 15 */
                               "[listen a b]\n"                          /* 16 */
                               "[listen a/b]\n"                          /* 17 */
                               "[route]\n"                               /* 18 */
                               "backend = x\n"                           /* 19 */
                               "[route r1]\n"                            /* 20 */
                               "[route r1]\n"                            /* 21 */
                               "[listen]\n"                              /* 22 */
                               "[listen]\n"                              /* 23 */
                               "[Listen x]\n"                            /* 24 */
                               "[backend "
                               "a234567890123456789012345678901234567890123456789012345678901234]"
                               "\n"                       /* 25: 64 characters */
                               "[backend other] ; note\n" /* 26 */
                               "server = c:3\n";          /* 27 */
    run_t r;

    (void)state;
    load(&r, text);
    assert_err(&r, "@FILE@:6: duplicate listener 'public' (first at line 4)\n"
                   "@FILE@:10: duplicate backend 'default' (first at line 8)\n"
                   "@FILE@:12: section [gateway] takes no name\n"
                   "@FILE@:14: unknown section [listener]\n"
                   "@FILE@:15: unknown section []\n"
                   "@FILE@:16: invalid name 'a b' in [listen a b] (letters, digits, '.', '-' or "
                   "'_', at most 63)\n"
                   "@FILE@:17: invalid name 'a/b' in [listen a/b] (letters, digits, '.', '-' or "
                   "'_', at most 63)\n"
                   "@FILE@:18: [route] needs a name, e.g. [route api]\n"
                   "@FILE@:21: duplicate route 'r1' (first at line 20)\n"
                   "@FILE@:23: duplicate listener '' (first at line 22)\n"
                   "@FILE@:24: unknown section [Listen x]\n"
                   "@FILE@:25: invalid name "
                   "'a234567890123456789012345678901234567890123456789012345678901234' in [backend "
                   "a234567890123456789012345678901234567890123456789012345678901234] (letters, "
                   "digits, '.', '-' or '_', at most 63)\n");
    assert_int_equal(r.rv, 12);
    assert_int_equal(r.cfg.log_level, CFG_LOG_ERROR);
    assert_int_equal(r.cfg.max_connections, 10000);
    assert_int_equal(r.cfg.nlisteners, 2);
    assert_string_equal(r.cfg.listeners[0].name, "public");
    assert_int_equal(r.cfg.listeners[0].addr.port, 81);
    assert_string_equal(r.cfg.listeners[1].name, "");
    assert_int_equal(r.cfg.listeners[1].line, 22);
    assert_int_equal(r.cfg.nbackends, 2);
    assert_string_equal(r.cfg.backends[0].name, "default");
    assert_int_equal(r.cfg.backends[0].nservers, 1);
    assert_string_equal(r.cfg.backends[0].servers[0].addr.host, "a");
    assert_string_equal(r.cfg.backends[1].name, "other");
    assert_int_equal(r.cfg.backends[1].line, 26);
    assert_int_equal(r.cfg.backends[1].nservers, 1);
    assert_int_equal(r.cfg.nroutes, 1);
    run_done(&r);
}

static void test_file_certs(void **state)
{
    static const char text[] = "[listen a]\n"        /* 1 */
                               "tls_key = @KEY@\n"   /* 2: no certificate yet */
                               "tls_cert = @CERT@\n" /* 3 */
                               "tls_key = @KEY@\n"   /* 4 */
                               "tls_key = @KEY@\n"   /* 5: its certificate has one */
                               "tls_cert = @CA@\n"   /* 6 */
                               "[listen b]\n"        /* 7 */
                               "tls_key = @KEY@\n"   /* 8: [listen a]'s cert is not b's */
                               "tls_cert = \n";      /* 9 */
    run_t r;

    (void)state;
    load(&r, text);
    assert_err(&r, "@FILE@:2: tls_key without tls_cert\n"
                   "@FILE@:5: tls_key without tls_cert\n"
                   "@FILE@:8: tls_key without tls_cert\n"
                   "@FILE@:9: tls_cert: empty value\n");
    assert_int_equal(r.rv, 4);
    assert_int_equal(r.cfg.listeners[0].ncerts, 2);
    assert_string_equal(r.cfg.listeners[0].certs[0].key_file, pem_key);
    assert_null(r.cfg.listeners[0].certs[1].key_file);
    assert_int_equal(r.cfg.listeners[1].ncerts, 0);
    run_done(&r);
}

/* A key that takes one value may not repeat in its section ([gateway] and
 * [admin] count as one section however often they open); lists may. */
static void test_file_repeated_keys(void **state)
{
    static const char text[] = "[gateway]\n"             /* 1 */
                               "workers = 2\n"           /* 2 */
                               "[listen a]\n"            /* 3 */
                               "address = 127.0.0.1:1\n" /* 4 */
                               "address = 127.0.0.1:2\n" /* 5: twice */
                               "[gateway]\n"             /* 6 */
                               "Workers = 3\n"           /* 7: twice, across sections */
                               "[backend x]\n"           /* 8 */
                               "server = a:1\n"          /* 9 */
                               "server = b:2\n"          /* 10: a list */
                               "retries = 1\n"           /* 11 */
                               "[backend y]\n"           /* 12 */
                               "server = c:3\n"          /* 13 */
                               "retries = 2\n"           /* 14: another backend */
                               "retries = 3\n";          /* 15: twice */
    run_t r;

    (void)state;
    load(&r, text);
    assert_err(&r, "@FILE@:5: 'address' given twice in [listen] (first at line 4); it takes one "
                   "value\n"
                   "@FILE@:7: 'workers' given twice in [gateway] (first at line 2); it takes one "
                   "value\n"
                   "@FILE@:15: 'retries' given twice in [backend] (first at line 14); it takes "
                   "one value\n");
    assert_int_equal(r.rv, 3);
    assert_int_equal(r.cfg.workers, 2);
    assert_int_equal(r.cfg.listeners[0].addr.port, 1);
    assert_int_equal(r.cfg.backends[0].nservers, 2);
    assert_int_equal(r.cfg.backends[1].retries, 2);
    run_done(&r);
}

static void test_file_long_line(void **state)
{
    char text[1024];
    run_t r;
    int n;

    (void)state;
    n = snprintf(text, sizeof(text), "[gateway]\nlog_level = %0400d\nmax_connections = 7\n", 0);
    assert_true(n > 0);
    load(&r, text);
    assert_int_equal(r.rv, 1);
    assert_err(&r, "@FILE@:2: line too long (at most 197 characters)\n");
    assert_int_equal(r.cfg.max_connections, 7); /* the next line is still line 3, and read */
    run_done(&r);
}

static void test_file_missing(void **state)
{
    static const char *const args[] = {"--config", "/nonexistent/h2gw.ini", "--listen", "nope",
                                       NULL};
    cfg_t cfg;
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);
    run_t r;

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_file(&cfg, "/nonexistent/h2gw.ini", err), 1);
    fclose(err);
    assert_string_equal(buf, "/nonexistent/h2gw.ini: cannot open: No such file or directory\n");
    cfg_free(&cfg);
    free(buf);

    /* File errors and flag errors are all reported. */
    run_args(&r, args);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "/nonexistent/h2gw.ini: cannot open: No such file or directory\n"
                   "h2gw: --listen: invalid address 'nope' (expected HOST:PORT or [IPv6]:PORT)\n");
    run_done(&r);
}

/* The example configuration in the repository parses cleanly (its
 * certificates are made by `make run`, so it is not validated here). */
static void test_file_example(void **state)
{
    cfg_t cfg;
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);

    (void)state;
    cfg_defaults(&cfg);
    assert_int_equal(cfg_load_file(&cfg, "config/h2gw.conf", err), 0);
    fclose(err);
    assert_string_equal(buf, "");
    assert_int_equal(cfg.log_level, CFG_LOG_INFO);
    assert_int_equal(cfg.nlisteners, 2);
    assert_string_equal(cfg.listeners[0].name, "tls");
    assert_string_equal(cfg.listeners[0].addr.host, "127.0.0.1");
    assert_int_equal(cfg.listeners[0].addr.port, 8443);
    assert_int_equal(cfg.listeners[0].ncerts, 1);
    assert_string_equal(cfg.listeners[0].certs[0].cert_file, "build/tls/server.crt");
    assert_string_equal(cfg.listeners[0].certs[0].key_file, "build/tls/server.key");
    assert_string_equal(cfg.listeners[1].name, "cleartext");
    assert_int_equal(cfg.listeners[1].addr.port, 8080);
    assert_int_equal(cfg.listeners[1].ncerts, 0);
    assert_int_equal(cfg.nbackends, 1);
    assert_string_equal(cfg.backends[0].name, "default");
    assert_int_equal(cfg.backends[0].nservers, 1);
    assert_string_equal(cfg.backends[0].servers[0].addr.host, "127.0.0.1");
    assert_int_equal(cfg.backends[0].servers[0].addr.port, 8081);
    assert_backend_defaults(&cfg.backends[0]);
    assert_listener_defaults(&cfg.listeners[1]);
    assert_int_equal(cfg.nroutes, 0);
    cfg_free(&cfg);
    free(buf);
}

/* ---- flags over the file ---- */

static void test_flags_override_file(void **state)
{
    static const char text[] = "[listen]\n"               /* 1 */
                               "address = :8080\n"        /* 2 */
                               "tls_cert = /file/a.pem\n" /* 3 */
                               "tls_key = /file/a.key\n"  /* 4 */
                               "tls_ciphers = HIGH\n"     /* 5 */
                               "[listen other]\n"         /* 6 */
                               "address = :8081\n"        /* 7 */
                               "[backend]\n"              /* 8 */
                               "server = app:80\n"        /* 9 */
                               "server = app2:80\n"       /* 10 */
                               "max_connections = 7\n"    /* 11 */
                               "retries = 3\n"            /* 12 */
                               "[backend other]\n"        /* 13 */
                               "server = other:80\n"      /* 14 */
                               "[gateway]\n"              /* 15 */
                               "log_level = debug\n"      /* 16 */
                               "max_connections = 50\n";  /* 17 */
    /* A flag before --config still wins over the file. */
    static const char *const args[] = {"--backend-max-connections",
                                       "5",
                                       "--backend",
                                       "flag1:81",
                                       "--listen=:9090",
                                       "--tls-cert",
                                       "@CERT@",
                                       "--tls-key",
                                       "@KEY@",
                                       "--log-level=error",
                                       "--backend",
                                       "flag2:82 weight=2",
                                       NULL};
    run_t r;
    const cfg_listener_t *l;
    const cfg_backend_t *b;

    (void)state;
    run_args_conf(&r, text, args);
    assert_err(&r, "");
    assert_int_equal(r.rv, CFG_RUN);
    assert_string_equal(r.cfg.config_file, r.conf);
    assert_int_equal(r.cfg.log_level, CFG_LOG_ERROR);
    assert_int_equal(r.cfg.max_connections, 50);

    /* Bare [listen] is the flag listener: --listen replaced its address,
     * the certificate flags its certificates; the rest stays. */
    assert_int_equal(r.cfg.nlisteners, 2);
    l = &r.cfg.listeners[0];
    assert_string_equal(l->name, "");
    assert_int_equal(l->line, 1);
    assert_int_equal(l->addr.port, 9090);
    assert_int_equal(l->ncerts, 1);
    assert_string_equal(l->certs[0].cert_file, pem_cert);
    assert_string_equal(l->certs[0].key_file, pem_key);
    assert_string_equal(l->tls_ciphers, "HIGH");
    assert_int_equal(r.cfg.listeners[1].addr.port, 8081);

    /* The --backend list replaced the file's servers of "default"; other
     * backends are untouched. */
    assert_int_equal(r.cfg.nbackends, 2);
    b = &r.cfg.backends[0];
    assert_string_equal(b->name, "default");
    assert_int_equal(b->line, 8);
    assert_int_equal(b->nservers, 2);
    assert_string_equal(b->servers[0].addr.host, "flag1");
    assert_string_equal(b->servers[1].addr.host, "flag2");
    assert_int_equal(b->servers[1].weight, 2);
    assert_int_equal(b->max_connections, 5);
    assert_int_equal(b->retries, 3); /* from the file */
    b = &r.cfg.backends[1];
    assert_int_equal(b->nservers, 1);
    assert_int_equal(b->max_connections, 100);
    run_done(&r);
}

static void test_flags_add_to_named_file(void **state)
{
    /* The file names its listener and backend; flags make the "" listener
     * and the "default" backend beside them. */
    static const char text[] = "[listen public]\n"  /* 1 */
                               "address = :80\n"    /* 2 */
                               "[backend api]\n"    /* 3 */
                               "server = api:80\n"; /* 4 */
    static const char *const args[] = {"--listen", ":81", "--backend", "web:80", NULL};
    static const char *const backend_opt[] = {"--backend-retries", "2", NULL};
    run_t r;

    (void)state;
    run_args_conf(&r, text, args);
    assert_err(&r, "");
    assert_int_equal(r.rv, CFG_RUN);
    assert_int_equal(r.cfg.nlisteners, 2);
    assert_string_equal(r.cfg.listeners[1].name, "");
    assert_int_equal(r.cfg.listeners[1].line, 0);
    assert_int_equal(r.cfg.listeners[1].addr.port, 81);
    assert_int_equal(r.cfg.nbackends, 2);
    assert_string_equal(r.cfg.backends[1].name, "default");
    assert_int_equal(r.cfg.default_backend, 1);
    run_done(&r);

    /* A backend option alone makes an empty "default" backend. */
    run_args_conf(&r, text, backend_opt);
    assert_int_equal(r.rv, CFG_EXIT_USAGE);
    assert_err(&r, "h2gw: backend options given without --backend\n");
    run_done(&r);

    /* Without "default", the first backend is the default one. */
    run_args_conf(&r, text, NULL);
    assert_int_equal(r.rv, CFG_RUN);
    assert_int_equal(r.cfg.default_backend, 0);
    run_done(&r);
}

/* ---- validation ---- */

static void test_validate(void **state)
{
    static const struct {
        const char *conf; /* NULL: no --config */
        const char *args[12];
        const char *err; /* exact stderr; "" for a valid configuration */
    } cases[] = {
        /* 0: a complete minimal configuration */
        {"[listen]\naddress = :1\n[backend]\nserver = b:2\n", {NULL}, ""},
        /* 1 */
        {"[listen a]\n[backend b]\n",
         {NULL},
         "@FILE@:1: [listen a] has no address\n@FILE@:2: [backend b] has no server\n"},
        /* 2 */
        {NULL,
         {"--tls-ciphers", "HIGH", "--backend-retries", "2", NULL},
         "h2gw: listener options given without --listen\n"
         "h2gw: --tls-ciphers needs --tls-cert\n"
         "h2gw: backend options given without --backend\n"},
        /* 3: the same address twice; another host on the same port is fine */
        {"[listen a]\naddress = 127.0.0.1:80\n"
         "[listen b]\naddress = 127.0.0.1:80\n"
         "[listen c]\naddress = [::1]:80\n"
         "[listen d]\naddress = 127.0.0.2:80\n"
         "[backend]\nserver = b:2\n",
         {"--listen", "[::1]:80", NULL},
         "@FILE@:3: address 127.0.0.1:80 is already used by [listen a] (line 1)\n"
         "h2gw: --listen [::1]:80 is already used by [listen c] (line 5)\n"},
        /* 4: unreadable certificate and key, each at its own line */
        {"[listen]\naddress = :1\n"
         "tls_cert = /nonexistent/c.pem\n"
         "tls_key = /tmp\n"
         "[backend]\nserver = b:2\n",
         {NULL},
         "@FILE@:3: tls_cert: cannot read '/nonexistent/c.pem': No such file or directory\n"
         "@FILE@:4: tls_key: cannot read '/tmp': Is a directory\n"},
        /* 5 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--tls-cert", "/nonexistent/c.pem", "--tls-key",
          "@KEY@", NULL},
         "h2gw: --tls-cert: cannot read '/nonexistent/c.pem': No such file or directory\n"},
        /* 6: a certificate without its key */
        {"[listen]\naddress = :1\n"
         "tls_cert = @CERT@\ntls_key = @KEY@\ntls_cert = @CA@\n"
         "[backend]\nserver = b:2\n",
         {NULL},
         "@FILE@:5: tls_cert '@CA@' has no tls_key\n"},
        /* 7: TLS options on a cleartext listener */
        {"[listen]\naddress = :1\n"
         "tls_ciphers = HIGH\ntls_min_version = 1.3\ntls_ticket_key_file = @KEY@\n"
         "tls_client_ca = @CA@\nverify_client = require\nwatch_certificates = on\n"
         "client_cert_header = x-cert\n"
         "[backend]\nserver = b:2\n",
         {NULL},
         "@FILE@:1: tls_ciphers needs tls_cert\n"
         "@FILE@:1: tls_min_version needs tls_cert\n"
         "@FILE@:1: tls_ticket_key_file needs tls_cert\n"
         "@FILE@:1: tls_client_ca needs tls_cert\n"
         "@FILE@:1: verify_client needs tls_cert\n"
         "@FILE@:1: watch_certificates needs tls_cert\n"},
        /* 8 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--tls-min-version", "1.3", "--watch-certificates",
          "on", NULL},
         "h2gw: --tls-min-version needs --tls-cert\n"
         "h2gw: --watch-certificates needs --tls-cert\n"},
        /* 9: client verification */
        {"[listen]\naddress = :1\ntls_cert = @CERT@\ntls_key = @KEY@\n"
         "verify_client = optional\n"
         "[listen x]\naddress = :2\ntls_cert = @CERT@\ntls_key = @KEY@\n"
         "client_cert_header = x-cert\n"
         "[backend]\nserver = b:2\n",
         {NULL},
         "@FILE@:1: verify_client needs tls_client_ca\n"
         "@FILE@:6: client_cert_header needs verify_client optional or require\n"},
        /* 10 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--tls-cert", "@CERT@", "--tls-key", "@KEY@",
          "--client-cert-header", "x-cert", NULL},
         "h2gw: --client-cert-header needs --verify-client optional or require\n"},
        /* 11 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--tls-cert", "@CERT@", "--tls-key", "@KEY@",
          "--verify-client=require", NULL},
         "h2gw: --verify-client needs --tls-client-ca\n"},
        /* 12: other files that must be readable */
        {"[listen]\naddress = :1\ntls_cert = @CERT@\ntls_key = @KEY@\n"
         "tls_client_ca = /nonexistent/ca.pem\nverify_client = require\n"
         "tls_ticket_key_file = /nonexistent/t.key\n"
         "[backend]\nserver = b:2\ntls = on\ntls_ca_file = /nonexistent/b.pem\n",
         {NULL},
         "@FILE@:1: tls_ticket_key_file: cannot read '/nonexistent/t.key': No such file or "
         "directory\n"
         "@FILE@:1: tls_client_ca: cannot read '/nonexistent/ca.pem': No such file or directory\n"
         "@FILE@:8: tls_ca_file: cannot read '/nonexistent/b.pem': No such file or directory\n"},
        /* 13 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--backend-tls-ca-file", "/tmp", NULL},
         "h2gw: --backend-tls-ca-file: cannot read '/tmp': Is a directory\n"},
        /* 14: reserved connections */
        {"[listen]\naddress = :1\n[backend]\nserver = b:2\nmax_connections = 4\n"
         "priority_reserved_connections = 4\n",
         {NULL},
         "@FILE@:3: priority_reserved_connections (4) must be less than max_connections (4)\n"},
        /* 15 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--priority-reserved-connections", "100", NULL},
         "h2gw: --priority-reserved-connections (100) must be less than --backend-max-connections "
         "(100)\n"},
        /* 16 */
        {NULL,
         {"--listen", ":1", "--backend", "b:2", "--priority-reserved-connections", "99", NULL},
         ""},
        /* 17: ejection times */
        {"[listen]\naddress = :1\n[backend]\nserver = b:2\neject_time = 10m\n",
         {NULL},
         "@FILE@:3: eject_time (10m) is longer than eject_time_max (5m)\n"},
        /* 18: routes */
        {"[listen]\naddress = :1\n[backend]\nserver = b:2\n"
         "[route a]\nhost = x.example.com\n"
         "[route b]\nbackend = nope\n"
         "[route c]\nbackend = default\n",
         {NULL},
         "@FILE@:5: [route a] has no backend\n"
         "@FILE@:7: backend 'nope' is not defined\n"},
        /* 19: a value error (here a key without certificate) skips validation */
        {"[listen a]\ntls_key = @KEY@\n[backend b]\n[route r]\n",
         {NULL},
         "@FILE@:2: tls_key without tls_cert\n"},
        /* 20: validation waits for every value to parse */
        {"[listen a]\n[backend b]\n[route r]\nbackend = nope\n",
         {"--max-connections=0", NULL},
         "h2gw: --max-connections: '0' is out of range (1..10000000)\n"},
        /* 21: every validation error is printed */
        {"[listen a]\ntls_ciphers = HIGH\n[backend b]\nmax_connections = 1\n"
         "priority_reserved_connections = 1\n[route r]\nbackend = nope\n",
         {NULL},
         "@FILE@:1: [listen a] has no address\n"
         "@FILE@:1: tls_ciphers needs tls_cert\n"
         "@FILE@:3: [backend b] has no server\n"
         "@FILE@:3: priority_reserved_connections (1) must be less than max_connections (1)\n"
         "@FILE@:6: backend 'nope' is not defined\n"},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        run_t r;
        char *want;

        run_args_conf(&r, cases[i].conf, cases[i].args);
        want = subst(&r, cases[i].err);
        if (r.rv != (want[0] == '\0' ? CFG_RUN : CFG_EXIT_USAGE) || strcmp(r.err_buf, want) != 0) {
            print_error("case %zu: rv %d\n got [%s]\nwant [%s]\n", i, r.rv, r.err_buf, want);
            free(want);
            fail();
        }
        free(want);
        assert_string_equal(r.out_buf, "");
        run_done(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_parse_server),
        cmocka_unit_test(test_parse_status_range),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool_uint),
        cmocka_unit_test(test_log_level_str),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_both_forms),
        cmocka_unit_test(test_flags_repeated),
        cmocka_unit_test(test_flags_listen_twice),
        cmocka_unit_test(test_flags_tls_pairing),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_help_version_check),
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_sections),
        cmocka_unit_test(test_file_certs),
        cmocka_unit_test(test_file_long_line),
        cmocka_unit_test(test_file_repeated_keys),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_example),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_flags_add_to_named_file),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
