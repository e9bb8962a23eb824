#include "gateway/client/h2_mem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Blocks this large or larger get their own pages whatever they hold. */
#define MAP_MIN (16 * 1024)

/* Mapped blocks carry no header: a page-aligned start leaves every page
 * past the first untouched until nghttp2 writes it, and the registry in
 * gw_h2_mem_t says which pointers are mappings. */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t mapped_len(size_t size)
{
    size_t pg = page_size();
    return (size + pg - 1) / pg * pg;
}

static gw_h2_mapped_t *find_mapped(gw_h2_mem_t *m, void *p)
{
    for (size_t i = 0; i < m->nmapped; i++) {
        if (m->mapped[i].p == p)
            return &m->mapped[i];
    }
    return NULL;
}

static void *block_alloc(gw_h2_mem_t *m, size_t size, int is_zeroed)
{
    /* Zero-filled blocks of a page or more are mapped too: anonymous pages
     * are zero without being touched, and stay out of the resident set
     * until the first write (an empty stream map is only ever read). */
    int is_large = size >= MAP_MIN || (is_zeroed && size >= page_size());
    if (!is_large || m->nmapped == GW_H2_MEM_MAX_MAPPED)
        return is_zeroed ? calloc(1, size) : malloc(size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    m->mapped[m->nmapped++] = (gw_h2_mapped_t){p, size, m->is_creating && !is_zeroed};
    return p;
}

static void h2_free(void *ptr, void *ud)
{
    gw_h2_mem_t *m = ud;
    if (ptr == NULL)
        return;
    gw_h2_mapped_t *e = find_mapped(m, ptr);
    if (e == NULL) {
        free(ptr);
        return;
    }
    munmap(e->p, e->size);
    *e = m->mapped[--m->nmapped];
}

static void *h2_malloc(size_t size, void *ud)
{
    return block_alloc(ud, size, 0);
}

static void *h2_calloc(size_t nmemb, size_t size, void *ud)
{
    if (size != 0 && nmemb > SIZE_MAX / size)
        return NULL;
    return block_alloc(ud, nmemb * size, 1);
}

static void *h2_realloc(void *ptr, size_t size, void *ud)
{
    gw_h2_mem_t *m = ud;
    if (ptr == NULL)
        return block_alloc(m, size, 0);
    gw_h2_mapped_t *e = find_mapped(m, ptr);
    size_t old = e != NULL ? e->size : malloc_usable_size(ptr);
    if (e == NULL && (size < MAP_MIN || m->nmapped == GW_H2_MEM_MAX_MAPPED))
        return realloc(ptr, size);
    /* A moved block is never the frame buffer of a session being created:
     * is_scratch is not carried over (keeping bytes is always safe). */
    void *p = block_alloc(m, size, 0);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    h2_free(ptr, m);
    return p;
}

void gw_h2_mem_init(gw_h2_mem_t *m)
{
    memset(m, 0, sizeof(*m));
    m->mem = (nghttp2_mem){m, h2_malloc, h2_free, h2_calloc, h2_realloc};
}

nghttp2_mem *gw_h2_mem_get(gw_h2_mem_t *m)
{
    return &m->mem;
}

/* Which block is the frame buffer (the large one a new session takes) was
 * read from nghttp2 1.52's source: with another version no block is taken
 * for scratch, and only pages of zeros are given back (always safe). */
static int is_known_layout(void)
{
    const nghttp2_info *v = nghttp2_version(0);
    return v != NULL && (v->version_num >> 8) == 0x0134;
}

void gw_h2_mem_begin_session(gw_h2_mem_t *m)
{
    m->is_creating = is_known_layout();
}

void gw_h2_mem_end_session(gw_h2_mem_t *m)
{
    m->is_creating = 0;
}

static int is_zero_page(const uint8_t *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < len / sizeof(*w); i++) {
        if (w[i] != 0)
            return 0;
    }
    return 1;
}

static size_t discard(void *p, size_t len)
{
    return len > 0 && madvise(p, len, MADV_DONTNEED) == 0 ? len : 0;
}

size_t gw_h2_mem_release(gw_h2_mem_t *m)
{
    size_t pg = page_size(), total = 0;
    for (size_t i = 0; i < m->nmapped; i++) {
        uint8_t *p = m->mapped[i].p;
        size_t len = mapped_len(m->mapped[i].size);
        if (m->mapped[i].is_scratch) {
            total += discard(p, len);
            continue;
        }
        /* Runs of zero pages, one madvise each. The bytes past size up to
         * the page end are never written, so they are zero too. */
        size_t run = 0;
        for (size_t off = 0; off < len; off += pg) {
            if (is_zero_page(p + off, pg)) {
                run += pg;
                continue;
            }
            total += discard(p + off - run, run);
            run = 0;
        }
        total += discard(p + len - run, run);
    }
    return total;
}
