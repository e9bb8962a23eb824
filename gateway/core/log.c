#include "gateway/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int max_level = CFG_LOG_WARN;

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

static void write_line(int level, uint32_t suppressed, const char *fmt, va_list ap)
{
    char line[1024];
    size_t n = gw_log_timestamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", cfg_log_level_str(level));
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (suppressed > 0) {
        n = strlen(line);
        snprintf(line + n, sizeof(line) - n - 1, " (%u more in the last 1 s)", suppressed);
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
