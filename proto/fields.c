/*
 * Field accumulation shared by the request and response parsers. The limit
 * is checked before bytes are stored, so a head over the limit never costs
 * more memory than the limit allows. After an error fs is only fit for
 * proto_fields_clear() or proto_fields_free(): the callers' errors stick.
 */
#include "proto/fields.h"

#include <stdlib.h>
#include <string.h>

/* Counted per field on top of its name and value (": " and CRLF), so the
 * limit tracks the wire size. */
#define FIELD_OVERHEAD 4

#define FIRST_BUF_CAP 1024
#define FIRST_LIST_CAP 16

int proto_fields_init(proto_fields_t *fs, size_t max_bytes, size_t line_bytes)
{
    memset(fs, 0, sizeof(*fs));
    fs->max_bytes = max_bytes;
    fs->line_bytes = line_bytes;
    fs->cap = FIRST_BUF_CAP;
    fs->buf = malloc(fs->cap);
    if (fs->buf == NULL) {
        fs->cap = 0;
        return PROTO_E_NOMEM;
    }
    return 0;
}

void proto_fields_clear(proto_fields_t *fs)
{
    fs->len = 0;
    fs->n = 0;
    fs->in_value = 0;
}

void proto_fields_free(proto_fields_t *fs)
{
    free(fs->buf);
    free(fs->list);
    fs->buf = NULL;
    fs->list = NULL;
    fs->len = fs->cap = 0;
    fs->n = fs->list_cap = 0;
    fs->in_value = 0;
}

size_t proto_fields_bytes(const proto_fields_t *fs)
{
    return fs->line_bytes + fs->len + fs->n * FIELD_OVERHEAD;
}

int proto_fields_reserve(proto_fields_t *fs, size_t len)
{
    /* The first test keeps the sum below from overflowing. */
    if (len > fs->max_bytes || proto_fields_bytes(fs) + len > fs->max_bytes)
        return PROTO_E_TOO_LARGE;
    if (fs->cap - fs->len < len) {
        size_t cap = fs->cap ? fs->cap : FIRST_BUF_CAP;
        char *b;

        while (cap - fs->len < len)
            cap *= 2;
        b = realloc(fs->buf, cap);
        if (b == NULL)
            return PROTO_E_NOMEM;
        fs->buf = b;
        fs->cap = cap;
    }
    return 0;
}

int proto_fields_append(proto_fields_t *fs, const char *at, size_t len)
{
    int rv = proto_fields_reserve(fs, len);

    if (rv != 0)
        return rv;
    if (len > 0) /* at may be NULL for an empty piece */
        memcpy(fs->buf + fs->len, at, len);
    fs->len += len;
    return 0;
}

int proto_fields_append_name(proto_fields_t *fs, const char *at, size_t len)
{
    int rv;

    if (fs->n == 0 || fs->in_value) {
        if (fs->n == fs->list_cap) {
            size_t cap = fs->list_cap ? fs->list_cap * 2 : FIRST_LIST_CAP;
            proto_field_t *l = realloc(fs->list, cap * sizeof(*l));
            if (l == NULL)
                return PROTO_E_NOMEM;
            fs->list = l;
            fs->list_cap = cap;
        }
        fs->list[fs->n] = (proto_field_t){.name_off = fs->len};
        fs->n++;
        fs->in_value = 0;
        /* The new field's overhead counts before its bytes arrive. */
        if (proto_fields_bytes(fs) > fs->max_bytes)
            return PROTO_E_TOO_LARGE;
    }
    rv = proto_fields_append(fs, at, len);
    if (rv != 0)
        return rv;
    fs->list[fs->n - 1].name_len += len;
    return 0;
}

void proto_fields_end_name(proto_fields_t *fs)
{
    fs->list[fs->n - 1].value_off = fs->len;
    fs->in_value = 1;
}

int proto_fields_append_value(proto_fields_t *fs, const char *at, size_t len)
{
    int rv = proto_fields_append(fs, at, len);

    if (rv != 0)
        return rv;
    fs->list[fs->n - 1].value_len += len;
    return 0;
}

void proto_fields_end_value(proto_fields_t *fs)
{
    proto_field_t *f = &fs->list[fs->n - 1];
    char *name = fs->buf + f->name_off;
    const char *value = fs->buf + f->value_off;

    while (f->value_len > 0 && (value[f->value_len - 1] == ' ' || value[f->value_len - 1] == '\t'))
        f->value_len--;
    for (size_t i = 0; i < f->name_len; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] - 'A' + 'a');
    }
}

int proto_fields_name_is(const proto_fields_t *fs, const proto_field_t *f, const char *lit)
{
    size_t n = strlen(lit);
    return f->name_len == n && memcmp(fs->buf + f->name_off, lit, n) == 0;
}

proto_header_t proto_fields_header(const proto_fields_t *fs, const proto_field_t *f)
{
    return (proto_header_t){
        .name = fs->buf + f->name_off,
        .name_len = f->name_len,
        .value = fs->buf + f->value_off,
        .value_len = f->value_len,
    };
}
