/*
 * Differential fuzz target for proto/h1_request: an arbitrary HTTP/2
 * request (method, :authority, :path, a header list, gateway-added fields)
 * goes through proto_h1_request_build(), and every head it produces is read
 * back by proto/h1_request_parser (llhttp in strict mode plus our checks),
 * as a backend would. The head must parse as exactly one complete request
 * with the same method, path and authority, the framing the builder
 * reported, the field lines the text holds, and every field the builder
 * has no reason to rewrite or drop, in order and byte for byte. Any
 * difference is a way for a backend to read a request differently from us.
 *
 * Input: [flags][method][authority][path] then [name][value] pairs, each a
 * length byte and that many bytes; a length byte from 0xe0 picks a name or
 * method from a table instead.
 */
#include "test/fuzz/fuzz.h"

#include "proto/h1_request.h"
#include "proto/h1_request_parser.h"
#include "proto/headers.h"

#define MAX_FIELDS 64
#define BIG_BODY 65536

static const char *const methods[] = {"GET",     "HEAD",  "POST",    "PUT", "PATCH", "DELETE",
                                      "OPTIONS", "TRACE", "CONNECT", "PRI", "get",   "M-SEARCH"};
static const char *const names[] = {
    "host",       "content-length",    "cookie",           "connection",
    "te",         "forwarded",         "x-forwarded-for",  "upgrade",
    "keep-alive", "transfer-encoding", "x-client-subject", "x-forwarded-proto",
    "expect",     "proxy-connection",  "http2-settings",   "accept",
    "priority",   "trailer",           "content-type",     "via",
};

typedef struct str {
    const char *p;
    size_t n;
} str_t;

static str_t take(fz_in_t *in, const char *const *table, size_t ntable)
{
    uint8_t len = fz_byte(in);
    str_t s;

    if (len >= 0xe0 && table != NULL) {
        s.p = table[(len - 0xe0) % ntable];
        s.n = strlen(s.p);
        return s;
    }
    len %= 0xe0;
    if (len > in->n)
        len = (uint8_t)in->n;
    s.p = (const char *)in->p;
    s.n = len;
    in->p += len;
    in->n -= len;
    return s;
}

/* What the parser read back. */
typedef struct readback {
    int nheads, ncomplete;
    char method[32], path[1024], authority[1024];
    size_t method_len, path_len, authority_len;
    int has_authority;
    int64_t content_length;
    unsigned flags;
    proto_header_t fields[MAX_FIELDS + 16];
    char store[16384];
    size_t nfields, used;
} readback_t;

static const char *keep(readback_t *r, const char *s, size_t n)
{
    char *p = r->store + r->used;

    FZ_CHECK(r->used + n <= sizeof(r->store));
    memcpy(p, s, n);
    r->used += n;
    return p;
}

static int on_head(void *ud, const proto_h1_req_head_t *h)
{
    readback_t *r = ud;

    r->nheads++;
    FZ_CHECK(h->method_len < sizeof(r->method) && h->path_len < sizeof(r->path));
    memcpy(r->method, h->method, h->method_len);
    r->method_len = h->method_len;
    memcpy(r->path, h->path, h->path_len);
    r->path_len = h->path_len;
    r->has_authority = h->authority != NULL;
    if (h->authority != NULL) {
        FZ_CHECK(h->authority_len < sizeof(r->authority));
        memcpy(r->authority, h->authority, h->authority_len);
        r->authority_len = h->authority_len;
    }
    r->content_length = h->content_length;
    r->flags = h->flags;
    FZ_CHECK(h->nheaders <= sizeof(r->fields) / sizeof(r->fields[0]));
    for (size_t i = 0; i < h->nheaders; i++) {
        r->fields[i].name = keep(r, h->headers[i].name, h->headers[i].name_len);
        r->fields[i].name_len = h->headers[i].name_len;
        r->fields[i].value = keep(r, h->headers[i].value, h->headers[i].value_len);
        r->fields[i].value_len = h->headers[i].value_len;
    }
    r->nfields = h->nheaders;
    return 0;
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return 0;
}

static int on_trailers(void *ud, const proto_header_t *h, size_t n)
{
    (void)ud;
    (void)h;
    (void)n;
    FZ_CHECK(!"the builder's request has no trailers");
    return 0;
}

static int on_complete(void *ud)
{
    readback_t *r = ud;

    r->ncomplete++;
    return 0;
}

static const proto_h1_req_cbs_t cbs = {on_head, on_body, on_trailers, on_complete};

static int name_is(const proto_header_t *h, const char *lit)
{
    return h->name_len == strlen(lit) && memcmp(h->name, lit, h->name_len) == 0;
}

/* 1 when the builder may rewrite, join or drop h rather than copy it. */
static int is_rewritten(const proto_request_t *req, const proto_header_t *h)
{
    static const char *const rewritten[] = {
        "host",      "content-length",  "cookie",           "te",
        "forwarded", "x-forwarded-for", "x-forwarded-proto"};

    for (size_t i = 0; i < sizeof(rewritten) / sizeof(rewritten[0]); i++) {
        if (name_is(h, rewritten[i]))
            return 1;
    }
    if (proto_headers_is_connection_specific(h->name, h->name_len))
        return 1;
    for (size_t i = 0; i < req->nextra; i++) {
        if (proto_headers_name_eq(req->extra[i].name, req->extra[i].name_len, h->name, h->name_len))
            return 1;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *c = &req->headers[i];
        if (name_is(c, "connection") &&
            proto_headers_list_contains(c->value, c->value_len, h->name, h->name_len))
            return 1;
    }
    return 0;
}

/* The field lines of the head as plain text: "name: value" between CRLFs. */
static void check_lines(const proto_h1_head_t *out, const readback_t *r)
{
    const char *p = memchr(out->data, '\n', out->len) + 1;
    const char *end = out->data + out->len - 2; /* the empty line */
    size_t i = 0;

    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon;

        FZ_CHECK(eol != NULL && eol[1] == '\n');
        colon = memchr(p, ':', (size_t)(eol - p));
        FZ_CHECK(colon != NULL && colon[1] == ' ');
        FZ_CHECK(i < r->nfields);
        FZ_CHECK(r->fields[i].name_len == (size_t)(colon - p));
        FZ_CHECK(memcmp(r->fields[i].name, p, r->fields[i].name_len) == 0);
        FZ_CHECK(r->fields[i].value_len == (size_t)(eol - colon - 2));
        FZ_CHECK(memcmp(r->fields[i].value, colon + 2, r->fields[i].value_len) == 0);
        i++;
        p = eol + 2;
    }
    FZ_CHECK(i == r->nfields);
}

/* llhttp reads only the methods it lists (HTTP_METHOD_MAP); RFC 9110 allows
 * any token, and the builder passes any token on, as it should. For another
 * method the head is read back with "PUT" in its place: every other line of
 * it is still checked. */
static int is_llhttp_method(const char *m, size_t n)
{
#define XX(num, name, string) {#string, sizeof(#string) - 1},
    static const struct {
        const char *s;
        size_t n;
    } known[] = {HTTP_METHOD_MAP(XX)};
#undef XX

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (known[i].n == n && memcmp(known[i].s, m, n) == 0)
            return 1;
    }
    return 0;
}

static void check_readback(const proto_request_t *req, const proto_h1_head_t *out)
{
    readback_t *r = calloc(1, sizeof(*r));
    proto_h1_req_parser_t p;
    size_t body = 0, total;
    uint8_t *wire;
    ssize_t n;
    size_t k = 0;

    FZ_CHECK(r != NULL);
    FZ_CHECK(out->len >= 4 && memcmp(out->data + out->len - 4, "\r\n\r\n", 4) == 0);
    if (out->is_chunked)
        body = 5;
    else if (out->content_length > 0 && out->content_length <= BIG_BODY)
        body = (size_t)out->content_length;
    const char *method = req->method;
    size_t method_len = req->method_len, head_len;

    if (!is_llhttp_method(method, method_len)) {
        method = "PUT";
        method_len = 3;
    }
    head_len = out->len - req->method_len + method_len;
    total = head_len + body;
    wire = malloc(total);
    FZ_CHECK(wire != NULL);
    memcpy(wire, method, method_len);
    memcpy(wire + method_len, out->data + req->method_len, out->len - req->method_len);
    if (out->is_chunked)
        memcpy(wire + head_len, "0\r\n\r\n", 5);
    else
        memset(wire + head_len, 'x', body);

    /* The parser counts the request line as a fixed 20 bytes, not as sent. */
    FZ_CHECK(proto_h1_req_parser_init(&p, &cbs, r, out->len + 32) == 0);
    n = proto_h1_req_parser_feed(&p, wire, total);
    if (n < 0) {
        fprintf(stderr, "re-parse refused the head (%s):\n%.*s\n", p.why, (int)total, wire);
        abort();
    }
    FZ_CHECK((size_t)n == total);
    FZ_CHECK(r->nheads == 1);
    if (out->content_length > BIG_BODY)
        FZ_CHECK(r->ncomplete == 0 && !p.is_complete);
    else
        FZ_CHECK(r->ncomplete == 1 && p.is_complete);

    FZ_CHECK(r->method_len == method_len && memcmp(r->method, method, method_len) == 0);
    FZ_CHECK(r->path_len == req->path_len && memcmp(r->path, req->path, r->path_len) == 0);
    FZ_CHECK(r->has_authority);
    if (req->authority != NULL)
        FZ_CHECK(r->authority_len == req->authority_len &&
                 memcmp(r->authority, req->authority, r->authority_len) == 0);
    FZ_CHECK(r->content_length == out->content_length);
    FZ_CHECK(!!(r->flags & PROTO_H1_REQ_CHUNKED) == !!out->is_chunked);
    check_lines(out, r);

    /* Each field passed through unchanged, in order. */
    for (size_t i = 0; i < req->nheaders; i++) {
        const proto_header_t *h = &req->headers[i];
        if (is_rewritten(req, h))
            continue;
        while (k < r->nfields && !(r->fields[k].name_len == h->name_len &&
                                   memcmp(r->fields[k].name, h->name, h->name_len) == 0 &&
                                   r->fields[k].value_len == h->value_len &&
                                   memcmp(r->fields[k].value, h->value, h->value_len) == 0))
            k++;
        FZ_CHECK(k < r->nfields);
        k++;
    }
    /* Nothing hop-by-hop reaches the backend but the framing we chose. */
    for (size_t i = 0; i < r->nfields; i++) {
        const proto_header_t *f = &r->fields[i];
        if (proto_headers_is_connection_specific(f->name, f->name_len))
            FZ_CHECK(name_is(f, "transfer-encoding") && out->is_chunked);
    }
    proto_h1_req_parser_free(&p);
    free(wire);
    free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const clients[] = {"192.0.2.7", "2001:db8::1", "", "fe80::1%eth0"};
    static const char *const schemes[] = {"https", "http"};
    fz_in_t in = {data, size};
    uint8_t flags = fz_byte(&in);
    proto_header_t hs[MAX_FIELDS];
    proto_header_t extra[1] = {{"x-client-subject", 16, "CN=client", 9}};
    proto_request_t req = {0};
    proto_h1_head_t out;
    const char *why = NULL;
    str_t m = take(&in, methods, sizeof(methods) / sizeof(methods[0]));
    str_t a = take(&in, NULL, 0);
    str_t p = take(&in, NULL, 0);
    int rv;

    req.method = m.p;
    req.method_len = m.n;
    req.scheme = schemes[(flags >> 2) & 1];
    req.scheme_len = strlen(req.scheme);
    if (flags & 2) {
        req.authority = a.p;
        req.authority_len = a.n;
    }
    req.path = p.p;
    req.path_len = p.n;
    req.client_addr = clients[(flags >> 3) & 3];
    req.has_body = flags & 1;
    if (flags & 0x20) {
        req.extra = extra;
        req.nextra = 1;
        if (flags & 0x40)
            extra[0].value_len = 0; /* strip only */
    }
    while (in.n > 0 && req.nheaders < MAX_FIELDS) {
        str_t n = take(&in, names, sizeof(names) / sizeof(names[0]));
        str_t v = take(&in, NULL, 0);
        hs[req.nheaders++] = (proto_header_t){n.p, n.n, v.p, v.n};
    }
    req.headers = hs;

    rv = proto_h1_request_build(&req, &out, &why);
    if (rv != 0) {
        FZ_CHECK(rv == PROTO_E_BAD_REQUEST || rv == PROTO_E_NOT_IMPLEMENTED);
        FZ_CHECK(why != NULL && out.data == NULL);
        return 0;
    }
    check_readback(&req, &out);
    proto_h1_head_free(&out);
    return 0;
}
