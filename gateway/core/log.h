/*
 * Error log. One line per event on stderr, with a level; the caller that
 * decides what to do about an error is the one that logs it.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include "config/config.h"

/* Sets the most verbose level written (enum cfg_log_level). Set once at start. */
void gw_log_set_level(int level);

int gw_log_enabled(int level);

void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the current UTC time as 2026-01-02T03:04:05.678Z into buf; returns
 * its length. Shared by the error and access logs. */
size_t gw_log_timestamp(char *buf, size_t cap);

#define GW_LOG_ERROR(...) gw_log(CFG_LOG_ERROR, __VA_ARGS__)
#define GW_LOG_WARN(...) gw_log(CFG_LOG_WARN, __VA_ARGS__)
#define GW_LOG_INFO(...) gw_log(CFG_LOG_INFO, __VA_ARGS__)
#define GW_LOG_DEBUG(...)                                                                          \
    do {                                                                                           \
        if (gw_log_enabled(CFG_LOG_DEBUG))                                                         \
            gw_log(CFG_LOG_DEBUG, __VA_ARGS__);                                                    \
    } while (0)

#endif
