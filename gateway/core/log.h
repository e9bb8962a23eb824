/*
 * Error log. One line per event on stderr, with a level; the caller that
 * decides what to do about an error is the one that logs it.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdint.h>

#include "config/config.h"

/* Sets the most verbose level written (enum cfg_log_level). Set once at start. */
void gw_log_set_level(int level);

/* Text lines or JSON objects (enum cfg_log_format). Set once at start. */
void gw_log_set_format(int format);

int gw_log_enabled(int level);

void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the current UTC time as 2026-01-02T03:04:05.678Z into buf; returns
 * its length. Shared by the error and access logs. */
size_t gw_log_timestamp(char *buf, size_t cap);

/* A rate limit for one repeating warning (the same server failing through
 * an outage): at most one line a second, the next one saying how many were
 * left out. Zero-initialized. */
typedef struct gw_log_limit {
    uint64_t last_ms;    /* when the last line was written; 0: never */
    uint32_t suppressed; /* calls since then that wrote nothing */
} gw_log_limit_t;

/* gw_log() under lim, with now_ms from the caller's loop clock. */
void gw_log_limited(gw_log_limit_t *lim, uint64_t now_ms, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define GW_LOG_ERROR(...) gw_log(CFG_LOG_ERROR, __VA_ARGS__)
#define GW_LOG_WARN(...) gw_log(CFG_LOG_WARN, __VA_ARGS__)
#define GW_LOG_INFO(...) gw_log(CFG_LOG_INFO, __VA_ARGS__)
#define GW_LOG_DEBUG(...)                                                                          \
    do {                                                                                           \
        if (gw_log_enabled(CFG_LOG_DEBUG))                                                         \
            gw_log(CFG_LOG_DEBUG, __VA_ARGS__);                                                    \
    } while (0)

#endif
