/*
 * The allocator nghttp2 sessions use: malloc for everything small, and
 * fresh anonymous pages for the large blocks (the 16 KiB outbound frame
 * buffer every session keeps for its whole life). An idle connection
 * touches only the first page of that buffer, and untouched pages of an
 * mmap'd block are not resident, where a recycled malloc chunk would be:
 * this keeps an idle HTTP/2 connection's memory to what it uses.
 */
#ifndef GW_H2_MEM_H
#define GW_H2_MEM_H

#include <nghttp2/nghttp2.h>

nghttp2_mem *gw_h2_mem(void);

#endif
