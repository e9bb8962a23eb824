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

struct gw_exchange;

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

/* Logs the end of x: time, client, protocol, request line, status, response
 * body bytes, duration, backend, server, and the outcome: ok, reset (the
 * client saw the stream reset) or cancelled (it went away first). */
void gw_access_log_exchange(gw_access_log_t *log, const struct gw_exchange *x);

/* Writes what is buffered (synchronously: only at exit) and closes. */
void gw_access_log_close(gw_access_log_t *log);

#endif
