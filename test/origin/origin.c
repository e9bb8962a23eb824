/*
 * origin --listen HOST:PORT
 *
 * The HTTP/1.1 test backend (see README.md). Prints `listening on HOST:PORT`
 * with the bound port once it listens, so `--listen 127.0.0.1:0` works.
 * SIGTERM and SIGINT close every handle and exit 0.
 */
#include "origin.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static uv_tcp_t g_listener;
static uv_signal_t g_sigterm, g_sigint;

static void usage(FILE *f)
{
    fprintf(f, "usage: origin --listen HOST:PORT\n"
               "  HTTP/1.1 test origin for h2gw; see test/origin/README.md\n");
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    or_conn_accept(server);
}

/* Listener and signal handles have data NULL; connection handles point at their connection. */
static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->data != NULL)
        or_conn_hard_close(h->data);
    else
        uv_close(h, NULL);
}

/* Close every handle so the loop ends. Further SIGTERM/SIGINT are blocked
 * first: closing the signal handles restores the default action, and a
 * second signal (a test harness and a script both stopping us) must not turn
 * the exit status into 143. */
static void on_signal(uv_signal_t *s, int signum)
{
    sigset_t set;

    (void)signum;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    uv_walk(s->loop, on_walk_close, NULL);
}

/* HOST:PORT or [V6HOST]:PORT -> address; names are resolved once, at start. */
static int resolve(const char *spec, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon, *port;
    size_t hlen;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        hlen = (size_t)(rb - spec - 1);
        memcpy(host, spec + 1, hlen < sizeof host ? hlen : 0);
        port = rb + 2;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - spec);
        memcpy(host, spec, hlen < sizeof host ? hlen : 0);
        port = colon + 1;
    }
    if (hlen >= sizeof host || *port == '\0')
        return -1;
    host[hlen] = '\0';

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "origin: %s: %s\n", spec, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL;
    struct sockaddr_storage ss;
    int namelen = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    uv_loop_t *loop;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_spec = argv[++i];
        } else if (strncmp(argv[i], "--listen=", 9) == 0) {
            listen_spec = argv[i] + 9;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (listen_spec == NULL) {
        usage(stderr);
        return 2;
    }
    if (resolve(listen_spec, &ss) != 0) {
        fprintf(stderr, "origin: bad --listen address: %s\n", listen_spec);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    if (or_conn_global_init() != 0) {
        fprintf(stderr, "origin: SHA-256 unavailable\n");
        return 1;
    }
    loop = uv_default_loop();
    /* Before the "listening" line: a test may signal as soon as it reads it. */
    uv_signal_init(loop, &g_sigterm);
    uv_signal_init(loop, &g_sigint);
    g_sigterm.data = g_sigint.data = NULL;
    uv_signal_start(&g_sigterm, on_signal, SIGTERM);
    uv_signal_start(&g_sigint, on_signal, SIGINT);
    uv_tcp_init(loop, &g_listener);
    g_listener.data = NULL;
    if ((rc = uv_tcp_bind(&g_listener, (const struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&g_listener, 4096, on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(&g_listener, (struct sockaddr *)&ss, &namelen)) != 0) {
        fprintf(stderr, "origin: listen %s: %s\n", listen_spec, uv_strerror(rc));
        return 1;
    }
    uv_ip_name((const struct sockaddr *)&ss, ip, sizeof ip);
    if (ss.ss_family == AF_INET6)
        printf("listening on [%s]:%d\n", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    else
        printf("listening on %s:%d\n", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    fflush(stdout);

    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    or_conn_global_free();
    or_route_global_free();
    return 0;
}
