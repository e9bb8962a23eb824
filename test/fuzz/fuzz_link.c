/*
 * Fuzz target for proto/link: any bytes as a Link field value. The walk
 * never fails, so the checks are that it stays in bounds (exact-size copy),
 * always moves forward, reports views inside the input, and agrees with
 * itself on a second run.
 */
#include "test/fuzz/fuzz.h"

#include "proto/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = (char *)fz_dup(data, size);
    size_t pos = 0, count = 0, npreload = 0;
    proto_link_t l;
    while (proto_link_next(value, size, &pos, &l)) {
        FZ_CHECK(pos <= size);
        FZ_CHECK(l.target >= value && l.target + l.target_len <= value + size);
        FZ_CHECK(l.as == NULL || (l.as >= value && l.as + l.as_len <= value + size));
        FZ_CHECK(l.urgency >= -1 && l.urgency <= 7);
        /* Each link-value takes at least its "<" and ">". */
        FZ_CHECK(++count <= size / 2);
        npreload += l.is_preload != 0;
        size_t path_len = 0;
        const char *path = proto_link_local_path(&l, "example.com", 11, &path_len);
        FZ_CHECK(path == NULL || (path_len > 0 && path[0] == '/'));
        FZ_CHECK(path == NULL || path_len == 1 ||
                 (path >= value && path + path_len <= value + size));
    }
    FZ_CHECK(pos == size);
    FZ_CHECK(proto_link_has_preload(value, size) == (npreload > 0));
    free(value);
    return 0;
}
