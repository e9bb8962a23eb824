/*
 * A chain of heap segments used for bodies. Appending never moves bytes that
 * are already stored, so slices handed out stay valid until consumed or freed;
 * the caller enforces its own limit by checking proto_buf_len().
 */
#ifndef PROTO_BUF_H
#define PROTO_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct proto_slice {
    const uint8_t *base;
    size_t len;
} proto_slice_t;

typedef struct proto_buf_seg proto_buf_seg_t;

typedef struct proto_buf {
    proto_buf_seg_t *head;
    proto_buf_seg_t *tail;
    size_t len; /* bytes stored, over all segments */
} proto_buf_t;

void proto_buf_init(proto_buf_t *b);

/* Copies len bytes to the end. Fills the tail segment before allocating a new
 * one (segments are at least 16 KiB). Returns 0 or PROTO_E_NOMEM (nothing
 * appended then). */
int proto_buf_append(proto_buf_t *b, const void *data, size_t len);

/* Copies up to max bytes from the front into dst and consumes them. Returns
 * the number copied. */
size_t proto_buf_read(proto_buf_t *b, void *dst, size_t max);

/* Fills out[] with up to max_slices views of the stored bytes, front first,
 * without consuming. Returns the number of slices written. */
size_t proto_buf_slices(const proto_buf_t *b, proto_slice_t *out, size_t max_slices);

/* Drops n bytes (n <= len) from the front, freeing emptied segments. */
void proto_buf_consume(proto_buf_t *b, size_t n);

static inline size_t proto_buf_len(const proto_buf_t *b)
{
    return b->len;
}

/* Moves whole segments from the front of src to the end of dst, without
 * copying bytes: at most max_segments, and no more than max_bytes except
 * that the first segment always moves. Returns the bytes moved. A writer
 * uses it to own what it hands to the kernel until the write completes,
 * whatever happens to src meanwhile. */
size_t proto_buf_move(proto_buf_t *dst, proto_buf_t *src, size_t max_bytes, size_t max_segments);

/* Frees every segment; the buffer is empty and reusable afterwards. */
void proto_buf_free(proto_buf_t *b);

#endif
