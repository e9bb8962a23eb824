#include "gateway/client/h2_priority.h"

#include "proto/priority.h"

/* Most urgent levels that outrank everything else on the wire. */
#define SEND_URGENT_MAX 2

/* RFC 7540 mode: the client did not announce SETTINGS_NO_RFC7540_PRIORITIES,
 * so nghttp2 keeps the dependency tree (server fallback). */
int gw_h2_uses_rfc7540_tree(nghttp2_session *session)
{
    return nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES) !=
           1;
}

/* The parent is the stream the client named in HEADERS or a later PRIORITY
 * frame, looked up when needed. nghttp2's own tree is not used for this: it
 * re-parents the children of an idle stream when that stream opens, which
 * would let a child sent before its parent overtake it. */
gw_exchange_t *gw_h2_parent_of(gw_exchange_t *x)
{
    h2_client_t *h = gw_h2_client_of(x);
    if (x->parent_stream_id == 0 || !gw_h2_uses_rfc7540_tree(h->session))
        return NULL;
    return nghttp2_session_get_stream_user_data(h->session, x->parent_stream_id);
}

/*
 * The urgency and weight the scheduler orders x by.
 *
 * RFC 9218 (the priority field, or a PRIORITY_UPDATE) sets the urgency when
 * present: it is the newer scheme and the client chose to send it. Otherwise
 * an RFC 7540 client's tree decides: the weight of the stream's root-level
 * ancestor gives the urgency (proto_priority_urgency_from_weight), so a
 * subtree shares its root's level, and the stream's own weight shares that
 * level with its siblings.
 */
void gw_h2_tree_priority(h2_client_t *h, gw_exchange_t *x, int *urgency, int *weight)
{
    if (!gw_h2_uses_rfc7540_tree(h->session))
        return;
    *weight = x->weight;
    gw_exchange_t *top = x;
    for (int depth = 0; depth < 64; depth++) {
        gw_exchange_t *parent = gw_h2_parent_of(top);
        if (parent == NULL)
            break;
        top = parent;
    }
    *urgency = proto_priority_urgency_from_weight(top->weight);
}

/* Records what an RFC 7540 priority specification says about x. */
void gw_h2_note_priority_spec(gw_exchange_t *x, const nghttp2_priority_spec *spec)
{
    x->parent_stream_id = spec->stream_id != x->stream_id ? spec->stream_id : 0;
    x->weight = (uint16_t)spec->weight;
}

/*
 * The client-bound send order follows the urgency that decides dispatch.
 * For RFC 9218 clients that is nghttp2's own scheduler. For clients that
 * keep the RFC 7540 tree (Chromium sends both signals) nghttp2 sends by the
 * tree, so a stream whose priority field decides its urgency leaves the
 * client's tree: it hangs off the root with a weight for its urgency, and
 * the urgent ones (0..2) exclusively, which puts everything else below
 * them, so a chain of background images never holds back their DATA.
 * Newer nghttp2 (1.65+) ignores RFC 7540 data; the call is then a no-op and
 * nothing else depends on it.
 */
void gw_h2_apply_send_priority(h2_client_t *h, gw_exchange_t *x)
{
    if (!gw_h2_uses_rfc7540_tree(h->session)) {
        nghttp2_extpri extpri = {.urgency = x->wait.sched.urgency, .inc = x->is_incremental};
        nghttp2_session_change_extpri_stream_priority(h->session, x->stream_id, &extpri, 0);
        return;
    }
    if (!x->has_priority_field)
        return;
    int urgency = x->wait.sched.urgency;
    nghttp2_priority_spec spec;
    nghttp2_priority_spec_init(&spec, 0, 256 - urgency * 255 / 7, urgency <= SEND_URGENT_MAX);
    nghttp2_session_change_stream_priority(h->session, x->stream_id, &spec);
}

/* A PRIORITY frame may re-chain the tree under a stream placed by its
 * priority field: place every such urgent stream again, in order of
 * decreasing urgency value so that the most urgent ends on top. */
static void reapply_field_priorities(h2_client_t *h)
{
    for (int u = SEND_URGENT_MAX; u >= 0; u--) {
        for (proto_queue_t *n = h->exchanges.next; n != &h->exchanges; n = n->next) {
            gw_exchange_t *x = proto_container_of(n, gw_exchange_t, fe_node);
            if (x->is_started && x->has_priority_field && x->wait.sched.urgency == u &&
                !x->is_resp_done)
                gw_h2_apply_send_priority(h, x);
        }
    }
}

/* RFC 9218 §7: a PRIORITY_UPDATE re-prioritizes a stream that still waits
 * for a backend connection (and what nghttp2 sends next). */
void gw_h2_on_priority_update(h2_client_t *h, const nghttp2_ext_priority_update *pu)
{
    gw_exchange_t *x = gw_h2_stream_exchange(h->session, pu->stream_id);
    if (x == NULL || !x->is_started)
        return;
    proto_priority_t pri = {x->wait.sched.urgency, (uint8_t)x->is_incremental};
    proto_priority_parse((const char *)pu->field_value, pu->field_value_len, &pri);
    x->is_incremental = pri.incremental;
    gw_exchange_reprioritize(x, pri.urgency, x->wait.sched.weight);
    gw_h2_apply_send_priority(h, x);
}

/* RFC 7540 PRIORITY: the tree changed; the stream and every waiting stream
 * below it may have a new weight or root. Only the named stream is
 * re-read: its descendants follow it when they are dispatched (the
 * scheduler walks up to waiting parents). */
void gw_h2_on_priority_frame(h2_client_t *h, const nghttp2_frame *frame)
{
    gw_exchange_t *x = gw_h2_stream_exchange(h->session, frame->hd.stream_id);
    if (x == NULL)
        return;
    gw_h2_note_priority_spec(x, &frame->priority.pri_spec);
    if (gw_h2_uses_rfc7540_tree(h->session))
        reapply_field_priorities(h);
    if (!x->is_started || x->has_priority_field)
        return;
    int urgency = x->wait.sched.urgency, weight = x->wait.sched.weight;
    gw_h2_tree_priority(h, x, &urgency, &weight);
    gw_exchange_reprioritize(x, urgency, weight);
}
