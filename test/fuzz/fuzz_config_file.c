/*
 * Fuzz target for the INI reader (config/file.c) and validation: the input
 * is a config file, put in a memfd and loaded the way h2gw loads one
 * (cfg_from_args with --config). Whatever the file holds, loading must
 * return one of the three answers, print its errors, free everything and
 * never exit.
 */
#include "test/fuzz/fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char path[64];
    char *argv[] = {"h2gw", "--config", path, NULL};
    cfg_t cfg;
    int fd, rv;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    FZ_CHECK(devnull != NULL);
    fd = memfd_create("h2gw-fuzz.conf", 0);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(write(fd, data, size) == (ssize_t)size);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    rv = cfg_from_args(&cfg, 3, argv, devnull, devnull);
    FZ_CHECK(rv == CFG_RUN || rv == CFG_EXIT_OK || rv == CFG_EXIT_USAGE || rv == CFG_CHECK);
    if (rv == CFG_RUN || rv == CFG_CHECK) {
        /* What validation promises the gateway. */
        FZ_CHECK(cfg.nbackends > 0 && cfg.default_backend < cfg.nbackends);
        for (size_t i = 0; i < cfg.nroutes; i++)
            FZ_CHECK(cfg.routes[i].backend_index < cfg.nbackends);
        for (size_t i = 0; i < cfg.nbackends; i++)
            FZ_CHECK(cfg.backends[i].nservers > 0);
    }
    cfg_free(&cfg);
    close(fd);
    return 0;
}
