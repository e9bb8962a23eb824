/*
 * The failing allocator of failalloc.h: wrappers that the linker puts in
 * place of the libc calls (-Wl,--wrap=malloc ...), a countdown that makes
 * one of them fail, and a count of live blocks.
 */
#include "test/unit/failalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t nmemb, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
FILE *__real_fopen(const char *path, const char *mode);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t nmemb, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);
FILE *__wrap_fopen(const char *path, const char *mode);

static long countdown; /* 0: disarmed; 1: the next call fails */
static int has_failed;
static long live;

void failalloc_arm(long nth)
{
    countdown = nth;
    has_failed = 0;
}

void failalloc_disarm(void)
{
    countdown = 0;
}

int failalloc_has_failed(void)
{
    return has_failed;
}

long failalloc_live(void)
{
    return live;
}

static int should_fail(void)
{
    if (countdown == 0)
        return 0;
    if (--countdown > 0)
        return 0;
    has_failed = 1;
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    void *p = should_fail() ? NULL : __real_malloc(n);

    live += p != NULL;
    return p;
}

void *__wrap_calloc(size_t nmemb, size_t n)
{
    void *p = should_fail() ? NULL : __real_calloc(nmemb, n);

    live += p != NULL;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q = should_fail() ? NULL : __real_realloc(p, n);

    /* realloc(NULL) allocates; a failed realloc leaves p alive. */
    live += p == NULL && q != NULL;
    return q;
}

/* strdup and strndup allocate with libc's own malloc, which the wrap does
 * not reach: they are rebuilt here on the counted malloc. */
char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = __wrap_malloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void __wrap_free(void *p)
{
    live -= p != NULL;
    __real_free(p);
}

/* fopen allocates its FILE: it fails like an allocation would. */
FILE *__wrap_fopen(const char *path, const char *mode)
{
    if (should_fail())
        return NULL;
    return __real_fopen(path, mode);
}
