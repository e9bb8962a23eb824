#include "gateway/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int max_level = CFG_LOG_WARN;
static int log_format = CFG_LOG_TEXT;

void gw_log_set_format(int format)
{
    log_format = format;
}

void gw_log_set_level(int level)
{
    max_level = level;
}

int gw_log_enabled(int level)
{
    return level <= max_level;
}

size_t gw_log_timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The message as one JSON object: {"time":..,"level":..,"msg":..}, with
 * the message escaped (RFC 8259). */
static void to_json(char *line, size_t cap, int level, const char *msg)
{
    char stamp[40];
    gw_log_timestamp(stamp, sizeof(stamp));
    size_t n = (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", stamp,
                                cfg_log_level_str(level));
    for (const char *p = msg; *p != '\0' && n + 8 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(line + n, cap - n, "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    snprintf(line + n, cap - n, "\"}");
}

static void write_line(int level, uint32_t suppressed, const char *fmt, va_list ap)
{
    char msg[1024], line[2200];
    size_t n = (size_t)vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (suppressed > 0)
        snprintf(msg + n, sizeof(msg) - n, " (%u more in the last 1 s)", suppressed);
    if (log_format == CFG_LOG_JSON) {
        to_json(line, sizeof(line) - 1, level, msg);
    } else {
        size_t k = gw_log_timestamp(line, sizeof(line));
        snprintf(line + k, sizeof(line) - k - 1, " %s %s", cfg_log_level_str(level), msg);
    }
    /* One write() per line keeps lines whole when several workers log at
     * once; stderr is unbuffered, so fputs would split it. */
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void gw_log(int level, const char *fmt, ...)
{
    if (!gw_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, 0, fmt, ap);
    va_end(ap);
}

void gw_log_limited(gw_log_limit_t *lim, uint64_t now_ms, int level, const char *fmt, ...)
{
    if (!gw_log_enabled(level))
        return;
    if (lim->last_ms != 0 && now_ms < lim->last_ms + 1000) {
        lim->suppressed++;
        return;
    }
    uint32_t suppressed = lim->suppressed;
    lim->last_ms = now_ms > 0 ? now_ms : 1;
    lim->suppressed = 0;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, suppressed, fmt, ap);
    va_end(ap);
}
