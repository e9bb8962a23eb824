/*
 * h2gw: an HTTP/2 gateway for HTTP/1.1 backends. main() reads the options,
 * starts the worker and exits with its status.
 */
#include <signal.h>
#include <stdio.h>

#include "config/config.h"
#include "gateway/log.h"
#include "gateway/worker.h"

int main(int argc, char **argv)
{
    static cfg_t cfg;
    int rv = cfg_from_args(&cfg, argc, argv, stdout, stderr);
    if (rv != CFG_RUN) {
        cfg_free(&cfg);
        return rv == CFG_EXIT_OK ? 0 : 2;
    }

    gw_log_set_level(cfg.log_level);
    /* A peer that closes while we write must cost us an error code, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);

    static gw_worker_t worker;
    int status = 0;
    if (gw_worker_init(&worker, &cfg) == 0) {
        gw_worker_run(&worker);
    } else {
        status = 1; /* logged where it failed; what was set up is torn down */
        gw_worker_teardown(&worker);
    }
    cfg_free(&cfg);
    return status;
}
