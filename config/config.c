/*
 * Options: one table, read by the flag parser and the INI reader alike, so a
 * new option is one row and both ways of setting it agree by construction.
 */
#include "config/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum opt_type {
    OPT_ADDR,        /* cfg_addr_t */
    OPT_UINT32,      /* uint32_t, decimal */
    OPT_DURATION_MS, /* uint64_t milliseconds */
    OPT_SIZE32,      /* uint32_t bytes, k/m/g suffixes */
    OPT_BOOL,        /* int 0/1 */
    OPT_ENUM,        /* int: index of the value in the option's names[] */
    OPT_PATH,        /* char[4096] */
    OPT_FLAG_NOARG,  /* int set to 1 by the bare flag */
    OPT_HELP,        /* handled by cfg_from_args, no storage */
    OPT_VERSION,
} opt_type_t;

typedef struct cfg_option {
    const char *flag;    /* without the leading "--" */
    const char *section; /* INI section, NULL when the file cannot set it */
    const char *key;     /* INI key */
    opt_type_t type;
    size_t offset;   /* offsetof(cfg_t, field) */
    const char *def; /* default as a user would write it; NULL for none */
    uint64_t min, max;
    const char *help;
    const char *const *names; /* OPT_ENUM: the accepted words, NULL-terminated */
    const char *what;         /* OPT_ENUM: what a value is, for errors ("log level") */
} cfg_option_t;

#define MS_PER_DAY (24ULL * 3600 * 1000)
#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const scheduling_modes[] = {"priority", "fifo", NULL};

static const cfg_option_t options[] = {
    {"listen", "listen", "address", OPT_ADDR, offsetof(cfg_t, listen), NULL, 0, 0,
     "address to accept clients on (required)", NULL, NULL},
    {"backend", "backend", "server", OPT_ADDR, offsetof(cfg_t, backend), NULL, 0, 0,
     "HTTP/1.1 server to forward requests to (required)", NULL, NULL},
    {"backend-max-connections", "backend", "max_connections", OPT_UINT32,
     offsetof(cfg_t, backend_max_connections), "100", 1, 100000,
     "keep-alive connections per backend server, busy or idle", NULL, NULL},
    {"backend-idle-timeout", "backend", "idle_timeout", OPT_DURATION_MS,
     offsetof(cfg_t, backend_idle_timeout_ms), "4s", 1, MS_PER_DAY,
     "how long an idle pooled connection is kept", NULL, NULL},
    {"backend-connect-timeout", "backend", "connect_timeout", OPT_DURATION_MS,
     offsetof(cfg_t, backend_connect_timeout_ms), "3s", 1, MS_PER_DAY,
     "time allowed to connect to a backend", NULL, NULL},
    {"backend-response-timeout", "backend", "response_timeout", OPT_DURATION_MS,
     offsetof(cfg_t, backend_response_timeout_ms), "60s", 1, MS_PER_DAY,
     "time from the request fully sent to the response head", NULL, NULL},
    {"max-concurrent-streams", "gateway", "max_concurrent_streams", OPT_UINT32,
     offsetof(cfg_t, max_concurrent_streams), "100", 1, INT32_MAX,
     "HTTP/2 streams a client may open at once", NULL, NULL},
    {"max-header-list-size", "gateway", "max_header_list_size", OPT_SIZE32,
     offsetof(cfg_t, max_header_list_size), "64k", KIB, 16 * MIB,
     "largest request header list, and largest backend response head", NULL, NULL},
    /* Becomes the HTTP/2 stream window, which cannot exceed 2^31-1. */
    {"request-buffer-size", "gateway", "request_buffer_size", OPT_SIZE32,
     offsetof(cfg_t, request_buffer_size), "64k", 16 * KIB, 16 * MIB,
     "request body bytes buffered per stream (the HTTP/2 stream window)", NULL, NULL},
    {"response-buffer-size", "gateway", "response_buffer_size", OPT_SIZE32,
     offsetof(cfg_t, response_buffer_size), "256k", 16 * KIB, GIB,
     "response body bytes buffered per stream before backend reads pause", NULL, NULL},
    {"max-connections", "gateway", "max_connections", OPT_UINT32, offsetof(cfg_t, max_connections),
     "10000", 1, 10000000, "client connections open at once", NULL, NULL},
    {"log-level", "gateway", "log_level", OPT_ENUM, offsetof(cfg_t, log_level), "warn", 0, 0,
     "error, warn, info or debug", log_levels, "log level"},
    {"backend-scheduling", "backend", "scheduling", OPT_ENUM, offsetof(cfg_t, backend_scheduling),
     "priority", 0, 0, "order of requests waiting for a connection: priority or fifo",
     scheduling_modes, "scheduling"},
    {"priority-max-wait", "backend", "priority_max_wait", OPT_DURATION_MS,
     offsetof(cfg_t, priority_max_wait_ms), "1s", 1, MS_PER_DAY,
     "a waiting request older than this goes first, whatever its urgency", NULL, NULL},
    {"priority-reserved-connections", "backend", "priority_reserved_connections", OPT_UINT32,
     offsetof(cfg_t, priority_reserved_connections), "0", 0, 100000,
     "connections per server kept for urgency 0-2 requests", NULL, NULL},
    {"config", NULL, NULL, OPT_PATH, offsetof(cfg_t, config_file), NULL, 0, 0,
     "INI file to read first; flags override it", NULL, NULL},
    {"check", NULL, NULL, OPT_FLAG_NOARG, offsetof(cfg_t, check_only), NULL, 0, 0,
     "validate the configuration and exit", NULL, NULL},
    {"help", NULL, NULL, OPT_HELP, 0, NULL, 0, 0, "print this help and exit", NULL, NULL},
    {"version", NULL, NULL, OPT_VERSION, 0, NULL, 0, 0, "print the version and exit", NULL, NULL},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* ---- value parsers ---- */

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


const char *cfg_log_level_str(int level)
{
    if (level < CFG_LOG_ERROR || level > CFG_LOG_DEBUG)
        return "unknown";
    return log_levels[level];
}

/* ---- one option ---- */

/* Bounds as a user writes them: "16k" rather than 16384. */
static void format_bound(const cfg_option_t *o, uint64_t v, char *buf, size_t cap)
{
    if (o->type == OPT_SIZE32 && v != 0) {
        if (v % GIB == 0)
            snprintf(buf, cap, "%llug", (unsigned long long)(v / GIB));
        else if (v % MIB == 0)
            snprintf(buf, cap, "%llum", (unsigned long long)(v / MIB));
        else if (v % KIB == 0)
            snprintf(buf, cap, "%lluk", (unsigned long long)(v / KIB));
        else
            snprintf(buf, cap, "%llu", (unsigned long long)v);
    } else if (o->type == OPT_DURATION_MS && v != 0) {
        if (v % 3600000 == 0)
            snprintf(buf, cap, "%lluh", (unsigned long long)(v / 3600000));
        else if (v % 60000 == 0)
            snprintf(buf, cap, "%llum", (unsigned long long)(v / 60000));
        else if (v % 1000 == 0)
            snprintf(buf, cap, "%llus", (unsigned long long)(v / 1000));
        else
            snprintf(buf, cap, "%llums", (unsigned long long)v);
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)v);
    }
}

static int check_range(const cfg_option_t *o, const char *s, uint64_t v, char *msg, size_t cap)
{
    char lo[32], hi[32];

    if (v >= o->min && v <= o->max)
        return 0;
    format_bound(o, o->min, lo, sizeof(lo));
    format_bound(o, o->max, hi, sizeof(hi));
    snprintf(msg, cap, "'%s' is out of range (%s..%s)", s, lo, hi);
    return -1;
}

/* Parses s into the field of o. On failure cfg is unchanged and msg says
 * why, without the "--flag:" or "FILE:LINE:" prefix the caller adds. */
static int set_option(cfg_t *cfg, const cfg_option_t *o, const char *s, char *msg, size_t cap)
{
    char *field = (char *)cfg + o->offset;
    uint64_t v;
    int b;

    switch (o->type) {
    case OPT_ADDR: {
        cfg_addr_t a;
        if (cfg_parse_addr(s, &a) != 0) {
            snprintf(msg, cap, "invalid address '%s' (expected HOST:PORT or [IPv6]:PORT)", s);
            return -1;
        }
        memcpy(field, &a, sizeof(a));
        return 0;
    }
    case OPT_UINT32:
        if (cfg_parse_uint(s, &v) != 0) {
            snprintf(msg, cap, "invalid number '%s'", s);
            return -1;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return -1;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case OPT_SIZE32:
        if (cfg_parse_size(s, &v) != 0) {
            snprintf(msg, cap, "invalid size '%s' (expected e.g. 512, 64k, 16m, 1g)", s);
            return -1;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return -1;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case OPT_DURATION_MS:
        if (cfg_parse_duration_ms(s, &v) != 0) {
            snprintf(msg, cap, "invalid duration '%s' (expected e.g. 250ms, 5s, 2m, 1h)", s);
            return -1;
        }
        if (check_range(o, s, v, msg, cap) != 0)
            return -1;
        *(uint64_t *)(void *)field = v;
        return 0;
    case OPT_BOOL:
        if (cfg_parse_bool(s, &b) != 0) {
            snprintf(msg, cap, "invalid boolean '%s' (expected on/off, yes/no, true/false, 1/0)",
                     s);
            return -1;
        }
        *(int *)(void *)field = b;
        return 0;
    case OPT_ENUM: {
        char expected[128] = "";
        for (int i = 0; o->names[i] != NULL; i++) {
            if (strcasecmp(s, o->names[i]) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
            size_t len = strlen(expected);
            snprintf(expected + len, sizeof(expected) - len, "%s%s",
                     i == 0 ? "" : o->names[i + 1] == NULL ? " or " : ", ", o->names[i]);
        }
        snprintf(msg, cap, "invalid %s '%s' (expected %s)", o->what, s, expected);
        return -1;
    }
    case OPT_PATH:
        if (s[0] == '\0' || strlen(s) >= sizeof(cfg->config_file)) {
            snprintf(msg, cap, "invalid path '%s'", s);
            return -1;
        }
        strcpy(field, s);
        return 0;
    case OPT_FLAG_NOARG:
        *(int *)(void *)field = 1;
        return 0;
    case OPT_HELP:
    case OPT_VERSION:
        return 0;
    }
    snprintf(msg, cap, "internal error: unknown option type");
    return -1;
}

void cfg_defaults(cfg_t *cfg)
{
    char msg[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NOPTIONS; i++) {
        /* The table's defaults are valid by construction (test_config checks). */
        if (options[i].def != NULL)
            (void)set_option(cfg, &options[i], options[i].def, msg, sizeof(msg));
    }
}

/* ---- INI file ---- */

enum section_kind { SEC_NONE, SEC_GATEWAY, SEC_LISTEN, SEC_BACKEND, SEC_UNKNOWN };

typedef struct file_ctx {
    cfg_t *cfg;
    const char *path;
    FILE *fp;
    FILE *err;
    int lineno; /* line last handed to inih */
    int nerr;
    enum section_kind section;
    char listen_name[128]; /* full name of the first [listen ...] section */
    char backend_name[128];
} file_ctx_t;

__attribute__((format(printf, 2, 3))) static void file_error(file_ctx_t *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(c->err, "%s:%d: ", c->path, c->lineno);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fputc('\n', c->err);
    c->nerr++;
}

static const char *section_str(enum section_kind k)
{
    switch (k) {
    case SEC_GATEWAY:
        return "gateway";
    case SEC_LISTEN:
        return "listen";
    case SEC_BACKEND:
        return "backend";
    default:
        return "?";
    }
}

/* A "[...]" line. Sections are matched by their first word so that
 * "[backend main]" names a backend; only one listener and one backend exist
 * for now, so a second, differently named one is an error rather than a
 * silent override. */
static void on_section_line(file_ctx_t *c, char *line)
{
    char *end = strchr(line, ']');
    char name[128], *start;
    char *slot = NULL;
    size_t n, word_len;

    c->section = SEC_UNKNOWN;
    if (end == NULL) {
        file_error(c, "unterminated section header (missing ']')");
        return;
    }
    /* The name between the brackets, with whitespace trimmed and inner runs
     * collapsed to one space, so "[listen  a ]" is "[listen a]". */
    start = line + 1;
    n = 0;
    while (start < end && n < sizeof(name) - 1) {
        if (*start == ' ' || *start == '\t') {
            start += strspn(start, " \t");
            if (n > 0 && start < end)
                name[n++] = ' ';
            continue;
        }
        name[n++] = *start++;
    }
    name[n] = '\0';
    word_len = strcspn(name, " \t");

    if (strcmp(name, "gateway") == 0) {
        c->section = SEC_GATEWAY;
    } else if (word_len == 6 && strncmp(name, "listen", 6) == 0) {
        c->section = SEC_LISTEN;
        slot = c->listen_name;
    } else if (word_len == 7 && strncmp(name, "backend", 7) == 0) {
        c->section = SEC_BACKEND;
        slot = c->backend_name;
    } else {
        file_error(c, "unknown section [%s]", name);
        return;
    }
    if (slot == NULL)
        return;
    if (slot[0] == '\0') {
        strcpy(slot, name);
    } else if (strcmp(slot, name) != 0) {
        file_error(c, "only one [%s] section is supported (first was [%s])",
                   section_str(c->section), slot);
        c->section = SEC_UNKNOWN; /* its keys are not applied */
    }
}

/* inih's reader hook. Counting lines here is how the handler learns its line
 * number (Debian builds inih without INI_HANDLER_LINENO). It also removes
 * leading whitespace, so indented keys are plain keys instead of inih's
 * multi-line continuations; it follows sections itself, because inih does
 * not call the handler for a section line; and it reports (and blanks) lines
 * inih would refuse, because inih only returns the first such line. */
static char *ini_on_read_line(char *str, int num, void *stream)
{
    file_ctx_t *c = stream;
    size_t len;
    char *start;

    if (fgets(str, num, c->fp) == NULL)
        return NULL;
    c->lineno++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(c->fp)) {
        int ch;
        while ((ch = fgetc(c->fp)) != EOF && ch != '\n')
            ;
        file_error(c, "line too long (at most %d characters)", num - 3);
        str[0] = '\0';
        return str;
    }

    /* inih skips a UTF-8 BOM itself, but only where it sees it first. */
    if (c->lineno == 1 && (unsigned char)str[0] == 0xEF && (unsigned char)str[1] == 0xBB &&
        (unsigned char)str[2] == 0xBF)
        memmove(str, str + 3, strlen(str + 3) + 1);
    start = str + strspn(str, " \t");
    memmove(str, start, strlen(start) + 1);
    len = strlen(str);
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        str[--len] = '\0';

    if (str[0] == '\0' || str[0] == ';' || str[0] == '#')
        return str;
    if (str[0] == '[') {
        /* Sections are tracked here, so inih need not see the line (and
         * cannot refuse it a second time). */
        on_section_line(c, str);
        str[0] = '\0';
        return str;
    }
    if (strpbrk(str, "=:") == NULL) {
        file_error(c, "expected 'key = value' or '[section]'");
        str[0] = '\0';
    }
    return str;
}

static int ini_on_value(void *user, const char *section, const char *name, const char *value)
{
    file_ctx_t *c = user;

    (void)section; /* always "": the reader keeps section lines from inih */
    if (c->section == SEC_UNKNOWN)
        return 1; /* reported once at the section line */
    if (c->section == SEC_NONE) {
        file_error(c, "'%s' is outside of any section", name);
        return 1;
    }
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cfg_option_t *o = &options[i];
        char msg[512];

        if (o->section == NULL || strcmp(o->section, section_str(c->section)) != 0 ||
            strcasecmp(o->key, name) != 0)
            continue;
        if (set_option(c->cfg, o, value, msg, sizeof(msg)) != 0)
            file_error(c, "%s: %s", name, msg);
        return 1;
    }
    file_error(c, "unknown key '%s' in [%s]", name, section_str(c->section));
    return 1;
}

int cfg_load_file(cfg_t *cfg, const char *path, FILE *err)
{
    file_ctx_t c = {.cfg = cfg, .path = path, .err = err, .section = SEC_NONE};
    int rv;

    c.fp = fopen(path, "r");
    if (c.fp == NULL) {
        fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    rv = ini_parse_stream(ini_on_read_line, &c, ini_on_value, &c);
    if (ferror(c.fp)) {
        fprintf(err, "%s: read error: %s\n", path, strerror(errno));
        c.nerr++;
    }
    fclose(c.fp);

    /* The reader and the handler report everything they see and the handler
     * never fails, so a positive rv is a line inih refused for a reason the
     * reader did not anticipate. */
    if (rv > 0) {
        fprintf(err, "%s:%d: syntax error\n", path, rv);
        c.nerr++;
    } else if (rv < 0) {
        fprintf(err, "%s: cannot parse (error %d)\n", path, rv);
        c.nerr++;
    }
    return c.nerr;
}

/* ---- command line ---- */

static const char *metavar(opt_type_t t)
{
    switch (t) {
    case OPT_ADDR:
        return " HOST:PORT";
    case OPT_UINT32:
        return " N";
    case OPT_DURATION_MS:
        return " DURATION";
    case OPT_SIZE32:
        return " SIZE";
    case OPT_BOOL:
        return " BOOL";
    case OPT_PATH:
        return " FILE";
    default:
        return "";
    }
}

static void print_usage(FILE *out)
{
    fprintf(out, "usage: h2gw --listen HOST:PORT --backend HOST:PORT [options]\n"
                 "       h2gw --config FILE [options]\n\n"
                 "HTTP/2 gateway for HTTP/1.1 backends. Flags override the config file;\n"
                 "both --name value and --name=value work. Durations take ms, s, m or h\n"
                 "(bare numbers are seconds); sizes take k, m or g (powers of 1024).\n\n"
                 "options:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cfg_option_t *o = &options[i];

        fprintf(out, "  --%s%s", o->flag, metavar(o->type));
        for (int k = 0; o->type == OPT_ENUM && o->names[k] != NULL; k++)
            fprintf(out, "%c%s", k == 0 ? ' ' : '|', o->names[k]);
        fprintf(out, "\n      %s", o->help);
        if (o->def != NULL)
            fprintf(out, " (default %s)", o->def);
        if (o->section != NULL)
            fprintf(out, "\n      config file: [%s] %s", o->section, o->key);
        fputc('\n', out);
    }
}

static const cfg_option_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0)
            return &options[i];
    }
    return NULL;
}

static int takes_value(const cfg_option_t *o)
{
    return o->type != OPT_FLAG_NOARG && o->type != OPT_HELP && o->type != OPT_VERSION;
}

/* Splits argv[*i] (and maybe argv[*i + 1]) into an option and its value.
 * Returns 0 with *opt set, or -1 after printing why to err (when err is not
 * NULL, so the second pass stays quiet). */
static int next_flag(int argc, char **argv, int *i, const cfg_option_t **opt, const char **value,
                     FILE *err)
{
    const char *arg = argv[*i];
    const char *name, *eq;
    size_t len;

    *opt = NULL;
    *value = NULL;
    if (strcmp(arg, "-h") == 0) {
        *opt = find_flag("help", 4);
        return 0;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        if (err != NULL)
            fprintf(err, "h2gw: unexpected argument '%s' (options start with --)\n", arg);
        return -1;
    }
    name = arg + 2;
    eq = strchr(name, '=');
    len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    *opt = find_flag(name, len);
    if (*opt == NULL) {
        if (err != NULL)
            fprintf(err, "h2gw: unknown option '--%.*s'\n", (int)len, name);
        return -1;
    }
    if (!takes_value(*opt)) {
        if (eq != NULL) {
            if (err != NULL)
                fprintf(err, "h2gw: option '--%s' takes no value\n", (*opt)->flag);
            return -1;
        }
        return 0;
    }
    if (eq != NULL) {
        *value = eq + 1;
        return 0;
    }
    /* "--backend --listen x" is a forgotten value, not a backend named
     * "--listen". */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        if (err != NULL)
            fprintf(err, "h2gw: option '--%s' requires a value\n", (*opt)->flag);
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 0;
}

static int validate(const cfg_t *cfg, FILE *err)
{
    int nerr = 0;

    if (cfg->listen.host[0] == '\0') {
        fprintf(err, "h2gw: --listen is required\n");
        nerr++;
    }
    if (cfg->backend.host[0] == '\0') {
        fprintf(err, "h2gw: --backend is required\n");
        nerr++;
    } else if (cfg->backend.port == 0) {
        fprintf(err, "h2gw: --backend: port 0 cannot be connected to\n");
        nerr++;
    }
    return nerr;
}

int cfg_from_args(cfg_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    const cfg_option_t *opt;
    const char *value, *config_path = NULL;
    int nerr = 0;

    cfg_defaults(cfg);

    /* Pass 1: syntax, --help, --version and --config, so that the file is
     * read before any flag is applied and flags win wherever they stand. */
    for (int i = 1; i < argc; i++) {
        if (next_flag(argc, argv, &i, &opt, &value, err) != 0) {
            nerr++;
            continue;
        }
        if (opt->type == OPT_HELP) {
            print_usage(out);
            return CFG_EXIT_OK;
        }
        if (opt->type == OPT_VERSION) {
            fprintf(out, "h2gw %s\n", H2GW_VERSION);
            return CFG_EXIT_OK;
        }
        if (opt->type == OPT_PATH)
            config_path = value;
    }

    if (config_path != NULL) {
        char msg[512];
        const cfg_option_t *o = find_flag("config", 6);

        if (set_option(cfg, o, config_path, msg, sizeof(msg)) != 0) {
            fprintf(err, "h2gw: --config: %s\n", msg);
            nerr++;
        } else {
            nerr += cfg_load_file(cfg, cfg->config_file, err);
        }
    }

    /* Pass 2: values, in order, so a repeated flag's last value wins. */
    for (int i = 1; i < argc; i++) {
        char msg[512];

        if (next_flag(argc, argv, &i, &opt, &value, NULL) != 0 || opt->type == OPT_PATH)
            continue;
        if (set_option(cfg, opt, value != NULL ? value : "", msg, sizeof(msg)) != 0) {
            fprintf(err, "h2gw: --%s: %s\n", opt->flag, msg);
            nerr++;
        }
    }

    /* "required" would only repeat an error already printed for the value. */
    if (nerr == 0)
        nerr += validate(cfg, err);
    if (nerr > 0)
        return CFG_EXIT_USAGE;
    if (cfg->check_only) {
        fprintf(out, "h2gw: configuration OK\n");
        return CFG_EXIT_OK;
    }
    return CFG_RUN;
}
