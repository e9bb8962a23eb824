/*
 * An allocator for tests that fails on the Nth call. Test binaries that
 * use it are linked with -Wl,--wrap for malloc, calloc, realloc, strdup,
 * strndup, free and fopen, so that every such call made by proto/ and
 * config/ (and by the test) goes through the counter below; calls made
 * inside libc or other libraries are not counted.
 */
#ifndef TEST_FAILALLOC_H
#define TEST_FAILALLOC_H

#include <stddef.h>

/* From now on, the nth counted call (1 = the next one) fails, as do none
 * after it. */
void failalloc_arm(long nth);

/* No call fails any more. */
void failalloc_disarm(void);

/* 1 when the armed failure happened since the last arm. */
int failalloc_has_failed(void);

/* Blocks allocated through the wrappers and not yet freed: a test compares
 * it before and after, so a leak shows without a leak checker. */
long failalloc_live(void);

#endif
