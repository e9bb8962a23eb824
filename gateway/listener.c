#include "gateway/listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/h1_client.h"
#include "gateway/h2_client.h"
#include "gateway/log.h"
#include "gateway/worker.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

static void on_refused_close(uv_handle_t *handle)
{
    free(handle);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_worker_t *w = server->data;
    if (status != 0) {
        GW_LOG_WARN("accept failed: %s", uv_strerror(status));
        return;
    }
    if (w->nclients >= w->cfg->max_connections) {
        /* Accept and close at once, so the kernel queue does not hold
         * clients that would only time out. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return;
        uv_tcp_init(&w->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            GW_LOG_WARN("client connection limit (%u) reached: connection refused",
                        w->cfg->max_connections);
        uv_close((uv_handle_t *)t, on_refused_close);
        return;
    }
    int rv = gw_client_conn_start(w, server);
    if (rv != 0)
        GW_LOG_WARN("cannot start client connection: %s", uv_strerror(rv));
}

int gw_listener_start(gw_worker_t *w)
{
    const cfg_addr_t *a = &w->cfg->listen;
    struct sockaddr_storage ss;
    int rv = strchr(a->host, ':') != NULL
                 ? uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss)
                 : uv_ip4_addr(a->host[0] ? a->host : "0.0.0.0", a->port,
                               (struct sockaddr_in *)&ss);
    if (rv != 0) {
        GW_LOG_ERROR("listen %s:%u: not a numeric address: %s", a->host, a->port,
                     uv_strerror(rv));
        return rv;
    }
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    rv = uv_tcp_bind(&w->listener, (const struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    if (rv != 0) {
        GW_LOG_ERROR("listen %s:%u: %s", a->host, a->port, uv_strerror(rv));
        uv_close((uv_handle_t *)&w->listener, NULL);
        return rv;
    }
    w->is_listening = 1;

    int len = sizeof(ss);
    uv_tcp_getsockname(&w->listener, (struct sockaddr *)&ss, &len);
    char host[64] = "";
    int port;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        printf("listening on [%s]:%d\n", host, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        printf("listening on %s:%d\n", host, port);
    }
    fflush(stdout);
    return 0;
}

void gw_listener_stop(gw_worker_t *w)
{
    if (!w->is_listening)
        return;
    w->is_listening = 0;
    uv_close((uv_handle_t *)&w->listener, NULL);
}

/* Switches c to proto and replays the bytes seen so far plus data. */
static int switch_protocol(gw_client_conn_t *c, const gw_client_proto_t *proto,
                           const uint8_t *data, size_t len)
{
    c->proto = proto;
    if (proto == &gw_h2_client_proto && gw_h2_client_attach(c) != 0)
        return -1;
    if (proto == &gw_h1_client_proto && gw_h1_client_attach(c, 0) != 0)
        return -1;
    if (c->sniff_len > 0) {
        int rv = proto->on_read(c, c->sniff, c->sniff_len);
        c->sniff_len = 0;
        if (rv < 0)
            return rv;
    }
    return len > 0 ? proto->on_read(c, data, len) : 0;
}

/* Reads until the bytes either match the whole HTTP/2 preface or stop
 * matching it; only the prefix seen so far is buffered (24 bytes at most). */
static int sniff_on_read(gw_client_conn_t *c, const uint8_t *data, size_t len)
{
    size_t need = H2_PREFACE_LEN - c->sniff_len;
    size_t take = len < need ? len : need;
    if (memcmp(data, h2_preface + c->sniff_len, take) != 0)
        return switch_protocol(c, &gw_h1_client_proto, data, len);
    if (take < need) {
        memcpy(c->sniff + c->sniff_len, data, take);
        c->sniff_len += take;
        return 0;
    }
    return switch_protocol(c, &gw_h2_client_proto, data, len);
}

static int sniff_on_flush(gw_client_conn_t *c)
{
    (void)c;
    return 1;
}

static const gw_client_proto_t sniff_proto = {
    .name = "sniff",
    .on_read = sniff_on_read,
    .on_flush = sniff_on_flush,
};

void gw_listener_select_protocol(gw_client_conn_t *c)
{
    c->proto = &sniff_proto;
}
