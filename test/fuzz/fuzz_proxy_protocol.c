/*
 * Fuzz target for proto/proxy_protocol: any bytes at the start of a
 * connection. The parser must stay inside the bytes it is given (the input
 * is copied to a buffer of exactly its size), agree with itself on every
 * prefix (a header found at length n means "need more" on each shorter
 * prefix that is still a valid start), and hand out NUL-terminated
 * addresses.
 */
#include "test/fuzz/fuzz.h"

#include <sys/socket.h>

#include "proto/proxy_protocol.h"

static int parse_copy(const uint8_t *data, size_t len, proto_proxy_info_t *out)
{
    uint8_t *p = fz_dup(data, len);
    int rv = proto_proxy_parse(p, len, out);

    free(p);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_proxy_info_t info;
    int rv;

    memset(&info, 0xa5, sizeof(info)); /* no byte of a stale result may pass as valid */
    rv = parse_copy(data, size, &info);
    FZ_CHECK(rv >= -1 && rv <= (int)size);
    if (rv > 0) {
        FZ_CHECK(rv <= PROTO_PROXY_MAX_HEADER);
        if (!info.is_local) {
            FZ_CHECK(info.family == AF_INET || info.family == AF_INET6);
            FZ_CHECK(memchr(info.src_addr, '\0', sizeof(info.src_addr)) != NULL);
            FZ_CHECK(memchr(info.dst_addr, '\0', sizeof(info.dst_addr)) != NULL);
            FZ_CHECK(info.src_addr[0] != '\0');
        }
        /* The same header followed by anything else parses the same. */
        for (size_t n = 0; n < (size_t)rv; n++) {
            proto_proxy_info_t part;
            FZ_CHECK(parse_copy(data, n, &part) == 0);
        }
    } else if (rv == 0) {
        /* More bytes are needed: no prefix of a valid start is invalid. */
        for (size_t n = 0; n < size; n++) {
            proto_proxy_info_t part;
            FZ_CHECK(parse_copy(data, n, &part) == 0);
        }
    }
    return 0;
}
