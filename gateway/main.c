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
    if (rv == CFG_EXIT_OK)
        return 0;
    if (rv != CFG_RUN)
        return 2;

    gw_log_set_level(cfg.log_level);
    /* A peer that closes while we write must cost us an error code, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);

    static gw_worker_t worker;
    if (gw_worker_init(&worker, &cfg) != 0)
        return 1;
    gw_worker_run(&worker);
    return 0;
}
