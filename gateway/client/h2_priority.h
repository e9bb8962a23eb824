/*
 * HTTP/2 priority signals: the RFC 9218 urgency (priority field,
 * PRIORITY_UPDATE) and the RFC 7540 tree (weights, dependencies, PRIORITY
 * frames), turned into each stream's place in the backend queue and in the
 * order nghttp2 sends DATA.
 */
#ifndef GW_H2_PRIORITY_H
#define GW_H2_PRIORITY_H

#include "gateway/client/h2_state.h"

/* 1 when the client kept RFC 7540 priorities (it did not announce
 * SETTINGS_NO_RFC7540_PRIORITIES). */
int gw_h2_uses_rfc7540_tree(nghttp2_session *session);

/* The exchange of x's RFC 7540 parent stream, or NULL. */
gw_exchange_t *gw_h2_parent_of(gw_exchange_t *x);

/* Urgency and weight from the tree, for a stream without a priority field. */
void gw_h2_tree_priority(h2_client_t *h, gw_exchange_t *x, int *urgency, int *weight);

/* Notes the RFC 7540 dependency and weight of HEADERS or PRIORITY. */
void gw_h2_note_priority_spec(gw_exchange_t *x, const nghttp2_priority_spec *spec);

/* Orders x's DATA by its urgency. */
void gw_h2_apply_send_priority(h2_client_t *h, gw_exchange_t *x);

/* PRIORITY_UPDATE and PRIORITY frames from the client. */
void gw_h2_on_priority_update(h2_client_t *h, const nghttp2_ext_priority_update *pu);
void gw_h2_on_priority_frame(h2_client_t *h, const nghttp2_frame *frame);

#endif
