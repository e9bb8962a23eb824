/*
 * Fuzz target for the flag parser (config/config.c): the input, cut at NUL
 * bytes, is argv. Any argv must end in one of the three answers with
 * nothing leaked and no exit. --config is turned into --check so that a
 * run never reads whatever file the input names (fuzz_config_file covers
 * the file).
 */
#include "test/fuzz/fuzz.h"

#include "config/config.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char *argv[MAX_ARGS + 2];
    char *buf = malloc(size + 1);
    int argc = 1;
    size_t start = 0;
    cfg_t cfg;
    int rv;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    FZ_CHECK(devnull != NULL && buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[0] = "h2gw";
    for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
        if (buf[i] != '\0')
            continue;
        argv[argc] = buf + start;
        if (strncmp(argv[argc], "--config", 8) == 0)
            argv[argc] = "--check";
        argc++;
        start = i + 1;
    }
    argv[argc] = NULL;

    rv = cfg_from_args(&cfg, argc, argv, devnull, devnull);
    FZ_CHECK(rv == CFG_RUN || rv == CFG_EXIT_OK || rv == CFG_EXIT_USAGE || rv == CFG_CHECK);
    if (rv == CFG_RUN || rv == CFG_CHECK) {
        FZ_CHECK(cfg.nbackends > 0 && cfg.default_backend < cfg.nbackends);
        FZ_CHECK(cfg.nlisteners > 0);
    }
    cfg_free(&cfg);
    free(buf);
    return 0;
}
