/*
 * The header fields of one HTTP/1.1 head (or trailer block) as llhttp hands
 * them out: in pieces that may be split anywhere, also across feed() calls.
 * The pieces are copied into one growable buffer and joined into fields
 * kept as offsets, so they stay valid while the buffer moves. The buffer
 * also takes other bytes of the head (a reason phrase, a request-target) so
 * that everything counts toward one size limit.
 */
#ifndef PROTO_FIELDS_H
#define PROTO_FIELDS_H

#include <stddef.h>

#include "proto.h"

typedef struct proto_field {
    size_t name_off, name_len, value_off, value_len; /* offsets into buf */
} proto_field_t;

typedef struct proto_fields {
    char *buf; /* field bytes (and other head bytes) of the head being read */
    size_t len, cap;
    proto_field_t *list; /* the fields in arrival order */
    size_t n, list_cap;
    size_t max_bytes;  /* the head limit, as proto_fields_bytes() counts */
    size_t line_bytes; /* counted once on top: the start line's fixed part */
    int in_value;      /* last piece was a value (the next name starts a new field) */
} proto_fields_t;

/* Prepares fs with an empty buffer. Heads over max_bytes, counted as
 * line_bytes plus every stored byte plus ": " and CRLF per field, are refused
 * with PROTO_E_TOO_LARGE. Returns 0 or PROTO_E_NOMEM. */
int proto_fields_init(proto_fields_t *fs, size_t max_bytes, size_t line_bytes);

/* Forgets every byte and field (memory is kept for the next head). */
void proto_fields_clear(proto_fields_t *fs);

/* Frees the memory; fs is empty and still usable afterwards. */
void proto_fields_free(proto_fields_t *fs);

/* Bytes the head takes so far, as the limit counts them. */
size_t proto_fields_bytes(const proto_fields_t *fs);

/* Makes room for len more bytes at buf + len within the limit, without
 * storing them; the caller writes them and adds len itself. Returns 0,
 * PROTO_E_TOO_LARGE or PROTO_E_NOMEM. */
int proto_fields_reserve(proto_fields_t *fs, size_t len);

/* Stores bytes that belong to no field (they count toward the limit).
 * Returns 0, PROTO_E_TOO_LARGE or PROTO_E_NOMEM (nothing stored then). */
int proto_fields_append(proto_fields_t *fs, const char *at, size_t len);

/* Adds a piece of a field name: the first piece after a value (or the very
 * first) starts a new field, the others continue its name. Returns 0,
 * PROTO_E_TOO_LARGE or PROTO_E_NOMEM. */
int proto_fields_append_name(proto_fields_t *fs, const char *at, size_t len);

/* The current field's name is complete: its value starts here (an empty
 * value gets no piece). Needs a field (fs->n > 0). */
void proto_fields_end_name(proto_fields_t *fs);

/* Adds a piece of the current field's value, after proto_fields_end_name().
 * Returns 0, PROTO_E_TOO_LARGE or PROTO_E_NOMEM. */
int proto_fields_append_value(proto_fields_t *fs, const char *at, size_t len);

/* The current field's value is complete: trims its trailing SP and HTAB
 * (llhttp drops the leading ones only) and lowercases its name. Needs a
 * field (fs->n > 0). */
void proto_fields_end_value(proto_fields_t *fs);

/* The field being read, or NULL before the first. */
static inline proto_field_t *proto_fields_last(proto_fields_t *fs)
{
    return fs->n > 0 ? &fs->list[fs->n - 1] : NULL;
}

/* Name and value bytes of a field of fs; valid until fs grows or clears. */
static inline char *proto_fields_name(const proto_fields_t *fs, const proto_field_t *f)
{
    return fs->buf + f->name_off;
}

static inline char *proto_fields_value(const proto_fields_t *fs, const proto_field_t *f)
{
    return fs->buf + f->value_off;
}

/* 1 when f's name is exactly lit (a lowercase literal). */
int proto_fields_name_is(const proto_fields_t *fs, const proto_field_t *f, const char *lit);

/* f as a view into fs; valid until fs grows or clears. */
proto_header_t proto_fields_header(const proto_fields_t *fs, const proto_field_t *f);

#endif
