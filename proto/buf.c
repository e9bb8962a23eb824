/*
 * Buffer chain for bodies. Each segment is one allocation (header plus a
 * flexible array), so a segment costs one malloc and one free.
 */
#include "proto/buf.h"

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define SEG_MIN_CAP (16 * 1024)

struct proto_buf_seg {
    proto_buf_seg_t *next;
    size_t start; /* first unread byte */
    size_t end;   /* one past the last stored byte */
    size_t cap;
    uint8_t data[];
};

void proto_buf_init(proto_buf_t *b)
{
    b->head = NULL;
    b->tail = NULL;
    b->len = 0;
}

int proto_buf_append(proto_buf_t *b, const void *data, size_t len)
{
    const uint8_t *src = data;
    size_t room = 0, first, rest;
    proto_buf_seg_t *seg = NULL;

    if (len == 0)
        return 0;
    if (b->tail != NULL)
        room = b->tail->cap - b->tail->end;
    first = len < room ? len : room;
    rest = len - first;

    /* Allocate before copying anything so a failure leaves b untouched. One
     * segment sized to the remainder keeps a large append in one piece. */
    if (rest > 0) {
        size_t cap = rest > SEG_MIN_CAP ? rest : SEG_MIN_CAP;
        if (cap > SIZE_MAX - sizeof(*seg))
            return PROTO_E_NOMEM;
        seg = malloc(sizeof(*seg) + cap);
        if (seg == NULL)
            return PROTO_E_NOMEM;
        seg->next = NULL;
        seg->start = 0;
        seg->end = 0;
        seg->cap = cap;
    }

    if (first > 0) {
        memcpy(b->tail->data + b->tail->end, src, first);
        b->tail->end += first;
    }
    if (seg != NULL) {
        memcpy(seg->data, src + first, rest);
        seg->end = rest;
        if (b->tail != NULL)
            b->tail->next = seg;
        else
            b->head = seg;
        b->tail = seg;
    }
    b->len += len;
    return 0;
}

size_t proto_buf_read(proto_buf_t *b, void *dst, size_t max)
{
    uint8_t *out = dst;
    size_t done = 0;

    for (proto_buf_seg_t *seg = b->head; seg != NULL && done < max; seg = seg->next) {
        size_t n = seg->end - seg->start;
        if (n > max - done)
            n = max - done;
        memcpy(out + done, seg->data + seg->start, n);
        done += n;
    }
    proto_buf_consume(b, done);
    return done;
}

size_t proto_buf_slices(const proto_buf_t *b, proto_slice_t *out, size_t max_slices)
{
    size_t n = 0;

    for (proto_buf_seg_t *seg = b->head; seg != NULL && n < max_slices; seg = seg->next) {
        if (seg->end == seg->start)
            continue;
        out[n].base = seg->data + seg->start;
        out[n].len = seg->end - seg->start;
        n++;
    }
    return n;
}

void proto_buf_consume(proto_buf_t *b, size_t n)
{
    if (n > b->len)
        n = b->len; /* tolerate a caller bug rather than walk off the chain */
    b->len -= n;
    while (b->head != NULL) {
        proto_buf_seg_t *seg = b->head;
        size_t avail = seg->end - seg->start;

        if (n < avail) {
            seg->start += n;
            break;
        }
        n -= avail;
        b->head = seg->next;
        free(seg);
    }
    if (b->head == NULL)
        b->tail = NULL;
}

size_t proto_buf_move(proto_buf_t *dst, proto_buf_t *src, size_t max_bytes, size_t max_segments)
{
    size_t moved = 0, nsegs = 0;

    while (src->head != NULL && nsegs < max_segments) {
        proto_buf_seg_t *seg = src->head;
        size_t avail = seg->end - seg->start;
        if (moved > 0 && moved + avail > max_bytes)
            break;
        src->head = seg->next;
        if (src->head == NULL)
            src->tail = NULL;
        src->len -= avail;
        seg->next = NULL;
        if (dst->tail != NULL)
            dst->tail->next = seg;
        else
            dst->head = seg;
        dst->tail = seg;
        dst->len += avail;
        moved += avail;
        nsegs++;
    }
    return moved;
}

void proto_buf_free(proto_buf_t *b)
{
    proto_buf_seg_t *seg = b->head;

    while (seg != NULL) {
        proto_buf_seg_t *next = seg->next;
        free(seg);
        seg = next;
    }
    proto_buf_init(b);
}
