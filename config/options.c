/*
 * Options: one table, read by the flag parser and the INI reader alike, so a
 * new option is one row and both ways of setting it agree by construction.
 * Each row says which struct it lives in (its scope): the gateway's cfg_t,
 * one listener, one backend or one route.
 */
#include "config/options.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MS_PER_DAY (24ULL * 3600 * 1000)
#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

#define GW(field) SCOPE_GATEWAY, offsetof(cfg_t, field)
#define LS(field) SCOPE_LISTENER, offsetof(cfg_listener_t, field)
#define BE(field) SCOPE_BACKEND, offsetof(cfg_backend_t, field)
#define RT(field) SCOPE_ROUTE, offsetof(cfg_route_t, field)
#define AD(field) SCOPE_ADMIN, offsetof(cfg_t, field)

/* OPT_STATUS_RANGE stores its two ends as a uint32_t pair. */
_Static_assert(offsetof(cfg_backend_t, health_check_status_max) ==
                   offsetof(cfg_backend_t, health_check_status_min) + sizeof(uint32_t),
               "health_check_status_min and _max must be adjacent");

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const scheduling_modes[] = {"priority", "fifo", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const verify_modes[] = {"off", "optional", "require", NULL};
static const char *const lb_modes[] = {"least-outstanding", "round-robin", NULL};

static int check_header_name(char *s, char *msg, size_t cap);
static int check_path(char *s, char *msg, size_t cap);
static int check_host(char *s, char *msg, size_t cap);

/* Within a scope, rows print in this order in --help. */
const cfg_option_t cfg__options[] = {
    /* ---- gateway ---- */
    {"workers", "workers", OPT_UINT32, GW(workers), "1", 1, 64,
     "worker threads, each with its own event loop, listeners (SO_REUSEPORT) and backend pools",
     NULL, NULL, NULL},
    {"max-concurrent-streams", "max_concurrent_streams", OPT_UINT32, GW(max_concurrent_streams),
     "100", 1, INT32_MAX, "HTTP/2 streams a client may open at once", NULL, NULL, NULL},
    {"max-header-list-size", "max_header_list_size", OPT_SIZE32, GW(max_header_list_size), "64k",
     KIB, 16 * MIB, "largest request header list, and largest backend response head", NULL, NULL,
     NULL},
    /* Becomes the HTTP/2 stream window, which cannot exceed 2^31-1. */
    {"request-buffer-size", "request_buffer_size", OPT_SIZE32, GW(request_buffer_size), "64k",
     16 * KIB, 16 * MIB, "request body bytes buffered per stream (the HTTP/2 stream window)", NULL,
     NULL, NULL},
    {"response-buffer-size", "response_buffer_size", OPT_SIZE32, GW(response_buffer_size), "256k",
     16 * KIB, GIB, "response body bytes buffered per stream before backend reads pause", NULL,
     NULL, NULL},
    {"max-connections", "max_connections", OPT_UINT32, GW(max_connections), "10000", 1, 10000000,
     "client connections open at once, per worker", NULL, NULL, NULL},
    {"client-idle-timeout", "client_idle_timeout", OPT_DURATION_MS, GW(client_idle_timeout_ms),
     "180s", 1, MS_PER_DAY, "a client connection with no open stream this long is closed", NULL,
     NULL, NULL},
    {"stream-read-timeout", "stream_read_timeout", OPT_DURATION_MS, GW(stream_read_timeout_ms),
     "60s", 1, MS_PER_DAY,
     "a request body the client stops sending this long ends its stream (408 or reset)", NULL, NULL,
     NULL},
    {"stream-write-timeout", "stream_write_timeout", OPT_DURATION_MS, GW(stream_write_timeout_ms),
     "60s", 1, MS_PER_DAY,
     "a response the client takes no byte of this long is reset and its backend connection freed",
     NULL, NULL, NULL},
    {"h2-glitch-threshold", "h2_glitch_threshold", OPT_UINT32, GW(h2_glitch_threshold), "1000", 0,
     UINT32_MAX,
     "HTTP/2 abuse budget of a client connection: protocol oddities (resets its bad frames "
     "cause, empty DATA, tiny WINDOW_UPDATEs, PRIORITY, SETTINGS and PING floods, requests "
     "answered 4xx, rapid resets) weigh on a score that halves every second; past this the "
     "client gets GOAWAY(ENHANCE_YOUR_CALM). 0 disables",
     NULL, NULL, NULL},
    {"server-push", "server_push", OPT_BOOL, GW(server_push), "on", 0, 0,
     "HTTP/2 server push from a 2xx response's Link: <PATH>; rel=preload fields (same authority, "
     "no nopush), for clients that allow push",
     NULL, NULL, NULL},
    {"push-max-per-connection", "push_max_per_connection", OPT_UINT32, GW(push_max_per_connection),
     "16", 0, 1000, "pushes per HTTP/2 client connection at most (each path once); 0: none", NULL,
     NULL, NULL},
    {"early-hints-from-link", "early_hints_from_link", OPT_BOOL, GW(early_hints_from_link), "off",
     0, 0,
     "send a 2xx response's Link rel=preload fields first as a 103 Early Hints (HTTP/2 and "
     "HTTP/1.1 clients)",
     NULL, NULL, NULL},
    {"tls-handshake-timeout", "tls_handshake_timeout", OPT_DURATION_MS,
     GW(tls_handshake_timeout_ms), "10s", 1, MS_PER_DAY,
     "time allowed for a client's TLS handshake", NULL, NULL, NULL},
    {"drain-delay", "drain_delay", OPT_DURATION_MS, GW(drain_delay_ms), "0", 0, MS_PER_DAY,
     "on SIGTERM or SIGINT, /readyz fails at once but listeners stay open this long (time for "
     "load balancers to notice)",
     NULL, NULL, NULL},
    {"shutdown-timeout", "shutdown_timeout", OPT_DURATION_MS, GW(shutdown_timeout_ms), "30s", 1,
     MS_PER_DAY,
     "after the listeners close, time in-flight requests get to finish before connections are cut",
     NULL, NULL, NULL},
    {"max-tunnels", "max_tunnels", OPT_UINT32, GW(max_tunnels), "1000", 0, 10000000,
     "WebSocket tunnels (RFC 8441 extended CONNECT, HTTP/1.1 Upgrade) open at once, per worker, "
     "each on its own backend connection; 0: off (no SETTINGS_ENABLE_CONNECT_PROTOCOL, Upgrade "
     "not forwarded)",
     NULL, NULL, NULL},
    {"tunnel-idle-timeout", "tunnel_idle_timeout", OPT_DURATION_MS, GW(tunnel_idle_timeout_ms),
     "5m", 1, MS_PER_DAY, "a tunnel with no byte either way this long is closed", NULL, NULL, NULL},
    {"log-level", "log_level", OPT_ENUM, GW(log_level), "warn", 0, 0, "what the error log reports",
     log_levels, "log level", NULL},
    {"log-format", "log_format", OPT_ENUM, GW(log_format), "text", 0, 0,
     "error log lines as text or as JSON objects", log_formats, "log format", NULL},
    {"access-log-format", "access_log_format", OPT_ENUM, GW(access_log_format), "text", 0, 0,
     "access log lines as text or as JSON objects (one per line)", log_formats, "log format", NULL},
    {"via", "via", OPT_STRING, GW(via), NULL, 0, 0,
     "pseudonym in the Via field added to requests and responses (RFC 9110 7.6.3); off: "
     "none (default: h2gw)",
     NULL, "NAME", NULL},
    {"access-log", "access_log", OPT_STRING, GW(access_log), NULL, 0, 0,
     "access log file, or - for stdout (default: no access log)", NULL, "FILE", NULL},
    {"config", NULL, OPT_PATH, GW(config_file), NULL, 0, 0,
     "INI file to read first; flags override it", NULL, "FILE", NULL},
    {"check", NULL, OPT_FLAG_NOARG, GW(check_only), NULL, 0, 0,
     "validate the configuration and exit", NULL, NULL, NULL},
    {"help", NULL, OPT_HELP, SCOPE_GATEWAY, 0, NULL, 0, 0, "print this help and exit", NULL, NULL,
     NULL},
    {"version", NULL, OPT_VERSION, SCOPE_GATEWAY, 0, NULL, 0, 0, "print the version and exit", NULL,
     NULL, NULL},

    /* ---- listener ---- */
    {"listen", "address", OPT_ADDR, LS(addr), NULL, 0, 0,
     "address to accept clients on. The flag is given once: it makes the listener that the "
     "other listener flags apply to",
     NULL, NULL, NULL},
    {"tls-cert", "tls_cert", OPT_CERT, LS(certs), NULL, 0, 0,
     "PEM certificate chain; with one, the listener speaks TLS (ALPN h2 and http/1.1). Repeat "
     "for SNI, each followed by its key; the first is the default",
     NULL, "FILE", NULL},
    {"tls-key", "tls_key", OPT_KEY, LS(certs), NULL, 0, 0,
     "PEM private key of the certificate before it that has none yet", NULL, "FILE", NULL},
    {"tls-ciphers", "tls_ciphers", OPT_STRING, LS(tls_ciphers), NULL, 0, 0,
     "OpenSSL cipher list for TLS 1.2 (default: ECDHE with AEAD ciphers only)", NULL, "LIST", NULL},
    {"tls-min-version", "tls_min_version", OPT_ENUM, LS(tls_min_version), "1.2", 0, 0,
     "oldest TLS version accepted", tls_versions, "TLS version", NULL},
    {"tls-ticket-key-file", "tls_ticket_key_file", OPT_PATH, LS(tls_ticket_key_file), NULL, 0, 0,
     "session ticket keys shared by several gateways (default: random keys, rotated)", NULL, "FILE",
     NULL},
    {"tls-client-ca", "tls_client_ca", OPT_PATH, LS(tls_client_ca), NULL, 0, 0,
     "PEM CA bundle that client certificates must chain to", NULL, "FILE", NULL},
    {"verify-client", "verify_client", OPT_ENUM, LS(verify_client), "off", 0, 0,
     "ask clients for a certificate (optional) or require one", verify_modes, "client verification",
     NULL},
    {"client-cert-header", "client_cert_header", OPT_STRING, LS(client_cert_header), NULL, 0, 0,
     "request header that passes the client certificate's subject to the backend (lowercase)", NULL,
     "NAME", check_header_name},
    {"watch-certificates", "watch_certificates", OPT_BOOL, LS(watch_certificates), "off", 0, 0,
     "reload certificates and keys when their files change", NULL, NULL, NULL},
    {"proxy-protocol", "proxy_protocol", OPT_BOOL, LS(proxy_protocol), "off", 0, 0,
     "expect a PROXY protocol v1 or v2 header before each connection", NULL, NULL, NULL},

    /* ---- backend ---- */
    {"backend", "server", OPT_SERVER_LIST, BE(servers), NULL, 0, 0,
     "HTTP/1.1 server, optionally followed by weight=N (1..1000, default 1); repeat for "
     "several. On the command line, the list replaces the servers the file gives [backend "
     "default]",
     NULL, "HOST:PORT", NULL},
    {"backend-max-connections", "max_connections", OPT_UINT32, BE(max_connections), "100", 1,
     100000, "keep-alive connections per backend server, busy or idle", NULL, NULL, NULL},
    {"backend-idle-timeout", "idle_timeout", OPT_DURATION_MS, BE(idle_timeout_ms), "4s", 1,
     MS_PER_DAY, "how long an idle pooled connection is kept", NULL, NULL, NULL},
    {"backend-connect-timeout", "connect_timeout", OPT_DURATION_MS, BE(connect_timeout_ms), "3s", 1,
     MS_PER_DAY, "time allowed to connect to a server", NULL, NULL, NULL},
    {"backend-response-timeout", "response_timeout", OPT_DURATION_MS, BE(response_timeout_ms),
     "60s", 1, MS_PER_DAY, "time from the request fully sent to the response head", NULL, NULL,
     NULL},
    {"backend-io-timeout", "io_timeout", OPT_DURATION_MS, BE(io_timeout_ms), "60s", 1, MS_PER_DAY,
     "longest pause between body bytes, either way", NULL, NULL, NULL},
    {"backend-retries", "retries", OPT_UINT32, BE(retries), "1", 0, 10,
     "further tries on another server when one fails before the response", NULL, NULL, NULL},
    {"backend-lb", "lb", OPT_ENUM, BE(lb), "least-outstanding", 0, 0,
     "how a request picks a server", lb_modes, "load balancing", NULL},
    {"backend-resolve-interval", "resolve_interval", OPT_DURATION_MS, BE(resolve_interval_ms),
     "30s", 1, MS_PER_DAY, "how often server names are resolved again", NULL, NULL, NULL},
    {"backend-max-fails", "max_fails", OPT_UINT32, BE(max_fails), "5", 0, 1000,
     "consecutive failures that eject a server; 0 never ejects", NULL, NULL, NULL},
    {"backend-eject-time", "eject_time", OPT_DURATION_MS, BE(eject_time_ms), "10s", 1, MS_PER_DAY,
     "first ejection; each repeat doubles it", NULL, NULL, NULL},
    {"backend-eject-time-max", "eject_time_max", OPT_DURATION_MS, BE(eject_time_max_ms), "5m", 1,
     MS_PER_DAY, "longest ejection", NULL, NULL, NULL},
    {"backend-max-ejection-percent", "max_ejection_percent", OPT_UINT32, BE(max_ejection_percent),
     "50", 0, 100,
     "most servers of a backend ejected at once, in percent; the last usable one never is", NULL,
     NULL, NULL},
    {"backend-fail-on-5xx", "fail_on_5xx", OPT_BOOL, BE(fail_on_5xx), "off", 0, 0,
     "count 5xx responses as failures toward max-fails", NULL, NULL, NULL},
    {"backend-health-check-path", "health_check_path", OPT_STRING, BE(health_check_path), NULL, 0,
     0, "path that active health checks GET (default: no active checks)", NULL, "PATH", check_path},
    {"backend-health-check-interval", "health_check_interval", OPT_DURATION_MS,
     BE(health_check_interval_ms), "5s", 1, MS_PER_DAY, "time between health checks of a server",
     NULL, NULL, NULL},
    {"backend-healthy-threshold", "healthy_threshold", OPT_UINT32, BE(healthy_threshold), "2", 1,
     100, "passed checks in a row that bring a server back", NULL, NULL, NULL},
    {"backend-unhealthy-threshold", "unhealthy_threshold", OPT_UINT32, BE(unhealthy_threshold), "3",
     1, 100, "failed checks in a row that take a server out", NULL, NULL, NULL},
    {"backend-health-check-status", "health_check_status", OPT_STATUS_RANGE,
     BE(health_check_status_min), "200-399", 100, 599,
     "response statuses that pass a health check: LO-HI or one status", NULL, "RANGE", NULL},
    {"backend-queue-length", "queue_length", OPT_UINT32, BE(queue_length), "1024", 0, 10000000,
     "requests waiting for a connection before more get 503", NULL, NULL, NULL},
    {"backend-queue-timeout", "queue_timeout", OPT_DURATION_MS, BE(queue_timeout_ms), "30s", 1,
     MS_PER_DAY, "time a request may wait for a connection before 503", NULL, NULL, NULL},
    {"backend-max-request-body", "max_request_body", OPT_SIZE64, BE(max_request_body), "0", 0,
     UINT64_MAX, "larger request bodies get 413; 0 means no limit", NULL, NULL, NULL},
    {"backend-scheduling", "scheduling", OPT_ENUM, BE(scheduling), "priority", 0, 0,
     "order of requests waiting for a connection", scheduling_modes, "scheduling", NULL},
    {"priority-max-wait", "priority_max_wait", OPT_DURATION_MS, BE(priority_max_wait_ms), "1s", 1,
     MS_PER_DAY, "a waiting request older than this goes first, whatever its urgency", NULL, NULL,
     NULL},
    {"priority-reserved-connections", "priority_reserved_connections", OPT_UINT32,
     BE(priority_reserved_connections), "0", 0, 100000,
     "connections per server kept for urgency 0-2 requests; less than max-connections", NULL, NULL,
     NULL},
    {"backend-tls", "tls", OPT_BOOL, BE(tls), "off", 0, 0, "talk HTTPS to the servers", NULL, NULL,
     NULL},
    {"backend-tls-sni", "tls_sni", OPT_STRING, BE(tls_sni), NULL, 0, 0,
     "server name sent and verified (default: the server's host)", NULL, "NAME", NULL},
    {"backend-tls-ca-file", "tls_ca_file", OPT_PATH, BE(tls_ca_file), NULL, 0, 0,
     "PEM CA bundle for server certificates (default: the system store)", NULL, "FILE", NULL},
    {"backend-tls-verify", "tls_verify", OPT_BOOL, BE(tls_verify), "on", 0, 0,
     "verify server certificates", NULL, NULL, NULL},

    /* ---- route (file only) ---- */
    {NULL, "host", OPT_STRING, RT(host), NULL, 0, 0,
     "request host, exact or *.example.com, compared without port (default: any)", NULL, "HOST",
     check_host},
    {NULL, "path_prefix", OPT_STRING, RT(path_prefix), NULL, 0, 0,
     "request path prefix, starting with / (default: any)", NULL, "PREFIX", check_path},
    {NULL, "backend", OPT_NAME, RT(backend), NULL, 0, 0,
     "name of the backend that gets matching requests (required)", NULL, "NAME", NULL},

    /* ---- admin ---- */
    {"admin", "address", OPT_ADDR, AD(admin_addr), NULL, 0, 0,
     "address of the admin listener (GET /livez, /readyz; HTTP/1.1, never proxied). Default: off",
     NULL, NULL, NULL},
};

const size_t cfg__noptions = sizeof(cfg__options) / sizeof(cfg__options[0]);

const char *cfg_log_level_str(int level)
{
    if (level < CFG_LOG_ERROR || level > CFG_LOG_DEBUG)
        return "unknown";
    return log_levels[level];
}

const char *cfg__section_str(opt_scope_t scope)
{
    static const char *const names[NSCOPES] = {"gateway", "listen", "backend", "route", "admin"};

    return scope < NSCOPES ? names[scope] : "?";
}

const cfg_option_t *cfg__find_key(opt_scope_t scope, const char *key)
{
    for (size_t i = 0; i < cfg__noptions; i++) {
        const cfg_option_t *o = &cfg__options[i];
        if (o->scope == scope && o->key != NULL && strcasecmp(o->key, key) == 0)
            return o;
    }
    return NULL;
}

const char *cfg__opt_name(const cfg_option_t *o, int line, char *buf, size_t cap)
{
    if (line > 0 || o->flag == NULL)
        snprintf(buf, cap, "%s", o->key);
    else
        snprintf(buf, cap, "--%s", o->flag);
    return buf;
}

const char *cfg__key_name(opt_scope_t scope, const char *key, int line, char *buf, size_t cap)
{
    const cfg_option_t *o = cfg__find_key(scope, key);

    if (o == NULL) { /* a typo in validate.c; the unit tests would show it */
        snprintf(buf, cap, "%s", key);
        return buf;
    }
    return cfg__opt_name(o, line, buf, cap);
}

/* ---- string checks ---- */

/* RFC 9110 token characters, lowercase only: HTTP/2 field names must be
 * lowercase, and a name we add to requests should read the same on both
 * sides of the gateway. */
static int check_header_name(char *s, char *msg, size_t cap)
{
    for (const char *p = s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$%&'*+-.^_`|~", *p) != NULL)
            continue;
        snprintf(msg, cap,
                 "invalid header name '%s' (expected a lowercase token, e.g. x-client-cert)", s);
        return -1;
    }
    return 0;
}

/* A path goes into a request line as is, so a space or a control character
 * would split or corrupt it. */
static int check_path(char *s, char *msg, size_t cap)
{
    int is_ok = s[0] == '/';

    for (const unsigned char *p = (const unsigned char *)s; is_ok && *p != '\0'; p++)
        is_ok = *p > 0x20 && *p != 0x7f;
    if (!is_ok) {
        snprintf(msg, cap, "invalid path '%s' (must start with / and have no spaces)", s);
        return -1;
    }
    return 0;
}

/* A route's host: lowercased here so the gateway compares bytes. */
static int check_host(char *s, char *msg, size_t cap)
{
    char *p = s;

    if (strchr(s, ':') != NULL) {
        snprintf(msg, cap, "invalid host '%s' (hosts are compared without a port)", s);
        return -1;
    }
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    if (*p == '\0' || *p == '.')
        goto bad;
    for (; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
                   *p == '_'))
            goto bad;
    }
    return 0;
bad:
    snprintf(msg, cap, "invalid host '%s' (expected e.g. example.com or *.example.com)", s);
    return -1;
}

int cfg__is_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= CFG_NAME_MAX)
        return 0;
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_'))
            return 0;
    }
    return 1;
}

/* ---- one option ---- */

void cfg__format_value(opt_type_t type, uint64_t v, char *buf, size_t cap)
{
    if ((type == OPT_SIZE32 || type == OPT_SIZE64) && v != 0) {
        if (v % GIB == 0)
            snprintf(buf, cap, "%llug", (unsigned long long)(v / GIB));
        else if (v % MIB == 0)
            snprintf(buf, cap, "%llum", (unsigned long long)(v / MIB));
        else if (v % KIB == 0)
            snprintf(buf, cap, "%lluk", (unsigned long long)(v / KIB));
        else
            snprintf(buf, cap, "%llu", (unsigned long long)v);
    } else if (type == OPT_DURATION_MS && v != 0) {
        if (v % 3600000 == 0)
            snprintf(buf, cap, "%lluh", (unsigned long long)(v / 3600000));
        else if (v % 60000 == 0)
            snprintf(buf, cap, "%llum", (unsigned long long)(v / 60000));
        else if (v % 1000 == 0)
            snprintf(buf, cap, "%llus", (unsigned long long)(v / 1000));
        else
            snprintf(buf, cap, "%llums", (unsigned long long)v);
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)v);
    }
}

static int check_range(const cfg_option_t *o, const char *s, uint64_t v, char *msg, size_t cap)
{
    char lo[32], hi[32];

    if (v >= o->min && v <= o->max)
        return 0;
    cfg__format_value(o->type, o->min, lo, sizeof(lo));
    cfg__format_value(o->type, o->max, hi, sizeof(hi));
    snprintf(msg, cap, "'%s' is out of range (%s..%s)", s, lo, hi);
    return -1;
}

/* Returns a heap copy of s for a string option, run through its check; NULL
 * with msg set on failure. */
static char *copy_string(const cfg_option_t *o, const char *s, char *msg, size_t cap)
{
    char *copy;

    if (s[0] == '\0') {
        snprintf(msg, cap, "empty value");
        return NULL;
    }
    copy = strdup(s);
    if (copy == NULL) {
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    if (o->check != NULL && o->check(copy, msg, cap) != 0) {
        free(copy);
        return NULL;
    }
    return copy;
}

/* Value errors say what was wrong with the value (SET_BAD_VALUE, msg gets
 * the option's name in front); a few say something whole (SET_BAD). */
enum { SET_OK = 0, SET_BAD_VALUE = -1, SET_BAD = -2 };

static int set_value(void *obj, const cfg_option_t *o, const char *s, int line, char *msg,
                     size_t cap)
{
    char *field = (char *)obj + o->offset;
    uint64_t v;
    int b;

    switch (o->type) {
    case OPT_ADDR: {
        cfg_addr_t a;
        if (cfg_parse_addr(s, &a) != 0) {
            snprintf(msg, cap, "invalid address '%s' (expected HOST:PORT or [IPv6]:PORT)", s);
            return SET_BAD_VALUE;
        }
        memcpy(field, &a, sizeof(a));
        /* Only listeners have addresses of their own; has_addr tells a
         * listener without one from one on 0.0.0.0:0. */
        if (o->scope == SCOPE_LISTENER)
            ((cfg_listener_t *)obj)->has_addr = 1;
        else if (o->scope == SCOPE_ADMIN)
            ((cfg_t *)obj)->has_admin = 1;
        return SET_OK;
    }
    case OPT_UINT32:
        if (cfg_parse_uint(s, &v) != 0) {
            snprintf(msg, cap, "invalid number '%s'", s);
            return SET_BAD_VALUE;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return SET_BAD_VALUE;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return SET_OK;
    case OPT_SIZE32:
    case OPT_SIZE64:
        if (cfg_parse_size(s, &v) != 0) {
            snprintf(msg, cap, "invalid size '%s' (expected e.g. 512, 64k, 16m, 1g)", s);
            return SET_BAD_VALUE;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return SET_BAD_VALUE;
        if (o->type == OPT_SIZE32)
            *(uint32_t *)(void *)field = (uint32_t)v;
        else
            *(uint64_t *)(void *)field = v;
        return SET_OK;
    case OPT_DURATION_MS:
        if (cfg_parse_duration_ms(s, &v) != 0) {
            snprintf(msg, cap, "invalid duration '%s' (expected e.g. 250ms, 5s, 2m, 1h)", s);
            return SET_BAD_VALUE;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return SET_BAD_VALUE;
        *(uint64_t *)(void *)field = v;
        return SET_OK;
    case OPT_BOOL:
        if (cfg_parse_bool(s, &b) != 0) {
            snprintf(msg, cap, "invalid boolean '%s' (expected on/off, yes/no, true/false, 1/0)",
                     s);
            return SET_BAD_VALUE;
        }
        *(int *)(void *)field = b;
        return SET_OK;
    case OPT_ENUM: {
        char expected[128] = "";
        for (int i = 0; o->names[i] != NULL; i++) {
            if (strcasecmp(s, o->names[i]) == 0) {
                *(int *)(void *)field = i;
                return SET_OK;
            }
            size_t len = strlen(expected);
            snprintf(expected + len, sizeof(expected) - len, "%s%s",
                     i == 0                    ? ""
                     : o->names[i + 1] == NULL ? " or "
                                               : ", ",
                     o->names[i]);
        }
        snprintf(msg, cap, "invalid %s '%s' (expected %s)", o->what, s, expected);
        return SET_BAD_VALUE;
    }
    case OPT_STRING:
    case OPT_PATH: {
        char *copy = copy_string(o, s, msg, cap);
        if (copy == NULL)
            return SET_BAD_VALUE;
        free(*(char **)(void *)field);
        *(char **)(void *)field = copy;
        return SET_OK;
    }
    case OPT_NAME:
        if (!cfg__is_valid_name(s)) {
            snprintf(msg, cap, "invalid name '%s' (letters, digits, '.', '-' or '_', at most %d)",
                     s, CFG_NAME_MAX - 1);
            return SET_BAD_VALUE;
        }
        strcpy(field, s);
        return SET_OK;
    case OPT_SERVER_LIST: {
        cfg_backend_t *be = obj;
        cfg_server_t srv, *servers;
        if (cfg_parse_server(s, &srv) != 0) {
            snprintf(msg, cap,
                     "invalid server '%s' (expected HOST:PORT or HOST:PORT weight=N; port "
                     "1..65535, weight 1..1000)",
                     s);
            return SET_BAD_VALUE;
        }
        servers = realloc(be->servers, (be->nservers + 1) * sizeof(*servers));
        if (servers == NULL) {
            snprintf(msg, cap, "out of memory");
            return SET_BAD_VALUE;
        }
        be->servers = servers;
        be->servers[be->nservers++] = srv;
        return SET_OK;
    }
    case OPT_CERT: {
        cfg_listener_t *l = obj;
        cfg_cert_t *certs;
        char *copy = copy_string(o, s, msg, cap);
        if (copy == NULL)
            return SET_BAD_VALUE;
        certs = realloc(l->certs, (l->ncerts + 1) * sizeof(*certs));
        if (certs == NULL) {
            free(copy);
            snprintf(msg, cap, "out of memory");
            return SET_BAD_VALUE;
        }
        l->certs = certs;
        l->certs[l->ncerts++] = (cfg_cert_t){.cert_file = copy, .cert_line = line};
        return SET_OK;
    }
    case OPT_KEY: {
        /* Keys fill certificates in order, so the ones still without a key
         * are at the end and the n-th key pairs with the n-th certificate. */
        cfg_listener_t *l = obj;
        size_t i = 0;
        char *copy;
        while (i < l->ncerts && l->certs[i].key_file != NULL)
            i++;
        if (i == l->ncerts) {
            snprintf(msg, cap,
                     line > 0 ? "tls_key without tls_cert" : "--tls-key without --tls-cert");
            return SET_BAD;
        }
        copy = copy_string(o, s, msg, cap);
        if (copy == NULL)
            return SET_BAD_VALUE;
        l->certs[i].key_file = copy;
        l->certs[i].key_line = line;
        return SET_OK;
    }
    case OPT_STATUS_RANGE: {
        uint32_t lo, hi;
        if (cfg_parse_status_range(s, &lo, &hi) != 0) {
            snprintf(msg, cap, "invalid status range '%s' (expected e.g. 200-399 or 204)", s);
            return SET_BAD_VALUE;
        }
        if (check_range(o, s, lo, msg, cap) != 0 || check_range(o, s, hi, msg, cap) != 0)
            return SET_BAD_VALUE;
        ((uint32_t *)(void *)field)[0] = lo;
        ((uint32_t *)(void *)field)[1] = hi;
        return SET_OK;
    }
    case OPT_FLAG_NOARG:
        *(int *)(void *)field = 1;
        return SET_OK;
    case OPT_HELP:
    case OPT_VERSION:
        return SET_OK;
    }
    snprintf(msg, cap, "internal error: unknown option type");
    return SET_BAD;
}

int cfg__set_option(void *obj, const cfg_option_t *o, const char *s, int line, char *msg,
                    size_t cap)
{
    char why[512], name[80];
    int rv = set_value(obj, o, s, line, why, sizeof(why));

    if (rv == SET_OK)
        return 0;
    if (rv == SET_BAD_VALUE)
        snprintf(msg, cap, "%s: %s", cfg__opt_name(o, line, name, sizeof(name)), why);
    else
        snprintf(msg, cap, "%s", why);
    return -1;
}

/* ---- defaults, objects, free ---- */

static void apply_defaults(void *obj, opt_scope_t scope)
{
    char msg[256];

    for (size_t i = 0; i < cfg__noptions; i++) {
        const cfg_option_t *o = &cfg__options[i];
        /* The table's defaults are valid by construction (test_config
         * checks every one). */
        if (o->scope == scope && o->def != NULL)
            (void)set_value(obj, o, o->def, 0, msg, sizeof(msg));
    }
}

void cfg_defaults(cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    apply_defaults(cfg, SCOPE_GATEWAY);
}

/* Grows *arr by one zeroed element of size sz; returns it or NULL. */
static void *append(void **arr, size_t *n, size_t sz)
{
    char *p = realloc(*arr, (*n + 1) * sz);

    if (p == NULL)
        return NULL;
    *arr = p;
    memset(p + *n * sz, 0, sz);
    return p + (*n)++ * sz;
}

cfg_listener_t *cfg__add_listener(cfg_t *cfg, const char *name, int line)
{
    cfg_listener_t *l = append((void **)&cfg->listeners, &cfg->nlisteners, sizeof(*l));

    if (l == NULL)
        return NULL;
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->line = line;
    apply_defaults(l, SCOPE_LISTENER);
    return l;
}

cfg_backend_t *cfg__add_backend(cfg_t *cfg, const char *name, int line)
{
    cfg_backend_t *b = append((void **)&cfg->backends, &cfg->nbackends, sizeof(*b));

    if (b == NULL)
        return NULL;
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->line = line;
    apply_defaults(b, SCOPE_BACKEND);
    return b;
}

cfg_route_t *cfg__add_route(cfg_t *cfg, const char *name, int line)
{
    cfg_route_t *r = append((void **)&cfg->routes, &cfg->nroutes, sizeof(*r));

    if (r == NULL)
        return NULL;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->line = line;
    apply_defaults(r, SCOPE_ROUTE);
    return r;
}

void cfg__clear_certs(cfg_listener_t *l)
{
    for (size_t i = 0; i < l->ncerts; i++) {
        free(l->certs[i].cert_file);
        free(l->certs[i].key_file);
    }
    free(l->certs);
    l->certs = NULL;
    l->ncerts = 0;
}

void cfg__clear_servers(cfg_backend_t *b)
{
    free(b->servers);
    b->servers = NULL;
    b->nservers = 0;
}

/* Frees every string option of one object, found through the table so a
 * new string option cannot be forgotten here. */
static void free_strings(void *obj, opt_scope_t scope)
{
    for (size_t i = 0; i < cfg__noptions; i++) {
        const cfg_option_t *o = &cfg__options[i];
        if (o->scope == scope && (o->type == OPT_STRING || o->type == OPT_PATH)) {
            char **field = (char **)(void *)((char *)obj + o->offset);
            free(*field);
            *field = NULL;
        }
    }
}

void cfg_free(cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        cfg__clear_certs(&cfg->listeners[i]);
        free_strings(&cfg->listeners[i], SCOPE_LISTENER);
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        cfg__clear_servers(&cfg->backends[i]);
        free_strings(&cfg->backends[i], SCOPE_BACKEND);
    }
    for (size_t i = 0; i < cfg->nroutes; i++)
        free_strings(&cfg->routes[i], SCOPE_ROUTE);
    free(cfg->listeners);
    free(cfg->backends);
    free(cfg->routes);
    free_strings(cfg, SCOPE_GATEWAY);
    memset(cfg, 0, sizeof(*cfg));
}

void cfg__listener_str(const cfg_listener_t *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "[listen%s%s]", l->name[0] != '\0' ? " " : "", l->name);
}

void cfg__backend_str(const cfg_backend_t *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "[backend %s]", b->name);
}
