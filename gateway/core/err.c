#include "gateway/core/err.h"

#include <errno.h>

/* RFC 9113 section 7 codes, spelled out so this stays free of nghttp2. */
#define RST_INTERNAL_ERROR 0x2
#define RST_REFUSED_STREAM 0x7
#define RST_CANCEL 0x8

/* nginx's rule: a timeout is 504, any other upstream failure 502; what
 * keeps a request from being tried at all is 503 (Retry-After). */
static const gw_err_info_t table[GW_E_COUNT] = {
    [GW_OK] = {"ok", 200, 0, 0, 0},
    [GW_E_BAD_REQUEST] = {"bad_request", 400, RST_INTERNAL_ERROR, 0, 0},
    [GW_E_BODY_TOO_LARGE] = {"body_too_large", 413, RST_CANCEL, 0, 0},
    [GW_E_HEAD_TOO_LARGE] = {"head_too_large", 431, RST_CANCEL, 0, 0},
    [GW_E_CLIENT_READ_TIMEOUT] = {"client_read_timeout", 408, RST_CANCEL, 0, 1},
    [GW_E_CLIENT_WRITE_TIMEOUT] = {"client_write_timeout", 504, RST_CANCEL, 0, 1},
    [GW_E_CLIENT_GONE] = {"client_gone", 499, RST_CANCEL, 0, 0},
    [GW_E_NOMEM] = {"out_of_memory", 502, RST_INTERNAL_ERROR, 0, 0},
    [GW_E_LOCAL] = {"local_resources", 503, RST_REFUSED_STREAM, 0, 0},
    [GW_E_SHUTDOWN] = {"shutdown", 503, RST_REFUSED_STREAM, 0, 0},
    [GW_E_QUEUE_FULL] = {"queue_full", 503, RST_REFUSED_STREAM, 0, 0},
    [GW_E_QUEUE_TIMEOUT] = {"queue_timeout", 503, RST_REFUSED_STREAM, 0, 1},
    [GW_E_ALL_DOWN] = {"all_servers_down", 503, RST_REFUSED_STREAM, 0, 0},
    [GW_E_CONNECT] = {"connect_failed", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_CONNECT_TIMEOUT] = {"connect_timeout", 502, RST_INTERNAL_ERROR, 1, 1},
    [GW_E_TLS] = {"backend_tls", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_CLOSED_EARLY] = {"closed_before_response", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_WRITE] = {"write_failed", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_BAD_RESPONSE] = {"bad_response", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_RESPONSE_TIMEOUT] = {"response_timeout", 504, RST_INTERNAL_ERROR, 1, 1},
    [GW_E_IO_TIMEOUT] = {"backend_io_timeout", 504, RST_INTERNAL_ERROR, 1, 1},
    [GW_E_CLOSED_MID] = {"closed_mid_response", 502, RST_INTERNAL_ERROR, 1, 0},
    [GW_E_FRONTEND] = {"frontend", 502, RST_INTERNAL_ERROR, 0, 0},
    [GW_E_TUNNEL_LIMIT] = {"tunnel_limit", 503, RST_REFUSED_STREAM, 0, 0},
    [GW_E_TUNNEL_IDLE] = {"tunnel_idle", 504, RST_CANCEL, 0, 1},
};

const gw_err_info_t *gw_err_info(gw_err_t err)
{
    if ((unsigned)err >= GW_E_COUNT)
        err = GW_E_NOMEM;
    return &table[err];
}

gw_err_t gw_err_from_uv(int uv_code, gw_err_t connect_err)
{
    /* libuv's codes on Unix are the negated errno values. */
    switch (-uv_code) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case EADDRNOTAVAIL:
        return GW_E_LOCAL;
    default:
        return connect_err;
    }
}
