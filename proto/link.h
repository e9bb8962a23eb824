/*
 * Link header field values (RFC 8288 section 3): link-values
 * `<target>; param=value; ...` separated by commas, walked one at a time
 * without allocating. Only what server push and Early Hints need is
 * reported: the target, whether rel names "preload", whether `nopush` is
 * present, and the `as` and `u` hints. Malformed parts are skipped, never
 * an error: a Link field is a hint.
 */
#ifndef PROTO_LINK_H
#define PROTO_LINK_H

#include "proto.h"

typedef struct proto_link {
    const char *target; /* between < and >, not unescaped; points into the value */
    size_t target_len;
    int is_preload; /* the first rel parameter lists "preload" (any case) */
    int is_nopush;  /* a nopush parameter is present */
    const char *as; /* the first as parameter's value (without quotes), or NULL */
    size_t as_len;
    int urgency; /* the first u parameter, 0..7; -1 when absent or invalid */
} proto_link_t;

/*
 * Parses the next link-value of value[0..len) from *pos on into *out and
 * moves *pos past it. Commas inside <...> or a quoted string do not
 * separate link-values. Text that does not start with "<" is skipped up to
 * the next separating comma; a "<" without its ">" ends the walk.
 *
 * Start with *pos = 0. Returns 1 with *out filled, or 0 when no link-value
 * is left (*out is then untouched). Reads no byte at or past len.
 */
int proto_link_next(const char *value, size_t len, size_t *pos, proto_link_t *out);

/*
 * The path of l's target on the request's own origin, or NULL: "/path"
 * (not "//host/...", which names another authority), or an http:// or
 * https:// URL whose authority equals authority (compared without case),
 * "/" when it has no path. A fragment ("#...") is left out. The result
 * points into l->target (or is "/"); *len is its length.
 */
const char *proto_link_local_path(const proto_link_t *l, const char *authority,
                                  size_t authority_len, size_t *len);

/* 1 when a link-value of value[0..len) is rel=preload (nopush or not). */
int proto_link_has_preload(const char *value, size_t len);

/*
 * The Link fields of f[0..n) (name compared without case) that carry at
 * least one rel=preload link-value, for an Early Hints response: up to max
 * of them are copied (as views into f) into out. Returns the count.
 */
size_t proto_link_preload_fields(const proto_header_t *f, size_t n, proto_header_t *out,
                                 size_t max);

#endif
