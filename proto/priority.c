/*
 * RFC 9218 priority: the `priority` field value, parsed as an RFC 8941
 * Structured Field Dictionary, and the RFC 7540 weight mapped onto the same
 * urgency scale.
 *
 * The parser is a small but complete walk of the RFC 8941 dictionary grammar
 * (§4.2.2 and the item parsers it calls): it has to be, because an unknown
 * member such as `s="a,b"` or `x=(a b);p=1` may hide commas, quotes and
 * parentheses that a naive split on ',' would misread as the end of a member.
 * Only the values of `u` and `i` are kept; every other value is checked for
 * syntax and thrown away.
 */
#include "proto/priority.h"

#include <string.h>

/* The RFC 8941 types a bare item or member value can have. */
typedef enum sf_type {
    SF_NONE, /* no such member in the dictionary */
    SF_INTEGER,
    SF_DECIMAL,
    SF_STRING,
    SF_TOKEN,
    SF_BYTES,
    SF_BOOLEAN,
    SF_INNER_LIST,
} sf_type_t;

/* A parsed value, reduced to what `u` and `i` need. */
typedef struct sf_value {
    sf_type_t type;
    int64_t integer; /* SF_INTEGER: at most 15 digits, so it always fits */
    int boolean;     /* SF_BOOLEAN */
} sf_value_t;

/* Indices rather than pointers, so an empty or NULL value needs no pointer arithmetic. */
typedef struct sf_cursor {
    const char *s;
    size_t pos;
    size_t len;
} sf_cursor_t;

/* RFC 8941 §3.3.1 / §3.3.2 length limits. */
#define SF_INTEGER_MAX_DIGITS 15
#define SF_DECIMAL_MAX_INT_DIGITS 12
#define SF_DECIMAL_MAX_FRAC_DIGITS 3

/* The next byte, or -1 at the end of the value. Never reads at or past len. */
static int peek(const sf_cursor_t *c)
{
    return c->pos < c->len ? (unsigned char)c->s[c->pos] : -1;
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_lcalpha(int ch)
{
    return ch >= 'a' && ch <= 'z';
}

static int is_alpha(int ch)
{
    return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(int ch)
{
    static const char punct[] = "!#$%&'*+-.^_`|~";

    if (is_alpha(ch) || is_digit(ch))
        return 1;
    /* memchr over the visible characters only, so ch == 0 never matches the terminator. */
    return ch > 0 && memchr(punct, ch, sizeof(punct) - 1) != NULL;
}

static void skip_sp(sf_cursor_t *c)
{
    while (peek(c) == ' ')
        c->pos++;
}

/* OWS: the optional SP / HTAB that RFC 8941 allows around a dictionary's commas. */
static void skip_ows(sf_cursor_t *c)
{
    while (peek(c) == ' ' || peek(c) == '\t')
        c->pos++;
}

/* RFC 8941 §4.2.3.3: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
 * Keys are lowercase only, so `U=1` is a syntax error rather than an unknown member. */
static int parse_key(sf_cursor_t *c, size_t *start, size_t *len)
{
    int ch = peek(c);

    if (!is_lcalpha(ch) && ch != '*')
        return -1;
    *start = c->pos;
    do {
        c->pos++;
        ch = peek(c);
    } while (is_lcalpha(ch) || is_digit(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '*');
    *len = c->pos - *start;
    return 0;
}

/* RFC 8941 §4.2.4: an Integer or a Decimal. The length checks run as digits
 * are read, so the running integer value can never overflow. */
static int parse_number(sf_cursor_t *c, sf_value_t *v)
{
    int is_negative = 0, ch;
    size_t ndigits = 0, nfrac = 0; /* ndigits counts the '.' too, as the RFC's input_number does */
    int64_t n = 0;

    v->type = SF_INTEGER;
    if (peek(c) == '-') {
        is_negative = 1;
        c->pos++;
    }
    if (!is_digit(peek(c)))
        return -1;
    for (;;) {
        ch = peek(c);
        if (is_digit(ch)) {
            if (v->type == SF_INTEGER)
                n = n * 10 + (ch - '0');
            else
                nfrac++;
        } else if (v->type == SF_INTEGER && ch == '.') {
            if (ndigits > SF_DECIMAL_MAX_INT_DIGITS)
                return -1;
            v->type = SF_DECIMAL;
        } else {
            break;
        }
        c->pos++;
        ndigits++;
        if (v->type == SF_INTEGER && ndigits > SF_INTEGER_MAX_DIGITS)
            return -1;
        if (v->type == SF_DECIMAL &&
            ndigits > SF_DECIMAL_MAX_INT_DIGITS + 1 + SF_DECIMAL_MAX_FRAC_DIGITS)
            return -1;
    }
    if (v->type == SF_DECIMAL) {
        /* "1." has no fraction digits; "1.2345" has too many. */
        if (nfrac == 0 || nfrac > SF_DECIMAL_MAX_FRAC_DIGITS)
            return -1;
        return 0;
    }
    v->integer = is_negative ? -n : n;
    return 0;
}

/* RFC 8941 §4.2.5: a String. Only \" and \\ are escapes; controls and
 * non-ASCII bytes are errors. */
static int parse_string(sf_cursor_t *c, sf_value_t *v)
{
    int ch;

    v->type = SF_STRING;
    c->pos++; /* the opening DQUOTE */
    for (;;) {
        ch = peek(c);
        if (ch < 0)
            return -1; /* unterminated */
        c->pos++;
        if (ch == '\\') {
            ch = peek(c);
            if (ch != '"' && ch != '\\')
                return -1;
            c->pos++;
        } else if (ch == '"') {
            return 0;
        } else if (ch < 0x20 || ch > 0x7e) {
            return -1;
        }
    }
}

/* RFC 8941 §4.2.6: a Token, ( ALPHA / "*" ) *( tchar / ":" / "/" ). */
static int parse_token(sf_cursor_t *c, sf_value_t *v)
{
    int ch;

    v->type = SF_TOKEN;
    c->pos++; /* the first character, checked by the caller */
    for (;;) {
        ch = peek(c);
        if (!is_tchar(ch) && ch != ':' && ch != '/')
            return 0;
        c->pos++;
    }
}

/* RFC 8941 §4.2.7: a Byte Sequence, ":" base64 ":". Only the alphabet is
 * checked; the bytes themselves are never needed. */
static int parse_bytes(sf_cursor_t *c, sf_value_t *v)
{
    int ch;

    v->type = SF_BYTES;
    c->pos++; /* the opening ':' */
    for (;;) {
        ch = peek(c);
        if (ch < 0)
            return -1; /* no closing ':' */
        c->pos++;
        if (ch == ':')
            return 0;
        if (!is_alpha(ch) && !is_digit(ch) && ch != '+' && ch != '/' && ch != '=')
            return -1;
    }
}

/* RFC 8941 §4.2.8: a Boolean, ?0 or ?1. */
static int parse_boolean(sf_cursor_t *c, sf_value_t *v)
{
    int ch;

    v->type = SF_BOOLEAN;
    c->pos++; /* the '?' */
    ch = peek(c);
    if (ch != '0' && ch != '1')
        return -1;
    c->pos++;
    v->boolean = ch == '1';
    return 0;
}

/* RFC 8941 §4.2.3.1: dispatches on the first character. */
static int parse_bare_item(sf_cursor_t *c, sf_value_t *v)
{
    int ch = peek(c);

    if (ch == '-' || is_digit(ch))
        return parse_number(c, v);
    if (ch == '"')
        return parse_string(c, v);
    if (ch == '*' || is_alpha(ch))
        return parse_token(c, v);
    if (ch == ':')
        return parse_bytes(c, v);
    if (ch == '?')
        return parse_boolean(c, v);
    return -1;
}

/* RFC 8941 §4.2.3.2: *( ";" *SP key [ "=" bare-item ] ). Parameters carry
 * nothing RFC 9218 uses, so they are walked and discarded. */
static int parse_parameters(sf_cursor_t *c)
{
    sf_value_t ignored;
    size_t key, key_len;

    while (peek(c) == ';') {
        c->pos++;
        skip_sp(c);
        if (parse_key(c, &key, &key_len) < 0)
            return -1;
        if (peek(c) == '=') {
            c->pos++;
            if (parse_bare_item(c, &ignored) < 0)
                return -1;
        }
    }
    return 0;
}

/* RFC 8941 §4.2.3: a bare item followed by its parameters. */
static int parse_item(sf_cursor_t *c, sf_value_t *v)
{
    if (parse_bare_item(c, v) < 0)
        return -1;
    return parse_parameters(c);
}

/* RFC 8941 §4.2.1.2: "(" *SP [ item *( 1*SP item ) *SP ] ")" parameters. */
static int parse_inner_list(sf_cursor_t *c, sf_value_t *v)
{
    sf_value_t ignored;
    int ch;

    v->type = SF_INNER_LIST;
    c->pos++; /* the '(' */
    for (;;) {
        skip_sp(c);
        if (peek(c) == ')') {
            c->pos++;
            return parse_parameters(c);
        }
        if (parse_item(c, &ignored) < 0)
            return -1; /* also the end of input inside the list */
        ch = peek(c);
        if (ch != ' ' && ch != ')')
            return -1;
    }
}

/* The part of a dictionary member after its key: "=" (item / inner list), or
 * nothing, which RFC 8941 reads as Boolean true (with optional parameters). */
static int parse_member_value(sf_cursor_t *c, sf_value_t *v)
{
    if (peek(c) != '=') {
        v->type = SF_BOOLEAN;
        v->boolean = 1;
        return parse_parameters(c);
    }
    c->pos++;
    if (peek(c) == '(')
        return parse_inner_list(c, v);
    return parse_item(c, v);
}

int proto_priority_parse(const char *value, size_t len, proto_priority_t *out)
{
    sf_cursor_t c = {value, 0, value != NULL ? len : 0};
    sf_value_t v = {SF_NONE, 0, 0}, u_val = v, i_val = v;
    int applied = 0;
    size_t key, key_len;

    /* RFC 8941 §4.2 allows leading SP (not HTAB) before the dictionary. */
    skip_sp(&c);
    while (c.pos < c.len) {
        if (parse_key(&c, &key, &key_len) < 0 || parse_member_value(&c, &v) < 0)
            break;
        /* A member counts only once it is followed by a comma or the end, so
         * "u=1x" or "u=1 i" does not apply u=1: the member's own text is broken. */
        skip_ows(&c);
        if (c.pos < c.len && c.s[c.pos] != ',')
            break;
        /* Duplicate keys: the last one wins (RFC 8941 §3.2), so only the last
         * value of each is remembered and type-checked after the loop. */
        if (key_len == 1 && c.s[key] == 'u')
            u_val = v;
        else if (key_len == 1 && c.s[key] == 'i')
            i_val = v;
        if (c.pos == c.len)
            break;
        c.pos++; /* the ',' */
        skip_ows(&c);
        /* A trailing comma is a syntax error; the members before it stand. */
    }

    /* RFC 9218 §4: out-of-range values and values of unexpected types are
     * ignored, which leaves the member as the caller had it. */
    if (u_val.type == SF_INTEGER && u_val.integer >= 0 && u_val.integer < PROTO_URGENCY_LEVELS) {
        out->urgency = (uint8_t)u_val.integer;
        applied++;
    }
    if (i_val.type == SF_BOOLEAN) {
        out->incremental = (uint8_t)i_val.boolean;
        applied++;
    }
    return applied;
}

/*
 * urgency = round(3 - log2(weight / 16)) = 7 - round(log2(weight)), clamped to
 * 0..7. The rounding is on the log scale, not the linear one: log2(weight)
 * rounds up to n + 1 exactly when weight > 2^(n + 0.5), the geometric midpoint
 * of 2^n and 2^(n+1). Squaring both sides keeps it in integers:
 * weight^2 > 2^(2n + 1). No integer weight sits on a midpoint (they are
 * irrational), so there are no ties. Examples: 22 -> 3 (log2 = 4.46 rounds to
 * 4, as 22^2 = 484 < 512) and 23 -> 2 (4.52 rounds to 5, as 529 > 512);
 * 11 -> 4 and 12 -> 3 around the midpoint 2^3.5 = 11.3.
 */
uint8_t proto_priority_urgency_from_weight(int weight)
{
    uint32_t w, w2;
    int level = 0; /* round(log2(weight)), 0..8 */

    if (weight < 1)
        weight = 1;
    if (weight > 256)
        weight = 256;
    w = (uint32_t)weight;
    w2 = w * w; /* at most 65536 */
    for (int n = 0; n < 8; n++) {
        if (w2 > (uint32_t)1 << (2 * n + 1))
            level = n + 1;
    }
    /* Weights above 2^6.5 (91..256) round to level 7 or 8; both are urgency 0. */
    return (uint8_t)(level >= 7 ? 0 : 7 - level);
}
