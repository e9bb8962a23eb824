#include "proto/router.h"

#include <string.h>
#include <strings.h>

/* The host part of an authority, without port or IPv6 brackets. */
static void host_of(const char *a, size_t len, const char **host, size_t *host_len)
{
    if (len > 0 && a[0] == '[') {
        const char *end = memchr(a, ']', len);
        *host = a + 1;
        *host_len = end != NULL ? (size_t)(end - a - 1) : len - 1;
        return;
    }
    const char *colon = memchr(a, ':', len);
    *host = a;
    *host_len = colon != NULL ? (size_t)(colon - a) : len;
}

/* 3: exact, 2: wildcard, 1: any host, 0: no match. */
static int host_score(const char *pattern, const char *host, size_t len)
{
    if (pattern == NULL)
        return 1;
    size_t plen = strlen(pattern);
    if (plen == len && strncasecmp(pattern, host, len) == 0)
        return 3;
    if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = memchr(host, '.', len);
        size_t rest = dot != NULL ? len - (size_t)(dot - host) : 0;
        if (dot != NULL && dot != host && rest == plen - 1 &&
            strncasecmp(dot, pattern + 1, rest) == 0)
            return 2;
    }
    return 0;
}

size_t proto_route_pick(const cfg_t *cfg, const char *authority, size_t authority_len,
                        const char *path, size_t path_len)
{
    const char *host = "";
    size_t host_len = 0;
    if (authority != NULL)
        host_of(authority, authority_len, &host, &host_len);

    size_t best = cfg->default_backend;
    int best_host = 0;
    size_t best_prefix = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const cfg_route_t *r = &cfg->routes[i];
        int hs = host_score(r->host, host, host_len);
        if (hs == 0)
            continue;
        size_t prefix = r->path_prefix != NULL ? strlen(r->path_prefix) : 0;
        if (prefix > path_len || (prefix > 0 && memcmp(r->path_prefix, path, prefix) != 0))
            continue;
        if (hs > best_host || (hs == best_host && prefix > best_prefix)) {
            best = r->backend_index;
            best_host = hs;
            best_prefix = prefix;
        }
    }
    return best;
}
