/*
 * Internal to config/: the option table and the helpers that the flag parser
 * (config.c), the INI reader (file.c) and validation (validate.c) share.
 * gateway/ includes config/config.h only.
 *
 * Names with a double underscore (cfg__) are internal, like libuv's uv__.
 */
#ifndef CFG_OPTIONS_H
#define CFG_OPTIONS_H

#include "config/config.h"

/* Which struct an option's offset points into. */
typedef enum opt_scope {
    SCOPE_GATEWAY,  /* cfg_t; file section [gateway] */
    SCOPE_LISTENER, /* cfg_listener_t; [listen NAME]; flags: the --listen listener */
    SCOPE_BACKEND,  /* cfg_backend_t; [backend NAME]; flags: the backend "default" */
    SCOPE_ROUTE,    /* cfg_route_t; [route NAME]; file only */
    SCOPE_ADMIN,    /* cfg_t too; file section [admin] (no name) */
    NSCOPES
} opt_scope_t;

typedef enum opt_type {
    OPT_ADDR,         /* cfg_addr_t; also sets the listener's has_addr */
    OPT_UINT32,       /* uint32_t, decimal */
    OPT_DURATION_MS,  /* uint64_t milliseconds */
    OPT_SIZE32,       /* uint32_t bytes, k/m/g suffixes */
    OPT_SIZE64,       /* uint64_t bytes, k/m/g suffixes */
    OPT_BOOL,         /* int 0/1 */
    OPT_ENUM,         /* int: index of the value in the option's names[] */
    OPT_STRING,       /* char *, heap; a repeat replaces it */
    OPT_PATH,         /* char *, heap; a file name (readability checked by validation) */
    OPT_NAME,         /* char[CFG_NAME_MAX]: a section name such as a backend's */
    OPT_SERVER_LIST,  /* backend only: appends a cfg_server_t */
    OPT_CERT,         /* listener only: appends a cfg_cert_t */
    OPT_KEY,          /* listener only: the key of the first cert without one */
    OPT_STATUS_RANGE, /* two uint32_t: lo at offset, hi right after it */
    OPT_FLAG_NOARG,   /* int set to 1 by the bare flag */
    OPT_HELP,         /* handled by cfg_from_args, no storage */
    OPT_VERSION,
} opt_type_t;

typedef struct cfg_option {
    const char *flag; /* without the leading "--"; NULL when only the file can set it */
    const char *key;  /* INI key in the scope's section; NULL when only a flag can set it */
    opt_type_t type;
    opt_scope_t scope;
    size_t offset;   /* offsetof(the scope's struct, field) */
    const char *def; /* default as a user would write it; NULL for none */
    uint64_t min, max;
    const char *help;
    const char *const *names; /* OPT_ENUM: the accepted words, NULL-terminated */
    /* OPT_ENUM: what a value is, for errors ("log level"); other types: the
     * help's metavar (NULL: one from the type). */
    const char *what;
    /* OPT_STRING: refuses a bad value (writing why to msg) or normalizes it
     * in place; NULL: any non-empty value. */
    int (*check)(char *s, char *msg, size_t cap);
} cfg_option_t;

extern const cfg_option_t cfg__options[];
extern const size_t cfg__noptions;

/* "gateway", "listen", "backend", "route", "admin". */
const char *cfg__section_str(opt_scope_t scope);

/* The option with this file key in scope (keys compare case-insensitively),
 * or NULL. */
const cfg_option_t *cfg__find_key(opt_scope_t scope, const char *key);

/* How errors name an option: its file key when line > 0, else "--flag". */
const char *cfg__opt_name(const cfg_option_t *o, int line, char *buf, size_t cap);

/* Same, by scope and file key; the option must exist. */
const char *cfg__key_name(opt_scope_t scope, const char *key, int line, char *buf, size_t cap);

/*
 * Parses s into the field of o in obj (a cfg_t, cfg_listener_t,
 * cfg_backend_t or cfg_route_t, as o->scope says). line is the file line
 * the value is on, 0 for a flag: it is recorded where the struct keeps
 * lines (certificates) and picks how msg names the option. On failure obj is
 * unchanged and msg holds a complete message without the "FILE:LINE: " or
 * "h2gw: " prefix ("max_connections: '0' is out of range (1..100000)").
 * Returns 0 or -1.
 */
int cfg__set_option(void *obj, const cfg_option_t *o, const char *s, int line, char *msg,
                    size_t cap);

/* Writes v as a user would ("16k", "5m"), for sizes and durations. */
void cfg__format_value(opt_type_t type, uint64_t v, char *buf, size_t cap);

/* A section name: 1..CFG_NAME_MAX-1 letters, digits, '.', '-', '_'. */
int cfg__is_valid_name(const char *s);

/* Appends a listener, backend or route named name (declared at line, 0 for
 * flags) with every option at its default. Returns it, or NULL when out of
 * memory. Pointers into the arrays are only valid until the next append. */
cfg_listener_t *cfg__add_listener(cfg_t *cfg, const char *name, int line);
cfg_backend_t *cfg__add_backend(cfg_t *cfg, const char *name, int line);
cfg_route_t *cfg__add_route(cfg_t *cfg, const char *name, int line);

/* Frees a listener's certificates (for flags replacing the file's) or a
 * backend's servers (likewise). */
void cfg__clear_certs(cfg_listener_t *l);
void cfg__clear_servers(cfg_backend_t *b);

/* How a listener or backend is named in messages: "[listen public]",
 * "[listen]", "[backend default]". */
void cfg__listener_str(const cfg_listener_t *l, char *buf, size_t cap);
void cfg__backend_str(const cfg_backend_t *b, char *buf, size_t cap);

#endif
