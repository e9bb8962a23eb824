#include "gateway/client/h2_push.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "proto/headers.h"
#include "proto/link.h"

/* A pushed path longer than this is not pushed. */
#define PUSH_PATH_MAX 4096

/* The request fields a pushed request inherits: nothing that carries a
 * credential (cookie, authorization) or is the client's own for its
 * request (priority, content-*). */
static const char *const inherited[] = {"user-agent", "accept-encoding", "accept-language"};
#define NINHERITED (sizeof(inherited) / sizeof(inherited[0]))

struct gw_h2_push_entry {
    uint64_t path_hash; /* FNV-1a of the pushed path: each path once */
    int32_t promised_id;
    gw_exchange_t *x; /* while its PUSH_PROMISE is not yet sent */
};

void gw_h2_push_init(gw_h2_push_t *p)
{
    p->entries = NULL;
    p->npushed = 0;
    p->cap = 0;
}

void gw_h2_push_free(gw_h2_push_t *p)
{
    free(p->entries);
    gw_h2_push_init(p);
}

static uint64_t path_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

/* The value of the first "name: value" line of an HTTP/1.1 head, or NULL. */
static const char *head_field(const proto_h1_head_t *head, const char *name, size_t *len)
{
    const char *p = head->data, *end = head->data + head->len;
    size_t name_len = strlen(name);
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return NULL;
        p = eol + 1;
        if ((size_t)(end - p) > name_len + 1 && p[name_len] == ':' &&
            proto_headers_name_eq(p, name_len, name, name_len)) {
            const char *v = p + name_len + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = memchr(v, '\r', (size_t)(end - v));
            if (ve == NULL)
                return NULL;
            *len = (size_t)(ve - v);
            return v;
        }
    }
    return NULL;
}

static int was_pushed(const gw_h2_push_t *p, uint64_t h)
{
    for (uint32_t i = 0; i < p->npushed; i++) {
        if (p->entries[i].path_hash == h)
            return 1;
    }
    return 0;
}

/* The exchange of a pushed GET for path, its head built from the parent's
 * scheme, authority and inherited fields, at the Link's urgency hint (-1:
 * none). NULL when it cannot be built. */
static gw_exchange_t *pushed_exchange(gw_exchange_t *parent, const char *scheme, size_t scheme_len,
                                      const char *authority, size_t authority_len, const char *path,
                                      size_t path_len, int urgency_hint)
{
    proto_header_t fields[NINHERITED];
    size_t nfields = 0;
    for (size_t i = 0; i < NINHERITED; i++) {
        size_t len;
        const char *v = head_field(&parent->head, inherited[i], &len);
        if (v != NULL)
            fields[nfields++] = (proto_header_t){inherited[i], strlen(inherited[i]), v, len};
    }
    proto_request_t req = {
        .method = "GET",
        .method_len = 3,
        .scheme = scheme,
        .scheme_len = scheme_len,
        .authority = authority,
        .authority_len = authority_len,
        .path = path,
        .path_len = path_len,
        .headers = fields,
        .nheaders = nfields,
        .client_addr = parent->client_addr,
        .via = gw_ctx_via_request(parent->w, 2, 0),
    };
    /* Built first: a target the head rules refuse leaves no exchange (and
     * no access-log line) behind. */
    proto_h1_head_t head;
    const char *why = NULL;
    if (proto_h1_request_build(&req, &head, &why) != 0) {
        GW_LOG_DEBUG("client %s:%d stream %d: Link target %.*s not pushed: %s", parent->client_addr,
                     parent->client_port, (int)parent->stream_id, (int)path_len, path,
                     why != NULL ? why : "cannot build the request");
        return NULL;
    }
    gw_exchange_t *x = gw_exchange_new(parent->w, parent->fe, parent->fe_conn, 0);
    if (x == NULL) {
        proto_h1_head_free(&head);
        return NULL;
    }
    x->head = head;
    x->is_head_method = 0;
    x->client_addr = parent->client_addr;
    x->client_port = parent->client_port;
    x->protocol = parent->protocol;
    x->tls_version = parent->tls_version;
    x->sni = parent->sni;
    x->weight = parent->weight;
    /* A u= hint is taken, but never ahead of the request the push came
     * with; without one a push goes after everything the client asked for. */
    int parent_urgency = parent->wait.sched.urgency;
    x->wait.sched.urgency = (uint8_t)(urgency_hint < 0                ? 7
                                      : urgency_hint < parent_urgency ? parent_urgency
                                                                      : urgency_hint);
    x->is_req_end = 1;
    return x;
}

static int may_push(const nghttp2_session *session, const gw_exchange_t *x, int status)
{
    const cfg_t *cfg = x->w->cfg;
    nghttp2_session *s = (nghttp2_session *)session;
    return cfg->server_push && cfg->push_max_per_connection > 0 && status >= 200 && status < 300 &&
           (x->stream_id & 1) && x->head.data != NULL && x->head.len > 4 &&
           memcmp(x->head.data, "GET ", 4) == 0 &&
           nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_ENABLE_PUSH) != 0 &&
           nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) > 0;
}

/* One qualifying target: a PUSH_PROMISE and its exchange. */
static void promise(gw_h2_push_t *p, nghttp2_session *session, gw_exchange_t *parent,
                    const char *scheme, size_t scheme_len, const char *authority,
                    size_t authority_len, const char *path, size_t path_len, int urgency_hint)
{
    uint64_t h = path_hash(path, path_len);
    if (path_len > PUSH_PATH_MAX || was_pushed(p, h))
        return;
    gw_exchange_t *x = pushed_exchange(parent, scheme, scheme_len, authority, authority_len, path,
                                       path_len, urgency_hint);
    if (x == NULL)
        return;
    nghttp2_nv nv[3 + NINHERITED] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)scheme, 7, scheme_len, 0},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, authority_len, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, path_len, 0},
    };
    size_t nnv = 4;
    for (size_t i = 0; i < NINHERITED && nnv < sizeof(nv) / sizeof(nv[0]); i++) {
        size_t len;
        const char *v = head_field(&parent->head, inherited[i], &len);
        if (v != NULL)
            nv[nnv++] =
                (nghttp2_nv){(uint8_t *)inherited[i], (uint8_t *)v, strlen(inherited[i]), len, 0};
    }
    /* The promised stream gets x as its user data only once the frame is
     * sent (gw_h2_push_on_frame_send): until then the entry owns x, and a
     * stream nghttp2 opens and closes on a failure frees nothing of ours. */
    int32_t id =
        nghttp2_submit_push_promise(session, NGHTTP2_FLAG_NONE, parent->stream_id, nv, nnv, NULL);
    if (id < 0) {
        GW_LOG_DEBUG("client %s:%d stream %d: push of %.*s not submitted: %s", parent->client_addr,
                     parent->client_port, (int)parent->stream_id, (int)path_len, path,
                     nghttp2_strerror(id));
        gw_exchange_free(x);
        return;
    }
    x->stream_id = id;
    /* Beside its parent in the frontend's list: freed with the connection
     * even if nghttp2 never opens its stream. */
    proto_queue_insert_head(&parent->fe_node, &x->fe_node);
    p->entries[p->npushed++] = (gw_h2_push_entry_t){h, id, x};
}

void gw_h2_push_on_head(gw_h2_push_t *p, nghttp2_session *session, gw_exchange_t *x, int status,
                        const proto_header_t *f, size_t n)
{
    uint32_t max = x->w->cfg->push_max_per_connection;
    if (p->entries != NULL && p->cap < max)
        max = p->cap; /* the budget was set when the connection first pushed */
    if (!may_push(session, x, status) || p->npushed >= max)
        return;
    size_t authority_len, scheme_len;
    const char *authority = head_field(&x->head, "host", &authority_len);
    const char *scheme = head_field(&x->head, "x-forwarded-proto", &scheme_len);
    if (authority == NULL || scheme == NULL)
        return;
    if (p->entries == NULL) {
        p->entries = calloc(max, sizeof(*p->entries));
        if (p->entries == NULL)
            return;
        p->cap = max;
    }
    for (size_t i = 0; i < n && p->npushed < max; i++) {
        if (!proto_headers_name_eq(f[i].name, f[i].name_len, "link", 4))
            continue;
        size_t pos = 0, path_len;
        proto_link_t l;
        while (p->npushed < max && proto_link_next(f[i].value, f[i].value_len, &pos, &l)) {
            const char *path = NULL;
            if (l.is_preload && !l.is_nopush)
                path = proto_link_local_path(&l, authority, authority_len, &path_len);
            if (path != NULL)
                promise(p, session, x, scheme, scheme_len, authority, authority_len, path, path_len,
                        l.urgency);
        }
    }
}

static gw_h2_push_entry_t *pending(gw_h2_push_t *p, const nghttp2_frame *frame)
{
    if (frame->hd.type != NGHTTP2_PUSH_PROMISE)
        return NULL;
    for (uint32_t i = 0; i < p->npushed; i++) {
        gw_h2_push_entry_t *e = &p->entries[i];
        if (e->x != NULL && e->promised_id == frame->push_promise.promised_stream_id)
            return e;
    }
    return NULL;
}

/* The pool x goes to, routed by its head's host and path when it starts
 * (a reload between the promise and the send may have replaced the pools),
 * or NULL. */
static gw_pool_t *route(gw_exchange_t *x)
{
    size_t host_len;
    const char *host = head_field(&x->head, "host", &host_len);
    const char *path = x->head.data + 4; /* after "GET " */
    const char *sp = memchr(path, ' ', x->head.len - 4);
    if (host == NULL || sp == NULL)
        return NULL;
    return x->w->pool_for(x->w, host, host_len, path, (size_t)(sp - path));
}

void gw_h2_push_on_frame_send(gw_h2_push_t *p, nghttp2_session *session, const nghttp2_frame *frame)
{
    gw_h2_push_entry_t *e = pending(p, frame);
    if (e == NULL)
        return;
    gw_exchange_t *x = e->x;
    e->x = NULL;
    /* The client may have reset the promised stream already (its frame was
     * written before this callback ran): then nothing is fetched. */
    gw_pool_t *pool = route(x);
    if (pool == NULL || nghttp2_session_set_stream_user_data(session, x->stream_id, x) != 0) {
        if (pool == NULL)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, x->stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
        gw_exchange_free(x);
        return;
    }
    /* For RFC 9218 clients its DATA is sent at the same urgency. */
    nghttp2_extpri extpri = {.urgency = x->wait.sched.urgency, .inc = 0};
    nghttp2_session_change_extpri_stream_priority(session, x->stream_id, &extpri, 0);
    gw_exchange_start(x, pool);
}

void gw_h2_push_on_frame_not_send(gw_h2_push_t *p, const nghttp2_frame *frame)
{
    gw_h2_push_entry_t *e = pending(p, frame);
    if (e == NULL)
        return;
    gw_exchange_t *x = e->x;
    e->x = NULL;
    gw_exchange_free(x);
}
