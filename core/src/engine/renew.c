/* engine/renew.c - lease renewal (see renew.h).
 *
 * Part: renew. May call: the registry (lash.h), writer, pump (handles),
 * base/queue; the holder only through on_lost. */
#include "engine/renew.h"

#include "base/inject.h"

#include <string.h>

static int fatal(int rc) {
  return rc == LASH_EIO || rc == LASH_EFULL || rc == LASH_EPANIC ||
         rc == LASH_ENOMEM || rc == LASH_ECORRUPT;
}

/* The one walk over the held leases: renews (release == 0) or releases
 * each that is neither done nor lost. */
static int held_walk(lash__renew *r, lash_store *s, lash_txn *txn,
                     int release) {
  lash__q *q;
  int rc;
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    if (h->done || h->lost) continue;
    if (release) {
      LASH_INJECT("engine.before_release");
      rc = lash_lease_release(s, txn, &h->lease);
    } else {
      LASH_INJECT("engine.renew");
      rc = lash_lease_renew(s, txn, &h->lease, r->ttl_ms);
      if (rc == LASH_ESUPERSEDED) h->lost = 1;
    }
    if (rc < 0 && fatal(rc)) return rc;
  }
  return 0;
}

static int renew_fn(lash_store *s, lash_txn *txn, void *ud) {
  return held_walk(ud, s, txn, 0);
}

int lash__renew_release_all_fn(lash_store *s, lash_txn *txn, void *ud) {
  return held_walk(ud, s, txn, 1);
}

static void renew_done(void *ud, int rc) {
  lash__renew *r = ud;
  (void)rc;
  r->queued = 0;
  r->on_lost(r->ud);
}

static void renew_cb(uv_timer_t *t) {
  lash__renew *r = LASH__CONTAINER_OF(t, lash__renew, timer);
  if (r->queued || r->n == 0 || r->closed) return;
  if (lash__writer_queue(r->w, renew_fn, r, renew_done) == 0) r->queued = 1;
}

static void update(lash__renew *r) {
  if (r->n > 0 && !r->on && !r->closed) {
    uv_timer_start(&r->timer, renew_cb, (uint64_t)r->every_ms,
                   (uint64_t)r->every_ms);
    r->on = 1;
  } else if (r->n == 0 && r->on) {
    uv_timer_stop(&r->timer);
    r->on = 0;
  }
}

void lash__renew_init(lash__renew *r, lash__writer *w, uv_loop_t *loop,
                      lash__handles *hs, int64_t ttl_ms, int64_t every_ms,
                      void (*on_lost)(void *ud), void *ud) {
  memset(r, 0, sizeof *r);
  r->w = w;
  r->ttl_ms = ttl_ms;
  r->every_ms = every_ms;
  r->on_lost = on_lost;
  r->ud = ud;
  lash__q_init(&r->held);
  uv_timer_init(loop, &r->timer);
  lash__handle_opened(hs, (uv_handle_t *)&r->timer);
}

void lash__renew_hold(lash__renew *r, lash__held *h) {
  lash__q_push(&r->held, &h->link);
  r->n++;
  update(r);
}

void lash__renew_unhold(lash__renew *r, lash__held *h) {
  lash__q_remove(&h->link);
  r->n--;
  update(r);
}

void lash__renew_close(lash__renew *r) {
  r->closed = 1;
  lash__handle_close((uv_handle_t *)&r->timer);
}
