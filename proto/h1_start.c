#include "proto/h1_start.h"

#include "proto/headers.h"

enum line_state { L_LEADING, L_METHOD, L_REST };

/* One step of proto_h1_request_line_plausible(): returns 1 to go on, 0 when
 * the line cannot be HTTP/1.x, 2 when it is settled as plausible. k counts
 * the bytes of "HTTP/" matched so far ('H' occurs once in it, so a mismatch
 * restarts the match at this byte). */
static int line_step(int *state, size_t *k, unsigned char c)
{
    static const char version[] = "HTTP/";

    switch (*state) {
    case L_LEADING:
        if (c == '\r' || c == '\n')
            return 1;
        *state = L_METHOD;
        return proto_headers_valid_name((const char *)&c, 1, 0);
    case L_METHOD:
        if (c == ' ') {
            *state = L_REST;
            return 1;
        }
        return proto_headers_valid_name((const char *)&c, 1, 0);
    default:
        if (c == '\r' || c == '\n')
            return *k == sizeof(version) - 1 ? 2 : 0;
        if (*k == sizeof(version) - 1)
            return 1;
        *k = c == (unsigned char)version[*k] ? *k + 1 : c == 'H';
        return 1;
    }
}

int proto_h1_request_line_plausible(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int state = L_LEADING;
    size_t k = 0;

    for (size_t i = 0; i < alen + blen; i++) {
        int rv = line_step(&state, &k, i < alen ? a[i] : b[i - alen]);
        if (rv != 1)
            return rv != 0;
    }
    return 1;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

ssize_t proto_h1_base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > out_cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)n;
}
