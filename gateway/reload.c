#include "gateway/reload.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/core/cfg_ref.h"
#include "gateway/core/log.h"
#include "gateway/tls/tls.h"

/* "FILE:LINE: " for what the file declared, "h2gw: " for flags. */
static void print_where(const cfg_t *cfg, int line, FILE *err)
{
    if (line > 0 && cfg->config_file != NULL)
        fprintf(err, "%s:%d: ", cfg->config_file, line);
    else
        fprintf(err, "h2gw: ");
}

/* One certificate/key pair alone, so a failure names its own lines. */
static int check_pair(const cfg_t *cfg, const cfg_listener_t *l, const cfg_cert_t *cert, FILE *err)
{
    cfg_listener_t one = *l;
    char msg[512];
    one.certs = (cfg_cert_t *)cert;
    one.ncerts = 1;
    one.tls_ticket_key_file = NULL;
    gw_tls_ctx_t *ctx = gw_tls_ctx_new(&one, msg, sizeof(msg));
    if (ctx != NULL) {
        gw_tls_ctx_unref(ctx);
        return 0;
    }
    /* The key's line when the key is at fault (unreadable or not the
     * certificate's), the certificate's when it is, else the section's. */
    int line = l->line;
    if (strstr(msg, "cannot load certificate") != NULL)
        line = cert->cert_line;
    else if (strstr(msg, "key") != NULL && cert->key_file != NULL &&
             strstr(msg, cert->key_file) != NULL)
        line = cert->key_line;
    print_where(cfg, line, err);
    fprintf(err, "%s\n", msg);
    return 1;
}

int gw_reload_check_tls(const cfg_t *cfg, FILE *err)
{
    int nerr = 0;
    char msg[512];
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        int npairs_bad = 0;
        for (size_t k = 0; k < l->ncerts; k++)
            npairs_bad += check_pair(cfg, l, &l->certs[k], err);
        nerr += npairs_bad;
        if (l->ncerts == 0 || npairs_bad > 0)
            continue;
        /* Together: ticket keys, and names indexed across certificates. */
        gw_tls_ctx_t *ctx = gw_tls_ctx_new(l, msg, sizeof(msg));
        if (ctx == NULL) {
            print_where(cfg, l->line, err);
            fprintf(err, "%s\n", msg);
            nerr++;
        }
        gw_tls_ctx_unref(ctx);
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const cfg_backend_t *b = &cfg->backends[i];
        if (!b->tls)
            continue;
        gw_tls_ctx_t *ctx = gw_tls_client_ctx_new(b, msg, sizeof(msg));
        if (ctx == NULL) {
            print_where(cfg, b->line, err);
            fprintf(err, "backend %s: %s\n", b->name, msg);
            nerr++;
        }
        gw_tls_ctx_unref(ctx);
    }
    return nerr;
}

static int same_addr(const cfg_addr_t *a, const cfg_addr_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void format_addr(const cfg_addr_t *a, char *buf, size_t cap)
{
    const char *host = a->host[0] ? a->host : "0.0.0.0";
    if (strchr(host, ':') != NULL)
        snprintf(buf, cap, "[%s]:%u", host, a->port);
    else
        snprintf(buf, cap, "%s:%u", host, a->port);
}

/* "[listen NAME]" or "[listen]" (the one --listen makes). */
static void listener_str(const cfg_listener_t *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "[listen%s%s]", l->name[0] ? " " : "", l->name);
}

/* What a reload cannot change: the threads and the admin listener made at
 * start. */
static int check_unchanged(const cfg_t *cfg, const cfg_t *running, FILE *err)
{
    int nerr = 0;
    if (cfg->workers != running->workers) {
        fprintf(err, "h2gw: workers cannot change on reload (%u, running %u): restart to apply\n",
                cfg->workers, running->workers);
        nerr++;
    }
    if (cfg->has_admin != running->has_admin ||
        (cfg->has_admin && !same_addr(&cfg->admin_addr, &running->admin_addr))) {
        fprintf(err, "h2gw: the admin address cannot change on reload: restart to apply\n");
        nerr++;
    }
    return nerr;
}

/* New sockets are opened while the running ones still listen, so a new
 * address that a running listener holds (one this reload removes or
 * moves) cannot be bound yet: said here, with the reason, rather than as
 * an address in use. Port 0 is never held. */
static int check_addresses_free(const cfg_t *cfg, const cfg_t *running, FILE *err)
{
    int nerr = 0;
    char s[CFG_NAME_MAX + 16], r[CFG_NAME_MAX + 16], a[CFG_HOST_MAX + 16];
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        if (l->addr.port == 0 || gw_reload_kept_listener(running, l) != NULL)
            continue;
        for (size_t k = 0; k < running->nlisteners; k++) {
            const cfg_listener_t *held = &running->listeners[k];
            if (!same_addr(&l->addr, &held->addr))
                continue;
            listener_str(l, s, sizeof(s));
            listener_str(held, r, sizeof(r));
            format_addr(&l->addr, a, sizeof(a));
            print_where(cfg, l->line, err);
            fprintf(err,
                    "%s address %s is held by the running %s until this reload is applied: "
                    "move it in two reloads\n",
                    s, a, r);
            nerr++;
        }
    }
    return nerr;
}

const cfg_listener_t *gw_reload_find_listener(const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    return NULL;
}

const cfg_listener_t *gw_reload_kept_listener(const cfg_t *running, const cfg_listener_t *l)
{
    const cfg_listener_t *r = gw_reload_find_listener(running, l->name);
    return r != NULL && same_addr(&r->addr, &l->addr) ? r : NULL;
}

/* Logs each line of what a checker printed. */
static void log_lines(char *text)
{
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        GW_LOG_ERROR("reload: %s", line);
}

const cfg_t *gw_reload_load(int argc, char **argv, const cfg_t *running)
{
    char *text = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&text, &len);
    FILE *out = fopen("/dev/null", "w");
    cfg_t *cfg = gw_cfg_ref_new();
    int is_ok = 0;
    if (err == NULL || out == NULL || cfg == NULL) {
        GW_LOG_ERROR("reload: out of memory");
        goto done;
    }
    int rv = cfg_from_args(cfg, argc, argv, out, err);
    if (rv == CFG_RUN)
        is_ok = gw_reload_check_tls(cfg, err) == 0;
    if (rv == CFG_RUN)
        is_ok = check_unchanged(cfg, running, err) + check_addresses_free(cfg, running, err) == 0 &&
                is_ok;
    else if (rv == CFG_EXIT_OK)
        fprintf(err, "h2gw: the arguments at start no longer run a gateway\n");
done:
    if (err != NULL) {
        fclose(err);
        log_lines(text);
    }
    free(text);
    if (out != NULL)
        fclose(out);
    if (!is_ok) {
        gw_cfg_ref_release(cfg);
        return NULL;
    }
    return cfg;
}
