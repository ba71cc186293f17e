/* engine/renew.h - lease renewal: the leases this engine holds, renewed by
 * one timer in one queued write every renew_ms, and released together at
 * close. A lease whose renewal is refused (LASH_ESUPERSEDED) is marked
 * lost; the owner of the leases hears of it through a hook.
 *
 * Part: renew (floor 3). May call: the registry (lash.h), writer, pump
 * (handles), base/queue. */
#ifndef LASH_ENGINE_RENEW_H
#define LASH_ENGINE_RENEW_H

#include "base/queue.h"
#include "engine/writer.h"

#include <stdint.h>

/* A held lease, embedded in its holder (a run). */
typedef struct lash__held {
  lash__q link;
  lash_lease lease;
  int lost; /* renewal saw ESUPERSEDED */
  int done; /* its completion or release is queued: not renewed */
} lash__held;

typedef struct lash__renew {
  lash__writer *w;
  uv_timer_t timer;
  int on;
  int queued; /* a renewal write is in flight */
  int closed;
  int64_t ttl_ms, every_ms;
  lash__q held;
  uint64_t n;
  void (*on_lost)(void *ud); /* after every renewal write */
  void *ud;
} lash__renew;

void lash__renew_init(lash__renew *r, lash__writer *w, uv_loop_t *loop,
                      lash__handles *hs, int64_t ttl_ms, int64_t every_ms,
                      void (*on_lost)(void *ud), void *ud);
/* Starts holding @p h (its lease set); the timer runs while any is held. */
void lash__renew_hold(lash__renew *r, lash__held *h);
void lash__renew_unhold(lash__renew *r, lash__held *h);
/* A write fn (ud: the renew part) that releases every held lease not done
 * or lost; only fatal errors fail it. */
int lash__renew_release_all_fn(lash_store *s, lash_txn *txn, void *ud);
void lash__renew_close(lash__renew *r);

#endif /* LASH_ENGINE_RENEW_H */
