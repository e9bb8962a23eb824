/*
 * Options: one table read by both the command-line parser and the INI
 * reader, validated once into an immutable cfg_t.
 *
 * The file has four kinds of sections:
 *   [gateway]          process-wide limits and logs
 *   [listen NAME]      one listener: address, TLS certificates, protocols
 *   [backend NAME]     one group of servers and how to talk to them
 *   [route NAME]       which backend a request goes to (host, path prefix)
 *   [admin]            the admin listener (health endpoints); off by default
 * Each [listen], [backend] and [route] section adds one element, which
 * starts from every option's default; a second section of the same kind and
 * name is an error. Bare [listen] is the listener named ""; bare [backend]
 * is the backend named "default"; a route needs a name.
 *
 * Flags set the same options and override the file: gateway options on
 * cfg_t; listener options on the listener named "" (bare [listen] in the
 * file, else made by the first listener flag, normally --listen, which may
 * be given once); backend options on the backend named "default" (declared
 * by the file, else made by the first backend flag). Repeated --backend
 * flags list servers, and that list replaces the servers the file gave
 * "default"; likewise --tls-cert/--tls-key replace the file's certificates
 * of the "" listener. Routes are file-only.
 *
 * Relative file names are used as given (relative to the working
 * directory). Validation only checks that files can be opened for reading;
 * their contents are for the gateway to load.
 */
#ifndef CFG_CONFIG_H
#define CFG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_HOST_MAX 256
#define CFG_NAME_MAX 64

typedef struct cfg_addr {
    char host[CFG_HOST_MAX]; /* numeric address or name, without IPv6 brackets */
    uint16_t port;
} cfg_addr_t;

enum cfg_log_level { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };
enum cfg_log_format { CFG_LOG_TEXT, CFG_LOG_JSON };
enum cfg_scheduling { CFG_SCHED_PRIORITY, CFG_SCHED_FIFO };
enum cfg_tls_version { CFG_TLS_1_2, CFG_TLS_1_3 };
enum cfg_verify_client { CFG_VERIFY_OFF, CFG_VERIFY_OPTIONAL, CFG_VERIFY_REQUIRE };
enum cfg_lb { CFG_LB_LEAST_OUTSTANDING, CFG_LB_ROUND_ROBIN };

/* Every string below is heap-allocated and owned by the cfg_t (cfg_free). */

typedef struct cfg_cert {
    char *cert_file; /* PEM: certificate then its chain (intermediates) */
    char *key_file;  /* never NULL once validated */
    int cert_line;   /* line of its tls_cert in the file; 0 for --tls-cert */
    int key_line;    /* line of its tls_key; 0 for --tls-key */
} cfg_cert_t;

typedef struct cfg_listener {
    char name[CFG_NAME_MAX]; /* "": bare [listen], or the one --listen makes */
    int line;                /* where the section starts in the file; 0: made by flags */
    cfg_addr_t addr;
    int has_addr;
    cfg_cert_t *certs; /* TLS when ncerts > 0; the first is the default for SNI */
    size_t ncerts;
    char *tls_ciphers;         /* TLS 1.2 cipher list; NULL: AEAD ECDHE suites only */
    int tls_min_version;       /* enum cfg_tls_version, default 1.2 */
    char *tls_ticket_key_file; /* NULL: keys generated in memory and rotated */
    char *tls_client_ca;       /* PEM CA bundle for client certificates */
    int verify_client;         /* enum cfg_verify_client, default off */
    char *client_cert_header;  /* e.g. "x-client-subject"; NULL: not passed on */
    int watch_certificates;    /* reload when certificate files change */
    int proxy_protocol;        /* expect PROXY protocol v1/v2 first */
} cfg_listener_t;

typedef struct cfg_server {
    cfg_addr_t addr;
    uint32_t weight; /* 1..1000, default 1 */
} cfg_server_t;

typedef struct cfg_backend {
    char name[CFG_NAME_MAX]; /* "default": bare [backend], or the one --backend makes */
    int line;                /* where the section starts in the file; 0: made by flags */
    cfg_server_t *servers;
    size_t nservers;
    uint32_t max_connections; /* per server */
    uint64_t idle_timeout_ms; /* pooled idle connection lifetime */
    uint64_t connect_timeout_ms;
    uint64_t response_timeout_ms; /* request sent -> response head */
    uint64_t io_timeout_ms;       /* idle between body bytes, both ways */
    uint32_t retries;             /* more tries on another server */
    int lb;                       /* enum cfg_lb */
    uint64_t resolve_interval_ms; /* DNS re-resolution */
    uint32_t max_fails;           /* consecutive failures that eject a server */
    uint64_t eject_time_ms;       /* first ejection; doubles on repeats */
    uint64_t eject_time_max_ms;
    uint32_t max_ejection_percent; /* of the servers at once; never the last usable */
    int fail_on_5xx;               /* passive health counts 5xx responses */
    char *health_check_path;       /* NULL: no active health checks */
    uint64_t health_check_interval_ms;
    uint32_t healthy_threshold;
    uint32_t unhealthy_threshold;
    uint32_t health_check_status_min; /* expected status range, default 200..399 */
    uint32_t health_check_status_max;
    uint32_t queue_length;                  /* waiting exchanges before 503 */
    uint64_t queue_timeout_ms;              /* time waiting before 503 */
    uint64_t max_request_body;              /* 0: unlimited; else 413 above it */
    int scheduling;                         /* enum cfg_scheduling */
    uint64_t priority_max_wait_ms;          /* aging: older waiting requests go first */
    uint32_t priority_reserved_connections; /* kept for urgency 0..2 */
    int tls;                                /* HTTPS to the servers */
    char *tls_sni;                          /* NULL: the server's host name */
    char *tls_ca_file;                      /* NULL: system default store */
    int tls_verify;                         /* default on */
} cfg_backend_t;

typedef struct cfg_route {
    char name[CFG_NAME_MAX];
    int line;
    char *host;        /* exact or "*.example.com"; NULL: any */
    char *path_prefix; /* NULL: any */
    char backend[CFG_NAME_MAX];
    size_t backend_index; /* resolved by validation */
} cfg_route_t;

typedef struct cfg {
    cfg_listener_t *listeners;
    size_t nlisteners;
    cfg_backend_t *backends;
    size_t nbackends;
    cfg_route_t *routes;
    size_t nroutes;
    size_t default_backend; /* index: "default" if declared, else the first */

    uint32_t workers;                /* threads, one loop each */
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list_size;   /* SETTINGS_MAX_HEADER_LIST_SIZE; also backend heads */
    uint32_t request_buffer_size;    /* per-stream HTTP/2 window = request body buffer */
    uint32_t response_buffer_size;   /* per-stream response buffer before backend reads stop */
    uint32_t max_connections;        /* client connections per worker */
    uint64_t client_idle_timeout_ms; /* no stream open for this long -> GOAWAY / close */
    uint64_t tls_handshake_timeout_ms;
    uint64_t stream_read_timeout_ms;  /* client stopped sending its request body */
    uint64_t stream_write_timeout_ms; /* client stopped taking its response */
    uint64_t drain_delay_ms;          /* SIGTERM -> listeners closed (readyz fails at once) */
    uint64_t shutdown_timeout_ms;     /* listeners closed -> connections cut */
    uint32_t max_tunnels;             /* WebSocket tunnels per worker; 0: off */
    uint64_t tunnel_idle_timeout_ms;  /* a tunnel with no byte either way this long ends */
    cfg_addr_t admin_addr;            /* [admin] address, --admin */
    int has_admin;                    /* admin listener configured */
    uint32_t h2_glitch_threshold;     /* HTTP/2 abuse budget per connection; 0: off */
    int server_push;                  /* push Link rel=preload targets to HTTP/2 clients */
    uint32_t push_max_per_connection; /* pushes per HTTP/2 connection; 0: none */
    int early_hints_from_link;        /* Link rel=preload fields sent first as a 103 */
    int log_level;                    /* enum cfg_log_level */
    char *access_log;                 /* NULL: off; "-": stdout; else a file path */
    int access_log_format;            /* enum cfg_log_format */
    int log_format;                   /* enum cfg_log_format, of the error log */
    char *via;                        /* Via pseudonym; NULL: h2gw; "off": no Via */
    char *config_file;                /* the file read, if any */
    int check_only;                   /* --check: validate and exit */
} cfg_t;

/* What cfg_from_args() asks the caller to do. */
enum {
    CFG_RUN = 0,        /* cfg is complete: start */
    CFG_EXIT_OK = 1,    /* --help or --version printed, or --check passed: exit 0 */
    CFG_EXIT_USAGE = 2, /* errors printed: exit 2 */
    CFG_CHECK = 3,      /* --check and valid: the caller checks what it alone can
                           (certificates), prints the verdict and exits */
};

/*
 * Fills cfg from defaults, then the file named by --config (if any), then
 * the other flags (flags override the file), and validates the result.
 * Help and version go to out; every error goes to err as one line naming the
 * flag ("h2gw: --backend: ...") or the file line ("FILE:LINE: ..."); all
 * errors are printed, not only the first. Validation runs only when every
 * value parsed (otherwise it would mostly repeat them). Returns CFG_RUN,
 * CFG_EXIT_OK, CFG_EXIT_USAGE or (--check) CFG_CHECK. cfg need not be initialized and must be
 * released with cfg_free() whatever the result.
 */
int cfg_from_args(cfg_t *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Sets every gateway option to its default; no listeners, backends or
 * routes. Overwrites cfg without freeing it. */
void cfg_defaults(cfg_t *cfg);

/* Frees every string and array cfg owns; cfg is then all zeroes (and may
 * be freed again). */
void cfg_free(cfg_t *cfg);

/* Reads an INI file into cfg (initialized by cfg_defaults) and records
 * path in cfg->config_file, which validation names in its messages. Every
 * error is printed to err as "FILE:LINE: message" and reading goes on;
 * returns the number of errors (0 on success). */
int cfg_load_file(cfg_t *cfg, const char *path, FILE *err);

/* Checks the whole configuration (required pieces, files readable,
 * listener addresses unique, certificates paired with keys, TLS options
 * only where there is TLS, routes naming backends that exist); prints every
 * error as "FILE:LINE: ..." for what the file declared or "h2gw: ..." for
 * what flags made, and returns their number. Sets each route's
 * backend_index and cfg->default_backend. Called by cfg_from_args. */
int cfg_validate(cfg_t *cfg, FILE *err);

/* Value parsers shared by flags and the file. Each returns 0, or -1 with
 * *out untouched. Ranges other than those noted are the option table's.
 * A server needs a host and a port other than 0, and N is 1..1000; a status
 * range needs lo <= hi. */
int cfg_parse_addr(const char *s, cfg_addr_t *out);         /* HOST:PORT, [v6]:PORT */
int cfg_parse_server(const char *s, cfg_server_t *out);     /* HOST:PORT [weight=N] */
int cfg_parse_duration_ms(const char *s, uint64_t *out_ms); /* 250ms, 5s, 2m, 1h; bare = seconds */
int cfg_parse_size(const char *s, uint64_t *out);           /* 512, 64k, 1m, 1g (powers of 1024) */
int cfg_parse_bool(const char *s, int *out);                /* on/off yes/no true/false 1/0 */
int cfg_parse_uint(const char *s, uint64_t *out);           /* decimal, no sign */
int cfg_parse_status_range(const char *s, uint32_t *lo, uint32_t *hi); /* "200-399" or "200" */

const char *cfg_log_level_str(int level);

#define H2GW_VERSION "0.2.0"

#endif
