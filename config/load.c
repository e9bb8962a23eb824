/*
 * The command line: flags are rows of the same option table the file uses
 * (config/options.c), applied after the file so they override it. Gateway
 * flags set cfg_t; listener flags set the listener named "" (the one
 * --listen makes, or bare [listen] in the file); backend flags set the
 * backend named "default" (bare [backend], or [backend default], or made by
 * the first backend flag).
 */
#include "config/options.h"

#include <stdlib.h>
#include <string.h>

/* ---- help ---- */

static const char *metavar(const cfg_option_t *o)
{
    if (o->what != NULL && o->type != OPT_ENUM)
        return o->what;
    switch (o->type) {
    case OPT_ADDR:
        return "HOST:PORT";
    case OPT_UINT32:
        return "N";
    case OPT_DURATION_MS:
        return "DURATION";
    case OPT_SIZE32:
    case OPT_SIZE64:
        return "SIZE";
    case OPT_BOOL:
        return "on|off";
    case OPT_STRING:
        return "VALUE";
    case OPT_PATH:
    case OPT_CERT:
    case OPT_KEY:
        return "FILE";
    case OPT_NAME:
        return "NAME";
    case OPT_SERVER_LIST:
        return "HOST:PORT";
    case OPT_STATUS_RANGE:
        return "RANGE";
    default:
        return NULL;
    }
}

/* A space that print_wrapped() does not break at. */
#define NBSP '\x01'

/* Prints text after a 6-space indent, wrapped at 79 columns on spaces. */
static void print_wrapped(FILE *out, const char *text)
{
    const int indent = 6, width = 79;
    int col = indent;

    fprintf(out, "%*s", indent, "");
    while (*text != '\0') {
        int len = (int)strcspn(text, " ");
        if (col > indent && col + 1 + len > width) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        for (int i = 0; i < len; i++)
            fputc(text[i] == NBSP ? ' ' : text[i], out);
        col += len;
        text += len;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

static void print_option(FILE *out, const cfg_option_t *o)
{
    const char *mv = metavar(o);
    char text[512];

    if (o->flag != NULL)
        fprintf(out, "  --%s", o->flag);
    else
        fprintf(out, "  %s", o->key);
    if (o->type == OPT_ENUM) {
        for (int k = 0; o->names[k] != NULL; k++)
            fprintf(out, "%c%s", k == 0 ? ' ' : '|', o->names[k]);
    } else if (mv != NULL) {
        fprintf(out, " %s", mv);
    }
    fputc('\n', out);
    if (o->def != NULL)
        snprintf(text, sizeof(text), "%s (default%c%s)", o->help, NBSP, o->def);
    else
        snprintf(text, sizeof(text), "%s", o->help);
    print_wrapped(out, text);
    if (o->key != NULL)
        fprintf(out, "      config file: [%s%s] %s\n", cfg__section_str(o->scope),
                o->scope == SCOPE_GATEWAY || o->scope == SCOPE_ADMIN ? "" : " NAME", o->key);
}

static void print_usage(FILE *out)
{
    static const char *const headings[NSCOPES] = {
        "gateway options",
        "listener options (flags apply to --listen)",
        "backend options (flags apply to the backend named default)",
        "route keys (file only)",
        "admin options",
    };

    fprintf(out, "usage: h2gw --listen HOST:PORT --backend HOST:PORT [options]\n"
                 "       h2gw --config FILE [options]\n\n"
                 "HTTP/2 gateway for HTTP/1.1 backends. Flags override the config file;\n"
                 "both --name value and --name=value work. Durations take ms, s, m or h\n"
                 "(bare numbers are seconds); sizes take k, m or g (powers of 1024).\n\n"
                 "The config file is INI with sections [gateway], [admin], [listen NAME],\n"
                 "[backend NAME] and [route NAME]; each [listen], [backend] and [route]\n"
                 "section declares one more. Listener flags apply to bare [listen] (or the\n"
                 "listener --listen makes); backend flags apply to [backend default] (bare\n"
                 "[backend] is the same; the first backend flag makes it if the file does\n"
                 "not), and --backend flags replace the servers the file gives it.\n"
                 "Relative file names are relative to the working directory.\n");
    for (int scope = 0; scope < NSCOPES; scope++) {
        fprintf(out, "\n%s:\n", headings[scope]);
        for (size_t i = 0; i < cfg__noptions; i++) {
            if (cfg__options[i].scope == (opt_scope_t)scope)
                print_option(out, &cfg__options[i]);
        }
    }
}

/* ---- flags ---- */

static const cfg_option_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < cfg__noptions; i++) {
        const char *flag = cfg__options[i].flag;
        if (flag != NULL && strlen(flag) == len && strncmp(flag, name, len) == 0)
            return &cfg__options[i];
    }
    return NULL;
}

static int is_config_flag(const cfg_option_t *o)
{
    return o->flag != NULL && strcmp(o->flag, "config") == 0;
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

/* What the second pass remembers between flags. */
typedef struct flag_state {
    int nlisten;             /* --listen flags seen */
    int is_certs_replaced;   /* the flag listener's file certificates are dropped */
    int is_servers_replaced; /* the default backend's file servers are dropped */
} flag_state_t;

/* The listener or backend flags apply to, made (at line 0) when the file
 * did not declare it. NULL when out of memory. */
static cfg_listener_t *flag_listener(cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].name[0] == '\0')
            return &cfg->listeners[i];
    }
    return cfg__add_listener(cfg, "", 0);
}

static cfg_backend_t *flag_backend(cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if (strcmp(cfg->backends[i].name, "default") == 0)
            return &cfg->backends[i];
    }
    return cfg__add_backend(cfg, "default", 0);
}

/* Applies one flag; prints and returns -1 on error. */
static int apply_flag(cfg_t *cfg, flag_state_t *st, const cfg_option_t *o, const char *value,
                      FILE *err)
{
    char msg[640];
    void *obj = cfg;

    if (o->scope == SCOPE_LISTENER) {
        cfg_listener_t *l;
        if (o->type == OPT_ADDR && ++st->nlisten > 1) {
            /* Printed once, however many more there are. */
            if (st->nlisten == 2)
                fprintf(err, "h2gw: --listen given twice; use a config file for several "
                             "listeners\n");
            return -1;
        }
        l = flag_listener(cfg);
        if (l == NULL)
            goto oom;
        /* Certificates on the command line replace the file's for this
         * listener, as servers do for the default backend: the n-th key of
         * one list must not pair with a certificate of the other. */
        if ((o->type == OPT_CERT || o->type == OPT_KEY) && !st->is_certs_replaced) {
            cfg__clear_certs(l);
            st->is_certs_replaced = 1;
        }
        obj = l;
    } else if (o->scope == SCOPE_BACKEND) {
        cfg_backend_t *b = flag_backend(cfg);
        if (b == NULL)
            goto oom;
        if (o->type == OPT_SERVER_LIST && !st->is_servers_replaced) {
            cfg__clear_servers(b);
            st->is_servers_replaced = 1;
        }
        obj = b;
    }
    if (cfg__set_option(obj, o, value != NULL ? value : "", 0, msg, sizeof(msg)) != 0) {
        fprintf(err, "h2gw: %s\n", msg);
        return -1;
    }
    return 0;
oom:
    fprintf(err, "h2gw: --%s: out of memory\n", o->flag);
    return -1;
}

int cfg_from_args(cfg_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    const cfg_option_t *opt;
    const char *value, *config_path = NULL;
    flag_state_t st = {0};
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
        if (is_config_flag(opt))
            config_path = value;
    }

    if (config_path != NULL) {
        char msg[640];

        if (cfg__set_option(cfg, find_flag("config", 6), config_path, 0, msg, sizeof(msg)) != 0) {
            fprintf(err, "h2gw: %s\n", msg);
            nerr++;
        } else {
            nerr += cfg_load_file(cfg, cfg->config_file, err);
        }
    }

    /* Pass 2: values, in order, so a repeated flag's last value wins (and
     * repeated --backend, --tls-cert and --tls-key add up). */
    for (int i = 1; i < argc; i++) {
        if (next_flag(argc, argv, &i, &opt, &value, NULL) != 0)
            continue;
        if (is_config_flag(opt))
            continue; /* read above */
        if (apply_flag(cfg, &st, opt, value, err) != 0)
            nerr++;
    }

    /* Validation would mostly repeat what a refused value already said
     * ("no listener" after "--listen: invalid address"), so it waits for a
     * configuration whose every value parsed. */
    if (nerr == 0)
        nerr += cfg_validate(cfg, err);
    if (nerr > 0)
        return CFG_EXIT_USAGE;
    if (cfg->check_only)
        return CFG_CHECK; /* the gateway loads the certificates, then says OK */
    return CFG_RUN;
}
