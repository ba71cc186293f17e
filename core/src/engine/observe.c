/* engine/observe.c - the observer hook (see observe.h). */
#include "engine/observe.h"

#include "base/queue.h"

#include <string.h>

static void on_summary(uv_timer_t *t) {
  lash__observer *o = LASH__CONTAINER_OF(t, lash__observer, timer);
  lash_observation ob;
  if (o->fn == NULL || o->suspended == 0) return;
  memset(&ob, 0, sizeof ob);
  ob.type = LASH_OBS_SUMMARY;
  ob.count = o->suspended;
  ob.period_ms = o->summary_ms;
  o->suspended = 0;
  o->fn(o->ud, &ob);
}

void lash__observer_init(lash__observer *o, uv_loop_t *loop,
                         lash__handles *hs) {
  memset(o, 0, sizeof *o);
  o->loop = loop;
  o->hs = hs;
}

void lash__observer_set(lash__observer *o, lash_observe_fn fn, void *ud,
                        int64_t summary_ms) {
  o->fn = fn;
  o->ud = ud;
  o->summary_ms = fn != NULL && summary_ms > 0 ? summary_ms : 0;
  o->suspended = 0;
  if (o->summary_ms > 0 && !o->timer_open) {
    if (uv_timer_init(o->loop, &o->timer) != 0) {
      o->summary_ms = 0;
      return;
    }
    o->timer_open = 1;
    lash__handle_opened(o->hs, (uv_handle_t *)&o->timer);
    uv_unref((uv_handle_t *)&o->timer);
  }
  if (!o->timer_open) return;
  if (o->summary_ms > 0)
    uv_timer_start(&o->timer, on_summary, (uint64_t)o->summary_ms,
                   (uint64_t)o->summary_ms);
  else
    uv_timer_stop(&o->timer);
}

void lash__observe(lash__observer *o, const lash_observation *ob) {
  if (o == NULL) return;
  if (ob->type == LASH_OBS_SUSPENDED) o->suspended++;
  if (o->fn != NULL) o->fn(o->ud, ob);
}

void lash__observe_row(lash__observer *o, int type, const lash_record *rec) {
  lash_observation ob;
  if (o == NULL || o->fn == NULL) {
    if (o != NULL && type == LASH_OBS_SUSPENDED) o->suspended++;
    return;
  }
  memset(&ob, 0, sizeof ob);
  ob.type = type;
  ob.id = rec->id;
  ob.kind = rec->kind;
  ob.attempt = rec->has_attempt ? rec->attempt.number : 0;
  lash__observe(o, &ob);
}

void lash__observer_close(lash__observer *o) {
  o->fn = NULL;
  if (o->timer_open) {
    o->timer_open = 0;
    lash__handle_close((uv_handle_t *)&o->timer);
  }
}
