#include "gateway/scheduler.h"

#include "gateway/exchange.h"

void gw_sched_init(gw_sched_t *s)
{
    gw_queue_init(&s->waiting);
    s->len = 0;
}

void gw_sched_enqueue(gw_sched_t *s, gw_exchange_t *x)
{
    gw_queue_insert_tail(&s->waiting, &x->sched_node);
    s->len++;
}

gw_exchange_t *gw_sched_dequeue(gw_sched_t *s)
{
    gw_queue_t *n = gw_queue_first(&s->waiting);
    if (n == NULL)
        return NULL;
    gw_queue_remove(n);
    s->len--;
    return gw_container_of(n, gw_exchange_t, sched_node);
}

void gw_sched_remove(gw_sched_t *s, gw_exchange_t *x)
{
    if (!gw_queue_is_linked(&x->sched_node))
        return;
    gw_queue_remove(&x->sched_node);
    s->len--;
}
