#include "gateway/ops/access_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/core/log.h"

/* Lines beyond this much unwritten text are dropped (and counted). */
#define MAX_BUFFERED (256 * 1024)
#define MAX_LINE 2048

int gw_access_log_open(gw_access_log_t *log, uv_loop_t *loop, const char *path)
{
    memset(log, 0, sizeof(*log));
    log->loop = loop;
    if (strcmp(path, "-") == 0) {
        log->fd = 1;
        return 0;
    }
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0)
        return fd;
    log->fd = fd;
    log->is_own_fd = 1;
    return 0;
}

static void start_write(gw_access_log_t *log);

static void on_written(uv_fs_t *req)
{
    gw_access_log_t *log = req->data;
    ssize_t rv = req->result;
    uv_fs_req_cleanup(req);
    log->is_writing = 0;
    if (rv < 0)
        GW_LOG_WARN("access log: write failed: %s", uv_strerror((int)rv));
    else if ((size_t)rv < log->inflight_len) {
        /* A short write: put the rest back in front of what came since. */
        size_t rest = log->inflight_len - (size_t)rv;
        char *p = malloc(rest + log->len);
        if (p != NULL) {
            memcpy(p, log->inflight + rv, rest);
            memcpy(p + rest, log->buf, log->len);
            free(log->buf);
            log->buf = p;
            log->len += rest;
        }
    }
    free(log->inflight);
    log->inflight = NULL;
    if (log->len > 0)
        start_write(log);
}

static void start_write(gw_access_log_t *log)
{
    if (log->is_writing || log->len == 0 || log->loop == NULL)
        return;
    log->inflight = log->buf;
    log->inflight_len = log->len;
    log->buf = NULL;
    log->len = 0;
    uv_buf_t b = uv_buf_init(log->inflight, (unsigned)log->inflight_len);
    log->req.data = log;
    if (uv_fs_write(log->loop, &log->req, log->fd, &b, 1, -1, on_written) == 0)
        log->is_writing = 1;
    else {
        free(log->inflight);
        log->inflight = NULL;
    }
}

static void append(gw_access_log_t *log, const char *line, size_t n)
{
    if (log->len + n > MAX_BUFFERED) {
        if (log->dropped++ % 1000 == 0)
            GW_LOG_WARN("access log: writes fall behind; %llu lines dropped so far",
                        (unsigned long long)log->dropped);
        return;
    }
    char *p = realloc(log->buf, log->len + n);
    if (p == NULL)
        return;
    memcpy(p + log->len, line, n);
    log->buf = p;
    log->len += n;
    start_write(log);
}

void gw_access_log_write(gw_access_log_t *log, const gw_access_record_t *r)
{
    if (log == NULL || log->loop == NULL)
        return;
    char stamp[40];
    gw_log_timestamp(stamp, sizeof(stamp));
    char line[MAX_LINE];
    int n = snprintf(line, sizeof(line), "%s %s %s \"%.*s\" %d %llu %llums %s %s %s\n", stamp,
                     r->client_addr ? r->client_addr : "-", r->protocol ? r->protocol : "-",
                     r->request_line_len > 0 ? r->request_line_len : 1,
                     r->request_line_len > 0 ? r->request_line : "-", r->status,
                     (unsigned long long)r->bytes_out, (unsigned long long)r->duration_ms,
                     r->backend ? r->backend : "-", r->server ? r->server : "-",
                     r->outcome ? r->outcome : "-");
    if (n > 0)
        append(log, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void gw_access_log_close(gw_access_log_t *log)
{
    if (log->loop == NULL)
        return;
    /* At exit, after the loop: a synchronous write of what is left. */
    if (log->len > 0) {
        uv_fs_t req;
        uv_buf_t b = uv_buf_init(log->buf, (unsigned)log->len);
        uv_fs_write(NULL, &req, log->fd, &b, 1, -1, NULL);
        uv_fs_req_cleanup(&req);
    }
    free(log->buf);
    free(log->inflight);
    if (log->is_own_fd) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, log->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    log->loop = NULL;
}
