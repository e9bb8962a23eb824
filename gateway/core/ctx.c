#include "gateway/core/ctx.h"

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
