#include "gateway/ops/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/log.h"
#include "gateway/ops/metrics.h"

#define ADMIN_HEAD_MAX 4096    /* request head, request line and headers */
#define ADMIN_MAX_CONNS 64     /* more are closed at once */
#define ADMIN_TIMEOUT_MS 10000 /* a connection gets this long in all */

typedef struct admin_conn admin_conn_t;

struct gw_admin {
    uv_tcp_t tcp;
    gw_admin_ops_t ops;
    admin_conn_t *conns; /* open connections, a doubly linked list */
    size_t nconns;
    int is_stopping;
};

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    gw_admin_t *admin;
    admin_conn_t *prev, *next;
    int nclosing; /* handles closed so far (tcp, timer); freed at 2 */
    int is_answered;
    int is_head; /* HEAD: the head GET would get, without its body */
    size_t len;
    char in[ADMIN_HEAD_MAX];
    char out[512]; /* the head, and a short body */
    char *page;    /* a long body (/metrics), malloc'd */
    size_t page_len;
};

static void on_conn_handle_closed(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (++c->nclosing == 2) {
        free(c->page);
        free(c);
    }
}

static void conn_close(admin_conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    gw_admin_t *a = c->admin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_admin_closed(uv_handle_t *h)
{
    free(h->data);
}

static int is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int gw_admin_answer(const gw_admin_ops_t *ops, const char *line, size_t len, char *body, size_t cap)
{
    /* METHOD SP request-target SP HTTP/1.x, nothing else. */
    size_t m = 0;
    while (m < len && is_tchar(line[m]))
        m++;
    const char *sp1 = m < len && line[m] == ' ' ? line + m : NULL;
    const char *target = sp1 != NULL ? sp1 + 1 : NULL;
    const char *sp2 = target != NULL ? memchr(target, ' ', (size_t)(line + len - target)) : NULL;
    const char *version = sp2 != NULL ? sp2 + 1 : NULL;
    if (m == 0 || sp1 == NULL || sp2 == NULL || sp2 == target || *target != '/' ||
        (size_t)(line + len - version) != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
        (version[7] != '0' && version[7] != '1')) {
        snprintf(body, cap, "bad request\n");
        return 400;
    }
    size_t path_len = strcspn(target, "? ");
    int is_live = path_len == 6 && memcmp(target, "/livez", 6) == 0;
    int is_ready = path_len == 7 && memcmp(target, "/readyz", 7) == 0;
    int is_metrics = path_len == 8 && memcmp(target, "/metrics", 8) == 0 && ops->metrics != NULL;
    if (!is_live && !is_ready && !is_metrics) {
        snprintf(body, cap, "not found\n");
        return 404;
    }
    /* HEAD too: load balancers' health checks often use it. */
    if (!(m == 3 && memcmp(line, "GET", 3) == 0) && !(m == 4 && memcmp(line, "HEAD", 4) == 0)) {
        snprintf(body, cap, "method not allowed\n");
        return 405;
    }
    if (is_metrics)
        return GW_ADMIN_METRICS;
    char why[256] = "unknown";
    int ok = is_live ? ops->is_live(ops->arg, why, sizeof(why))
                     : ops->is_ready(ops->arg, why, sizeof(why));
    if (ok) {
        snprintf(body, cap, "%s\n", is_live ? "ok" : "ready");
        return 200;
    }
    snprintf(body, cap, "%s\n", why);
    return 503;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Service Unavailable";
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void on_written(uv_write_t *req, int status)
{
    admin_conn_t *c = req->data;
    if (status != 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Writes the answer: the head and a short body from c->out, then the
 * long body in c->page if there is one. */
static void respond(admin_conn_t *c, int status, const char *body)
{
    c->is_answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    const char *type = c->page != NULL ? GW_METRICS_CONTENT_TYPE : "text/plain";
    size_t body_len = c->page != NULL ? c->page_len : strlen(body);
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n%s",
                     status, reason_phrase(status), type, body_len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "",
                     c->page != NULL || c->is_head ? "" : body);
    if (n < 0 || (size_t)n >= sizeof(c->out)) {
        conn_close(c);
        return;
    }
    uv_buf_t bufs[2] = {uv_buf_init(c->out, (unsigned)n),
                        uv_buf_init(c->page, (unsigned)c->page_len)};
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs,
                 c->page != NULL && !c->is_head ? 2 : 1, on_written) != 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    admin_conn_t *c = h->data;
    buf->base = c->in + c->len;
    buf->len = sizeof(c->in) - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    admin_conn_t *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->is_answered)
        return;
    c->len += (size_t)nread;
    /* The head ends with an empty line; its first line is all we use. */
    int is_end = 0;
    for (size_t i = 0; i + 1 < c->len && !is_end; i++) {
        if (c->in[i] == '\n' && (c->in[i + 1] == '\n' ||
                                 (c->in[i + 1] == '\r' && i + 2 < c->len && c->in[i + 2] == '\n')))
            is_end = 1;
    }
    if (!is_end) {
        if (c->len == sizeof(c->in))
            respond(c, 431, "request head too large\n");
        return;
    }
    size_t line_len = (size_t)((char *)memchr(c->in, '\n', c->len) - c->in);
    if (line_len > 0 && c->in[line_len - 1] == '\r')
        line_len--;
    char body[300];
    c->is_head = line_len > 5 && memcmp(c->in, "HEAD ", 5) == 0;
    const gw_admin_ops_t *ops = &c->admin->ops;
    int status = gw_admin_answer(ops, c->in, line_len, body, sizeof(body));
    if (status == GW_ADMIN_METRICS) {
        status = 200;
        if (ops->metrics(ops->arg, &c->page, &c->page_len) != 0) {
            c->page = NULL;
            status = 503;
            snprintf(body, sizeof(body), "out of memory\n");
        }
    }
    respond(c, status, body);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_admin_t *a = server->data;
    if (status != 0)
        return;
    admin_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->admin = a;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->nconns > ADMIN_MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

gw_admin_t *gw_admin_start(uv_loop_t *loop, const cfg_addr_t *addr, const gw_admin_ops_t *ops)
{
    struct sockaddr_storage ss;
    int is_v6 = strchr(addr->host, ':') != NULL;
    const char *host = addr->host[0] ? addr->host : "0.0.0.0";
    int rv = is_v6 ? uv_ip6_addr(host, addr->port, (struct sockaddr_in6 *)&ss)
                   : uv_ip4_addr(host, addr->port, (struct sockaddr_in *)&ss);
    if (rv != 0) {
        GW_LOG_ERROR("admin %s:%u: not a numeric address: %s", host, addr->port, uv_strerror(rv));
        return NULL;
    }
    gw_admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->ops = *ops;
    uv_tcp_init(loop, &a->tcp);
    a->tcp.data = a;
    rv = uv_tcp_bind(&a->tcp, (const struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&a->tcp, 64, on_connection);
    if (rv != 0) {
        GW_LOG_ERROR("admin %s:%u: %s", host, addr->port, uv_strerror(rv));
        uv_close((uv_handle_t *)&a->tcp, on_admin_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uint16_t port = addr->port;
    if (uv_tcp_getsockname(&a->tcp, (struct sockaddr *)&bound, &len) == 0)
        port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    printf("admin listening on %s%s%s:%u\n", is_v6 ? "[" : "", host, is_v6 ? "]" : "", port);
    fflush(stdout);
    return a;
}

void gw_admin_stop(gw_admin_t *a)
{
    if (a == NULL || a->is_stopping)
        return;
    a->is_stopping = 1;
    while (a->conns != NULL)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->tcp, on_admin_closed);
}
