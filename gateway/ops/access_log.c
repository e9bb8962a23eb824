#include "gateway/ops/access_log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/core/log.h"

/* Lines beyond this much unwritten text are dropped (and counted). */
#define MAX_BUFFERED (256 * 1024)
#define MAX_LINE 2048

static int open_path(const char *path)
{
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, NULL);
    uv_fs_req_cleanup(&req);
    return fd;
}

int gw_access_log_open(gw_access_log_t *log, uv_loop_t *loop, const char *path, int is_json)
{
    memset(log, 0, sizeof(*log));
    log->loop = loop;
    log->is_json = is_json;
    if (strcmp(path, "-") == 0) {
        log->fd = 1;
        return 0;
    }
    int fd = open_path(path);
    if (fd < 0)
        return fd;
    log->path = strdup(path);
    if (log->path == NULL) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, fd, NULL);
        uv_fs_req_cleanup(&req);
        return UV_ENOMEM;
    }
    log->fd = fd;
    log->is_own_fd = 1;
    return 0;
}

/* Swaps in a new descriptor for the same name; on failure the old one
 * stays (lines keep going to the rotated file rather than nowhere). */
static void reopen_now(gw_access_log_t *log)
{
    log->is_reopen_due = 0;
    int fd = open_path(log->path);
    if (fd < 0) {
        GW_LOG_ERROR("access log %s: cannot reopen: %s", log->path, uv_strerror(fd));
        return;
    }
    uv_fs_t req;
    uv_fs_close(NULL, &req, log->fd, NULL);
    uv_fs_req_cleanup(&req);
    log->fd = fd;
}

void gw_access_log_reopen(gw_access_log_t *log)
{
    if (log == NULL || log->loop == NULL || !log->is_own_fd)
        return;
    if (log->is_writing)
        log->is_reopen_due = 1; /* on_written reopens before the next write */
    else
        reopen_now(log);
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
    if (log->is_reopen_due)
        reopen_now(log);
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

/* A growing line in a fixed buffer; what does not fit is cut. */
typedef struct line {
    char buf[MAX_LINE];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - 1 - l->len)
        n = sizeof(l->buf) - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void putf(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(line_t *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof(l->buf) - l->len ? (size_t)n : sizeof(l->buf) - 1 - l->len;
}

/* A JSON string (RFC 8259): quotes, backslash and control bytes escaped;
 * bytes above 0x7f pass as they are (they came through HTTP validation). */
static void put_json_str(line_t *l, const char *s, size_t n)
{
    if (s == NULL) {
        put(l, "null", 4);
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            putf(l, "\\u%04x", c);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_json_cstr(line_t *l, const char *s)
{
    put_json_str(l, s, s != NULL ? strlen(s) : 0);
}

static void format_json(line_t *l, const char *stamp, const gw_access_record_t *r)
{
    putf(l, "{\"time\":\"%s\",\"client\":", stamp);
    put_json_cstr(l, r->client_addr);
    putf(l, ",\"client_port\":%d,\"protocol\":", r->client_port);
    put_json_cstr(l, r->protocol);
    put(l, ",\"tls_version\":", 15);
    put_json_cstr(l, r->tls_version);
    put(l, ",\"sni\":", 7);
    put_json_cstr(l, r->sni);
    putf(l, ",\"stream_id\":%d,\"method\":", (int)r->stream_id);
    put_json_str(l, r->method, r->method_len);
    put(l, ",\"authority\":", 13);
    put_json_str(l, r->authority, r->authority_len);
    put(l, ",\"path\":", 8);
    put_json_str(l, r->path, r->path_len);
    putf(l,
         ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu,"
         "\"queue_ms\":%lld,\"urgency\":%d,\"backend\":",
         r->status, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
         (unsigned long long)r->duration_ms, (long long)r->queue_ms, r->urgency);
    put_json_cstr(l, r->backend);
    put(l, ",\"server\":", 10);
    put_json_cstr(l, r->server);
    putf(l, ",\"upstream_reused\":%s,\"retries\":%u,\"outcome\":", r->is_reused ? "true" : "false",
         r->retries);
    put_json_cstr(l, r->outcome);
    put(l, ",\"cause\":", 9);
    put_json_cstr(l, r->cause);
    put(l, "}", 1);
}

void gw_access_log_write(gw_access_log_t *log, const gw_access_record_t *r)
{
    if (log == NULL || log->loop == NULL)
        return;
    char stamp[40];
    gw_log_timestamp(stamp, sizeof(stamp));
    line_t l = {.len = 0};
    if (log->is_json) {
        format_json(&l, stamp, r);
    } else {
        putf(&l, "%s %s %s \"%.*s\" %d %llu %llums %s %s %s", stamp,
             r->client_addr ? r->client_addr : "-", r->protocol ? r->protocol : "-",
             r->request_line_len > 0 ? r->request_line_len : 1,
             r->request_line_len > 0 ? r->request_line : "-", r->status,
             (unsigned long long)r->bytes_out, (unsigned long long)r->duration_ms,
             r->backend ? r->backend : "-", r->server ? r->server : "-",
             r->outcome ? r->outcome : "-");
    }
    l.buf[l.len++] = '\n'; /* put() keeps one byte free for it */
    append(log, l.buf, l.len);
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
    free(log->path);
    log->loop = NULL;
}
