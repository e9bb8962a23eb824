#include "proto/chunked.h"

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
