/*
 * Validation: what no single value can say alone. Every rule is checked and
 * every failure printed, each naming where the thing was declared: the
 * section's line in the file ("FILE:LINE: ...") or, for what flags made,
 * the flag ("h2gw: --tls-cert ..."). Option names follow the same choice:
 * file keys for file sections, flags for flag-made objects.
 *
 * Files are only checked for readability here; their contents (PEM) are the
 * gateway's business when it loads them.
 */
#include "config/options.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

typedef struct vctx {
    const cfg_t *cfg;
    FILE *err;
    int nerr;
} vctx_t;

/* Prints "FILE:LINE: " (line > 0) or "h2gw: " (line 0: made by flags),
 * then the message. */
__attribute__((format(printf, 3, 4))) static void verr(vctx_t *v, int line, const char *fmt, ...)
{
    va_list ap;

    if (line > 0)
        fprintf(v->err, "%s:%d: ", v->cfg->config_file != NULL ? v->cfg->config_file : "?", line);
    else
        fprintf(v->err, "h2gw: ");
    va_start(ap, fmt);
    vfprintf(v->err, fmt, ap);
    va_end(ap);
    fputc('\n', v->err);
    v->nerr++;
}

/* An option's name as the user wrote it at line: key, or --flag. */
typedef struct {
    char s[80];
} name_t;

static name_t nm(opt_scope_t scope, const char *key, int line)
{
    name_t n;

    cfg__key_name(scope, key, line, n.s, sizeof(n.s));
    return n;
}

/* fopen "r" says the file exists and may be read; a directory opens too, so
 * that is refused by its type (without reading, which could consume a byte
 * of a pipe such as <(command)). */
static void check_readable(vctx_t *v, opt_scope_t scope, const char *key, int line,
                           const char *path)
{
    struct stat st;
    FILE *fp;
    int e = 0;

    if (path == NULL)
        return;
    fp = fopen(path, "r");
    if (fp == NULL)
        e = errno;
    else if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode))
        e = EISDIR;
    if (fp != NULL)
        fclose(fp);
    if (e != 0)
        verr(v, line, "%s: cannot read '%s': %s", nm(scope, key, line).s, path, strerror(e));
}

static void format_addr(const cfg_addr_t *a, char *buf, size_t cap)
{
    if (strchr(a->host, ':') != NULL)
        snprintf(buf, cap, "[%s]:%u", a->host, a->port);
    else
        snprintf(buf, cap, "%s:%u", a->host, a->port);
}

/* "[listen public] (line 3)" or "--listen". */
static void listener_where(const cfg_listener_t *l, char *buf, size_t cap)
{
    char s[CFG_NAME_MAX + 16];

    if (l->line == 0) {
        snprintf(buf, cap, "--listen");
        return;
    }
    cfg__listener_str(l, s, sizeof(s));
    snprintf(buf, cap, "%s (line %d)", s, l->line);
}

static void validate_listener(vctx_t *v, const cfg_t *cfg, size_t idx)
{
    const cfg_listener_t *l = &cfg->listeners[idx];
    const int line = l->line;
    /* What a listener without certificates cannot use, by file key. */
    const struct {
        const char *key;
        int is_set;
    } tls_only[] = {
        {"tls_ciphers", l->tls_ciphers != NULL},
        {"tls_min_version", l->tls_min_version != CFG_TLS_1_2},
        {"tls_ticket_key_file", l->tls_ticket_key_file != NULL},
        {"tls_client_ca", l->tls_client_ca != NULL},
        {"verify_client", l->verify_client != CFG_VERIFY_OFF},
        {"watch_certificates", l->watch_certificates},
    };
    char s[CFG_NAME_MAX + 16];

    if (!l->has_addr) {
        cfg__listener_str(l, s, sizeof(s));
        if (line > 0)
            verr(v, line, "%s has no address", s);
        else
            verr(v, line, "listener options given without --listen");
    }
    for (size_t j = 0; l->has_addr && j < idx; j++) {
        const cfg_listener_t *o = &cfg->listeners[j];
        char addr[CFG_HOST_MAX + 16], where[CFG_NAME_MAX + 32];
        /* Port 0 asks the kernel for a free port: those never collide. */
        if (!o->has_addr || l->addr.port == 0 || o->addr.port != l->addr.port ||
            strcmp(o->addr.host, l->addr.host) != 0)
            continue;
        format_addr(&l->addr, addr, sizeof(addr));
        listener_where(o, where, sizeof(where));
        verr(v, line, "%s %s is already used by %s", nm(SCOPE_LISTENER, "address", line).s, addr,
             where);
        break;
    }

    for (size_t i = 0; i < l->ncerts; i++) {
        const cfg_cert_t *c = &l->certs[i];
        check_readable(v, SCOPE_LISTENER, "tls_cert", c->cert_line, c->cert_file);
        if (c->key_file == NULL)
            verr(v, c->cert_line, "%s '%s' has no %s",
                 nm(SCOPE_LISTENER, "tls_cert", c->cert_line).s, c->cert_file,
                 nm(SCOPE_LISTENER, "tls_key", c->cert_line).s);
        else
            check_readable(v, SCOPE_LISTENER, "tls_key", c->key_line, c->key_file);
    }
    check_readable(v, SCOPE_LISTENER, "tls_ticket_key_file", line, l->tls_ticket_key_file);
    check_readable(v, SCOPE_LISTENER, "tls_client_ca", line, l->tls_client_ca);

    for (size_t i = 0; l->ncerts == 0 && i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
        if (tls_only[i].is_set)
            verr(v, line, "%s needs %s", nm(SCOPE_LISTENER, tls_only[i].key, line).s,
                 nm(SCOPE_LISTENER, "tls_cert", line).s);
    }
    if (l->verify_client != CFG_VERIFY_OFF && l->tls_client_ca == NULL)
        verr(v, line, "%s needs %s", nm(SCOPE_LISTENER, "verify_client", line).s,
             nm(SCOPE_LISTENER, "tls_client_ca", line).s);
    if (l->client_cert_header != NULL && l->verify_client == CFG_VERIFY_OFF)
        verr(v, line, "%s needs %s optional or require",
             nm(SCOPE_LISTENER, "client_cert_header", line).s,
             nm(SCOPE_LISTENER, "verify_client", line).s);
}

static void validate_backend(vctx_t *v, const cfg_backend_t *b)
{
    const int line = b->line;
    char s[CFG_NAME_MAX + 16], t1[32], t2[32];

    if (b->nservers == 0) {
        cfg__backend_str(b, s, sizeof(s));
        if (line > 0)
            verr(v, line, "%s has no server", s);
        else
            verr(v, line, "backend options given without --backend");
    }
    check_readable(v, SCOPE_BACKEND, "tls_ca_file", line, b->tls_ca_file);
    if (b->priority_reserved_connections >= b->max_connections)
        verr(v, line, "%s (%u) must be less than %s (%u)",
             nm(SCOPE_BACKEND, "priority_reserved_connections", line).s,
             b->priority_reserved_connections, nm(SCOPE_BACKEND, "max_connections", line).s,
             b->max_connections);
    if (b->eject_time_ms > b->eject_time_max_ms) {
        cfg__format_value(OPT_DURATION_MS, b->eject_time_ms, t1, sizeof(t1));
        cfg__format_value(OPT_DURATION_MS, b->eject_time_max_ms, t2, sizeof(t2));
        verr(v, line, "%s (%s) is longer than %s (%s)", nm(SCOPE_BACKEND, "eject_time", line).s, t1,
             nm(SCOPE_BACKEND, "eject_time_max", line).s, t2);
    }
}

int cfg_validate(cfg_t *cfg, FILE *err)
{
    vctx_t v = {.cfg = cfg, .err = err};

    if (cfg->nlisteners == 0)
        verr(&v, 0, "no listener (give --listen HOST:PORT or a [listen NAME] section)");
    for (size_t i = 0; i < cfg->nlisteners; i++)
        validate_listener(&v, cfg, i);

    if (cfg->nbackends == 0)
        verr(&v, 0, "no backend (give --backend HOST:PORT or a [backend NAME] section)");
    cfg->default_backend = 0;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        validate_backend(&v, &cfg->backends[i]);
        if (strcmp(cfg->backends[i].name, "default") == 0)
            cfg->default_backend = i;
    }

    for (size_t i = 0; i < cfg->nroutes; i++) {
        cfg_route_t *r = &cfg->routes[i];
        size_t j = 0;

        if (r->backend[0] == '\0') {
            verr(&v, r->line, "[route %s] has no backend", r->name);
            continue;
        }
        while (j < cfg->nbackends && strcmp(cfg->backends[j].name, r->backend) != 0)
            j++;
        if (j == cfg->nbackends)
            verr(&v, r->line, "backend '%s' is not defined", r->backend);
        else
            r->backend_index = j;
    }
    return v.nerr;
}
