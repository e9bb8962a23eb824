/*
 * Options: one table read by both the command-line parser and the INI
 * reader, validated once into an immutable cfg_t.
 */
#ifndef CFG_CONFIG_H
#define CFG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_HOST_MAX 256

typedef struct cfg_addr {
    char host[CFG_HOST_MAX]; /* numeric address or name, without IPv6 brackets */
    uint16_t port;
} cfg_addr_t;

enum cfg_log_level { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };
enum cfg_scheduling { CFG_SCHED_PRIORITY, CFG_SCHED_FIFO };

typedef struct cfg {
    cfg_addr_t listen;
    cfg_addr_t backend;
    uint32_t backend_max_connections;    /* per backend server */
    uint64_t backend_idle_timeout_ms;    /* pooled idle connection lifetime */
    uint64_t backend_connect_timeout_ms;
    uint64_t backend_response_timeout_ms; /* request fully sent -> response head */
    uint32_t max_concurrent_streams;     /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list_size;       /* SETTINGS_MAX_HEADER_LIST_SIZE; also backend heads */
    uint32_t request_buffer_size;        /* per-stream HTTP/2 receive window = request body buffer */
    uint32_t response_buffer_size;       /* per-stream response body buffer before backend reads stop */
    uint32_t max_connections;            /* client connections at once */
    int backend_scheduling;              /* enum cfg_scheduling */
    uint64_t priority_max_wait_ms;       /* aging: older waiting requests go first */
    uint32_t priority_reserved_connections; /* kept for urgency 0..2 */
    int log_level;                       /* enum cfg_log_level */
    char config_file[4096];
    int check_only;                      /* --check: validate and exit */
} cfg_t;

/* What cfg_from_args() asks the caller to do. */
enum {
    CFG_RUN = 0,        /* cfg is complete: start */
    CFG_EXIT_OK = 1,    /* --help or --version printed, or --check passed: exit 0 */
    CFG_EXIT_USAGE = 2, /* errors printed: exit 2 */
};

/*
 * Fills cfg from defaults, then the file named by --config (if any), then
 * the other flags (flags override the file), and validates the result.
 * Help and version go to out; every error goes to err as one line naming the
 * flag ("h2gw: --backend: ...") or the file line ("FILE:LINE: ...").
 * Returns CFG_RUN, CFG_EXIT_OK or CFG_EXIT_USAGE.
 */
int cfg_from_args(cfg_t *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Sets every option to its default. */
void cfg_defaults(cfg_t *cfg);

/* Reads an INI file into cfg. Every error is printed to err as
 * "FILE:LINE: message"; returns the number of errors (0 on success). */
int cfg_load_file(cfg_t *cfg, const char *path, FILE *err);

/* Value parsers shared by flags and the file. Each returns 0 or -1. */
int cfg_parse_addr(const char *s, cfg_addr_t *out);          /* HOST:PORT, [v6]:PORT */
int cfg_parse_duration_ms(const char *s, uint64_t *out_ms);  /* 250ms, 5s, 2m, 1h; bare = seconds */
int cfg_parse_size(const char *s, uint64_t *out);            /* 512, 64k, 1m, 1g (powers of 1024) */
int cfg_parse_bool(const char *s, int *out);                 /* on/off yes/no true/false 1/0 */
int cfg_parse_uint(const char *s, uint64_t *out);            /* decimal, no sign */

const char *cfg_log_level_str(int level);

#define H2GW_VERSION "0.1.0"

#endif
