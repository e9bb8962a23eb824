/*
 * One error type for everything that can end an exchange, and the one table
 * that says what each means: the HTTP status when no response head went out
 * yet, the RST_STREAM code after it, the cause written to the access log and
 * metrics, and whether it counts against the backend server. Pure code.
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <stdint.h>

typedef enum gw_err {
    GW_OK = 0,
    /* the client's request */
    GW_E_BAD_REQUEST,          /* 400: nothing of it reaches a backend */
    GW_E_BODY_TOO_LARGE,       /* 413: over max_request_body */
    GW_E_HEAD_TOO_LARGE,       /* 431: over max_header_list_size */
    GW_E_CLIENT_READ_TIMEOUT,  /* the client stopped sending its body */
    GW_E_CLIENT_WRITE_TIMEOUT, /* the client stopped taking the response */
    GW_E_CLIENT_GONE,          /* the client left; nobody to answer */
    /* local to the gateway: never held against a server */
    GW_E_NOMEM,
    GW_E_LOCAL,    /* out of file descriptors, ports or buffers */
    GW_E_SHUTDOWN, /* the gateway is going away */
    /* waiting for a backend connection */
    GW_E_QUEUE_FULL,
    GW_E_QUEUE_TIMEOUT,
    GW_E_ALL_DOWN,
    /* the backend server's fault */
    GW_E_CONNECT, /* refused, unreachable, reset while connecting */
    GW_E_CONNECT_TIMEOUT,
    GW_E_TLS,              /* TLS handshake with the backend failed */
    GW_E_CLOSED_EARLY,     /* closed before any response byte */
    GW_E_WRITE,            /* the request write failed */
    GW_E_BAD_RESPONSE,     /* the response does not parse */
    GW_E_RESPONSE_TIMEOUT, /* no complete head within backend_response_timeout */
    GW_E_IO_TIMEOUT,       /* silence mid-response beyond backend_io_timeout */
    GW_E_CLOSED_MID,       /* closed in the middle of the response */
    GW_E_FRONTEND,         /* the frontend refused the response head */
    /* tunnels (WebSockets) */
    GW_E_TUNNEL_LIMIT, /* max_tunnels open on this worker */
    GW_E_TUNNEL_IDLE,  /* no byte either way for tunnel_idle_timeout */
    GW_E_COUNT
} gw_err_t;

/* What an error means. */
typedef struct gw_err_info {
    const char *name;             /* the access-log cause and metric label */
    int status;                   /* HTTP status before the response head */
    uint32_t rst_code;            /* HTTP/2 error code after it (RFC 9113 7) */
    unsigned is_server_fault : 1; /* counts towards the server's ejection */
    unsigned is_timeout : 1;
} gw_err_info_t;

const gw_err_info_t *gw_err_info(gw_err_t err);

static inline int gw_err_status(gw_err_t err)
{
    return gw_err_info(err)->status;
}

static inline const char *gw_err_name(gw_err_t err)
{
    return gw_err_info(err)->name;
}

/* A failed connect or socket call: the local resource errors (EMFILE,
 * ENFILE, ENOMEM, ENOBUFS, EADDRNOTAVAIL) are the gateway's, anything else
 * is connect_err. uv_code is a negative libuv error. */
gw_err_t gw_err_from_uv(int uv_code, gw_err_t connect_err);

#endif
