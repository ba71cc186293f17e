/* engine/presence.h - the engine's entry among the live workers of the
 * store (issue 11): written in the first writer transaction after its
 * kinds change (a define), refreshed (heartbeat_at) at most every
 * LASH__PRESENCE_BEAT_MS and only in writer transactions it makes anyway,
 * removed at close. The first write also removes the entries of workers
 * whose owner hold is gone (lash_owner_alive == 0), and so does every
 * LASH__PRESENCE_SWEEP_EVERY-th heartbeat.
 *
 * Part: presence (floor 8, beside changes). May call: the registry
 * (lash.h), writer (its hooks), admit (the kinds, owner, incarnation). */
#ifndef LASH_ENGINE_PRESENCE_H
#define LASH_ENGINE_PRESENCE_H

#include "engine/admit.h"
#include "engine/writer.h"

#define LASH__PRESENCE_BEAT_MS 5000
#define LASH__PRESENCE_SWEEP_EVERY 12

typedef struct lash__presence {
  lash_store *s;
  lash__admit *admit;
  int written;   /* our entry is in the store (as far as we know) */
  int dirty;     /* the kinds changed since it was written */
  int closing;   /* the next writer transaction removes it */
  int in_flight; /* the open transaction wrote or removed it */
  unsigned beats;
  int64_t started_at, beat_at;
  int64_t pid;
  char host[256];
} lash__presence;

int lash__presence_init(lash__presence *p, lash_store *s, lash__writer *w,
                        lash__admit *admit);
/* The kinds changed: the next writer transaction writes the entry. */
void lash__presence_changed(lash__presence *p);
/* At close: 1 when the entry is to be removed by one more writer
 * transaction (the caller runs it), 0 when there is none. */
int lash__presence_leave(lash__presence *p);

#endif /* LASH_ENGINE_PRESENCE_H */
