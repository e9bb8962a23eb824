/*
 * Fuzz target for a whole HTTP/2 server session (issue 13): the input is
 * what one client sends on one connection, and the real gateway (one
 * worker: listener, client_conn, select, h2_frontend with nghttp2,
 * exchange, pool, h1conn) serves it against a fake backend, so nghttp2's
 * callbacks and h2gw's stream bookkeeping are fuzzed together.
 *
 * Everything runs on this thread. The worker listens on 127.0.0.1:0; each
 * input connects a plain socket to it, writes the bytes and turns the
 * worker's loop (UV_RUN_NOWAIT) between steps that serve the fake backend
 * and read (and drop) what the gateway answers. Loopback delivers a write
 * before send() returns, so a run depends on the input alone (timers aside:
 * none fires within one input).
 *
 * Two backends: "default" is the fake backend, a plain listening socket
 * this file serves between loop turns with the answer the input chose;
 * "dead" (paths under /dead) is a port bound but not listening, so its
 * connects are refused and the request gets a 502.
 *
 * Input: [flags][piece][bytes for the connection]
 *   flags bits 0-1: 0 or 1: the HTTP/2 preface and an empty SETTINGS frame
 *                   go first; 2: the preface only; 3: nothing (the bytes
 *                   as they are: HTTP/1.1, h2c upgrade, bad prefaces)
 *   flags bits 2-4: the fake backend's answer (enum origin_mode)
 *   flags bit 5:    the client half-closes right after its last byte,
 *                   not once the gateway has gone quiet
 *   flags bit 6:    the bytes go in pieces of piece + 1 bytes (at most 16
 *                   pieces); each is served until the gateway is quiet
 *                   (backend round trips included) before the next
 *   flags bit 7:    the connection is drained (GOAWAY with a PING, as on
 *                   SIGTERM or the idle timeout) once the first piece is in
 * With the 100 kB answer the client's receive buffer and the gateway's send
 * buffer are small, so that the gateway's writes stall and its buffers fill.
 *
 * After each input every client connection, exchange and backend
 * connection must be gone: a leftover is a finding (FZ_CHECK), since a
 * real worker would keep it forever. The worker is torn down at exit, so
 * LeakSanitizer sees everything freed.
 *
 * The seeds are written by test/fuzz/gen_h2_session_seeds.py. FZ_VERBOSE=1
 * prints each loop turn, the frames the gateway sent (or its HTTP/1.1
 * answer) and the gateway's debug log.
 */
#include "test/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "gateway/backend/pool.h"
#include "gateway/client/client_conn.h"
#include "gateway/core/cfg_ref.h"
#include "gateway/core/log.h"
#include "gateway/worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Loop turns: before the gateway counts as quiet, at most while the input
 * is served, at most to close everything after it. */
#define QUIET_STEPS 4
#define MAX_STEPS 64
#define MAX_CLEANUP_STEPS 512
#define MAX_PIECES 16
#define MAX_ORIGIN_CONNS 16
#define BIG_BODY 100000

static const uint8_t h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const uint8_t empty_settings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};

/* ---- the fake backend ---- */

enum origin_mode {
    ORIGIN_REFUSE,    /* accepts and closes at once: the attempt fails (502) */
    ORIGIN_SMALL,     /* 200 with content-length, keep-alive */
    ORIGIN_CLOSE,     /* 200 delimited by the close */
    ORIGIN_CHUNKED,   /* 103, then a chunked 200 with a trailer, keep-alive */
    ORIGIN_SILENT,    /* reads and never answers */
    ORIGIN_BIG,       /* 200 with a body over every window and buffer */
    ORIGIN_ERROR,     /* 500 with a body, sent once the head is in (not the body) */
    ORIGIN_MALFORMED, /* a 200 head, then a broken chunk: 502 or a reset mid-body */
};

static const char resp_small[] = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"
                                 "content-type: text/plain\r\n\r\nhello";
static const char resp_close[] = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the close";
static const char resp_chunked[] = "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
                                   "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                   "5\r\nhello\r\n0\r\nx-check: 1\r\n\r\n";
static const char resp_error[] = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 3\r\n\r\n"
                                 "err";
static const char resp_malformed[] = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                     "3\r\nabc\r\nzz\r\n";

/* Where the fake backend is in the request it reads. Framing is read the
 * simple way: the gateway writes well-formed requests, and a chunk that
 * holds CRLFCRLF only makes the answer early. */
enum origin_read { READ_HEAD, READ_LENGTH, READ_CHUNKED };

typedef struct origin_conn {
    int fd;        /* -1: free slot */
    uint32_t tail; /* the last four bytes read, to spot "\r\n\r\n" */
    enum origin_read state;
    char head[1024]; /* the start of the head being read, lowercase */
    size_t head_len;
    uint64_t body_left; /* READ_LENGTH */
    unsigned nheads;    /* request heads read */
    unsigned nreqs;     /* requests read to their end */
    unsigned nanswers;  /* responses started */
    const char *out;    /* the response being written */
    size_t out_len, out_off;
    int is_shut; /* sent FIN after a response delimited by the close */
} origin_conn_t;

static struct {
    int is_ready;
    const cfg_t *cfg;
    gw_worker_t worker;
    struct sockaddr_in gw_addr;
    int origin_fd; /* listening */
    int dead_fd;   /* bound, not listening: connects are refused */
    char *big;     /* the ORIGIN_BIG response */
    size_t big_len;
    origin_conn_t conns[MAX_ORIGIN_CONNS];
} g = {.origin_fd = -1, .dead_fd = -1};

/* Closes with a reset, as the input's sockets all are: hundreds of
 * thousands of connections would otherwise sit in TIME_WAIT and run the
 * loopback out of ephemeral ports (the gateway's backend side included:
 * the reset removes its half too). */
static void close_now(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void origin_close(origin_conn_t *o)
{
    close_now(o->fd);
    *o = (origin_conn_t){.fd = -1};
}

static void origin_close_all(void)
{
    for (int i = 0; i < MAX_ORIGIN_CONNS; i++) {
        if (g.conns[i].fd >= 0)
            origin_close(&g.conns[i]);
    }
}

/* Starts the next response on o, if a request is waiting for one. */
static void origin_answer(origin_conn_t *o, int mode)
{
    if (o->out != NULL || o->is_shut ||
        o->nanswers >= (mode == ORIGIN_ERROR ? o->nheads : o->nreqs))
        return;
    switch (mode) {
    case ORIGIN_SMALL:
        o->out = resp_small;
        o->out_len = sizeof(resp_small) - 1;
        break;
    case ORIGIN_CLOSE:
        o->out = resp_close;
        o->out_len = sizeof(resp_close) - 1;
        break;
    case ORIGIN_CHUNKED:
        o->out = resp_chunked;
        o->out_len = sizeof(resp_chunked) - 1;
        break;
    case ORIGIN_BIG:
        o->out = g.big;
        o->out_len = g.big_len;
        break;
    case ORIGIN_ERROR:
        o->out = resp_error;
        o->out_len = sizeof(resp_error) - 1;
        break;
    case ORIGIN_MALFORMED:
        o->out = resp_malformed;
        o->out_len = sizeof(resp_malformed) - 1;
        break;
    default:
        return; /* silent */
    }
    o->out_off = 0;
    o->nanswers++;
}

/* Writes what o has to write. Returns 1 when bytes moved. */
static int origin_write(origin_conn_t *o, int mode)
{
    int is_busy = 0;
    while (o->out != NULL) {
        ssize_t n =
            send(o->fd, o->out + o->out_off, o->out_len - o->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                origin_close(o);
            return is_busy;
        }
        is_busy = 1;
        o->out_off += (size_t)n;
        if (o->out_off < o->out_len)
            continue;
        o->out = NULL;
        if (mode == ORIGIN_CLOSE || mode == ORIGIN_MALFORMED) {
            shutdown(o->fd, SHUT_WR);
            o->is_shut = 1;
            return 1;
        }
        origin_answer(o, mode); /* a request pipelined behind */
    }
    return is_busy;
}

/* The head is in: a body follows when it says so. */
static void origin_end_head(origin_conn_t *o)
{
    o->nheads++;
    o->head[o->head_len < sizeof(o->head) ? o->head_len : sizeof(o->head) - 1] = '\0';
    o->head_len = 0;
    const char *cl = strstr(o->head, "\r\ncontent-length:");
    if (strstr(o->head, "\r\ntransfer-encoding:") != NULL) {
        o->state = READ_CHUNKED;
    } else if (cl != NULL && (o->body_left = strtoull(cl + 18, NULL, 10)) > 0) {
        o->state = READ_LENGTH;
    } else {
        o->nreqs++;
    }
}

static void origin_read_byte(origin_conn_t *o, uint8_t b)
{
    o->tail = o->tail << 8 | b;
    switch (o->state) {
    case READ_HEAD:
        if (o->head_len < sizeof(o->head))
            o->head[o->head_len] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
        o->head_len++;
        if (o->tail == 0x0d0a0d0a)
            origin_end_head(o);
        break;
    case READ_LENGTH:
        if (--o->body_left == 0) {
            o->state = READ_HEAD;
            o->nreqs++;
        }
        break;
    case READ_CHUNKED:
        if (o->tail == 0x0d0a0d0a) { /* the last chunk and the trailers end so */
            o->state = READ_HEAD;
            o->nreqs++;
        }
        break;
    }
}

/* One turn of the fake backend: accept, read requests, answer them.
 * Returns 1 when anything happened. */
static int origin_step(int mode)
{
    int is_busy = 0;
    int fd;
    while ((fd = accept4(g.origin_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        is_busy = 1;
        origin_conn_t *o = NULL;
        for (int i = 0; i < MAX_ORIGIN_CONNS && o == NULL; i++) {
            if (g.conns[i].fd < 0)
                o = &g.conns[i];
        }
        if (mode == ORIGIN_REFUSE || o == NULL) {
            close_now(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        *o = (origin_conn_t){.fd = fd};
    }
    for (int i = 0; i < MAX_ORIGIN_CONNS; i++) {
        origin_conn_t *o = &g.conns[i];
        if (o->fd < 0)
            continue;
        uint8_t buf[4096];
        ssize_t n;
        while ((n = recv(o->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            is_busy = 1;
            for (ssize_t k = 0; k < n; k++)
                origin_read_byte(o, buf[k]);
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            origin_close(o); /* the gateway closed (or reset) it */
            is_busy = 1;
            continue;
        }
        origin_answer(o, mode);
        is_busy |= origin_write(o, mode);
    }
    return is_busy;
}

/* ---- the client ---- */

typedef struct client {
    int fd;
    int is_eof; /* the gateway closed its side (FIN or reset) */
    /* FZ_VERBOSE=1: what the gateway wrote, to print at the end. */
    uint8_t seen[65536];
    size_t seen_len;
} client_t;

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* FZ_VERBOSE=1: the frames the gateway sent (DATA payloads as text) or,
 * for an HTTP/1.1 answer, its bytes, and what the backend saw. */
static void print_answer(const client_t *c)
{
    const uint8_t *p = c->seen;
    size_t n = c->seen_len;
    unsigned nconns = 0, nheads = 0, nreqs = 0;
    for (int i = 0; i < MAX_ORIGIN_CONNS; i++) {
        nconns += g.conns[i].fd >= 0;
        nheads += g.conns[i].nheads;
        nreqs += g.conns[i].nreqs;
    }
    fprintf(stderr,
            "\n--- %zu bytes back; backend: %u open connections, %u heads, %u whole requests\n", n,
            nconns, nheads, nreqs);
    if (n >= 4 && memcmp(p, "HTTP", 4) == 0) {
        fprintf(stderr, "%.*s\n", (int)n, (const char *)p);
        return;
    }
    while (n >= 9) {
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        uint32_t sid = get_u32(p + 5) & 0x7fffffff;
        fprintf(stderr, "frame type %u flags 0x%02x stream %u length %zu", p[3], p[4], sid, len);
        if (len > n - 9)
            len = n - 9;
        if (p[3] == 0)
            fprintf(stderr, ": %.*s", (int)(len < 40 ? len : 40), (const char *)p + 9);
        if (p[3] == 3 && len >= 4)
            fprintf(stderr, ": code %u", (unsigned)get_u32(p + 9));
        if (p[3] == 7 && len >= 8)
            fprintf(stderr, ": last stream %u code %u %.*s", (unsigned)get_u32(p + 9),
                    (unsigned)get_u32(p + 13), (int)(len - 8), (const char *)p + 17);
        fprintf(stderr, "\n");
        p += 9 + len;
        n -= 9 + len;
    }
}

/* Connects to the gateway's listener. Loopback completes the handshake at
 * once (the gateway accepts in its next loop turn), but not always before
 * connect() returns, and libFuzzer's SIGALRM (its -timeout check) may
 * interrupt the wait: a blocking connect() then fails with EINTR while the
 * handshake goes on. So the socket is non-blocking and the wait a poll. */
static void client_connect(client_t *c)
{
    int rv = connect(c->fd, (struct sockaddr *)&g.gw_addr, sizeof(g.gw_addr));
    if (rv != 0 && (errno == EINPROGRESS || errno == EINTR)) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        while ((rv = poll(&pfd, 1, 10000)) < 0 && errno == EINTR)
            ;
        int err = rv == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof(err);
        if (rv == 1 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        errno = err;
        rv = err == 0 ? 0 : -1;
    }
    if (rv != 0) {
        fprintf(stderr, "connect to the gateway: %s\n", strerror(errno));
        FZ_CHECK(0);
    }
}

/* Reads and drops what the gateway wrote. Returns 1 when anything came. */
static int client_read(client_t *c)
{
    uint8_t buf[16384];
    int is_busy = 0;
    while (!c->is_eof) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            is_busy = 1;
            size_t keep = sizeof(c->seen) - c->seen_len;
            keep = (size_t)n < keep ? (size_t)n : keep;
            memcpy(c->seen + c->seen_len, buf, keep);
            c->seen_len += keep;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        c->is_eof = 1;
        is_busy = 1;
    }
    return is_busy;
}

/* Writes all of data (waiting for the gateway to read when the socket is
 * full); a gateway that has closed takes nothing more. */
static void client_write(client_t *c, const uint8_t *data, size_t len, int mode)
{
    for (int stall = 0; len > 0 && stall < MAX_STEPS;) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return; /* reset by the gateway */
        uv_run(&g.worker.ctx.loop, UV_RUN_NOWAIT);
        origin_step(mode);
        client_read(c);
        stall++;
    }
}

/* One loop turn of the gateway, the backend's and the client's. Returns 1
 * when anything happened or the gateway has work left for its next turn. */
static int step(client_t *c, int mode)
{
    uv_run(&g.worker.ctx.loop, UV_RUN_NOWAIT);
    int is_busy = origin_step(mode);
    is_busy |= client_read(c);
    is_busy |= !proto_queue_empty(&g.worker.ctx.tasks);
    is_busy |= uv_is_active((uv_handle_t *)&g.worker.kick);
    if (fz_verbose())
        fprintf(stderr, "step: busy %d, %zu bytes back, %u clients, %u exchanges\n", is_busy,
                c->seen_len, g.worker.ctx.nclients, g.worker.ctx.nexchanges);
    return is_busy;
}

/* Turns the loop until the gateway has nothing more to do with what it got
 * (QUIET_STEPS turns in a row without news), or the connection ended. */
static void run_until_quiet(client_t *c, int mode)
{
    for (int i = 0, quiet = 0; i < MAX_STEPS && quiet < QUIET_STEPS && !c->is_eof; i++)
        quiet = step(c, mode) ? 0 : quiet + 1;
}

/* What SIGTERM (after drain_delay) or the client idle timeout does to one
 * connection: HTTP/2 sends a GOAWAY notice and a PING, HTTP/1.1 closes
 * after the answer in progress. */
static void drain_clients(void)
{
    gw_ctx_t *ctx = &g.worker.ctx;
    for (proto_queue_t *n = ctx->clients.next; n != &ctx->clients; n = n->next) {
        gw_client_conn_t *cc = proto_container_of(n, gw_client_conn_t, all_node);
        if (cc->proto->on_drain != NULL) {
            cc->proto->on_drain(cc);
            gw_client_conn_mark_dirty(cc);
        }
    }
}

static int is_worker_clean(void)
{
    gw_worker_t *w = &g.worker;
    if (w->ctx.nclients != 0 || w->ctx.nexchanges != 0)
        return 0;
    for (size_t i = 0; i < w->npools; i++) {
        if (!gw_pool_is_unused(&w->pools[i]))
            return 0;
    }
    return 1;
}

/* ---- setup and teardown ---- */

static int listen_socket(int is_listening, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FZ_CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    FZ_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    FZ_CHECK(!is_listening || listen(fd, 128) == 0);
    FZ_CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void teardown(void)
{
    if (!g.is_ready)
        return;
    g.is_ready = 0;
    origin_close_all();
    gw_worker_teardown(&g.worker);
    gw_cfg_ref_release(g.cfg);
    close(g.origin_fd);
    close(g.dead_fd);
    free(g.big);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* The gateway writes to clients that have gone, as main.c sets up. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_ORIGIN_CONNS; i++)
        g.conns[i].fd = -1;

    uint16_t origin_port, dead_port;
    g.origin_fd = listen_socket(1, &origin_port);
    g.dead_fd = listen_socket(0, &dead_port);

    static const char big_head[] = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
    g.big_len = sizeof(big_head) - 1 + BIG_BODY;
    g.big = malloc(g.big_len);
    FZ_CHECK(g.big != NULL);
    memcpy(g.big, big_head, sizeof(big_head) - 1);
    memset(g.big + sizeof(big_head) - 1, 'x', BIG_BODY);

    /* Small buffers, windows and limits, so that short inputs reach flow
     * control, the header list limit, queueing and the glitch budget.
     * max_fails = 0: no server is ever ejected, which would carry one
     * input's failures into the next. */
    char path[] = "/tmp/fuzz_h2_session.XXXXXX";
    int fd = mkstemp(path);
    FZ_CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    FZ_CHECK(f != NULL);
    fprintf(f,
            "[gateway]\n"
            "log_level = error\n"
            "max_concurrent_streams = 16\n"
            "max_header_list_size = 4k\n"
            "request_buffer_size = 16k\n"
            "response_buffer_size = 16k\n"
            "h2_glitch_threshold = 50\n"
            "[listen fuzz]\n"
            "address = 127.0.0.1:0\n"
            "[backend default]\n"
            "server = 127.0.0.1:%u\n"
            "max_connections = 4\n"
            "max_fails = 0\n"
            "[backend dead]\n"
            "server = 127.0.0.1:%u\n"
            "max_connections = 2\n"
            "max_fails = 0\n"
            "[route dead]\n"
            "path_prefix = /dead\n"
            "backend = dead\n",
            origin_port, dead_port);
    FZ_CHECK(fclose(f) == 0);

    cfg_t *cfg = gw_cfg_ref_new();
    FZ_CHECK(cfg != NULL);
    char *args[] = {"fuzz_h2_session", "--config", path, NULL};
    int rv = cfg_from_args(cfg, 3, args, stdout, stderr);
    unlink(path);
    FZ_CHECK(rv == CFG_RUN);
    g.cfg = cfg;
    /* FZ_VERBOSE=1 shows the gateway's own debug log too. */
    gw_log_set_level(fz_verbose() ? CFG_LOG_DEBUG : cfg->log_level);
    FZ_CHECK(gw_worker_init(&g.worker, cfg, 0, NULL, 1024) == 0);
    /* The signals are libFuzzer's: SIGINT and SIGTERM must stop the run,
     * not drain the worker (whose listener then refuses the next input). */
    uv_signal_stop(&g.worker.sig_term);
    uv_signal_stop(&g.worker.sig_int);
    uv_signal_stop(&g.worker.sig_hup);
    uv_signal_stop(&g.worker.sig_usr1);
    g.is_ready = 1;
    atexit(teardown);

    g.gw_addr = (struct sockaddr_in){.sin_family = AF_INET,
                                     .sin_port = htons(gw_listener_port(g.worker.listeners[0])),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return 0;
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    uint8_t flags = fz_byte(&in);
    size_t piece = (size_t)fz_byte(&in) + 1;
    int prefix = flags & 3;
    int mode = (flags >> 2) & 7;
    int is_early_eof = (flags >> 5) & 1;
    int is_drain = (flags >> 7) & 1;
    if (!((flags >> 6) & 1))
        piece = in.n;
    else if (piece < in.n / MAX_PIECES + 1)
        piece = in.n / MAX_PIECES + 1;

    static client_t c; /* 64 KiB: not on the stack */
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c.is_eof = 0;
    c.seen_len = 0;
    FZ_CHECK(c.fd >= 0);
    if (mode == ORIGIN_BIG) {
        int small = 4096;
        FZ_CHECK(setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
    }
    FZ_CHECK(fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) == 0);
    client_connect(&c);
    /* Nagle would hold a small piece back until the last one is acked
     * (a delayed ACK: 40 ms). */
    int one = 1;
    FZ_CHECK(setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);

    if (mode == ORIGIN_BIG) {
        /* The gateway's end, once accepted: a write of more than this
         * waits for the client to read. */
        step(&c, mode);
        gw_ctx_t *ctx = &g.worker.ctx;
        for (proto_queue_t *q = ctx->clients.next; q != &ctx->clients; q = q->next) {
            gw_client_conn_t *cc = proto_container_of(q, gw_client_conn_t, all_node);
            uv_os_fd_t fd;
            int small = 4096;
            if (uv_fileno((uv_handle_t *)&cc->tcp, &fd) == 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        }
    }
    if (prefix != 3)
        client_write(&c, h2_preface, sizeof(h2_preface) - 1, mode);
    if (prefix < 2)
        client_write(&c, empty_settings, sizeof(empty_settings), mode);
    size_t off = 0;
    do {
        size_t n = in.n - off < piece ? in.n - off : piece;
        client_write(&c, in.p + off, n, mode);
        if (off + n < in.n || is_drain)
            run_until_quiet(&c, mode);
        if (is_drain && off == 0)
            drain_clients();
        off += n;
    } while (off < in.n);

    /* Until the gateway has nothing more to do with what it got; then the
     * client half-closes, and the connection ends. */
    if (!is_early_eof)
        run_until_quiet(&c, mode);
    /* A gateway that has ended the connection waits for the client's FIN
     * (lingering): the reset below ends that without a socket left in
     * TIME_WAIT. */
    if (!c.is_eof) {
        shutdown(c.fd, SHUT_WR);
        for (int i = 0; i < MAX_STEPS && !(c.is_eof && g.worker.ctx.nclients == 0); i++)
            step(&c, mode);
    }

    /* Nothing of this input may outlive it: the client and every backend
     * connection go, idle ones are closed, connects still in the backend's
     * queue are refused. */
    if (fz_verbose())
        print_answer(&c);
    close_now(c.fd);
    c.is_eof = 1;
    origin_close_all();
    for (int i = 0; i < MAX_CLEANUP_STEPS && !is_worker_clean(); i++) {
        for (size_t k = 0; k < g.worker.npools; k++)
            gw_pool_close_idle(&g.worker.pools[k]);
        step(&c, ORIGIN_REFUSE);
    }
    /* Handles closed in the last turn are freed in the next one's close
     * callbacks. */
    for (int i = 0; i < 2; i++)
        uv_run(&g.worker.ctx.loop, UV_RUN_NOWAIT);
    if (!is_worker_clean()) {
        fprintf(stderr, "left after the input: %u clients, %u exchanges\n", g.worker.ctx.nclients,
                g.worker.ctx.nexchanges);
        for (size_t k = 0; k < g.worker.npools; k++) {
            const gw_pool_t *p = &g.worker.pools[k];
            fprintf(stderr, "backend %s: %u exchanges, %s, %zu waiting\n", p->name, p->nexchanges,
                    proto_queue_empty(&p->all) ? "no connection" : "connections",
                    proto_sched_len(&p->sched));
        }
        FZ_CHECK(is_worker_clean());
    }
    return 0;
}
