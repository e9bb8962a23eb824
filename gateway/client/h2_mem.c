#include "gateway/client/h2_mem.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Blocks this large or larger get their own pages. */
#define MAP_MIN (16 * 1024)

/* Every block starts with this header, so free and realloc know where it
 * came from; 16 bytes keep the user's pointer aligned for any type. */
typedef struct block {
    size_t size; /* the user's size */
    size_t is_mapped;
} block_t;

#define HDR sizeof(block_t)

static void *block_alloc(size_t size, int is_zeroed)
{
    block_t *b;
    if (size >= MAP_MIN) {
        void *p =
            mmap(NULL, size + HDR, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        b = p; /* anonymous pages are zero already */
        b->is_mapped = 1;
    } else {
        b = is_zeroed ? calloc(1, size + HDR) : malloc(size + HDR);
        if (b == NULL)
            return NULL;
        b->is_mapped = 0;
    }
    b->size = size;
    return (char *)b + HDR;
}

static void h2_free(void *ptr, void *ud)
{
    (void)ud;
    if (ptr == NULL)
        return;
    block_t *b = (block_t *)((char *)ptr - HDR);
    if (b->is_mapped)
        munmap(b, b->size + HDR);
    else
        free(b);
}

static void *h2_malloc(size_t size, void *ud)
{
    (void)ud;
    return block_alloc(size, 0);
}

static void *h2_calloc(size_t nmemb, size_t size, void *ud)
{
    (void)ud;
    if (size != 0 && nmemb > SIZE_MAX / size - 1)
        return NULL;
    return block_alloc(nmemb * size, 1);
}

static void *h2_realloc(void *ptr, size_t size, void *ud)
{
    if (ptr == NULL)
        return h2_malloc(size, ud);
    block_t *b = (block_t *)((char *)ptr - HDR);
    if (!b->is_mapped && size < MAP_MIN) {
        block_t *nb = realloc(b, size + HDR);
        if (nb == NULL)
            return NULL;
        nb->size = size;
        return (char *)nb + HDR;
    }
    void *p = block_alloc(size, 0);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, b->size < size ? b->size : size);
    h2_free(ptr, ud);
    return p;
}

static nghttp2_mem mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};

nghttp2_mem *gw_h2_mem(void)
{
    return &mem;
}
