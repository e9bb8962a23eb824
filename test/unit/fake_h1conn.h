/*
 * The fake transport's controls (test/unit/fake_h1conn.c).
 */
#ifndef TEST_FAKE_H1CONN_H
#define TEST_FAKE_H1CONN_H

#include "gateway/backend/h1conn.h"

#define FAKE_MAX_CONNS 256

typedef struct fake_net {
    gw_h1conn_t *conns[FAKE_MAX_CONNS]; /* every connection made, in order */
    size_t nconns;
    unsigned nconnects, ncloses, nidles;
    gw_err_t connect_err; /* != GW_OK: the next connects fail at once */
} fake_net_t;

extern fake_net_t fake_net;

/* Completes (err GW_OK) or fails the connect of c. */
void fake_net_connected(gw_h1conn_t *c, gw_err_t err);

/* Frees every connection made and resets the counters. */
void fake_net_free(void);

#endif
