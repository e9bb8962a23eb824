/*
 * Backend response parsing: llhttp does the HTTP/1.1 syntax, this file turns
 * its callbacks into events an HTTP/2 stream can carry. Field bytes are
 * copied into r->fields because llhttp hands them out in pieces that may span
 * several feed() calls; body bytes are not copied.
 */
#include "proto/h1_response.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/headers.h"

/* Counted once for "HTTP/1.1 NNN " and its CRLF on top of the fields, so
 * the limit tracks the wire size. */
#define STATUS_LINE_OVERHEAD 15

/* Heads with up to this many forwarded fields are handed out from the
 * stack; bigger ones cost one malloc. */
#define STACK_HEADERS 64

static proto_h1_response_t *resp_of(llhttp_t *p)
{
    return p->data;
}

static int set_err(proto_h1_response_t *r, int err, const char *why)
{
    if (r->err == 0) {
        r->err = err;
        r->why = why;
    }
    return -1;
}

/* Records a failed proto_fields_* call (rv is not 0). */
static int set_fields_err(proto_h1_response_t *r, int rv)
{
    return set_err(r, rv, rv == PROTO_E_TOO_LARGE ? "response head too large" : "out of memory");
}

static int h1_on_message_begin(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);

    proto_fields_clear(&r->fields);
    r->head_done = 0;
    return 0;
}

/* The reason phrase is discarded (HTTP/2 has none) but it is stored with the
 * fields so that it counts toward the head limit. */
static int h1_on_status(llhttp_t *p, const char *at, size_t len)
{
    proto_h1_response_t *r = resp_of(p);
    int rv = proto_fields_append(&r->fields, at, len);

    return rv != 0 ? set_fields_err(r, rv) : 0;
}

static int h1_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    proto_h1_response_t *r = resp_of(p);
    int rv = proto_fields_append_name(&r->fields, at, len);

    return rv != 0 ? set_fields_err(r, rv) : 0;
}

static int h1_on_header_field_complete(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);

    if (r->fields.n == 0) /* an empty name; llhttp refuses those, but be sure */
        return set_err(r, PROTO_E_BAD_RESPONSE, "empty field name");
    proto_fields_end_name(&r->fields);
    return 0;
}

static int h1_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    proto_h1_response_t *r = resp_of(p);
    int rv;

    if (len == 0)
        return 0;
    if (r->fields.n == 0)
        return set_err(r, PROTO_E_BAD_RESPONSE, "empty field name");
    /* llhttp accepts obs-fold (a value continued on a line that starts with
     * whitespace) and hands the continuation over as one more piece. A piece
     * may also just continue where the previous feed() ended; anything else
     * is a fold, which we refuse (RFC 9112 §5.2 lets a gateway choose 502). */
    if (proto_fields_last(&r->fields)->value_len > 0 &&
        !(r->is_value_cut == 2 && at == r->feed_data))
        return set_err(r, PROTO_E_BAD_RESPONSE, "obs-fold in field value");
    r->is_value_cut = at + len == r->feed_end;
    rv = proto_fields_append_value(&r->fields, at, len);
    return rv != 0 ? set_fields_err(r, rv) : 0;
}

/* Lowercases the name, trims trailing OWS (llhttp drops the leading OWS
 * only) and checks that HTTP/2 can carry the field unchanged. */
static int h1_on_header_value_complete(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);
    const proto_field_t *f;

    if (r->fields.n == 0)
        return set_err(r, PROTO_E_BAD_RESPONSE, "empty field name");
    /* Lowercasing first changes nothing below: both cases are token bytes. */
    proto_fields_end_value(&r->fields);
    f = proto_fields_last(&r->fields);
    /* Not a token is malformed HTTP/1.1 (llhttp lets "name :" through with
     * the space in the name), not merely something HTTP/2 cannot carry. */
    if (!proto_headers_valid_name(proto_fields_name(&r->fields, f), f->name_len, 0))
        return set_err(r, PROTO_E_BAD_RESPONSE, "invalid field name");
    if (!proto_headers_valid_value(proto_fields_value(&r->fields, f), f->value_len))
        return set_err(r, PROTO_E_UNSAFE_RESPONSE, "invalid field value");
    return 0;
}

static int field_is(const proto_h1_response_t *r, const proto_field_t *f, const char *lit)
{
    return proto_fields_name_is(&r->fields, f, lit);
}

/* RFC 9110 §7.6.1: fields named by Connection are hop-by-hop too. */
static int named_by_connection(const proto_h1_response_t *r, const proto_field_t *f)
{
    for (size_t i = 0; i < r->fields.n; i++) {
        const proto_field_t *c = &r->fields.list[i];
        if (field_is(r, c, "connection") &&
            proto_headers_list_contains(proto_fields_value(&r->fields, c), c->value_len,
                                        proto_fields_name(&r->fields, f), f->name_len))
            return 1;
    }
    return 0;
}

/* status is the head's (1xx for an interim one), or 0 for trailers. */
static int is_forwarded(const proto_h1_response_t *r, const proto_field_t *f, int status,
                        int has_conn)
{
    if (proto_headers_is_connection_specific(proto_fields_name(&r->fields, f), f->name_len))
        return 0;
    /* "te" only means something in requests; HTTP/2 allows it nowhere else. */
    if (field_is(r, f, "te"))
        return 0;
    /* Framing of the HTTP/1.1 message, meaningless once de-chunked, and
     * refused in trailers by RFC 9110 §6.5.1. A 204 or an interim response
     * must not have one either (RFC 9110 §8.6); a 304's tells the size of
     * the selected representation and is passed on. */
    if ((status < 200 || status == 204) && field_is(r, f, "content-length"))
        return 0;
    return !has_conn || !named_by_connection(r, f);
}

/* "Keep-Alive: timeout=5, max=100" (RFC 2068 §19.7.1.1): the seconds the
 * backend keeps an idle connection, or -1 when it does not say. */
static int keep_alive_timeout(const char *v, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++) {
        if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
            strncasecmp(v + i, "timeout=", 8) == 0) {
            long secs = 0;
            size_t k = i + 8;
            if (k >= len || v[k] < '0' || v[k] > '9')
                return -1;
            for (; k < len && v[k] >= '0' && v[k] <= '9' && secs < 1000000; k++)
                secs = secs * 10 + (v[k] - '0');
            return (int)secs;
        }
    }
    return -1;
}

/* Hands the forwarded fields to on_informational (a 1xx status), on_head
 * (the final head's status) or on_trailers (status 0). */
static int deliver_fields(proto_h1_response_t *r, int status)
{
    int is_interim = status >= 100 && status < 200;
    proto_header_t stack[STACK_HEADERS];
    proto_header_t *hs = stack;
    size_t n = 0;
    int has_conn = 0;
    int rv;

    for (size_t i = 0; i < r->fields.n; i++) {
        const proto_field_t *f = &r->fields.list[i];
        if (field_is(r, f, "connection"))
            has_conn = 1;
        if (status >= 200 && field_is(r, f, "keep-alive"))
            r->keep_alive_timeout_s =
                keep_alive_timeout(proto_fields_value(&r->fields, f), f->value_len);
    }
    if (r->fields.n > STACK_HEADERS) {
        hs = malloc(r->fields.n * sizeof(*hs));
        if (hs == NULL)
            return set_err(r, PROTO_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->fields.n; i++) {
        const proto_field_t *f = &r->fields.list[i];
        if (is_forwarded(r, f, status, has_conn))
            hs[n++] = proto_fields_header(&r->fields, f);
    }
    if (is_interim)
        rv = r->cbs->on_informational != NULL ? r->cbs->on_informational(r->ud, status, hs, n) : 0;
    else if (status != 0)
        rv = r->cbs->on_head != NULL ? r->cbs->on_head(r->ud, status, hs, n) : 0;
    else if (n > 0 && r->cbs->on_trailers != NULL)
        rv = r->cbs->on_trailers(r->ud, hs, n);
    else
        rv = 0;
    if (hs != stack)
        free(hs);
    if (rv < 0)
        return set_err(r, PROTO_E_CALLBACK, "stopped by callback");
    return 0;
}

/* 1 when every element of the list is "chunked". We remove the chunked
 * framing but decode nothing else, so a body with any other transfer coding
 * would reach the client as bytes it cannot interpret. */
static int is_only_chunked(const char *v, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        start = i;
        while (i < len && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && !proto_headers_name_eq(v + start, end - start, "chunked", 7))
            return 0;
        i++;
    }
    return 1;
}

static int has_other_coding(const proto_h1_response_t *r)
{
    for (size_t i = 0; i < r->fields.n; i++) {
        const proto_field_t *f = &r->fields.list[i];
        if (field_is(r, f, "transfer-encoding") &&
            !is_only_chunked(proto_fields_value(&r->fields, f), f->value_len))
            return 1;
    }
    return 0;
}

static int h1_on_headers_complete(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);
    int status = p->status_code;
    int is_bodiless;

    if (status == 101)
        return set_err(r, PROTO_E_UNSAFE_RESPONSE, "101 Switching Protocols");
    if (status < 100 || status > 999)
        return set_err(r, PROTO_E_BAD_RESPONSE, "invalid status code");
    if (status < 200) {
        /* Interim responses (100, 103, ...) go to on_informational, then
         * their fields are forgotten; on_message_complete sees head_done ==
         * 0 and lets llhttp go on to the next head. Returning 1 tells llhttp
         * there is no body, which llhttp 8.1 would otherwise read if framing
         * fields say so. */
        if (r->cbs->on_informational != NULL && deliver_fields(r, status) != 0)
            return -1;
        proto_fields_clear(&r->fields);
        return 1;
    }

    /* RFC 9110 §6.4.1: no body after HEAD, 204 or 304, whatever
     * Content-Length or Transfer-Encoding say. llhttp 8.1 only knows about
     * HEAD when told, and would read a body for 204/304 with a length. */
    is_bodiless = r->is_head_request || status == 204 || status == 304;
    if (!is_bodiless && has_other_coding(r))
        return set_err(r, PROTO_E_UNSAFE_RESPONSE, "transfer coding other than chunked");
    /* Held back (see flush_head) with its fields. */
    r->head_done = 1;
    r->is_head_pending = 1;
    r->head_status = status;
    return is_bodiless ? 1 : 0;
}

/*
 * Hands out the head held since on_headers_complete. It waits for the first
 * body byte, the last-chunk (trailers reuse the field storage), the end of
 * the response or the end of the feed() that completed it, whichever comes
 * first: a body whose framing breaks in those same bytes (a malformed first
 * chunk size) fails the response before anything of it was handed on, and
 * the gateway can still answer 502 instead of resetting a started response.
 */
static int flush_head(proto_h1_response_t *r)
{
    if (!r->is_head_pending)
        return 0;
    r->is_head_pending = 0;
    if (deliver_fields(r, r->head_status) != 0)
        return -1;
    proto_fields_clear(&r->fields);
    return 0;
}

/* The chunk size line was read; a last-chunk (size 0) may be followed by
 * trailers, which need the field storage. */
static int h1_on_chunk_header(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);

    return p->content_length == 0 ? flush_head(r) : 0;
}

static int h1_on_body(llhttp_t *p, const char *at, size_t len)
{
    proto_h1_response_t *r = resp_of(p);

    if (flush_head(r) != 0)
        return -1;
    if (r->cbs->on_body != NULL && r->cbs->on_body(r->ud, (const uint8_t *)at, len) < 0)
        return set_err(r, PROTO_E_CALLBACK, "stopped by callback");
    return 0;
}

static int h1_on_message_complete(llhttp_t *p)
{
    proto_h1_response_t *r = resp_of(p);

    if (!r->head_done)
        return 0; /* an interim response ended: parse the next head */
    if (flush_head(r) != 0)
        return -1;

    r->is_complete = 1;
    /* Computed now: llhttp clears the flags it reads right after we return. */
    r->keep_alive = llhttp_should_keep_alive(p);
    if (r->fields.n > 0 && deliver_fields(r, 0) != 0)
        return -1;
    if (r->cbs->on_complete != NULL && r->cbs->on_complete(r->ud) < 0)
        return set_err(r, PROTO_E_CALLBACK, "stopped by callback");
    /* Stop here: bytes after this response belong to no request yet, and the
     * next response may need different settings (HEAD). */
    return HPE_PAUSED;
}

int proto_h1_response_init(proto_h1_response_t *r, const proto_h1_response_cbs_t *cbs, void *ud,
                           size_t max_head_bytes)
{
    memset(r, 0, sizeof(*r));
    r->cbs = cbs;
    r->ud = ud;
    if (proto_fields_init(&r->fields, max_head_bytes, STATUS_LINE_OVERHEAD) != 0)
        return PROTO_E_NOMEM;

    llhttp_settings_init(&r->settings);
    r->settings.on_message_begin = h1_on_message_begin;
    r->settings.on_status = h1_on_status;
    r->settings.on_header_field = h1_on_header_field;
    r->settings.on_header_field_complete = h1_on_header_field_complete;
    r->settings.on_header_value = h1_on_header_value;
    r->settings.on_header_value_complete = h1_on_header_value_complete;
    r->settings.on_headers_complete = h1_on_headers_complete;
    r->settings.on_chunk_header = h1_on_chunk_header;
    r->settings.on_body = h1_on_body;
    r->settings.on_message_complete = h1_on_message_complete;
    proto_h1_response_reset(r, 0);
    return 0;
}

void proto_h1_response_reset(proto_h1_response_t *r, int is_head_request)
{
    /* A fresh parser rather than llhttp_resume(): the previous response may
     * have ended in an error or with "Connection: close", and neither state
     * must leak into the next one. */
    llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
    r->parser.data = r;
    r->is_head_request = is_head_request;
    proto_fields_clear(&r->fields);
    r->head_done = 0;
    r->is_head_pending = 0;
    r->head_status = 0;
    r->is_complete = 0;
    r->is_started = 0;
    r->keep_alive = 0;
    r->keep_alive_timeout_s = -1;
    r->is_value_cut = 0;
    r->err = 0;
    r->why = NULL;
}

ssize_t proto_h1_response_feed(proto_h1_response_t *r, const uint8_t *data, size_t len)
{
    llhttp_errno_t e;

    if (r->err != 0)
        return r->err;
    if (r->is_complete || len == 0)
        return 0; /* nothing more belongs to this response */
    r->is_started = 1;

    /* For the obs-fold check: 1 (a value piece ended with the previous
     * feed) becomes 2, "may continue at the start of this one". If no value
     * piece comes in this feed, other bytes came first and the chance is gone. */
    r->is_value_cut = r->is_value_cut ? 2 : 0;
    r->feed_data = (const char *)data;
    r->feed_end = (const char *)data + len;
    e = llhttp_execute(&r->parser, (const char *)data, len);
    r->feed_data = r->feed_end = NULL; /* the caller's buffer is gone after return */
    if (r->is_value_cut == 2)
        r->is_value_cut = 0;
    if (e == HPE_OK)
        return flush_head(r) != 0 ? r->err : (ssize_t)len;
    if (e == HPE_PAUSED && r->is_complete)
        return llhttp_get_error_pos(&r->parser) - (const char *)data;
    if (r->err == 0) {
        r->err = PROTO_E_BAD_RESPONSE;
        r->why = llhttp_get_error_reason(&r->parser);
        if (r->why == NULL)
            r->why = "malformed response";
    }
    return r->err;
}

int proto_h1_response_finish(proto_h1_response_t *r)
{
    llhttp_errno_t e;

    if (r->is_complete)
        return 0;
    if (r->err != 0)
        return r->err;
    if (!r->is_started) {
        r->err = PROTO_E_BAD_RESPONSE;
        r->why = "backend closed the connection without responding";
        return r->err;
    }
    /* Calls on_message_complete for a body delimited by the close; in any
     * other state before completion the response was cut short. */
    e = llhttp_finish(&r->parser);
    if (r->err != 0)
        return r->err;
    if ((e != HPE_OK && e != HPE_PAUSED) || !r->is_complete) {
        r->err = PROTO_E_BAD_RESPONSE;
        r->why = "backend closed the connection mid-response";
        return r->err;
    }
    return 0;
}

int proto_h1_response_can_reuse(const proto_h1_response_t *r)
{
    return r->is_complete && r->keep_alive && r->err == 0;
}

void proto_h1_response_free(proto_h1_response_t *r)
{
    proto_fields_free(&r->fields);
}
