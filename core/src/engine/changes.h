/* engine/changes.h - the router from a commit to the parts that react to
 * it. The store's commit hook (this process's commits) only copies the
 * changes; the pump then routes each: the hub (mark its waiters), the
 * runs (a cancellation request for a run of this engine), the event sink
 * (runner->event), admission (a new row to drive) and the feed (remember
 * it as this engine's own). The feed's foreign changes (other OS
 * processes) come through here too, so this is the only such router.
 *
 * Part: changes (floor 8). May call: the registry (lash.h), hub, feed,
 * runs, admit, pump; the host only through runner->event. */
#ifndef LASH_ENGINE_CHANGES_H
#define LASH_ENGINE_CHANGES_H

#include "engine/admit.h"
#include "engine/feed.h"
#include "engine/hub.h"
#include "engine/runs.h"

/* A change reported by the commit hook, kept until the pump routes it. */
typedef struct lash__chg_copy {
  uint64_t first_seq;
  uint64_t last_seq;
  int status;
  int registered;
  int cancel_requested;
  int woken;
  int64_t wake_at; /* issue 13: on the timer index after the commit */
  char id[LASH_ID_MAX + 1];
} lash__chg_copy;

typedef struct lash__changes {
  lash_store *s;
  lash__pump *pump;
  lash__hub *hub;
  lash__feed *feed;
  lash__runs *runs;
  lash__admit *admit;
  lash__chg_copy *v;
  size_t n, cap, head;
  /* issue 13: this engine's commit put a row on the timer index (a retry
   * wait, a delay): the timer part re-reads its earliest time. */
  void (*on_timer)(void *ud, int64_t at);
  void *timer_ud;
} lash__changes;

/* Installs the store's commit hook. */
void lash__changes_init(lash__changes *c, lash_store *s, lash__pump *pump,
                        lash__hub *hub, lash__feed *feed, lash__runs *runs,
                        lash__admit *admit);
/* Routes every copied change. */
void lash__changes_process(lash__changes *c);
static inline int lash__changes_pending(const lash__changes *c) {
  return c->n > c->head;
}
/* The feed's hooks (ud: the lash__changes). */
void lash__changes_flush(void *ud);
void lash__changes_foreign(void *ud, const lash__feed_row *row, uint64_t from);
/* Removes the store's commit hook and frees the copies. */
void lash__changes_free(lash__changes *c);

#endif /* LASH_ENGINE_CHANGES_H */
