/*
 * PROXY protocol v1 and v2 headers (HAProxy's proxy-protocol.txt).
 *
 * The parser is stateless: the caller hands it everything received so far and
 * calls again when more arrives. It therefore has to tell "not yet complete"
 * from "never going to be valid" on any prefix, and it says -1 as early as it
 * can, so a client that does not speak the PROXY protocol is refused on its
 * first bytes instead of after a timeout.
 *
 * A v1 line is walked field by field; a field cut off by the end of the data
 * is checked for its character set and length, and a whole field is checked
 * for its value (inet_pton, port range). A v2 header is checked byte by byte
 * up to its length field, and its length against the family as soon as both
 * are known.
 *
 * out is written only when a whole, valid header was parsed.
 */
#include "proto/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* What each step of the walk found. PP_MORE and PP_ERR are also the values
 * proto_proxy_parse() returns for them. */
enum { PP_ERR = -1, PP_MORE = 0, PP_OK = 1 };

/* v1: the longest line, CRLF included, and the longest address texts. */
#define V1_MAX_LINE 107
#define V1_MAX_IPV4 15 /* 255.255.255.255 */
#define V1_MAX_IPV6 45 /* ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 */
#define V1_MAX_PORT 5

/* v2: signature, then ver_cmd, fam and a 16-bit big-endian length. */
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V2_HEADER_LEN 16
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_ADDR_LEN_INET (4 + 4 + 2 + 2)
#define V2_ADDR_LEN_INET6 (16 + 16 + 2 + 2)
#define V2_ADDR_LEN_UNIX (108 + 108)

/* Indices rather than pointers; len already includes the v1 line limit. */
typedef struct pp_cursor {
    const uint8_t *p;
    size_t pos;
    size_t len;
} pp_cursor_t;

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_ipv4_char(int ch)
{
    return is_digit(ch) || ch == '.';
}

/* Hex digits and ':', plus '.' for an IPv4-mapped tail. */
static int is_ipv6_char(int ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' ||
           ch == '.';
}

/* Consumes lit, or as much of it as the data holds. */
static int match_lit(pp_cursor_t *c, const char *lit)
{
    for (; *lit != '\0'; lit++, c->pos++) {
        if (c->pos >= c->len)
            return PP_MORE;
        if (c->p[c->pos] != (uint8_t)*lit)
            return PP_ERR;
    }
    return PP_OK;
}

/*
 * Reads a non-empty field of at most max bytes from is_ok, ending in term
 * (consumed). buf (max + 1 bytes) receives the field, or the part of it the
 * data holds when the result is PP_MORE, NUL-terminated either way.
 */
static int read_field(pp_cursor_t *c, int (*is_ok)(int), size_t max, uint8_t term, char *buf)
{
    size_t n = 0;

    buf[0] = '\0';
    for (;;) {
        uint8_t ch;

        if (c->pos >= c->len)
            return PP_MORE;
        ch = c->p[c->pos++];
        if (ch == term)
            return n > 0 ? PP_OK : PP_ERR;
        if (!is_ok(ch) || n == max)
            return PP_ERR;
        buf[n++] = (char)ch;
        buf[n] = '\0';
    }
}

/* An address field ending in ' ', stored in canonical inet_ntop form. */
static int read_addr(pp_cursor_t *c, int family, char *out, size_t out_size)
{
    char text[V1_MAX_IPV6 + 1];
    uint8_t bin[16];
    int rc;

    if (family == AF_INET)
        rc = read_field(c, is_ipv4_char, V1_MAX_IPV4, ' ', text);
    else
        rc = read_field(c, is_ipv6_char, V1_MAX_IPV6, ' ', text);
    if (rc != PP_OK)
        return rc;
    if (inet_pton(family, text, bin) != 1 ||
        inet_ntop(family, bin, out, (socklen_t)out_size) == NULL)
        return PP_ERR;
    return PP_OK;
}

/*
 * A decimal port ending in term. Leading zeros are tolerated; a value over
 * 65535 is refused as soon as its digits are in, complete or not, since more
 * digits only make it larger.
 */
static int read_port(pp_cursor_t *c, uint8_t term, uint16_t *port)
{
    char text[V1_MAX_PORT + 1];
    unsigned long v = 0;
    int rc = read_field(c, is_digit, V1_MAX_PORT, term, text);

    if (rc == PP_ERR)
        return rc;
    for (const char *s = text; *s != '\0'; s++)
        v = v * 10 + (unsigned long)(*s - '0');
    if (v > UINT16_MAX)
        return PP_ERR;
    *port = (uint16_t)v;
    return rc;
}

/* "UNKNOWN" has been read: either CRLF now, or a space and anything up to CRLF. */
static int parse_v1_unknown(pp_cursor_t *c)
{
    if (c->pos >= c->len)
        return PP_MORE;
    if (c->p[c->pos] == ' ') {
        /* The rest is ignored, but a lone CR or LF still makes the line invalid. */
        for (c->pos++; c->pos < c->len && c->p[c->pos] != '\r'; c->pos++) {
            if (c->p[c->pos] == '\n')
                return PP_ERR;
        }
    }
    return match_lit(c, "\r\n");
}

/* The family keyword after "PROXY ": one of three, none a prefix of another. */
static int parse_v1_family(pp_cursor_t *c, int *family)
{
    static const struct {
        const char *lit;
        int family;
    } fams[] = {{"TCP4 ", AF_INET}, {"TCP6 ", AF_INET6}, {"UNKNOWN", AF_UNSPEC}};
    int rc = PP_ERR;

    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        pp_cursor_t try = *c;
        int r = match_lit(&try, fams[i].lit);

        if (r == PP_OK) {
            *c = try;
            *family = fams[i].family;
            return PP_OK;
        }
        if (r == PP_MORE)
            rc = PP_MORE;
    }
    return rc;
}

static int parse_v1_fields(pp_cursor_t *c, proto_proxy_info_t *info)
{
    int family = AF_UNSPEC;
    int rc;

    if ((rc = match_lit(c, "PROXY ")) != PP_OK)
        return rc;
    if ((rc = parse_v1_family(c, &family)) != PP_OK)
        return rc;
    if (family == AF_UNSPEC) {
        info->is_local = 1;
        return parse_v1_unknown(c);
    }
    info->family = family;
    if ((rc = read_addr(c, family, info->src_addr, sizeof(info->src_addr))) != PP_OK ||
        (rc = read_addr(c, family, info->dst_addr, sizeof(info->dst_addr))) != PP_OK ||
        (rc = read_port(c, ' ', &info->src_port)) != PP_OK ||
        (rc = read_port(c, '\r', &info->dst_port)) != PP_OK)
        return rc;
    return match_lit(c, "\n");
}

static int parse_v1(const uint8_t *data, size_t len, proto_proxy_info_t *info)
{
    pp_cursor_t c = {data, 0, len < V1_MAX_LINE ? len : V1_MAX_LINE};
    int rc = parse_v1_fields(&c, info);

    if (rc == PP_OK)
        return (int)c.pos;
    /* Out of data: more may come, unless the line already reached its limit. */
    if (rc == PP_MORE && len >= V1_MAX_LINE)
        return PP_ERR;
    return rc;
}

/* IPv4 or IPv6 addresses and ports from a v2 address block of the right size. */
static void parse_v2_inet(const uint8_t *a, int family, proto_proxy_info_t *info)
{
    size_t alen = family == AF_INET ? 4 : 16;

    info->family = family;
    /* Both fit in the 64-byte fields, so inet_ntop cannot fail. */
    inet_ntop(family, a, info->src_addr, sizeof(info->src_addr));
    inet_ntop(family, a + alen, info->dst_addr, sizeof(info->dst_addr));
    info->src_port = (uint16_t)(a[2 * alen] << 8 | a[2 * alen + 1]);
    info->dst_port = (uint16_t)(a[2 * alen + 2] << 8 | a[2 * alen + 3]);
}

static int parse_v2(const uint8_t *data, size_t len, proto_proxy_info_t *info)
{
    size_t sig_len = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    size_t need = 0, body_len;
    int cmd, fam = 0;

    if (memcmp(data, v2_sig, sig_len) != 0)
        return PP_ERR;
    if (len <= 12)
        return PP_MORE;
    if (data[12] >> 4 != 2)
        return PP_ERR;
    cmd = data[12] & 0x0F;
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return PP_ERR;
    if (len <= 13)
        return PP_MORE;
    /* LOCAL (a health check from the balancer itself) ignores the family. */
    if (cmd == V2_CMD_PROXY) {
        fam = data[13];
        switch (fam) {
        case 0x00: /* UNSPEC: keep the TCP peer, as for LOCAL */
            break;
        case 0x11: /* TCP4 */
        case 0x12: /* UDP4 */
            need = V2_ADDR_LEN_INET;
            break;
        case 0x21: /* TCP6 */
        case 0x22: /* UDP6 */
            need = V2_ADDR_LEN_INET6;
            break;
        case 0x31: /* UNIX stream */
        case 0x32: /* UNIX datagram */
            need = V2_ADDR_LEN_UNIX;
            break;
        default:
            return PP_ERR;
        }
    }
    if (len < V2_HEADER_LEN)
        return PP_MORE;
    body_len = (size_t)data[14] << 8 | data[15];
    if (V2_HEADER_LEN + body_len > PROTO_PROXY_MAX_HEADER || body_len < need)
        return PP_ERR;
    if (len < V2_HEADER_LEN + body_len)
        return PP_MORE;

    /* TLVs after the addresses are skipped: nothing here needs them. */
    if (need == V2_ADDR_LEN_INET)
        parse_v2_inet(data + V2_HEADER_LEN, AF_INET, info);
    else if (need == V2_ADDR_LEN_INET6)
        parse_v2_inet(data + V2_HEADER_LEN, AF_INET6, info);
    else
        info->is_local = 1; /* LOCAL, UNSPEC or UNIX: no IP address to report */
    return (int)(V2_HEADER_LEN + body_len);
}

int proto_proxy_parse(const uint8_t *data, size_t len, proto_proxy_info_t *out)
{
    proto_proxy_info_t info;
    int rc;

    if (len == 0)
        return PP_MORE;
    memset(&info, 0, sizeof(info));
    info.family = AF_UNSPEC;
    if (data[0] == 'P')
        rc = parse_v1(data, len, &info);
    else if (data[0] == v2_sig[0])
        rc = parse_v2(data, len, &info);
    else
        rc = PP_ERR;
    if (rc > 0)
        *out = info;
    return rc;
}
