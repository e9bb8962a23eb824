/*
 * Fuzz target for proto/priority: any bytes as an RFC 9218 priority field
 * value, parsed onto a starting priority taken from the input. The parser
 * never fails, so the checks are that it stays in bounds (exact-size copy)
 * and always leaves a priority the scheduler can index by.
 *
 * Input: [start urgency][start incremental][weight, 16 bits][value].
 */
#include "test/fuzz/fuzz.h"

#include "proto/priority.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    proto_priority_t pr = {(uint8_t)(fz_byte(&in) % PROTO_URGENCY_LEVELS),
                           (uint8_t)(fz_byte(&in) & 1)};
    proto_priority_t again = pr;
    int weight = (int16_t)fz_u16(&in);
    uint8_t *value = fz_dup(in.p, in.n);
    int n = proto_priority_parse((const char *)value, in.n, &pr);

    FZ_CHECK(n >= 0);
    FZ_CHECK(pr.urgency < PROTO_URGENCY_LEVELS);
    FZ_CHECK(pr.incremental <= 1);
    /* Parsing is a function of its input: a second run agrees. */
    FZ_CHECK(proto_priority_parse((const char *)value, in.n, &again) == n);
    FZ_CHECK(again.urgency == pr.urgency && again.incremental == pr.incremental);
    FZ_CHECK(proto_priority_urgency_from_weight(weight) < PROTO_URGENCY_LEVELS);
    free(value);
    return 0;
}
