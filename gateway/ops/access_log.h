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

/* One line's fields; strings may be NULL ("-"). */
typedef struct gw_access_record {
    const char *client_addr;
    const char *protocol;
    const char *request_line; /* method and target */
    int request_line_len;
    int status;         /* what the client got; 0: nothing (reset or gone) */
    uint64_t bytes_out; /* response body bytes the client took */
    uint64_t duration_ms;
    const char *backend;
    const char *server;
    const char *outcome; /* ok, error (the gateway answered), reset, refused, cancelled */
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
} gw_access_log_t;

/* Opens path ("-" for stdout) for appending; at start, so blocking is
 * fine. Returns 0 or a negative uv error. */
int gw_access_log_open(gw_access_log_t *log, uv_loop_t *loop, const char *path);

/* Logs one exchange's end, with the time. */
void gw_access_log_write(gw_access_log_t *log, const gw_access_record_t *r);

/* Writes what is buffered (synchronously: only at exit) and closes. */
void gw_access_log_close(gw_access_log_t *log);

#endif
