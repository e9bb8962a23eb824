/*
 * Value parsers shared by the flag parser and the INI reader. They are
 * strict on purpose: a value either means exactly one thing or is refused,
 * so "1.5s", " 80" or "64kib" never turn silently into something else.
 */
#include "config/config.h"

#include <string.h>
#include <strings.h>

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

/* Reads decimal digits at *s into *out, advancing *s; fails on none or on
 * overflow. */
static int parse_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

int cfg_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v;

    if (parse_digits(&s, &v) != 0 || *s != '\0')
        return -1;
    *out = v;
    return 0;
}

static int mul_checked(uint64_t v, uint64_t m, uint64_t *out)
{
    if (m != 0 && v > UINT64_MAX / m)
        return -1;
    *out = v * m;
    return 0;
}

int cfg_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v;

    if (parse_digits(&s, &v) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s, units[i].unit) == 0)
            return mul_checked(v, units[i].ms, out_ms);
    }
    return -1;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
    uint64_t v, mult = 1;

    if (parse_digits(&s, &v) != 0)
        return -1;
    switch (*s) {
    case 'k':
    case 'K':
        mult = KIB;
        s++;
        break;
    case 'm':
    case 'M':
        mult = MIB;
        s++;
        break;
    case 'g':
    case 'G':
        mult = GIB;
        s++;
        break;
    default:
        break;
    }
    if (*s == 'b' || *s == 'B')
        s++;
    if (*s != '\0')
        return -1;
    return mul_checked(v, mult, out);
}

int cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Inside "[...]": an IPv6 literal, possibly with a "%zone". */
static int is_v6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.' || c == '%' || is_name_char(c);
}

int cfg_parse_addr(const char *s, cfg_addr_t *out)
{
    const char *host, *port;
    size_t host_len;
    uint64_t p;
    int is_v6 = 0;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        host = s + 1;
        host_len = (size_t)(end - host);
        port = end + 2;
        is_v6 = 1;
        if (host_len == 0)
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        host = s;
        host_len = (size_t)(colon - s);
        port = colon + 1;
    }
    if (host_len >= CFG_HOST_MAX)
        return -1;
    /* A bare IPv6 address is ambiguous ("::1:80"), so it must be bracketed;
     * the character check below refuses its colons. */
    for (size_t i = 0; i < host_len; i++) {
        if (is_v6 ? !is_v6_char(host[i]) : !is_name_char(host[i]))
            return -1;
    }
    if (cfg_parse_uint(port, &p) != 0 || p > 65535 || strlen(port) > 5)
        return -1;

    if (host_len == 0) {
        strcpy(out->host, "0.0.0.0"); /* ":8080" means every IPv4 address */
    } else {
        memcpy(out->host, host, host_len);
        out->host[host_len] = '\0';
    }
    out->port = (uint16_t)p;
    return 0;
}

int cfg_parse_server(const char *s, cfg_server_t *out)
{
    char addr[CFG_HOST_MAX + 8]; /* "[" host "]:" port */
    size_t n = strcspn(s, " \t");
    const char *rest = s + n;
    cfg_server_t srv = {.weight = 1};
    uint64_t w;

    /* A server is connected to, so it needs a host (":80" is a listen
     * address) and a port other than 0. */
    if (n == 0 || n >= sizeof(addr) || s[0] == ':')
        return -1;
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (cfg_parse_addr(addr, &srv.addr) != 0 || srv.addr.port == 0)
        return -1;
    rest += strspn(rest, " \t");
    if (*rest != '\0') {
        if (strncasecmp(rest, "weight=", 7) != 0 || cfg_parse_uint(rest + 7, &w) != 0 || w < 1 ||
            w > 1000)
            return -1;
        srv.weight = (uint32_t)w;
    }
    *out = srv;
    return 0;
}

int cfg_parse_status_range(const char *s, uint32_t *lo, uint32_t *hi)
{
    uint64_t a, b;

    if (parse_digits(&s, &a) != 0 || a > UINT32_MAX)
        return -1;
    b = a;
    if (*s == '-') {
        s++;
        if (parse_digits(&s, &b) != 0 || b > UINT32_MAX)
            return -1;
    }
    if (*s != '\0' || a > b)
        return -1;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
    return 0;
}
