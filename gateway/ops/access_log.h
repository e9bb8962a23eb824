/*
 * Access log: one line per exchange, written without blocking the loop.
 * Lines gather in a buffer that one uv_fs_write at a time (on libuv's
 * thread pool) drains; a disk too slow to keep up costs dropped lines,
 * counted and reported, never a stalled worker or unbounded memory.
 */
#ifndef GW_ACCESS_LOG_H
#define GW_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* One line's fields; strings may be NULL ("-" in text, null in JSON). */
typedef struct gw_access_record {
    const char *client_addr;
    int client_port;
    const char *protocol;    /* h2, http/1.1 */
    const char *tls_version; /* NULL: cleartext */
    const char *sni;
    int32_t stream_id;
    const char *request_line; /* method and target, for the text line */
    int request_line_len;
    const char *method;
    size_t method_len;
    const char *authority;
    size_t authority_len;
    const char *path;
    size_t path_len;
    int status;         /* what the client got; 0: nothing (reset or gone) */
    uint64_t bytes_in;  /* request body bytes the client sent */
    uint64_t bytes_out; /* response body bytes the client took */
    uint64_t duration_ms;
    int64_t queue_ms; /* until the first backend connection; -1: none */
    int urgency;
    const char *backend;
    const char *server;
    int is_reused; /* the backend connection had carried a request before */
    uint32_t retries;
    const char *outcome; /* ok, error (the gateway answered), reset, refused, cancelled */
    const char *cause;   /* the gw_err name when the exchange failed, else NULL */
} gw_access_record_t;

typedef struct gw_access_log {
    uv_loop_t *loop;
    uv_file fd;
    int is_own_fd; /* opened by us (not stdout) */
    char *buf;     /* lines waiting for the next write */
    size_t len;
    char *inflight; /* the buffer of the write in flight */
    size_t inflight_len;
    uv_fs_t req;
    int is_writing;
    uint64_t dropped;
    char *path;        /* NULL: stdout */
    int is_json;       /* JSON lines instead of text */
    int is_reopen_due; /* SIGUSR1 came while a write was in flight */
} gw_access_log_t;

/* Opens path ("-" for stdout) for appending; at start, so blocking is
 * fine. is_json picks JSON lines. Returns 0 or a negative uv error. */
int gw_access_log_open(gw_access_log_t *log, uv_loop_t *loop, const char *path, int is_json);

/* Opens the file again by its name (SIGUSR1, after logrotate moved it),
 * once no write is in flight. */
void gw_access_log_reopen(gw_access_log_t *log);

/* Logs one exchange's end, with the time. */
void gw_access_log_write(gw_access_log_t *log, const gw_access_record_t *r);

/* Writes what is buffered (synchronously: only at exit) and closes. */
void gw_access_log_close(gw_access_log_t *log);

#endif
