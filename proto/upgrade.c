/*
 * WebSocket upgrades, the pure half (see upgrade.h). The 101 head is read
 * here rather than by proto/h1_response, which refuses 101 on purpose: a
 * 101 is only acceptable on a connection that asked for it, and what
 * follows its head is not HTTP at all.
 */
#include "proto/upgrade.h"

#include <string.h>

#include "proto/headers.h"

static int name_is(const proto_header_t *h, const char *lit)
{
    return proto_headers_name_eq(h->name, h->name_len, lit, strlen(lit));
}

static int any_lists(const proto_header_t *f, size_t n, const char *name, const char *token)
{
    for (size_t i = 0; i < n; i++) {
        if (name_is(&f[i], name) &&
            proto_headers_list_contains(f[i].value, f[i].value_len, token, strlen(token)))
            return 1;
    }
    return 0;
}

int proto_upgrade_is_websocket(const char *method, size_t method_len, const proto_header_t *f,
                               size_t n, int has_body)
{
    if (has_body || method_len != 3 || memcmp(method, "GET", 3) != 0)
        return 0;
    return any_lists(f, n, "upgrade", "websocket") && any_lists(f, n, "connection", "upgrade");
}

void proto_upgrade_key(const uint8_t random16[16], char key[PROTO_UPGRADE_KEY_LEN + 1])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)random16[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)random16[i + 1] << 8;
        if (i + 2 < 16)
            v |= random16[i + 2];
        key[o++] = abc[(v >> 18) & 63];
        key[o++] = abc[(v >> 12) & 63];
        key[o++] = i + 1 < 16 ? abc[(v >> 6) & 63] : '=';
        key[o++] = i + 2 < 16 ? abc[v & 63] : '=';
    }
    key[o] = '\0';
}

static void add(proto_header_t *extra, size_t *n, const char *name, const char *value)
{
    extra[(*n)++] = (proto_header_t){name, strlen(name), value, strlen(value)};
}

int proto_upgrade_request(proto_request_t *req, proto_header_t *extra, size_t cap, const char *key)
{
    size_t n = 0;
    if (cap < req->nextra + PROTO_UPGRADE_EXTRA_MAX)
        return PROTO_E_NOMEM;
    for (size_t i = 0; i < req->nextra; i++)
        extra[n++] = req->extra[i];
    int has_version = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        has_version |= name_is(&req->headers[i], "sec-websocket-version");
    /* The builder drops connection-specific fields the client sent, and any
     * field named like an extra one: these are the only ones the backend
     * sees. */
    add(extra, &n, "upgrade", "websocket");
    add(extra, &n, "connection", "upgrade");
    if (key != NULL)
        add(extra, &n, "sec-websocket-key", key);
    if (!has_version)
        add(extra, &n, "sec-websocket-version", "13");
    req->extra = extra;
    req->nextra = n;
    req->method = "GET";
    req->method_len = 3;
    req->has_body = 0;
    return 0;
}

int proto_upgrade_status(const char *data, size_t len, int *status)
{
    const char *lf = memchr(data, '\n', len);
    size_t have = lf != NULL ? (size_t)(lf - data) : len;
    /* "HTTP/1.x DDD" is all we need, and enough to refuse garbage early. */
    static const char prefix[] = "HTTP/1.";
    for (size_t i = 0; i < have && i < 7; i++) {
        if (data[i] != prefix[i])
            return PROTO_E_BAD_RESPONSE;
    }
    if (lf == NULL)
        return 0;
    if (have < 13 || data[have - 1] != '\r' || (data[7] != '0' && data[7] != '1') ||
        data[8] != ' ' || (have > 13 && data[12] != ' '))
        return PROTO_E_BAD_RESPONSE;
    int v = 0;
    for (int i = 9; i < 12; i++) {
        if (data[i] < '0' || data[i] > '9')
            return PROTO_E_BAD_RESPONSE;
        v = v * 10 + (data[i] - '0');
    }
    if (v < 100)
        return PROTO_E_BAD_RESPONSE;
    *status = v;
    return 1;
}

ssize_t proto_upgrade_parse_head(char *data, size_t len, int *status, proto_header_t *fields,
                                 size_t max, size_t *n)
{
    int rv = proto_upgrade_status(data, len, status);
    if (rv <= 0)
        return rv;
    *n = 0;
    size_t pos = (size_t)((const char *)memchr(data, '\n', len) - data) + 1;
    for (;;) {
        char *line = data + pos;
        char *lf = memchr(line, '\n', len - pos);
        if (lf == NULL)
            return 0;
        size_t line_len = (size_t)(lf - line);
        if (line_len == 0 || line[line_len - 1] != '\r')
            return PROTO_E_BAD_RESPONSE; /* bare LF */
        line_len--;
        pos += line_len + 2;
        if (line_len == 0)
            return (ssize_t)pos;
        if (line[0] == ' ' || line[0] == '\t')
            return PROTO_E_BAD_RESPONSE; /* obs-fold */
        char *colon = memchr(line, ':', line_len);
        if (colon == NULL || !proto_headers_valid_name(line, (size_t)(colon - line), 0))
            return PROTO_E_BAD_RESPONSE;
        if (*n == max)
            return PROTO_E_TOO_LARGE;
        size_t name_len = (size_t)(colon - line);
        for (size_t i = 0; i < name_len; i++) {
            if (line[i] >= 'A' && line[i] <= 'Z')
                line[i] = (char)(line[i] - 'A' + 'a');
        }
        const char *v = colon + 1, *end = line + line_len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (!proto_headers_valid_value(v, (size_t)(end - v)))
            return PROTO_E_BAD_RESPONSE;
        fields[(*n)++] = (proto_header_t){line, name_len, v, (size_t)(end - v)};
    }
}

size_t proto_upgrade_filter_101(const proto_header_t *in, size_t n, proto_header_t *out, int for_h2)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const proto_header_t *f = &in[i];
        int is_handshake = name_is(f, "connection") || name_is(f, "upgrade");
        if (name_is(f, "content-length") || name_is(f, "transfer-encoding"))
            continue;
        if (for_h2 && (is_handshake || name_is(f, "sec-websocket-accept")))
            continue;
        if (!is_handshake && proto_headers_is_connection_specific(f->name, f->name_len))
            continue;
        out[k++] = *f;
    }
    return k;
}

const char *proto_upgrade_field(const proto_header_t *f, size_t n, const char *name, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        if (name_is(&f[i], name)) {
            *len = f[i].value_len;
            return f[i].value;
        }
    }
    return NULL;
}

const char *proto_upgrade_head_key(const char *head, size_t head_len, size_t *len)
{
    static const char name[] = "\r\nsec-websocket-key: ";
    size_t nlen = sizeof(name) - 1;
    for (size_t i = 0; i + nlen <= head_len; i++) {
        if (memcmp(head + i, name, nlen) != 0)
            continue;
        const char *v = head + i + nlen;
        const char *end = memchr(v, '\r', head_len - (size_t)(v - head));
        if (end == NULL)
            return NULL;
        *len = (size_t)(end - v);
        return v;
    }
    return NULL;
}

size_t proto_upgrade_accept_input(const char *key, size_t key_len, char *out, size_t cap)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    size_t n = key_len + sizeof(guid) - 1;
    if (n > cap)
        return 0;
    memcpy(out, key, key_len);
    memcpy(out + key_len, guid, sizeof(guid) - 1);
    return n;
}
