#include "proto/link.h"

#include "proto/headers.h"

#include <string.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int lower(char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int eq_nocase(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return 0;
    for (size_t i = 0; i < a_len; i++) {
        if (lower(a[i]) != lower(b[i]))
            return 0;
    }
    return 1;
}

/* Moves i past a quoted string starting at s[i] == '"' (a backslash
 * escapes the next byte); an unterminated one runs to len. *content_end
 * (when not NULL) is where its content ends: the closing quote, or len. */
static size_t skip_quoted_at(const char *s, size_t len, size_t i, size_t *content_end)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            if (content_end != NULL)
                *content_end = i;
            return i + 1;
        }
    }
    if (content_end != NULL)
        *content_end = len;
    return len;
}

static size_t skip_quoted(const char *s, size_t len, size_t i)
{
    return skip_quoted_at(s, len, i, NULL);
}

/* Moves i to the next byte of stop_chars outside quoted strings and <...>,
 * or to len. */
static size_t skip_to(const char *s, size_t len, size_t i, const char *stop_chars)
{
    while (i < len) {
        char c = s[i];
        for (const char *p = stop_chars; *p != '\0'; p++) {
            if (c == *p)
                return i;
        }
        if (c == '"') {
            i = skip_quoted(s, len, i);
        } else if (c == '<') {
            while (i < len && s[i] != '>')
                i++;
            if (i < len)
                i++;
        } else {
            i++;
        }
    }
    return len;
}

/* 1 when the space-separated list v[0..n) holds word (any case). */
static int list_has(const char *v, size_t n, const char *word, size_t word_len)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == '\n' || v[i] == '\r'))
            i++;
        size_t start = i;
        while (i < n && !is_ows(v[i]) && v[i] != '\n' && v[i] != '\r')
            i++;
        if (i > start && eq_nocase(v + start, i - start, word, word_len))
            return 1;
    }
    return 0;
}

/* One link-param at s[i] (after the ';'): records what it says in out and
 * returns the index after it, at a ';', a ',' or len. */
static size_t parse_param(const char *s, size_t len, size_t i, proto_link_t *out, int *seen_rel,
                          int *seen_as, int *seen_u)
{
    while (i < len && is_ows(s[i]))
        i++;
    size_t name = i;
    while (i < len && s[i] != '=' && s[i] != ';' && s[i] != ',' && !is_ows(s[i]) && s[i] != '"')
        i++;
    size_t name_len = i - name;
    while (i < len && is_ows(s[i]))
        i++;
    const char *v = NULL;
    size_t v_len = 0;
    if (i < len && s[i] == '=') {
        i++;
        while (i < len && is_ows(s[i]))
            i++;
        if (i < len && s[i] == '"') {
            size_t content_end;
            size_t end = skip_quoted_at(s, len, i, &content_end);
            v = s + i + 1;
            v_len = content_end - i - 1;
            i = end;
        } else {
            size_t start = i;
            while (i < len && s[i] != ';' && s[i] != ',' && !is_ows(s[i]))
                i++;
            v = s + start;
            v_len = i - start;
        }
    }
    /* Whatever follows (junk) belongs to this parameter. */
    i = skip_to(s, len, i, ";,");

    if (eq_nocase(s + name, name_len, "rel", 3)) {
        /* RFC 8288 3.3: only the first rel counts. */
        if (!*seen_rel && v != NULL)
            out->is_preload = list_has(v, v_len, "preload", 7);
        *seen_rel = 1;
    } else if (eq_nocase(s + name, name_len, "nopush", 6)) {
        out->is_nopush = 1;
    } else if (eq_nocase(s + name, name_len, "as", 2)) {
        if (!*seen_as && v != NULL) {
            out->as = v;
            out->as_len = v_len;
        }
        *seen_as = 1;
    } else if (eq_nocase(s + name, name_len, "u", 1)) {
        if (!*seen_u && v != NULL && v_len == 1 && v[0] >= '0' && v[0] <= '7')
            out->urgency = v[0] - '0';
        *seen_u = 1;
    }
    return i;
}

int proto_link_next(const char *s, size_t len, size_t *pos, proto_link_t *out)
{
    size_t i = *pos;
    for (;;) {
        while (i < len && (is_ows(s[i]) || s[i] == ','))
            i++;
        if (i >= len) {
            *pos = len;
            return 0;
        }
        if (s[i] == '<')
            break;
        /* Not a link-value: skip it whole. */
        i = skip_to(s, len, i, ",");
    }
    size_t start = i + 1, end = start;
    while (end < len && s[end] != '>')
        end++;
    if (end >= len) {
        *pos = len;
        return 0;
    }
    proto_link_t l = {.target = s + start, .target_len = end - start, .urgency = -1};
    int seen_rel = 0, seen_as = 0, seen_u = 0;
    i = skip_to(s, len, end + 1, ";,");
    while (i < len && s[i] == ';')
        i = parse_param(s, len, i + 1, &l, &seen_rel, &seen_as, &seen_u);
    *pos = i;
    *out = l;
    return 1;
}

const char *proto_link_local_path(const proto_link_t *l, const char *authority,
                                  size_t authority_len, size_t *len)
{
    const char *t = l->target, *end = l->target + l->target_len;
    const char *hash = memchr(t, '#', l->target_len);
    if (hash != NULL)
        end = hash;
    size_t n = (size_t)(end - t);
    if (n >= 1 && t[0] == '/') {
        if (n >= 2 && t[1] == '/')
            return NULL;
        *len = n;
        return t;
    }
    size_t skip = n >= 8 && proto_headers_name_eq(t, 8, "https://", 8)  ? 8
                  : n >= 7 && proto_headers_name_eq(t, 7, "http://", 7) ? 7
                                                                        : 0;
    if (skip == 0)
        return NULL;
    const char *a = t + skip, *slash = memchr(a, '/', (size_t)(end - a));
    const char *a_end = slash != NULL ? slash : end;
    if (!proto_headers_name_eq(a, (size_t)(a_end - a), authority, authority_len))
        return NULL;
    if (slash == NULL) {
        *len = 1;
        return "/";
    }
    *len = (size_t)(end - slash);
    return slash;
}

int proto_link_has_preload(const char *value, size_t len)
{
    size_t pos = 0;
    proto_link_t l;
    while (proto_link_next(value, len, &pos, &l)) {
        if (l.is_preload)
            return 1;
    }
    return 0;
}

size_t proto_link_preload_fields(const proto_header_t *f, size_t n, proto_header_t *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        if (proto_headers_name_eq(f[i].name, f[i].name_len, "link", 4) &&
            proto_link_has_preload(f[i].value, f[i].value_len))
            out[k++] = f[i];
    }
    return k;
}
