#include "proto/chunked.h"

#include <string.h>

size_t proto_chunk_size_line(char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t n = 0;
    do {
        digits[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len > 0);
    size_t k = 0;
    while (n > 0)
        out[k++] = digits[--n];
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}

size_t proto_chunk_last_size(const proto_header_t *trailers, size_t n)
{
    size_t len = PROTO_CHUNK_LAST_LEN;
    for (size_t i = 0; i < n; i++)
        len += trailers[i].name_len + 2 + trailers[i].value_len + 2;
    return len;
}

size_t proto_chunk_last_write(char *out, const proto_header_t *trailers, size_t n)
{
    size_t k = 0;
    out[k++] = '0';
    out[k++] = '\r';
    out[k++] = '\n';
    for (size_t i = 0; i < n; i++) {
        const proto_header_t *f = &trailers[i];
        memcpy(out + k, f->name, f->name_len);
        k += f->name_len;
        out[k++] = ':';
        out[k++] = ' ';
        memcpy(out + k, f->value, f->value_len);
        k += f->value_len;
        out[k++] = '\r';
        out[k++] = '\n';
    }
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}
