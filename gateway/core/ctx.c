#include "gateway/core/ctx.h"

#include <stdio.h>
#include <string.h>

int gw_ctx_run_tasks(gw_ctx_t *w)
{
    /* Only those queued now: a task that queues itself again (output left,
     * more to dispatch) waits for the next round instead of starving the
     * rest. */
    proto_queue_t now;
    proto_queue_move(&now, &w->tasks);
    proto_queue_t *n;
    while ((n = proto_queue_first(&now)) != NULL) {
        proto_queue_remove(n);
        gw_task_t *t = proto_container_of(n, gw_task_t, node);
        t->run(t);
    }
    return !proto_queue_empty(&w->tasks);
}

void gw_ctx_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gw_ctx_t *w = handle->loop->data;
    *buf = uv_buf_init(w->read_buf, sizeof(w->read_buf));
}

void gw_ctx_set_via(gw_ctx_t *w)
{
    const char *name = w->cfg->via != NULL ? w->cfg->via : "h2gw";
    if (name[0] == '\0' || strcmp(name, "off") == 0) {
        w->via_h2[0] = w->via_h11[0] = w->via_h10[0] = w->via_resp[0] = '\0';
        return;
    }
    /* HTTP's received-protocol omits the name: "2", "1.1", "1.0". */
    snprintf(w->via_h2, sizeof(w->via_h2), "2 %s", name);
    snprintf(w->via_h11, sizeof(w->via_h11), "1.1 %s", name);
    snprintf(w->via_h10, sizeof(w->via_h10), "1.0 %s", name);
    snprintf(w->via_resp, sizeof(w->via_resp), "1.1 %s", name);
}

const char *gw_ctx_via_request(const gw_ctx_t *w, int major, int minor)
{
    const char *v = major == 2 ? w->via_h2 : minor == 0 ? w->via_h10 : w->via_h11;
    return v[0] != '\0' ? v : NULL;
}
