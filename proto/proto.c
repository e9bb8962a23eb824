/*
 * Error texts of the protocol layer.
 */
#include "proto/proto.h"

const char *proto_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case PROTO_E_NOMEM:
        return "out of memory";
    case PROTO_E_BAD_REQUEST:
        return "bad request";
    case PROTO_E_NOT_IMPLEMENTED:
        return "method not implemented";
    case PROTO_E_BAD_RESPONSE:
        return "malformed backend response";
    case PROTO_E_UNSAFE_RESPONSE:
        return "backend response cannot be carried over HTTP/2";
    case PROTO_E_TOO_LARGE:
        return "header block too large";
    case PROTO_E_CALLBACK:
        return "stopped by callback";
    default:
        return "unknown error";
    }
}
