/*
 * The INI reader: inih splits lines into keys and values, and this file maps
 * sections to the objects they create and keys to rows of the option table.
 *
 *   [gateway]          the gateway's own options (may appear several times)
 *   [listen NAME]      a listener; bare [listen] is the one --listen flags set
 *   [backend NAME]     a backend; bare [backend] is the backend "default"
 *   [route NAME]       a route; the name is required
 *   [admin]            the admin listener (address)
 *
 * A key that takes one value may be given once per section ([gateway] and
 * [admin] count as one section however often they open): a second one is
 * an error at its line, not a silent "last one wins". Lists (server,
 * tls_cert, tls_key) repeat.
 *
 * Every error is reported with its line and reading goes on, so one run
 * shows them all.
 */
#include "config/options.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum section_state {
    SEC_NONE,    /* before the first section line */
    SEC_OK,      /* keys go to scope / index */
    SEC_UNKNOWN, /* a bad section line, already reported: its keys are skipped */
};

typedef struct file_ctx {
    cfg_t *cfg;
    const char *path;
    FILE *fp;
    FILE *err;
    int lineno; /* line last handed to inih */
    int nerr;
    enum section_state state;
    opt_scope_t scope;
    size_t index; /* of the listener, backend or route (arrays may move) */
    /* Every single-valued key set so far, so that a second one is an error
     * rather than a silent "last one wins". */
    struct seen_key {
        opt_scope_t scope;
        size_t index; /* as above; 0 for [gateway] and [admin] */
        size_t option;
        int line;
    } * seen;
    size_t nseen, seen_cap;
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

/* The line of an earlier section of the same kind and name, or 0. */
static int find_section(const cfg_t *cfg, opt_scope_t scope, const char *name, int *line)
{
    switch (scope) {
    case SCOPE_LISTENER:
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            if (strcmp(cfg->listeners[i].name, name) == 0) {
                *line = cfg->listeners[i].line;
                return 1;
            }
        }
        return 0;
    case SCOPE_BACKEND:
        for (size_t i = 0; i < cfg->nbackends; i++) {
            if (strcmp(cfg->backends[i].name, name) == 0) {
                *line = cfg->backends[i].line;
                return 1;
            }
        }
        return 0;
    case SCOPE_ROUTE:
        for (size_t i = 0; i < cfg->nroutes; i++) {
            if (strcmp(cfg->routes[i].name, name) == 0) {
                *line = cfg->routes[i].line;
                return 1;
            }
        }
        return 0;
    default:
        return 0;
    }
}

/* Creates the object a "[kind name]" line declares and makes it current. */
static void open_section(file_ctx_t *c, opt_scope_t scope, const char *name)
{
    static const char *const kinds[NSCOPES] = {"gateway", "listener", "backend", "route", "admin"};
    int first_line;
    void *obj = NULL;

    if (find_section(c->cfg, scope, name, &first_line)) {
        file_error(c, "duplicate %s '%s' (first at line %d)", kinds[scope], name, first_line);
        return;
    }
    switch (scope) {
    case SCOPE_LISTENER:
        obj = cfg__add_listener(c->cfg, name, c->lineno);
        c->index = c->cfg->nlisteners - 1;
        break;
    case SCOPE_BACKEND:
        obj = cfg__add_backend(c->cfg, name, c->lineno);
        c->index = c->cfg->nbackends - 1;
        break;
    case SCOPE_ROUTE:
        obj = cfg__add_route(c->cfg, name, c->lineno);
        c->index = c->cfg->nroutes - 1;
        break;
    default:
        break;
    }
    if (obj == NULL) {
        file_error(c, "out of memory");
        return;
    }
    c->state = SEC_OK;
    c->scope = scope;
}

/* A "[...]" line: the first word is the kind, the second (if any) the name. */
static void on_section_line(file_ctx_t *c, char *line)
{
    static const struct {
        const char *kind;
        opt_scope_t scope;
    } kinds[] = {{"gateway", SCOPE_GATEWAY},
                 {"listen", SCOPE_LISTENER},
                 {"backend", SCOPE_BACKEND},
                 {"route", SCOPE_ROUTE},
                 {"admin", SCOPE_ADMIN}};
    char *end = strchr(line, ']');
    char text[128], *start;
    const char *name;
    size_t n, kind_len;

    c->state = SEC_UNKNOWN;
    if (end == NULL) {
        file_error(c, "unterminated section header (missing ']')");
        return;
    }
    /* The text between the brackets, with whitespace trimmed and inner runs
     * collapsed to one space, so "[listen  a ]" is "[listen a]". */
    start = line + 1;
    n = 0;
    while (start < end && n < sizeof(text) - 1) {
        if (*start == ' ' || *start == '\t') {
            start += strspn(start, " \t");
            if (n > 0 && start < end)
                text[n++] = ' ';
            continue;
        }
        text[n++] = *start++;
    }
    text[n] = '\0';
    kind_len = strcspn(text, " ");
    name = text[kind_len] == ' ' ? text + kind_len + 1 : "";

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].kind) != kind_len || strncmp(text, kinds[i].kind, kind_len) != 0)
            continue;
        if (kinds[i].scope == SCOPE_GATEWAY || kinds[i].scope == SCOPE_ADMIN) {
            if (name[0] != '\0') {
                file_error(c, "section [%s] takes no name", kinds[i].kind);
                return;
            }
            c->state = SEC_OK;
            c->scope = kinds[i].scope;
            return;
        }
        if (name[0] != '\0' && !cfg__is_valid_name(name)) {
            file_error(c,
                       "invalid name '%s' in [%s] (letters, digits, '.', '-' or '_', at most %d)",
                       name, text, CFG_NAME_MAX - 1);
            return;
        }
        if (kinds[i].scope == SCOPE_ROUTE && name[0] == '\0') {
            file_error(c, "[route] needs a name, e.g. [route api]");
            return;
        }
        /* Bare [backend] is the backend flags apply to, as bare [listen] is
         * the listener they apply to. */
        if (kinds[i].scope == SCOPE_BACKEND && name[0] == '\0')
            name = "default";
        open_section(c, kinds[i].scope, name);
        return;
    }
    file_error(c, "unknown section [%s]", text);
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

static void *current_object(file_ctx_t *c)
{
    switch (c->scope) {
    case SCOPE_GATEWAY:
    case SCOPE_ADMIN:
        return c->cfg;
    case SCOPE_LISTENER:
        return &c->cfg->listeners[c->index];
    case SCOPE_BACKEND:
        return &c->cfg->backends[c->index];
    case SCOPE_ROUTE:
        return &c->cfg->routes[c->index];
    default:
        return NULL;
    }
}

/* Options that take a list and may repeat: servers, and certificates with
 * their keys. */
static int is_list_option(const cfg_option_t *o)
{
    return o->type == OPT_SERVER_LIST || o->type == OPT_CERT || o->type == OPT_KEY;
}

static size_t seen_index(const file_ctx_t *c)
{
    return c->scope == SCOPE_GATEWAY || c->scope == SCOPE_ADMIN ? 0 : c->index;
}

/* The line where o was set before in the current section, or 0. */
static int seen_line(const file_ctx_t *c, const cfg_option_t *o)
{
    size_t option = (size_t)(o - cfg__options), index = seen_index(c);

    for (size_t i = 0; i < c->nseen; i++) {
        const struct seen_key *k = &c->seen[i];
        if (k->scope == c->scope && k->index == index && k->option == option)
            return k->line;
    }
    return 0;
}

/* Records that o was set at this line in the current section. Returns 0, or
 * -1 when out of memory. */
static int note_key(file_ctx_t *c, const cfg_option_t *o)
{
    if (c->nseen == c->seen_cap) {
        size_t cap = c->seen_cap ? c->seen_cap * 2 : 32;
        struct seen_key *n = realloc(c->seen, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        c->seen = n;
        c->seen_cap = cap;
    }
    c->seen[c->nseen++] =
        (struct seen_key){c->scope, seen_index(c), (size_t)(o - cfg__options), c->lineno};
    return 0;
}

static int ini_on_value(void *user, const char *section, const char *name, const char *value)
{
    file_ctx_t *c = user;
    const cfg_option_t *o;
    char msg[640];

    (void)section; /* always "": the reader keeps section lines from inih */
    if (c->state == SEC_UNKNOWN)
        return 1; /* reported once at the section line */
    if (c->state == SEC_NONE) {
        file_error(c, "'%s' is outside of any section", name);
        return 1;
    }
    o = cfg__find_key(c->scope, name);
    if (o == NULL) {
        file_error(c, "unknown key '%s' in [%s]", name, cfg__section_str(c->scope));
        return 1;
    }
    /* A value that was refused is not "given": its error is enough. */
    int first = is_list_option(o) ? 0 : seen_line(c, o);
    if (first > 0) {
        file_error(c, "'%s' given twice in [%s] (first at line %d); it takes one value", o->key,
                   cfg__section_str(c->scope), first);
        return 1;
    }
    if (cfg__set_option(current_object(c), o, value, c->lineno, msg, sizeof(msg)) != 0)
        file_error(c, "%s", msg);
    else if (!is_list_option(o) && note_key(c, o) != 0)
        file_error(c, "out of memory");
    return 1;
}

int cfg_load_file(cfg_t *cfg, const char *path, FILE *err)
{
    file_ctx_t c = {.cfg = cfg, .path = path, .err = err, .state = SEC_NONE};
    int rv;

    /* Validation names this file in its messages. */
    if (cfg->config_file == NULL || strcmp(cfg->config_file, path) != 0) {
        char *copy = strdup(path);
        if (copy == NULL) {
            fprintf(err, "%s: out of memory\n", path);
            return 1;
        }
        free(cfg->config_file);
        cfg->config_file = copy;
    }

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
    free(c.seen);

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
