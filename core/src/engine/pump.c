/* engine/pump.c - the pump and the handle count (see pump.h).
 *
 * Part: pump. May call: libuv, base/queue. */
#include "engine/pump.h"

#include "base/queue.h"

static void handle_closed(uv_handle_t *h) {
  lash__handles *hs = h->data;
  hs->open--;
}

void lash__handle_opened(lash__handles *hs, uv_handle_t *h) {
  h->data = hs;
  hs->open++;
}

void lash__handle_close(uv_handle_t *h) {
  if (h->data == NULL || uv_is_closing(h)) return;
  uv_close(h, handle_closed);
}

static void pump_cb(uv_idle_t *h) {
  lash__pump *p = LASH__CONTAINER_OF(h, lash__pump, idle);
  int more;
  p->depth++;
  more = p->turn(p->ud);
  p->depth--;
  if (p->depth == 0 && !more && p->on) {
    uv_idle_stop(&p->idle);
    p->on = 0;
  }
}

void lash__pump_init(lash__pump *p, uv_loop_t *loop, lash__handles *hs,
                     lash__turn_fn turn, void *ud) {
  p->on = p->depth = p->closed = 0;
  p->turn = turn;
  p->ud = ud;
  uv_idle_init(loop, &p->idle);
  lash__handle_opened(hs, (uv_handle_t *)&p->idle);
}

void lash__pump_kick(lash__pump *p) {
  if (p->on || p->closed) return;
  uv_idle_start(&p->idle, pump_cb);
  p->on = 1;
}

void lash__pump_close(lash__pump *p) {
  p->closed = 1;
  lash__handle_close((uv_handle_t *)&p->idle);
}
