/*
 * Fuzz target for proto/fields: the calls llhttp's callbacks make (name
 * pieces, end of name, value pieces, end of value, other head bytes, clear),
 * in an order chosen by the input, checked against a plain model of the
 * fields and of the size limit. Names and values are joined across pieces,
 * the limit refuses exactly the heads the model says are too large, and
 * after a refusal only clear is used, as the parsers do.
 *
 * Input: [limit, 16 bits][line bytes][ops: opcode byte, length byte, bytes].
 */
#include "test/fuzz/fuzz.h"

#include "proto/fields.h"

#define MODEL_MAX 512

typedef struct model_field {
    char name[MODEL_MAX], value[MODEL_MAX];
    size_t name_len, value_len;
} model_field_t;

typedef struct model {
    model_field_t *f;
    size_t n, cap;
    size_t stored; /* every byte stored, field or not */
    int in_value;  /* 0: reading a name (or none yet), 1: reading a value */
    int has_name;  /* a name is open */
} model_t;

static void check_same(const proto_fields_t *fs, const model_t *m, int with_values)
{
    FZ_CHECK(fs->n == m->n);
    FZ_CHECK(fs->len == m->stored);
    for (size_t i = 0; i < m->n; i++) {
        const proto_field_t *f = &fs->list[i];
        FZ_CHECK(f->name_off + f->name_len <= fs->len);
        FZ_CHECK(f->name_len == m->f[i].name_len);
        FZ_CHECK(memcmp(proto_fields_name(fs, f), m->f[i].name, f->name_len) == 0);
        if (with_values || i + 1 < m->n) {
            FZ_CHECK(f->value_off + f->value_len <= fs->len);
            FZ_CHECK(f->value_len == m->f[i].value_len);
            FZ_CHECK(memcmp(proto_fields_value(fs, f), m->f[i].value, f->value_len) == 0);
        }
    }
}

static void lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    size_t max_bytes = fz_u16(&in);
    /* The parsers' start-line part is always under their limit. */
    size_t line_bytes = fz_byte(&in) % (max_bytes + 1);
    proto_fields_t fs;
    model_t m = {0};
    int is_failed = 0;

    FZ_CHECK(proto_fields_init(&fs, max_bytes, line_bytes) == 0);
    while (in.n > 0) {
        uint8_t op = fz_byte(&in) % 6;
        size_t len = fz_byte(&in);
        const char *at;
        size_t want;
        int rv;

        if (len > in.n)
            len = in.n;
        at = (const char *)in.p;
        in.p += len;
        in.n -= len;
        if (is_failed && op != 5)
            continue;
        switch (op) {
        case 0: /* a name piece; after a value it starts a new field */
            if (m.in_value && m.has_name)
                continue; /* llhttp ends a value before the next name */
            if (m.in_value || m.n == 0) {
                if (m.n == 256)
                    continue; /* keeps the model small; not a limit of fields.c */
                if (m.n == m.cap) {
                    m.cap = m.cap ? m.cap * 2 : 8;
                    m.f = realloc(m.f, m.cap * sizeof(*m.f));
                    FZ_CHECK(m.f != NULL);
                }
                memset(&m.f[m.n], 0, sizeof(m.f[m.n]));
                m.n++;
                m.in_value = 0;
                m.has_name = 1;
            }
            if (m.f[m.n - 1].name_len + len > MODEL_MAX)
                continue;
            want = line_bytes + m.stored + len + m.n * 4;
            rv = proto_fields_append_name(&fs, at, len);
            if (want > max_bytes) {
                FZ_CHECK(rv == PROTO_E_TOO_LARGE);
                is_failed = 1;
                continue;
            }
            FZ_CHECK(rv == 0);
            memcpy(m.f[m.n - 1].name + m.f[m.n - 1].name_len, at, len);
            m.f[m.n - 1].name_len += len;
            m.stored += len;
            break;
        case 1: /* the name is complete */
            if (!m.has_name || m.in_value)
                continue;
            proto_fields_end_name(&fs);
            m.in_value = 1;
            break;
        case 2: /* a value piece */
            if (!m.in_value || !m.has_name || m.f[m.n - 1].value_len + len > MODEL_MAX)
                continue;
            want = line_bytes + m.stored + len + m.n * 4;
            rv = proto_fields_append_value(&fs, at, len);
            if (want > max_bytes) {
                FZ_CHECK(rv == PROTO_E_TOO_LARGE);
                is_failed = 1;
                continue;
            }
            FZ_CHECK(rv == 0);
            memcpy(m.f[m.n - 1].value + m.f[m.n - 1].value_len, at, len);
            m.f[m.n - 1].value_len += len;
            m.stored += len;
            break;
        case 3: /* the value is complete (llhttp ends a value once) */
            if (!m.in_value || !m.has_name)
                continue;
            proto_fields_end_value(&fs);
            m.has_name = 0;
            while (m.f[m.n - 1].value_len > 0 &&
                   (m.f[m.n - 1].value[m.f[m.n - 1].value_len - 1] == ' ' ||
                    m.f[m.n - 1].value[m.f[m.n - 1].value_len - 1] == '\t'))
                m.f[m.n - 1].value_len--;
            lower(m.f[m.n - 1].name, m.f[m.n - 1].name_len);
            check_same(&fs, &m, 1);
            break;
        case 4: /* bytes of the head that are no field (reason, target) */
            if (m.n > 0)
                continue; /* the parsers store these before the fields only */
            want = line_bytes + m.stored + len + m.n * 4;
            rv = proto_fields_append(&fs, at, len);
            if (want > max_bytes) {
                FZ_CHECK(rv == PROTO_E_TOO_LARGE);
                is_failed = 1;
                continue;
            }
            FZ_CHECK(rv == 0);
            m.stored += len;
            break;
        case 5: /* the next head */
            proto_fields_clear(&fs);
            m.n = m.stored = 0;
            m.in_value = m.has_name = 0;
            is_failed = 0;
            break;
        }
        if (!is_failed) {
            FZ_CHECK(proto_fields_bytes(&fs) <= max_bytes);
            check_same(&fs, &m, 0);
        }
    }
    proto_fields_free(&fs);
    free(m.f);
    return 0;
}
