/*
 * Header field rules shared by request and response translation.
 */
#include "proto/headers.h"

#include <string.h>

#include <llhttp.h>

/* RFC 9110 §5.6.2 tchar, as a table so the hot loop is one load per byte. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 2, ['B'] = 2, ['C'] = 2,  ['D'] = 2, ['E'] = 2,
    ['F'] = 2, ['G'] = 2, ['H'] = 2, ['I'] = 2, ['J'] = 2, ['K'] = 2,  ['L'] = 2, ['M'] = 2,
    ['N'] = 2, ['O'] = 2, ['P'] = 2, ['Q'] = 2, ['R'] = 2, ['S'] = 2,  ['T'] = 2, ['U'] = 2,
    ['V'] = 2, ['W'] = 2, ['X'] = 2, ['Y'] = 2, ['Z'] = 2,
};

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int proto_headers_name_eq(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return 0;
    for (size_t i = 0; i < a_len; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

int proto_headers_is_connection_specific(const char *name, size_t len)
{
    static const struct {
        const char *s;
        size_t len;
    } names[] = {
        {"connection", 10},        {"keep-alive", 10}, {"proxy-connection", 16},
        {"transfer-encoding", 17}, {"upgrade", 7},     {"http2-settings", 14},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (proto_headers_name_eq(name, len, names[i].s, names[i].len))
            return 1;
    }
    return 0;
}

int proto_headers_valid_name(const char *name, size_t len, int lowercase_only)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char t = tchar[(unsigned char)name[i]];
        if (t == 0 || (t == 2 && lowercase_only))
            return 0;
    }
    return 1;
}

int proto_headers_valid_value(const char *value, size_t len)
{
    if (len == 0)
        return 1;
    if (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' || value[len - 1] == '\t')
        return 0;
    /* NUL, CR and LF would change where the line ends. The other control
     * bytes (HTAB aside) are not field-vchar either (RFC 9110 §5.5): strict
     * HTTP/1.1 readers, llhttp among them, refuse the whole head, and lenient
     * ones differ in what they make of it, so neither direction carries
     * them. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

int proto_headers_is_idempotent_method(const char *method, size_t len)
{
    static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i]) == len && memcmp(methods[i], method, len) == 0)
            return 1;
    }
    return 0;
}

int proto_headers_is_known_method(const char *method, size_t len)
{
    static const char *const methods[] = {
#define METHOD_NAME(num, name, string) #string,
        HTTP_METHOD_MAP(METHOD_NAME)
#undef METHOD_NAME
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i]) == len && memcmp(methods[i], method, len) == 0)
            return 1;
    }
    return 0;
}

int proto_headers_list_contains(const char *list, size_t list_len, const char *name,
                                size_t name_len)
{
    size_t i = 0;

    while (i < list_len) {
        size_t start, end;

        while (i < list_len && (list[i] == ' ' || list[i] == '\t'))
            i++;
        start = i;
        while (i < list_len && list[i] != ',')
            i++;
        end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end > start && proto_headers_name_eq(list + start, end - start, name, name_len))
            return 1;
        i++; /* skip the comma */
    }
    return 0;
}

/* clang-format off */
const char *proto_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return ""; /* RFC 9112 §4: the reason phrase may be empty */
    }
}
/* clang-format on */

int proto_headers_parse_content_length(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}
