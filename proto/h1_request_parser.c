/*
 * Client request parsing: llhttp does the HTTP/1.1 syntax; this file adds
 * what llhttp 8.1 (even in strict mode) lets through and a gateway must not:
 * a bare LF after the request line or as the empty line that ends the head
 * or the trailers, runs of spaces in the request line, obs-fold, field names
 * that are not tokens, transfer codings other than chunked, HTTP/1.0 with
 * Transfer-Encoding, a missing or repeated Host. Any of them could make the
 * backend (or another hop) frame the request differently from us.
 *
 * llhttp is paused twice per request: after the head, so that the raw head
 * bytes can be checked before anything is delivered, and after the request,
 * so that the caller handles one request at a time. Field bytes are copied
 * into p->fields because llhttp hands them out in pieces that may span several
 * feed() calls; body bytes are not copied.
 */
#include "proto/h1_request_parser.h"

#include <stdlib.h>
#include <string.h>

#include "proto/headers.h"

/* Counted once for the method, two spaces, "HTTP/1.1" and CRLF on top of
 * the target and the fields, so the limit tracks the wire size. */
#define REQUEST_LINE_OVERHEAD 20

/* Heads with up to this many fields are handed out from the stack; bigger
 * ones cost one malloc. */
#define STACK_HEADERS 64

static proto_h1_req_parser_t *parser_of(llhttp_t *lp)
{
    return lp->data;
}

static int set_err(proto_h1_req_parser_t *p, int err, const char *why)
{
    if (p->err == 0) {
        p->err = err;
        p->why = why;
    }
    return -1;
}

/* Records a failed proto_fields_* call (rv is not 0). */
static int set_fields_err(proto_h1_req_parser_t *p, int rv)
{
    return set_err(p, rv, rv == PROTO_E_TOO_LARGE ? "request head too large" : "out of memory");
}

/* ---- raw head checks ---- */

/*
 * Walks head bytes that llhttp has already accepted and refuses what it
 * should not have: every LF must follow a CR and every CR precede an LF
 * (llhttp 8.1 strict takes a bare LF after the request line and as the final
 * empty line); the request line is exactly "METHOD SP TARGET SP VERSION"
 * (llhttp takes "GET  /"); a field line never starts with whitespace (that
 * is obs-fold). Empty lines before the request line are allowed (RFC 9112
 * §2.2). Returns NULL or the reason.
 */
static const char *scan_head(proto_h1_req_scan_t *s, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = data[i];

        if (s->prev == '\r' && c != '\n')
            return "bare CR in request head";
        if (c == '\n') {
            if (s->prev != '\r')
                return "bare LF in request head";
            if (s->line == 0 && s->line_bytes > 0) {
                if (s->spaces != 2)
                    return "malformed request line";
                s->line = 1;
            } else if (s->line > 0) {
                s->line++;
            }
            s->line_bytes = 0;
        } else if (c != '\r') {
            if (s->line == 0 && c == ' ') {
                if (s->line_bytes == 0 || s->prev == ' ')
                    return "extra whitespace in request line";
                s->spaces++;
            } else if (s->line > 0 && s->line_bytes == 0 && (c == ' ' || c == '\t')) {
                return "obs-fold in request head";
            }
            s->line_bytes++;
        }
        s->prev = c;
    }
    return NULL;
}

/* ---- the method ---- */

enum method_state {
    METHOD_START, /* empty lines before the request line */
    METHOD_IN,    /* token bytes so far */
    METHOD_DONE,  /* the token and its SP */
    METHOD_BAD,   /* a byte that is not tchar before the SP */
};

/* Follows the request line's method in data (from the first byte of a
 * request, across feeds) until its SP or a byte that cannot be in it. */
static void scan_method(proto_h1_req_parser_t *p, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && p->method_state < METHOD_DONE; i++) {
        char c = (char)data[i];

        if (p->method_state == METHOD_START && (c == '\r' || c == '\n'))
            continue;
        if (c == ' ' && p->method_state == METHOD_IN) {
            p->method_state = METHOD_DONE;
        } else if (!proto_headers_valid_name(&c, 1, 0)) {
            p->method_state = METHOD_BAD;
        } else {
            p->method_state = METHOD_IN;
            if (p->method_len < PROTO_H1_METHOD_KEEP)
                p->method[p->method_len] = c;
            p->method_len++;
        }
    }
}

/* The method is a whole token llhttp does not know (RFC 9110 §9.1: 501);
 * a token past PROTO_H1_METHOD_KEEP bytes is no method it knows either. */
static int is_unknown_method(const proto_h1_req_parser_t *p)
{
    return p->method_state == METHOD_DONE &&
           (p->method_len > PROTO_H1_METHOD_KEEP ||
            !proto_headers_is_known_method(p->method, p->method_len));
}

/* llhttp refused the request. When the method may be a token it does not
 * know, the token is read to its end (returns 1: feed() takes the bytes and
 * waits); then the answer is 501, else 400. */
static int refuse_request(proto_h1_req_parser_t *p)
{
    const char *why;

    if (p->method_state == METHOD_IN) {
        /* Waiting is bounded by the head limit, as the head itself is. */
        if (p->method_len > p->fields.max_bytes) {
            set_err(p, PROTO_E_TOO_LARGE, "request head too large");
            return 0;
        }
        p->is_method_refused = 1;
        return 1;
    }
    if (is_unknown_method(p)) {
        set_err(p, PROTO_E_NOT_IMPLEMENTED, "unknown method");
        return 0;
    }
    /* llhttp's own refusals: all of them are malformed requests (invalid
     * method, version, token, length, chunk, ...). */
    why = p->is_method_refused ? "invalid method" : llhttp_get_error_reason(&p->parser);
    set_err(p, PROTO_E_BAD_REQUEST, why != NULL ? why : "malformed request");
    return 0;
}

/* ---- llhttp callbacks ---- */

static int h1_on_url(llhttp_t *lp, const char *at, size_t len)
{
    proto_h1_req_parser_t *p = parser_of(lp);
    int rv;

    if (p->target_len == 0)
        p->target_off = p->fields.len;
    rv = proto_fields_append(&p->fields, at, len);
    if (rv != 0)
        return set_fields_err(p, rv);
    p->target_len += len;
    return 0;
}

static int h1_on_header_field(llhttp_t *lp, const char *at, size_t len)
{
    proto_h1_req_parser_t *p = parser_of(lp);
    int rv = proto_fields_append_name(&p->fields, at, len);

    return rv != 0 ? set_fields_err(p, rv) : 0;
}

static int h1_on_header_field_complete(llhttp_t *lp)
{
    proto_h1_req_parser_t *p = parser_of(lp);

    /* llhttp 8.1 takes ": value" (an empty name) without a name callback. */
    if (p->fields.n == 0 || p->fields.in_value)
        return set_err(p, PROTO_E_BAD_REQUEST, "empty field name");
    proto_fields_end_name(&p->fields);
    return 0;
}

/* The last byte before at that is not SP or HTAB, looking back into earlier
 * feeds when needed. */
static unsigned char byte_before(const proto_h1_req_parser_t *p, const char *at)
{
    while (at > p->feed_data) {
        at--;
        if (*at != ' ' && *at != '\t')
            return (unsigned char)*at;
    }
    return p->prev_non_ws;
}

static int h1_on_header_value(llhttp_t *lp, const char *at, size_t len)
{
    proto_h1_req_parser_t *p = parser_of(lp);
    int rv;

    if (len == 0)
        return 0;
    if (p->fields.n == 0 || !p->fields.in_value)
        return set_err(p, PROTO_E_BAD_REQUEST, "empty field name");
    /* llhttp accepts obs-fold: it hands the continuation over as one more
     * piece of the value, or, when the value was empty, as its first piece
     * with the fold's whitespace skipped. Either way the last byte before
     * the piece that is not SP or HTAB is the LF that ended the line, where
     * a real value has its colon or (continuing across feeds) its own last
     * byte. The head's raw-byte scan catches folds too; this covers trailers.
     * RFC 9112 §5.2 lets a server refuse a fold. */
    if (byte_before(p, at) == '\n')
        return set_err(p, PROTO_E_BAD_REQUEST, "obs-fold in field value");
    rv = proto_fields_append_value(&p->fields, at, len);
    return rv != 0 ? set_fields_err(p, rv) : 0;
}

/* HTAB and visible bytes, SP and obs-text; no other control byte. */
static int valid_value(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Lowercases the name, trims trailing OWS (llhttp drops the leading OWS
 * only) and checks the field's syntax. */
static int h1_on_header_value_complete(llhttp_t *lp)
{
    proto_h1_req_parser_t *p = parser_of(lp);
    const proto_field_t *f;

    if (p->fields.n == 0)
        return set_err(p, PROTO_E_BAD_REQUEST, "empty field name");
    /* Lowercasing first changes nothing below: both cases are token bytes. */
    proto_fields_end_value(&p->fields);
    f = proto_fields_last(&p->fields);
    /* llhttp lets "name :" through with the space in the name. */
    if (!proto_headers_valid_name(proto_fields_name(&p->fields, f), f->name_len, 0))
        return set_err(p, PROTO_E_BAD_REQUEST, "invalid field name");
    if (!valid_value(proto_fields_value(&p->fields, f), f->value_len))
        return set_err(p, PROTO_E_BAD_REQUEST, "invalid field value");
    return 0;
}

/* The head is checked and delivered from feed(), once the raw bytes up to
 * here have been scanned. */
static int h1_on_headers_complete(llhttp_t *lp)
{
    parser_of(lp)->is_head_paused = 1;
    return HPE_PAUSED;
}

static int h1_on_body(llhttp_t *lp, const char *at, size_t len)
{
    proto_h1_req_parser_t *p = parser_of(lp);

    if (p->cbs->on_body != NULL && p->cbs->on_body(p->ud, (const uint8_t *)at, len) < 0)
        return set_err(p, PROTO_E_CALLBACK, "stopped by callback");
    return 0;
}

/* Trailers and on_complete are delivered from feed(), after the end of the
 * chunked body has been checked. */
static int h1_on_message_complete(llhttp_t *lp)
{
    parser_of(lp)->is_complete = 1;
    return HPE_PAUSED;
}

/* ---- head checks ---- */

static int field_is(const proto_h1_req_parser_t *p, const proto_field_t *f, const char *lit)
{
    return proto_fields_name_is(&p->fields, f, lit);
}

static const char *value_of(const proto_h1_req_parser_t *p, const proto_field_t *f)
{
    return proto_fields_value(&p->fields, f);
}

/* 1 when any field called name lists token (comma-separated, any case). */
static int fields_list(const proto_h1_req_parser_t *p, const char *name, const char *token)
{
    for (size_t i = 0; i < p->fields.n; i++) {
        const proto_field_t *f = &p->fields.list[i];
        if (field_is(p, f, name) &&
            proto_headers_list_contains(value_of(p, f), f->value_len, token, strlen(token)))
            return 1;
    }
    return 0;
}

/*
 * RFC 9112 §6.1 and §6.3: the only transfer coding we can frame is chunked,
 * once, last. Anything before it is a coding we would forward without
 * understanding (501); chunked not last, or twice, leaves the length
 * undeterminable (400).
 */
static int check_transfer_encoding(proto_h1_req_parser_t *p)
{
    size_t n = 0;
    int is_last_chunked = 0, has_early_chunked = 0;

    for (size_t i = 0; i < p->fields.n; i++) {
        const proto_field_t *f = &p->fields.list[i];
        const char *v = value_of(p, f);
        size_t j = 0;

        if (!field_is(p, f, "transfer-encoding"))
            continue;
        while (j <= f->value_len) {
            size_t start, end;

            while (j < f->value_len && (v[j] == ' ' || v[j] == '\t'))
                j++;
            start = j;
            while (j < f->value_len && v[j] != ',')
                j++;
            end = j;
            while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
                end--;
            j++;
            if (end == start)
                continue;
            if (is_last_chunked)
                has_early_chunked = 1;
            is_last_chunked = proto_headers_name_eq(v + start, end - start, "chunked", 7);
            n++;
        }
    }
    if (n == 0 || !is_last_chunked || has_early_chunked)
        return set_err(p, PROTO_E_BAD_REQUEST, "transfer-encoding is not chunked");
    if (n > 1)
        return set_err(p, PROTO_E_NOT_IMPLEMENTED, "transfer coding other than chunked");
    return 0;
}

static int is_base64url(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* RFC 7540 §3.2: "Upgrade: h2c", exactly one HTTP2-Settings, and both named
 * by Connection (they are hop-by-hop). A request with a body is served over
 * HTTP/1.1: we would have to read the whole body before switching. */
static int is_h2c_upgrade(const proto_h1_req_parser_t *p, proto_h1_req_head_t *h)
{
    const proto_field_t *settings = NULL;

    if (h->http_minor != 1 || (h->flags & PROTO_H1_REQ_HAS_BODY))
        return 0;
    if (!fields_list(p, "upgrade", "h2c") || !fields_list(p, "connection", "upgrade") ||
        !fields_list(p, "connection", "http2-settings"))
        return 0;
    for (size_t i = 0; i < p->fields.n; i++) {
        if (!field_is(p, &p->fields.list[i], "http2-settings"))
            continue;
        if (settings != NULL)
            return 0;
        settings = &p->fields.list[i];
    }
    if (settings == NULL || !is_base64url(value_of(p, settings), settings->value_len))
        return 0;
    h->http2_settings = value_of(p, settings);
    h->http2_settings_len = settings->value_len;
    return 1;
}

static int starts_with_nocase(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n >= m && proto_headers_name_eq(s, m, lit, m);
}

/*
 * Works out :path and the authority from the request-target (RFC 9112 §3.2).
 * origin-form and "*" (OPTIONS) pass; absolute-form only for http and https,
 * with no userinfo (an '@' lets the authority read differently to different
 * parsers); authority-form is CONNECT's, refused earlier; a fragment never
 * belongs in a request. May append to p->fields, so no pointer into its
 * buffer may be held across the call.
 */
static int check_target(proto_h1_req_parser_t *p, int is_options, size_t *path_off,
                        size_t *path_len, size_t *auth_off, size_t *auth_len, int *is_absolute)
{
    const char *t = p->fields.buf + p->target_off;
    size_t n = p->target_len;
    size_t scheme_len, i, start;

    *is_absolute = 0;
    if (memchr(t, '#', n) != NULL)
        return set_err(p, PROTO_E_BAD_REQUEST, "fragment in request target");
    if (n > 0 && t[0] == '/') {
        *path_off = p->target_off;
        *path_len = n;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (!is_options)
            return set_err(p, PROTO_E_BAD_REQUEST, "asterisk-form without OPTIONS");
        *path_off = p->target_off;
        *path_len = 1;
        return 0;
    }
    if (starts_with_nocase(t, n, "http://"))
        scheme_len = 7;
    else if (starts_with_nocase(t, n, "https://"))
        scheme_len = 8;
    else
        return set_err(p, PROTO_E_BAD_REQUEST, "unsupported request target");

    start = scheme_len;
    for (i = start; i < n && t[i] != '/' && t[i] != '?'; i++) {
        if (t[i] == '@')
            return set_err(p, PROTO_E_BAD_REQUEST, "userinfo in request target");
    }
    if (i == start)
        return set_err(p, PROTO_E_BAD_REQUEST, "empty authority in request target");
    *is_absolute = 1;
    *auth_off = p->target_off + start;
    *auth_len = i - start;
    if (i < n && t[i] == '/') {
        *path_off = p->target_off + i;
        *path_len = n - i;
        return 0;
    }
    /* "http://a" or "http://a?q": the path is empty; HTTP/1.1 writes it as
     * "/" (or "*" for OPTIONS without a query, RFC 9112 §3.2.4). The
     * query is copied by offset: the buffer may move while it grows. */
    {
        proto_fields_t *fs = &p->fields;
        size_t query_off = p->target_off + i, query_len = n - i;
        int rv = proto_fields_reserve(fs, 1 + query_len);

        if (rv != 0)
            return set_fields_err(p, rv);
        *path_off = fs->len;
        *path_len = 1 + query_len;
        fs->buf[fs->len++] = is_options && query_len == 0 ? '*' : '/';
        memcpy(fs->buf + fs->len, fs->buf + query_off, query_len);
        fs->len += query_len;
    }
    return 0;
}

/* Checks the whole head and fills h. Offsets are turned into pointers only
 * at the end, once the field buffer no longer grows. */
static int check_head(proto_h1_req_parser_t *p, proto_h1_req_head_t *h)
{
    llhttp_t *lp = &p->parser;
    const proto_field_t *host = NULL, *expect = NULL;
    size_t path_off = 0, path_len = 0, auth_off = 0, auth_len = 0;
    int has_te = 0, has_cl = 0, is_absolute;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    if (lp->http_major != 1 || lp->http_minor > 1)
        return set_err(p, PROTO_E_BAD_REQUEST, "unsupported HTTP version");
    h->http_minor = lp->http_minor;
    if (lp->method == HTTP_CONNECT)
        return set_err(p, PROTO_E_NOT_IMPLEMENTED, "CONNECT is not supported");
    h->method = llhttp_method_name((llhttp_method_t)lp->method);
    h->method_len = strlen(h->method);

    for (size_t i = 0; i < p->fields.n; i++) {
        const proto_field_t *f = &p->fields.list[i];

        if (field_is(p, f, "host")) {
            /* RFC 9112 §3.2: more than one Host is a 400. */
            if (host != NULL)
                return set_err(p, PROTO_E_BAD_REQUEST, "more than one host field");
            host = f;
        } else if (field_is(p, f, "content-length")) {
            /* Even equal repeats are refused: some hop may join them into
             * a list it reads differently. */
            if (has_cl)
                return set_err(p, PROTO_E_BAD_REQUEST, "more than one content-length field");
            if (proto_headers_parse_content_length(value_of(p, f), f->value_len,
                                                   &h->content_length) != 0)
                return set_err(p, PROTO_E_BAD_REQUEST, "invalid content-length");
            has_cl = 1;
        } else if (field_is(p, f, "transfer-encoding")) {
            has_te = 1;
        } else if (field_is(p, f, "expect")) {
            expect = f;
        }
    }
    if (host == NULL && h->http_minor == 1)
        return set_err(p, PROTO_E_BAD_REQUEST, "no host field");
    if (has_te) {
        if (has_cl)
            return set_err(p, PROTO_E_BAD_REQUEST, "content-length with transfer-encoding");
        /* RFC 9112 §6.1: an HTTP/1.0 peer may not know chunked at all. */
        if (h->http_minor == 0)
            return set_err(p, PROTO_E_BAD_REQUEST, "transfer-encoding in an HTTP/1.0 request");
        if (check_transfer_encoding(p) != 0)
            return -1;
        h->flags |= PROTO_H1_REQ_CHUNKED | PROTO_H1_REQ_HAS_BODY;
        p->is_chunked = 1;
    } else if (h->content_length > 0) {
        h->flags |= PROTO_H1_REQ_HAS_BODY;
    }

    if (check_target(p, lp->method == HTTP_OPTIONS, &path_off, &path_len, &auth_off, &auth_len,
                     &is_absolute) != 0)
        return -1;

    /* RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
     * "keep-alive". */
    if (!fields_list(p, "connection", "close") &&
        (h->http_minor == 1 || fields_list(p, "connection", "keep-alive")))
        h->flags |= PROTO_H1_REQ_KEEP_ALIVE;
    /* RFC 9110 §10.1.1: ignored in HTTP/1.0; pointless without a body. */
    if (expect != NULL && h->http_minor == 1 && (h->flags & PROTO_H1_REQ_HAS_BODY) &&
        proto_headers_name_eq(value_of(p, expect), expect->value_len, "100-continue", 12))
        h->flags |= PROTO_H1_REQ_EXPECT_CONTINUE;
    if (is_h2c_upgrade(p, h))
        h->flags |= PROTO_H1_REQ_UPGRADE_H2C;

    h->target = p->fields.buf + p->target_off;
    h->target_len = p->target_len;
    h->path = p->fields.buf + path_off;
    h->path_len = path_len;
    if (is_absolute) {
        h->flags |= PROTO_H1_REQ_ABSOLUTE_FORM;
        h->authority = p->fields.buf + auth_off;
        h->authority_len = auth_len;
    } else if (host != NULL) {
        h->authority = value_of(p, host);
        h->authority_len = host->value_len;
    }
    return 0;
}

static proto_header_t *field_views(proto_h1_req_parser_t *p, proto_header_t *stack)
{
    proto_header_t *hs = stack;

    if (p->fields.n > STACK_HEADERS) {
        hs = malloc(p->fields.n * sizeof(*hs));
        if (hs == NULL) {
            set_err(p, PROTO_E_NOMEM, "out of memory");
            return NULL;
        }
    }
    for (size_t i = 0; i < p->fields.n; i++)
        hs[i] = proto_fields_header(&p->fields, &p->fields.list[i]);
    return hs;
}

static int deliver_head(proto_h1_req_parser_t *p)
{
    proto_header_t stack[STACK_HEADERS];
    proto_h1_req_head_t h;
    int rv = 0;

    if (check_head(p, &h) != 0)
        return -1;
    h.headers = field_views(p, stack);
    if (h.headers == NULL)
        return -1;
    h.nheaders = p->fields.n;
    if (p->cbs->on_head != NULL)
        rv = p->cbs->on_head(p->ud, &h);
    if (h.headers != stack)
        free((void *)h.headers);
    if (rv < 0)
        return set_err(p, PROTO_E_CALLBACK, "stopped by callback");
    p->head_done = 1;
    proto_fields_clear(&p->fields);
    return 0;
}

static int deliver_end(proto_h1_req_parser_t *p)
{
    if (p->fields.n > 0 && p->cbs->on_trailers != NULL) {
        proto_header_t stack[STACK_HEADERS];
        proto_header_t *hs = field_views(p, stack);
        int rv;

        if (hs == NULL)
            return -1;
        rv = p->cbs->on_trailers(p->ud, hs, p->fields.n);
        if (hs != stack)
            free(hs);
        if (rv < 0)
            return set_err(p, PROTO_E_CALLBACK, "stopped by callback");
    }
    proto_fields_clear(&p->fields);
    if (p->cbs->on_complete != NULL && p->cbs->on_complete(p->ud) < 0)
        return set_err(p, PROTO_E_CALLBACK, "stopped by callback");
    return 0;
}

/* ---- public ---- */

int proto_h1_req_parser_init(proto_h1_req_parser_t *p, const proto_h1_req_cbs_t *cbs, void *ud,
                             size_t max_head_bytes)
{
    memset(p, 0, sizeof(*p));
    p->cbs = cbs;
    p->ud = ud;
    if (proto_fields_init(&p->fields, max_head_bytes, REQUEST_LINE_OVERHEAD) != 0)
        return PROTO_E_NOMEM;

    llhttp_settings_init(&p->settings);
    p->settings.on_url = h1_on_url;
    p->settings.on_header_field = h1_on_header_field;
    p->settings.on_header_field_complete = h1_on_header_field_complete;
    p->settings.on_header_value = h1_on_header_value;
    p->settings.on_header_value_complete = h1_on_header_value_complete;
    p->settings.on_headers_complete = h1_on_headers_complete;
    p->settings.on_body = h1_on_body;
    p->settings.on_message_complete = h1_on_message_complete;
    proto_h1_req_parser_reset(p);
    return 0;
}

void proto_h1_req_parser_reset(proto_h1_req_parser_t *p)
{
    /* A fresh llhttp rather than llhttp_resume(): nothing of the previous
     * request (an error, its flags) may leak into the next one. */
    llhttp_init(&p->parser, HTTP_REQUEST, &p->settings);
    p->parser.data = p;
    proto_fields_clear(&p->fields);
    p->target_off = p->target_len = 0;
    memset(&p->scan, 0, sizeof(p->scan));
    p->is_head_paused = 0;
    p->head_done = 0;
    p->is_chunked = 0;
    p->is_complete = 0;
    p->is_started = 0;
    p->err = 0;
    p->why = NULL;
    p->last_byte = p->last_byte2 = 0;
    p->prev_non_ws = 0;
    p->method_len = 0;
    p->method_state = METHOD_START;
    p->is_method_refused = 0;
}

/* llhttp accepts a bare LF as the empty line that ends the trailer section
 * ("0\r\n\n", "x: y\r\n\n"); the two bytes before the end must be CRLF. */
static int ends_with_crlf(const proto_h1_req_parser_t *p, const uint8_t *data, size_t end)
{
    unsigned char b1 = end >= 1 ? data[end - 1] : p->last_byte;
    unsigned char b2 = end >= 2 ? data[end - 2] : end == 1 ? p->last_byte : p->last_byte2;

    return b2 == '\r' && b1 == '\n';
}

/* Keeps what ends_with_crlf() and byte_before() need from a feed whose
 * bytes are gone once it returns: the trailer section's last bytes and a
 * field line may straddle feeds. */
static void remember_tail(proto_h1_req_parser_t *p, const uint8_t *data, size_t len)
{
    p->feed_data = NULL;
    if (len == 0)
        return;
    p->last_byte2 = len >= 2 ? data[len - 2] : p->last_byte;
    p->last_byte = data[len - 1];
    for (size_t i = len; i > 0; i--) {
        if (data[i - 1] != ' ' && data[i - 1] != '\t') {
            p->prev_non_ws = data[i - 1];
            break;
        }
    }
}

ssize_t proto_h1_req_parser_feed(proto_h1_req_parser_t *p, const uint8_t *data, size_t len)
{
    size_t off = 0;

    if (p->err != 0)
        return p->err;
    if (p->is_complete || len == 0)
        return 0;
    p->is_started = 1;
    if (p->method_state < METHOD_DONE)
        scan_method(p, data, len);
    if (p->is_method_refused) {
        if (refuse_request(p))
            return (ssize_t)len; /* the method goes on in the next bytes */
        return p->err;
    }
    p->feed_data = (const char *)data;

    for (;;) {
        const uint8_t *start = data + off;
        llhttp_errno_t e = llhttp_execute(&p->parser, (const char *)start, len - off);
        const uint8_t *pos;
        const char *why;

        if (e == HPE_OK) {
            if (!p->head_done && (why = scan_head(&p->scan, start, len - off)) != NULL)
                set_err(p, PROTO_E_BAD_REQUEST, why);
            break;
        }
        pos = (const uint8_t *)llhttp_get_error_pos(&p->parser);
        if (e == HPE_PAUSED && p->is_head_paused) {
            p->is_head_paused = 0;
            if ((why = scan_head(&p->scan, start, (size_t)(pos - start))) != NULL) {
                set_err(p, PROTO_E_BAD_REQUEST, why);
                break;
            }
            if (deliver_head(p) != 0)
                break;
            llhttp_resume(&p->parser);
            off = (size_t)(pos - data);
            continue; /* llhttp runs on even with no bytes left: a request
                         without body completes here */
        }
        if (e == HPE_PAUSED && p->is_complete) {
            if (p->is_chunked && !ends_with_crlf(p, data, (size_t)(pos - data))) {
                set_err(p, PROTO_E_BAD_REQUEST, "bare LF in chunked framing");
                break;
            }
            if (deliver_end(p) != 0)
                break;
            remember_tail(p, data, (size_t)(pos - data));
            return pos - data;
        }
        /* The bytes llhttp took before it stopped get the raw checks first,
         * as they would have had they come in a feed of their own. */
        if (p->err == 0 && !p->head_done && pos >= start && pos <= data + len &&
            (why = scan_head(&p->scan, start, (size_t)(pos - start))) != NULL)
            set_err(p, PROTO_E_BAD_REQUEST, why);
        if (p->err == 0 && refuse_request(p)) {
            p->feed_data = NULL;
            return (ssize_t)len; /* the method goes on in the next bytes */
        }
        break;
    }
    p->feed_data = NULL;
    if (p->err != 0)
        return p->err;
    remember_tail(p, data, len);
    return (ssize_t)len;
}

void proto_h1_req_parser_free(proto_h1_req_parser_t *p)
{
    proto_fields_free(&p->fields);
}
