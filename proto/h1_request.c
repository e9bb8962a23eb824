/*
 * HTTP/2 request -> HTTP/1.1 request head. Every check here exists because a
 * backend could read the bytes differently from us: the request line, Host,
 * the body framing and the header syntax are all rewritten or refused, never
 * passed through blindly.
 */
#include "proto/h1_request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/headers.h"

/* A growing output string. Allocation failure is sticky so the builder code
 * reads straight through and checks once at the end. */
typedef struct strbuf {
    char *data;
    size_t len, cap;
    int is_oom;
} strbuf_t;

static void sb_add(strbuf_t *sb, const char *s, size_t n)
{
    if (sb->is_oom)
        return;
    if (sb->cap - sb->len < n) {
        size_t cap = sb->cap ? sb->cap : 512;
        char *p;

        while (cap - sb->len < n) {
            if (cap > SIZE_MAX / 2) {
                sb->is_oom = 1;
                return;
            }
            cap *= 2;
        }
        p = realloc(sb->data, cap);
        if (p == NULL) {
            sb->is_oom = 1;
            return;
        }
        sb->data = p;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
}

static void sb_str(strbuf_t *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_field(strbuf_t *sb, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    sb_add(sb, name, name_len);
    sb_add(sb, ": ", 2);
    sb_add(sb, value, value_len);
    sb_add(sb, "\r\n", 2);
}

static int name_is(const proto_header_t *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(h->name, lit, n) == 0;
}

/* The request-target as HTTP/1.1 will read it: origin-form, or "*" for
 * OPTIONS. Whitespace or control bytes would let the backend split the
 * request line differently. A '#' starts a fragment, which a request-target
 * never has (RFC 9112 §3.2): backends either refuse it or cut the path there,
 * and the path we routed by would not be the one served. Bytes above 0x7e
 * are not URI characters (RFC 3986 wants them percent-encoded); strict
 * readers refuse them and others decode them each their own way. */
static int valid_path(const proto_request_t *req)
{
    if (req->path == NULL || req->path_len == 0)
        return 0;
    if (req->path_len == 1 && req->path[0] == '*')
        return req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0;
    if (req->path[0] != '/')
        return 0;
    for (size_t i = 0; i < req->path_len; i++) {
        unsigned char c = (unsigned char)req->path[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return 0;
    }
    return 1;
}

/* RFC 3986 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). It is
 * written into X-Forwarded-Proto and Forwarded, so it must be a plain token. */
static int valid_scheme(const char *s, size_t n)
{
    if (s == NULL || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int is_alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int is_other = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
        if (!is_alpha && (i == 0 || !is_other))
            return 0;
    }
    return 1;
}

/* Host = uri-host [ ":" port ]: unreserved, sub-delims, pct-encoded, the
 * IP-literal brackets and ':'. Anything else (space, '@', '/', ...) could make
 * the backend route or parse differently from the authority we checked. */
static int valid_host(const char *s, size_t n)
{
    static const char extra[] = "-._~!$&'()*+,;=:[]%";

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

/* A numeric address as the gateway formats it; anything else is written as
 * "unknown" rather than trusted into a header. */
static int valid_addr(const char *a)
{
    if (a == NULL || a[0] == '\0')
        return 0;
    for (const char *p = a; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '.' || c == ':' || c == '%' || c == '_' || c == '-';
        if (!ok || p - a > 64)
            return 0;
    }
    return 1;
}

/* 1 when the field is named by any Connection header of the request: such
 * fields are hop-by-hop for the client's connection only (RFC 9110 §7.6.1). */
static int named_by_connection(const proto_request_t *req, const proto_header_t *h)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *c = &req->headers[i];
        if (name_is(c, "connection") &&
            proto_headers_list_contains(c->value, c->value_len, h->name, h->name_len))
            return 1;
    }
    return 0;
}

/* What one build needs to know about the whole field list. */
typedef struct build_ctx {
    const proto_request_t *req;
    int has_connection; /* HTTP/2 requests never do (nghttp2 refuses it), so the
                           per-field Connection scan is skipped in the common case */
} build_ctx_t;

static int is_extra_name(const proto_request_t *req, const proto_header_t *h)
{
    for (size_t i = 0; i < req->nextra; i++) {
        if (proto_headers_name_eq(req->extra[i].name, req->extra[i].name_len, h->name, h->name_len))
            return 1;
    }
    return 0;
}

static int is_dropped(const build_ctx_t *ctx, const proto_header_t *h)
{
    if (proto_headers_is_connection_specific(h->name, h->name_len) || is_extra_name(ctx->req, h))
        return 1;
    if (name_is(h, "te"))
        return !proto_headers_name_eq(h->value, h->value_len, "trailers", 8);
    return ctx->has_connection && named_by_connection(ctx->req, h);
}

static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return PROTO_E_BAD_REQUEST;
}

/* Checks every field and works out Host and the body framing, before any
 * byte is written. */
static int check_fields(build_ctx_t *ctx, const char **host, size_t *host_len,
                        int64_t *content_length, const char **why)
{
    const proto_request_t *req = ctx->req;
    const char *field_host = NULL;
    size_t field_host_len = 0;

    *content_length = -1;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (name_is(&req->headers[i], "connection"))
            ctx->has_connection = 1;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *h = &req->headers[i];

        if (!proto_headers_valid_name(h->name, h->name_len, 1))
            return fail(why, "invalid header name");
        if (!proto_headers_valid_value(h->value, h->value_len))
            return fail(why, "invalid header value");
        if (name_is(h, "host")) {
            if (field_host != NULL)
                return fail(why, "more than one host header");
            field_host = h->value;
            field_host_len = h->value_len;
        } else if (name_is(h, "content-length") && !is_dropped(ctx, h)) {
            int64_t v;
            if (proto_headers_parse_content_length(h->value, h->value_len, &v) != 0)
                return fail(why, "invalid content-length");
            if (*content_length >= 0 && *content_length != v)
                return fail(why, "conflicting content-length values");
            *content_length = v;
        }
    }

    if (req->authority != NULL) {
        if (!valid_host(req->authority, req->authority_len))
            return fail(why, "invalid :authority");
        if (field_host != NULL &&
            !proto_headers_name_eq(field_host, field_host_len, req->authority, req->authority_len))
            return fail(why, "host header differs from :authority");
        *host = req->authority;
        *host_len = req->authority_len;
    } else {
        if (field_host == NULL)
            return fail(why, "no :authority and no host header");
        if (!valid_host(field_host, field_host_len))
            return fail(why, "invalid host header");
        *host = field_host;
        *host_len = field_host_len;
    }

    /* RFC 9113 §8.1.1: a content-length that disagrees with the DATA frames
     * is malformed; with END_STREAM on HEADERS there are none. */
    if (!req->has_body && *content_length > 0)
        return fail(why, "content-length without a body");
    return 0;
}

/* Writes the single cookie line at the position of the first crumb
 * (RFC 9113 §8.2.3: crumbs are joined with "; " for HTTP/1.1). */
static void write_cookie(strbuf_t *sb, const build_ctx_t *ctx, size_t first)
{
    const proto_request_t *req = ctx->req;
    int is_first = 1;

    for (size_t i = first; i < req->nheaders; i++) {
        const proto_header_t *h = &req->headers[i];
        if (!name_is(h, "cookie") || h->value_len == 0 || is_dropped(ctx, h))
            continue;
        sb_str(sb, is_first ? "cookie: " : "; ");
        sb_add(sb, h->value, h->value_len);
        is_first = 0;
    }
    if (!is_first)
        sb_add(sb, "\r\n", 2);
}

/* Appends ", "-joined values of every field called name, and returns how many
 * non-empty ones there were. */
static int write_joined(strbuf_t *sb, const build_ctx_t *ctx, const char *name)
{
    const proto_request_t *req = ctx->req;
    int n = 0;

    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *h = &req->headers[i];
        if (!name_is(h, name) || h->value_len == 0 || is_dropped(ctx, h))
            continue;
        if (n++ > 0)
            sb_add(sb, ", ", 2);
        sb_add(sb, h->value, h->value_len);
    }
    return n;
}

static void write_forwarding(strbuf_t *sb, const build_ctx_t *ctx)
{
    const proto_request_t *req = ctx->req;
    int has_addr = valid_addr(req->client_addr);
    int is_v6 = has_addr && strchr(req->client_addr, ':') != NULL;

    /* X-Forwarded-For: earlier hops first, the peer we saw last. */
    sb_str(sb, "x-forwarded-for: ");
    if (write_joined(sb, ctx, "x-forwarded-for") > 0)
        sb_add(sb, ", ", 2);
    sb_str(sb, has_addr ? req->client_addr : "unknown");
    sb_add(sb, "\r\n", 2);

    sb_field(sb, "x-forwarded-proto", 17, req->scheme, req->scheme_len);

    /* RFC 7239: an IPv6 node is "[addr]" and must be quoted ('[' and ':'
     * are not token characters). */
    sb_str(sb, "forwarded: ");
    if (write_joined(sb, ctx, "forwarded") > 0)
        sb_add(sb, ", ", 2);
    if (!has_addr)
        sb_str(sb, "for=unknown");
    else if (is_v6) {
        sb_str(sb, "for=\"[");
        sb_str(sb, req->client_addr);
        sb_str(sb, "]\"");
    } else {
        sb_str(sb, "for=");
        sb_str(sb, req->client_addr);
    }
    sb_str(sb, ";proto=");
    sb_add(sb, req->scheme, req->scheme_len);
    sb_add(sb, "\r\n", 2);
}

static int is_body_method(const proto_request_t *req)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t n = strlen(methods[i]);
        if (req->method_len == n && memcmp(req->method, methods[i], n) == 0)
            return 1;
    }
    return 0;
}

int proto_h1_request_build(const proto_request_t *req, proto_h1_head_t *out, const char **why)
{
    strbuf_t sb = {0};
    build_ctx_t ctx = {.req = req};
    const char *host = NULL;
    size_t host_len = 0;
    int64_t content_length;
    int has_cookie = 0;
    int err;

    memset(out, 0, sizeof(*out));
    out->content_length = -1;

    if (req->method == NULL || !proto_headers_valid_name(req->method, req->method_len, 0))
        return fail(why, "invalid method");
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0) {
        if (why != NULL)
            *why = "CONNECT is not supported";
        return PROTO_E_NOT_IMPLEMENTED;
    }
    /* The HTTP/1.1 frontend cannot parse other methods and answers them
     * with 501: HTTP/2 clients get the same. */
    if (!proto_headers_is_known_method(req->method, req->method_len)) {
        if (why != NULL)
            *why = "unknown method";
        return PROTO_E_NOT_IMPLEMENTED;
    }
    if (!valid_path(req))
        return fail(why, "invalid :path");
    if (!valid_scheme(req->scheme, req->scheme_len))
        return fail(why, "invalid :scheme");
    err = check_fields(&ctx, &host, &host_len, &content_length, why);
    if (err != 0)
        return err;

    sb_add(&sb, req->method, req->method_len);
    sb_add(&sb, " ", 1);
    sb_add(&sb, req->path, req->path_len);
    sb_str(&sb, " HTTP/1.1\r\n");
    sb_field(&sb, "host", 4, host, host_len);

    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *h = &req->headers[i];

        /* Rewritten below, or already written as Host. */
        if (name_is(h, "host") || name_is(h, "content-length") || name_is(h, "x-forwarded-for") ||
            name_is(h, "x-forwarded-proto") || name_is(h, "forwarded") || is_dropped(&ctx, h))
            continue;
        if (name_is(h, "cookie")) {
            if (!has_cookie)
                write_cookie(&sb, &ctx, i);
            has_cookie = 1;
            continue;
        }
        sb_field(&sb, h->name, h->name_len, h->value, h->value_len);
    }

    if (content_length >= 0) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%" PRId64, content_length);
        sb_field(&sb, "content-length", 14, num, (size_t)n);
        out->content_length = content_length;
    } else if (req->has_body) {
        sb_str(&sb, "transfer-encoding: chunked\r\n");
        out->is_chunked = 1;
    } else if (is_body_method(req)) {
        /* Without it an HTTP/1.1 backend may wait for a body that never comes. */
        sb_str(&sb, "content-length: 0\r\n");
        out->content_length = 0;
    }

    write_forwarding(&sb, &ctx);
    for (size_t i = 0; i < req->nextra; i++) {
        const proto_header_t *h = &req->extra[i];
        if (!proto_headers_valid_value(h->value, h->value_len)) {
            free(sb.data);
            memset(out, 0, sizeof(*out));
            out->content_length = -1;
            return fail(why, "invalid gateway-added field value");
        }
        if (h->value_len > 0) /* empty: only strip what the client sent */
            sb_field(&sb, h->name, h->name_len, h->value, h->value_len);
    }
    if (req->via != NULL) {
        /* A second via line is the same as one joined with a comma. */
        size_t via_len = strlen(req->via);
        if (!proto_headers_valid_value(req->via, via_len)) {
            free(sb.data);
            memset(out, 0, sizeof(*out));
            out->content_length = -1;
            return fail(why, "invalid via pseudonym");
        }
        sb_field(&sb, "via", 3, req->via, via_len);
    }
    sb_add(&sb, "\r\n", 2);

    if (sb.is_oom) {
        free(sb.data);
        memset(out, 0, sizeof(*out));
        out->content_length = -1;
        return PROTO_E_NOMEM;
    }
    out->data = sb.data;
    out->len = sb.len;
    out->is_idempotent = proto_headers_is_idempotent_method(req->method, req->method_len);
    return 0;
}

void proto_h1_head_free(proto_h1_head_t *head)
{
    free(head->data);
    head->data = NULL;
    head->len = 0;
}

/* Fields that mean something only in a head, or that the gateway writes
 * itself: never forwarded from request trailers. */
static int is_head_only(const proto_header_t *h)
{
    static const char *const names[] = {
        "te",
        "content-length",
        "host",
        "trailer",
        "expect",
        "x-forwarded-for",
        "x-forwarded-proto",
        "forwarded",
        "via",
    };
    if (proto_headers_is_connection_specific(h->name, h->name_len))
        return 1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name_is(h, names[i]))
            return 1;
    }
    return 0;
}

int proto_h1_request_trailers(const proto_header_t *in, size_t n, const char *reserved_name,
                              size_t max_list_size, proto_header_t *out, const char **why)
{
    size_t list_size = 0;
    int k = 0;

    for (size_t i = 0; i < n; i++) {
        const proto_header_t *h = &in[i];
        list_size += h->name_len + h->value_len + 32;
        if (list_size > max_list_size) {
            if (why != NULL)
                *why = "request trailers over max_header_list_size";
            return PROTO_E_TOO_LARGE;
        }
        if (h->name_len > 0 && h->name[0] == ':')
            return fail(why, "pseudo-header field in request trailers");
        if (!proto_headers_valid_name(h->name, h->name_len, 1))
            return fail(why, "invalid trailer field name");
        if (!proto_headers_valid_value(h->value, h->value_len))
            return fail(why, "invalid trailer field value");
        if (is_head_only(h) ||
            (reserved_name != NULL &&
             proto_headers_name_eq(h->name, h->name_len, reserved_name, strlen(reserved_name))))
            continue;
        out[k++] = *h;
    }
    return k;
}
