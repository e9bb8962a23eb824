/*
 * The allocator of one nghttp2 session: malloc for everything small, and
 * pages of their own for the large blocks (the 16 KiB outbound frame
 * buffer every session keeps for its whole life) and for zero-filled
 * blocks of a page or more (the stream map's table, 4 KiB from the start).
 * Untouched pages of a mapping are not resident where a recycled malloc
 * chunk would be, and a session that goes quiet can hand back the pages
 * whose contents no longer matter (gw_h2_mem_release): an idle HTTP/2
 * connection keeps only the memory that still means something.
 */
#ifndef GW_H2_MEM_H
#define GW_H2_MEM_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

/* Mapped blocks a session keeps track of at once; beyond this, large
 * blocks come from malloc (correct, only not given back when idle). */
#define GW_H2_MEM_MAX_MAPPED 4

typedef struct gw_h2_mapped {
    void *p; /* page-aligned start of the mapping */
    size_t size;
    int is_scratch; /* the frame buffer: nothing in it survives a quiet session */
} gw_h2_mapped_t;

typedef struct gw_h2_mem {
    nghttp2_mem mem; /* given to nghttp2; mem_user_data points back here */
    gw_h2_mapped_t mapped[GW_H2_MEM_MAX_MAPPED];
    size_t nmapped;
    int is_creating; /* the session is being created (gw_h2_mem_begin_session) */
} gw_h2_mem_t;

/* Prepares m; the session that uses it must be deleted before m goes. */
void gw_h2_mem_init(gw_h2_mem_t *m);

/* The allocator to pass to nghttp2_session_*_new3. */
nghttp2_mem *gw_h2_mem_get(gw_h2_mem_t *m);

/* Bracket nghttp2_session_server_new3: the large block nghttp2 allocates
 * while creating a session is its outbound frame buffer (nghttp2 1.52:
 * aob.framebufs, kept for the session's life and refilled frame by frame),
 * whose bytes are dead whenever nothing is pending. */
void gw_h2_mem_begin_session(gw_h2_mem_t *m);
void gw_h2_mem_end_session(gw_h2_mem_t *m);

/* Gives back the resident pages that hold nothing: every page of a mapped
 * block that is all zero bytes (reading it again gives the same zeros), and
 * the whole frame buffer. Call it only when the session has nothing left
 * to send (nghttp2_session_want_write() is 0 and the last
 * nghttp2_session_mem_send() returned 0, its bytes already copied out):
 * then nghttp2 writes each next frame into the buffer before reading it.
 * Returns the bytes given back (resident or not). */
size_t gw_h2_mem_release(gw_h2_mem_t *m);

#endif
