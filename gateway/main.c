/*
 * h2gw: an HTTP/2 gateway for HTTP/1.1 backends. main() reads the options,
 * starts the workers (worker 0 on this thread, the others on their own),
 * and exits when every worker has drained.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "config/config.h"
#include "gateway/core/cfg_ref.h"
#include "gateway/core/log.h"
#include "gateway/reload.h"
#include "gateway/tls/tls.h"
#include "gateway/worker.h"

static void worker_thread(void *arg)
{
    gw_worker_run(arg);
}

/* Starts every worker; on a failure, what was started is torn down. */
static int run_workers(const cfg_t *cfg, uint64_t nofile, int argc, char **argv)
{
    uint32_t n = cfg->workers;
    gw_worker_t *workers = calloc(n, sizeof(*workers));
    uv_thread_t *threads = calloc(n, sizeof(*threads));
    uint16_t *ports = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*ports));
    int status = 0;
    uint32_t ninit = 0, nthreads = 0;
    if (workers == NULL || threads == NULL || ports == NULL) {
        GW_LOG_ERROR("out of memory starting %u workers", n);
        status = 1;
        goto out;
    }
    /* Worker 0 binds first; the others join the ports it got (port 0). */
    for (; ninit < n; ninit++) {
        if (gw_worker_init(&workers[ninit], cfg, (int)ninit, ninit > 0 ? ports : NULL, nofile) !=
            0) {
            status = 1;
            ninit++; /* partly initialized: torn down below */
            break;
        }
        if (ninit == 0) {
            for (size_t i = 0; i < workers[0].nlisteners; i++)
                ports[i] = gw_listener_port(workers[0].listeners[i]);
        }
    }
    if (status != 0) {
        for (uint32_t i = 0; i < ninit; i++)
            gw_worker_teardown(&workers[i]);
        goto out;
    }
    /* Worker 0's admin checks every worker's heartbeat; worker 0 reads the
     * configuration again on SIGHUP and hands it to every worker. */
    workers[0].peers = workers;
    workers[0].npeers = n;
    workers[0].argc = argc;
    workers[0].argv = argv;
    for (uint32_t i = 0; i < n; i++)
        workers[i].leader = &workers[0];
    for (uint32_t i = 1; i < n; i++, nthreads++) {
        if (uv_thread_create(&threads[i], worker_thread, &workers[i]) != 0) {
            GW_LOG_ERROR("cannot start worker thread %u", i);
            /* The ones running drain on the SIGTERM we send ourselves. */
            status = 1;
            raise(SIGTERM);
            for (uint32_t k = i; k < n; k++)
                gw_worker_teardown(&workers[k]);
            break;
        }
    }
    gw_worker_run(&workers[0]);
    for (uint32_t i = 1; i <= nthreads; i++)
        uv_thread_join(&threads[i]);
out:
    /* Worker 0's /metrics read every worker's counters until its loop ended. */
    for (uint32_t i = 0; workers != NULL && i < n; i++)
        gw_metrics_free(&workers[i].ctx.metrics);
    free(workers);
    free(threads);
    free(ports);
    return status;
}

/* As HAProxy does: the soft descriptor limit goes up to the hard one, and
 * what it allows is divided between backend pools and clients (each
 * worker's share of clients is derived from it in gw_worker_init), so that
 * clients are refused before backend connects starve for descriptors. */
static uint64_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = before;
    }
    GW_LOG_INFO("file descriptor limit %llu (was %llu)", (unsigned long long)rl.rlim_cur,
                (unsigned long long)before);
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

int main(int argc, char **argv)
{
    /* The first snapshot; workers hold it, and a reload replaces it. */
    cfg_t *cfg = gw_cfg_ref_new();
    if (cfg == NULL) {
        fprintf(stderr, "h2gw: out of memory\n");
        return 1;
    }
    int rv = cfg_from_args(cfg, argc, argv, stdout, stderr);
    if (rv == CFG_CHECK) {
        /* What only the gateway can check: certificates and keys load and
         * match, backend TLS contexts can be made. Nothing is bound. */
        rv = gw_tls_global_init() == 0 && gw_reload_check_tls(cfg, stderr) == 0 ? CFG_EXIT_OK
                                                                                : CFG_EXIT_USAGE;
        if (rv == CFG_EXIT_OK)
            printf("h2gw: configuration OK\n");
    }
    if (rv != CFG_RUN) {
        gw_cfg_ref_release(cfg);
        return rv == CFG_EXIT_OK ? 0 : 2;
    }

    gw_log_set_level(cfg->log_level);
    gw_log_set_format(cfg->log_format);
    /* A peer that closes while we write must cost us an error code, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);
    /* Body buffers come and go by the tens of KiB: keep freed memory for the
     * next one rather than returning it to the kernel (brk) every time. */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);

    uint64_t nofile = raise_nofile();
    int status = gw_tls_global_init() == 0 ? run_workers(cfg, nofile, argc, argv) : 1;
    gw_cfg_ref_release(cfg);
    return status;
}
