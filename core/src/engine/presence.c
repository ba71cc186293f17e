/* engine/presence.c - the engine's worker entry (see presence.h). */
#define _GNU_SOURCE 1
#include "engine/presence.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gone {
  lash_store *s;
  lash_txn *txn;
  const lash__presence *self;
  int rc;
} gone;

/* Removes an entry whose owner hold is gone (never our own). */
static int sweep_cb(void *ud, const lash_worker_info *w) {
  gone *g = ud;
  if (w->alive != 0) return 0;
  if (strcmp(w->owner, g->self->admit->owner) == 0 &&
      strcmp(w->incarnation, g->self->admit->incarnation) == 0)
    return 0;
  g->rc = lash_worker_remove(g->s, g->txn, w->owner, w->incarnation);
  return g->rc < 0 ? g->rc : 0;
}

/* 0 written, 1 skipped (a heartbeat in a transaction that wrote nothing
 * else), or an error. */
static int write_entry(lash__presence *p, lash_txn *txn, int64_t now,
                       int beat_only) {
  lash_worker_info w;
  memset(&w, 0, sizeof w);
  w.if_writing = beat_only;
  snprintf(w.owner, sizeof w.owner, "%s", p->admit->owner);
  snprintf(w.incarnation, sizeof w.incarnation, "%s", p->admit->incarnation);
  snprintf(w.host, sizeof w.host, "%s", p->host);
  w.pid = p->pid;
  w.kinds = (const char *const *)p->admit->kinds;
  w.nkinds = p->admit->nkinds;
  w.started_at = p->started_at;
  w.heartbeat_at = now;
  return lash_worker_put(p->s, txn, &w);
}

static int in_txn(void *ud, lash_txn *txn) {
  lash__presence *p = ud;
  int64_t now;
  int rc;
  p->in_flight = 0;
  if (p->closing) {
    if (!p->written) return 0;
    p->in_flight = 1;
    return lash_worker_remove(p->s, txn, p->admit->owner,
                              p->admit->incarnation);
  }
  if (p->admit->nkinds == 0) return 0;
  now = lash_store_now(p->s);
  if (!p->dirty && p->written && now - p->beat_at < LASH__PRESENCE_BEAT_MS)
    return 0;
  if (p->started_at == 0) p->started_at = now;
  /* A heartbeat alone never makes a commit write (an idle worker writes
   * nothing): it rides on what the transaction writes anyway. */
  rc = write_entry(p, txn, now, p->written && !p->dirty);
  if (rc != 0) return rc < 0 ? rc : 0;
  if (!p->written || ++p->beats % LASH__PRESENCE_SWEEP_EVERY == 0) {
    gone g;
    g.s = p->s;
    g.txn = txn;
    g.self = p;
    g.rc = 0;
    /* A failed sweep only leaves stale entries (shown not alive). */
    (void)lash_workers_list(p->s, txn, sweep_cb, &g);
  }
  p->beat_at = now;
  p->in_flight = 1;
  return 0;
}

static void committed(void *ud, int rc) {
  lash__presence *p = ud;
  if (!p->in_flight) return;
  p->in_flight = 0;
  if (rc < 0) return; /* not written: the next transaction tries again */
  if (p->closing) {
    p->written = 0;
  } else {
    p->written = 1;
    p->dirty = 0;
  }
}

int lash__presence_init(lash__presence *p, lash_store *s, lash__writer *w,
                        lash__admit *admit) {
  memset(p, 0, sizeof *p);
  p->s = s;
  p->admit = admit;
  p->pid = (int64_t)getpid();
  if (gethostname(p->host, sizeof p->host - 1) != 0) p->host[0] = '\0';
  p->host[sizeof p->host - 1] = '\0';
  return lash__writer_hook(w, in_txn, committed, p);
}

void lash__presence_changed(lash__presence *p) {
  p->dirty = 1;
}

int lash__presence_leave(lash__presence *p) {
  p->closing = 1;
  return p->written;
}
