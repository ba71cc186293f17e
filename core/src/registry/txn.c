/* txn.c - transactions of the registry: the store's own write and the
 * user's batch, reads, the per-transaction write-back cache with the
 * change list for the commit hook, the store-wide bookkeeping (change_seq
 * and per-status counters), and commit: one lash_bsave per touched row,
 * the meta, then the backend's commit and the hook. */
#include "registry-int.h"

#include "../base/hash.h"
#include "../base/inject.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------- the mutex */

void lash__lock(lash_store *s) {
  pthread_mutex_lock(&s->mu);
  if (s->mu_depth++ == 0) s->b->errmsg = lash__errbuf(s, &s->b->errcap);
}

void lash__unlock(lash_store *s) {
  if (--s->mu_depth == 0) {
    s->b->errmsg = s->errmsg;
    s->b->errcap = sizeof s->errmsg;
  }
  pthread_mutex_unlock(&s->mu);
}

int lash_store_lock(lash_store *s, int64_t timeout_ms) {
  struct timespec ts;
  int rc;
  if (s == NULL) return LASH_EINVAL;
  if (timeout_ms < 0) {
    lash__lock(s);
    return 0;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(timeout_ms / 1000);
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  rc = pthread_mutex_timedlock(&s->mu, &ts);
  if (rc == ETIMEDOUT) return LASH_EBUSY;
  if (rc != 0) return LASH_EINVAL;
  if (s->mu_depth++ == 0) s->b->errmsg = lash__errbuf(s, &s->b->errcap);
  return 0;
}

void lash_store_unlock(lash_store *s) {
  if (s != NULL) lash__unlock(s);
}

/* --------------------------------------------------------------- meta */

int lash__meta_load(lash_txn *t) {
  lash_backend *b = t->s->b;
  lash_bmeta m;
  int rc;
  if (t->meta_loaded) return 0;
  if ((rc = b->m->meta_get(b, t->bt, &m)) < 0) return rc;
  t->change_seq = m.change_seq;
  t->change_seq0 = m.change_seq;
  memcpy(t->counts, m.counts, sizeof t->counts);
  t->suspended = m.suspended;
  t->meta_loaded = 1;
  return 0;
}

uint64_t lash__next_change_seq(lash_txn *t) {
  t->meta_dirty = 1;
  return ++t->change_seq;
}

/* ------------------------------------------------------ change list */

/* Small commits search linearly; larger ones build an index. */
#define LINEAR_MAX 8

static int hash_rebuild(lash_txn *t, size_t cap) {
  uint32_t *h = calloc(cap, sizeof *h);
  size_t i;
  if (h == NULL) return LASH_ENOMEM;
  free(t->hash);
  t->hash = h;
  t->hcap = cap;
  for (i = 0; i < t->nch; i++) {
    const lash__chg *c = &t->ch[i];
    size_t j = lash__hash_n(t->ids.p + c->id_off, c->id_len) & (cap - 1);
    while (h[j] != 0)
      j = (j + 1) & (cap - 1);
    h[j] = (uint32_t)(i + 1);
  }
  t->hused = 1;
  return 0;
}

lash__chg *lash__chg_find(lash_txn *t, const char *id, size_t idlen) {
  size_t i, j;
  if (!t->hused) {
    for (i = 0; i < t->nch; i++) {
      lash__chg *c = &t->ch[i];
      if (c->id_len == idlen && memcmp(t->ids.p + c->id_off, id, idlen) == 0)
        return c;
    }
    return NULL;
  }
  for (j = lash__hash_n(id, idlen) & (t->hcap - 1); t->hash[j] != 0;
       j = (j + 1) & (t->hcap - 1)) {
    lash__chg *c = &t->ch[t->hash[j] - 1];
    if (c->id_len == idlen && memcmp(t->ids.p + c->id_off, id, idlen) == 0)
      return c;
  }
  return NULL;
}

lash__chg *lash__chg_get(lash_txn *t, const char *id, size_t idlen) {
  lash__chg *c = lash__chg_find(t, id, idlen);
  lash__buf keep_rec, keep_evs;
  lash__evref *keep_ev;
  size_t keep_evcap;
  if (c != NULL) return c;
  if (t->nch == t->chcap) {
    size_t cap = t->chcap ? t->chcap * 2 : 16;
    lash__chg *n = realloc(t->ch, cap * sizeof *n);
    if (n == NULL) return NULL;
    memset(n + t->chcap, 0, (cap - t->chcap) * sizeof *n);
    t->ch = n;
    t->chcap = cap;
  }
  if (lash__buf_reserve(&t->ids, idlen + 1) < 0) return NULL;
  if (t->nch + 1 > LINEAR_MAX && (!t->hused || (t->nch + 1) * 2 > t->hcap)) {
    size_t cap = 64;
    while (cap < (t->nch + 1) * 4)
      cap *= 2;
    if (hash_rebuild(t, cap) < 0) return NULL;
  }
  c = &t->ch[t->nch++];
  /* A reused slot keeps its buffers' capacity. */
  keep_rec = c->rec;
  keep_evs = c->evs;
  keep_ev = c->ev;
  keep_evcap = c->evcap;
  memset(c, 0, sizeof *c);
  c->rec = keep_rec;
  c->rec.len = 0;
  c->evs = keep_evs;
  c->evs.len = 0;
  c->ev = keep_ev;
  c->evcap = keep_evcap;
  c->id_off = t->ids.len;
  c->id_len = idlen;
  memcpy(t->ids.p + t->ids.len, id, idlen);
  t->ids.p[t->ids.len + idlen] = '\0';
  t->ids.len += idlen + 1;
  if (t->hused) {
    size_t j = lash__hash_n(id, idlen) & (t->hcap - 1);
    while (t->hash[j] != 0)
      j = (j + 1) & (t->hcap - 1);
    t->hash[j] = (uint32_t)t->nch;
  }
  return c;
}

/* ------------------------------------------------- write-time measure */

/* The longest begin -> commit of a write (lash_stats.longest_write_us). */
static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void note_write(lash_store *s, int64_t began_us) {
  int64_t d = mono_us() - began_us;
  if (d > s->longest_write_us) s->longest_write_us = d;
}

/* ---------------------------------------------------------- write-back */

static lash_bytes bytes(const void *p, size_t n) {
  lash_bytes b;
  b.data = p;
  b.len = n;
  return b;
}

/* Builds the lash_bsave of c; 0, 1 (nothing to save) or an error. */
static int save_of(lash_txn *t, lash__chg *c, lash_bsave *row) {
  lash_store *s = t->s;
  size_t i;
  int rc;
  if (c->rec_state != 2 && c->lease_state != 3 && c->nev == 0 && !c->drop_tomb)
    return 1;
  memset(row, 0, sizeof *row);
  row->id = t->ids.p + c->id_off;
  row->idlen = c->id_len;
  row->kind = bytes(c->kind, c->kind_n);
  if (c->rec_state == 2) {
    row->rec = bytes(c->rec.p, c->rec.len);
    row->before.exists = c->orig_exists;
    row->before.status = c->orig_status;
    row->before.change_seq = c->orig_cs;
    row->after.exists = 1;
    row->after.status = c->cur_status;
    row->after.change_seq = c->cur_cs;
    /* ---- suspension (B) ---- */
    row->before.listed = c->orig_listed;
    row->before.wake_at = c->orig_wake_at;
    if (c->orig_awaits_n > 0)
      row->before.awaits = bytes(c->orig_awaits, c->orig_awaits_n);
    /* issue 13 (claim): the live order */
    row->before.priority = row->after.priority = c->prio;
    row->before.order = row->after.order = c->order;
    row->after.listed = c->cur_listed;
    row->after.wake_at = c->cur_wake_at;
    if (c->cur_awaits_n > 0)
      row->after.awaits = bytes(c->cur_awaits, c->cur_awaits_n);
  }
  if (c->nev > 0) {
    if (t->bevcap < c->nev) {
      lash_bevent *n = realloc(t->bev, c->nev * sizeof *n);
      if (n == NULL)
        return t->rc = lash__fail(s, LASH_ENOMEM,
                                  "out of memory saving process %s", row->id);
      t->bev = n;
      t->bevcap = c->nev;
    }
    for (i = 0; i < c->nev; i++) {
      t->bev[i].seq = c->ev[i].seq;
      t->bev[i].data = bytes(c->evs.p + c->ev[i].off, c->ev[i].len);
      /* replay keys (A) */
      t->bev[i].key = c->ev[i].klen > 0
                          ? bytes(c->evs.p + c->ev[i].koff, c->ev[i].klen)
                          : bytes(NULL, 0);
    }
    row->events = t->bev;
    row->nevents = c->nev;
  }
  if (c->lease_state == 3) {
    if ((rc = lash__lease_encode(&c->lease, &s->vbuf)) < 0)
      return t->rc = lash__fail(s, rc, "out of memory writing the lease of %s",
                                row->id);
    row->lease = bytes(s->vbuf.p, s->vbuf.len);
  }
  row->drop_tomb = c->drop_tomb;
  row->tomb_change_seq = c->tomb_cs;
  return 0;
}

int lash__chg_dirty(lash_txn *t, lash__chg *c) {
  if (c->dirty) return 0;
  if (t->ndirty == t->dirtycap) {
    size_t cap = t->dirtycap ? t->dirtycap * 2 : 64;
    uint32_t *n = realloc(t->dirty, cap * sizeof *n);
    if (n == NULL)
      return t->rc = lash__fail(t->s, LASH_ENOMEM,
                                "out of memory noting a written row");
    t->dirty = n;
    t->dirtycap = cap;
  }
  t->dirty[t->ndirty++] = (uint32_t)(c - t->ch);
  c->dirty = 1;
  return 0;
}

int lash__wb_flush(lash_txn *t, int drop) {
  lash_backend *b = t->s->b;
  lash_bsave row;
  size_t i, n = drop ? t->nch : t->ndirty;
  int rc;
  /* Only the rows written since the last flush have anything to save,
   * unless the whole cache is to be dropped. */
  for (i = 0; i < n; i++) {
    lash__chg *c = &t->ch[drop ? i : t->dirty[i]];
    c->dirty = 0;
    if ((rc = save_of(t, c, &row)) < 0) return rc;
    if (rc == 0) {
      if ((rc = b->m->save(b, t->bt, &row)) < 0) return t->rc = rc;
      t->spilled = 1;
      if (c->rec_state == 2) {
        c->orig_exists = 1;
        c->orig_status = c->cur_status;
        c->orig_cs = c->cur_cs;
        c->orig_listed = c->cur_listed;
        c->orig_wake_at = c->cur_wake_at;
        c->orig_awaits_n = c->cur_awaits_n;
        memcpy(c->orig_awaits, c->cur_awaits, c->cur_awaits_n);
        c->orig_suspended = c->cur_suspended;
        c->rec_state = 1;
      }
      if (c->lease_state == 3) c->lease_state = 2;
      c->nev = 0;
      c->evs.len = 0;
      c->drop_tomb = 0;
    }
    if (drop) {
      c->rec_state = 0;
      c->lease_state = 0;
    }
  }
  t->ndirty = 0;
  return 0;
}

void lash__chg_keep(lash_txn *t, const char *id, size_t idlen, lash_bytes rec,
                    const lash__rec *r) {
  lash__chg *c = lash__chg_get(t, id, idlen);
  lash_bindex x;
  if (c == NULL || c->rec_state != 0 || r->kind.n > sizeof c->kind) return;
  c->rec.len = 0;
  if (lash__buf_reserve(&c->rec, rec.len) < 0) return;
  memcpy(c->rec.p, rec.data, rec.len);
  c->rec.len = rec.len;
  lash__rec_index(r, &x);
  /* the stored state, before and after (as lash__wb_flush leaves a row) */
  c->orig_exists = 1;
  c->orig_status = c->cur_status = r->status;
  c->orig_cs = c->cur_cs = r->change_seq;
  memcpy(c->kind, r->kind.p, r->kind.n);
  c->kind_n = r->kind.n;
  c->orig_listed = c->cur_listed = x.listed;
  c->orig_suspended = c->cur_suspended = r->suspended;
  c->orig_wake_at = c->cur_wake_at = x.wake_at;
  c->orig_awaits_n = c->cur_awaits_n = lash__awaits_n(&x);
  if (c->orig_awaits_n > 0) {
    memcpy(c->orig_awaits, x.awaits.data, c->orig_awaits_n);
    memcpy(c->cur_awaits, x.awaits.data, c->cur_awaits_n);
  }
  c->prio = r->priority;
  c->order = r->created_seq;
  c->rec_state = 1;
}

int lash__wb_flush_events(lash_txn *t, const char *id, size_t idlen) {
  lash__chg *c = t != NULL ? lash__chg_find(t, id, idlen) : NULL;
  return c != NULL && c->nev > 0 ? lash__wb_flush(t, 0) : 0;
}

/* ------------------------------------------ the side table's puts (kv) */

int lash__kv_flush(lash_txn *t, int keep) {
  lash_backend *b = t->s->b;
  size_t off = 0;
  int rc;
  if (t->nkv == 0) return 0;
  while (off < t->kv.len) {
    lash__kvent h;
    lash_bytes v;
    const char *k;
    memcpy(&h, t->kv.p + off, sizeof h);
    k = t->kv.p + off + sizeof h;
    v.data = h.del ? NULL : k + h.keylen;
    v.len = h.vallen;
    if ((rc = b->m->kv_put(b, t->bt, h.ns, k, h.keylen, v)) < 0)
      return t->rc = rc;
    off += sizeof h + h.keylen + h.vallen;
  }
  if (!keep) {
    t->kv.len = 0;
    t->nkv = 0;
    t->spilled = 1; /* in the backend before the commit: no replay */
  }
  return 0;
}

/* -------------------------------------------------------- transactions */

void lash__txn_free(lash_txn *t) {
  size_t i;
  for (i = 0; i < t->chcap; i++) {
    lash__buf_free(&t->ch[i].rec);
    lash__buf_free(&t->ch[i].evs);
    free(t->ch[i].ev);
  }
  free(t->ch);
  free(t->dirty);
  free(t->hash);
  free(t->out);
  free(t->bev);
  lash__buf_free(&t->ids);
  lash__buf_free(&t->ended);
  lash__buf_free(&t->kv);
  lash__buf_free(&t->conc_freed); /* issue 13 (claim) */
  memset(t, 0, sizeof *t);
}

static void txn_reset(lash_txn *t) {
  t->bt = NULL;
  t->active = 0;
  t->rc = 0;
  t->wrote = 0;
  t->spilled = 0;
  t->meta_loaded = 0;
  t->meta_dirty = 0;
  t->nch = 0;
  t->ndirty = 0;
  t->ids.len = 0;
  t->ended.len = 0;
  t->kv.len = 0;
  t->nkv = 0;
  t->conc_freed.len = 0; /* issue 13 (claim) */
  t->pre_commit = NULL;
  t->awaits_cached = 0;
  if (t->hused) {
    memset(t->hash, 0, t->hcap * sizeof *t->hash);
    t->hused = 0;
  }
}

void lash__txn_abort(lash_txn *t) {
  lash_backend *b = t->s->b;
  if (!t->active) return;
  b->m->abort(b, t->bt);
  txn_reset(t);
}

static int txn_open(lash_store *s, lash_txn *t) {
  int rc;
  if (s->b->panicked && !s->b->reopens)
    return lash__fail(s, LASH_EPANIC,
                      "store %s had a fatal storage error: close and reopen it",
                      s->path);
  if (s->opts.read_only)
    return lash__fail(s, LASH_EACCES,
                      "store %s is open read-only: reopen it for writing",
                      s->path);
  if ((rc = s->b->m->begin(s->b, LASH_BTXN_WRITE, &t->bt)) < 0) {
    t->bt = NULL;
    return rc;
  }
  t->active = 1;
  t->began_us = mono_us();
  s->nalive = 0; /* liveness is asked afresh in each transaction */
  return 0;
}

/* Calls the commit hook with t's reported changes. */
static void report(lash_txn *t) {
  lash_store *s = t->s;
  size_t i, n = 0;
  if (s->on_commit == NULL || t->nch == 0) return;
  if (t->outcap < t->nch) {
    lash_change *nw = realloc(t->out, t->nch * sizeof *nw);
    if (nw == NULL) return; /* the commit is durable; only the news is lost */
    t->out = nw;
    t->outcap = t->nch;
  }
  for (i = 0; i < t->nch; i++) {
    const lash__chg *c = &t->ch[i];
    if (!c->report) continue;
    t->out[n].id = t->ids.p + c->id_off;
    t->out[n].first_seq = c->first_seq;
    t->out[n].last_seq = c->last_seq;
    t->out[n].status = c->status;
    t->out[n].registered = c->registered;
    t->out[n].cancel_requested = c->cancel_requested;
    t->out[n].woken = c->woken;
    t->out[n].wake_at = c->cur_wake_at; /* issue 13 */
    n++;
  }
  if (n == 0) return;
  s->report_from = t->change_seq0;
  s->report_to = t->change_seq;
  s->on_commit(s->on_commit_ud, t->out, n);
}

/* The last flush of t: every cached row and the meta, leaving the cache
 * as it is (so that it can be written again into a fresh transaction). */
static int flush_final(lash_txn *t) {
  lash_backend *b = t->s->b;
  lash_bsave row;
  lash_bmeta m;
  size_t i;
  int rc;
  for (i = 0; i < t->nch; i++) {
    if ((rc = save_of(t, &t->ch[i], &row)) < 0) return rc;
    if (rc == 0 && (rc = b->m->save(b, t->bt, &row)) < 0) return rc;
  }
  if ((rc = lash__kv_flush(t, 1)) < 0) return rc; /* the side table (kv) */
  if (!t->meta_dirty) return 0;
  m.change_seq = t->change_seq;
  memcpy(m.counts, t->counts, sizeof m.counts);
  m.suspended = t->suspended;
  return b->m->meta_put(b, t->bt, &m);
}

/* Writes the cache and commits. A full store (LASH_EFULL) is grown by the
 * backend and the whole write replayed from the cache, when nothing of it
 * went to the backend before (no spill) and the backend could grow in
 * place (no other writer in between). */
static int write_commit(lash_txn *t) {
  lash_backend *b = t->s->b;
  int rc, tries;
  for (tries = 0;; tries++) {
    rc = flush_final(t);
    if (rc == 0) {
      LASH_INJECT("txn.before_commit");
      rc = b->m->commit(b, t->bt);
      t->bt = NULL;
      if (rc == 0) {
        LASH_INJECT("txn.after_commit");
        return 0;
      }
    }
    if (rc != LASH_EFULL || t->spilled || b->m->grow == NULL || tries >= 8) {
      if (t->bt != NULL) {
        b->m->abort(b, t->bt);
        t->bt = NULL;
      }
      return rc;
    }
    /* grow ends t->bt (if still open) and begins a fresh write. */
    if ((rc = b->m->grow(b, t->bt, &t->bt)) < 0) {
      t->bt = NULL;
      return rc;
    }
  }
}

/* Commits t; calls the hook after success. Always ends t. */
static int txn_finish(lash_txn *t) {
  lash_backend *b = t->s->b;
  lash_store *s = t->s;
  int64_t t0;
  int rc = t->rc;
  if (rc < 0) {
    lash__txn_abort(t);
    return rc;
  }
  /* The waiters of rows that ended are woken in this commit (issue 9);
   * freed concurrency slots go to their keys' waiters (issue 13): both
   * through the registry's pre_commit. */
  if ((t->pre_commit != NULL && (rc = t->pre_commit(t)) < 0) ||
      (rc = t->rc) < 0) {
    lash__txn_abort(t);
    return rc;
  }
  rc = write_commit(t);
  t0 = t->began_us;
  if (rc < 0) {
    if (rc == LASH_EIO) b->panicked = 1;
    txn_reset(t);
    return rc;
  }
  note_write(s, t0);
  report(t);
  txn_reset(t);
  return 0;
}

int lash_txn_begin(lash_store *s, lash_txn **out) {
  int rc;
  if (out != NULL) *out = NULL;
  if (s == NULL || out == NULL) return LASH_EINVAL;
  lash__clear(s);
  lash__lock(s);
  if (s->batch.active) {
    lash__unlock(s);
    return lash__fail(s, LASH_EINVAL,
                      "store %s already has an open write batch: commit or "
                      "abort it first",
                      s->path);
  }
  if ((rc = txn_open(s, &s->batch)) < 0) {
    lash__unlock(s);
    return rc;
  }
  *out = &s->batch; /* holds the store mutex until its commit or abort */
  return 0;
}

int lash_txn_commit(lash_txn *txn) {
  lash_store *s;
  int rc;
  if (txn == NULL || txn->s == NULL) return LASH_EINVAL;
  s = txn->s;
  if (!txn->active)
    return lash__fail(s, LASH_EINVAL, "the write batch is not open");
  lash__clear(s);
  rc = txn->rc;
  if (rc < 0)
    lash__fail(s, rc,
               "the write batch was poisoned by an earlier storage error "
               "(%s); nothing was committed",
               lash_err_name(rc));
  rc = txn_finish(txn);
  lash__unlock(s);
  return rc;
}

void lash_txn_abort(lash_txn *txn) {
  if (txn == NULL || !txn->active) return;
  lash__txn_abort(txn);
  lash__unlock(txn->s);
}

/* A caller's batch must be this store's, open, and not poisoned. */
int lash__txn_usable(lash_store *s, const lash_txn *txn) {
  if (txn->s != s || !txn->active)
    return lash__fail(s, LASH_EINVAL,
                      "the write batch does not belong to store %s or is "
                      "already finished",
                      s->path);
  if (txn->rc < 0)
    return lash__fail(s, txn->rc,
                      "the write batch was poisoned by an earlier storage "
                      "error (%s): abort it",
                      lash_err_name(txn->rc));
  return 0;
}

/* A batch's calls run in the thread that holds it (its mutex is held from
 * lash_txn_begin on); the store's own write takes the mutex here and gives
 * it back in lash__wend, or here when it cannot begin. */
int lash__wbegin(lash_store *s, lash_txn *txn, lash_txn **out) {
  int rc;
  if (txn != NULL) {
    rc = lash__txn_usable(s, txn);
    if (rc < 0) return rc;
    *out = txn;
    return 0;
  }
  lash__lock(s);
  if (s->batch.active) {
    lash__unlock(s);
    return lash__fail(s, LASH_EINVAL,
                      "a write batch is open on this store; pass it");
  }
  if (s->own.active) {
    lash__unlock(s);
    return lash__fail(s, LASH_EINVAL,
                      "store %s is in the middle of a write (called from a "
                      "callback?)",
                      s->path);
  }
  *out = &s->own;
  if ((rc = txn_open(s, &s->own)) < 0) lash__unlock(s);
  return rc;
}

int lash__wend(lash_store *s, lash_txn *t, int rc) {
  if (t == NULL || t->batch) return rc; /* NULL: the write never began */
  if (rc >= 0 && t->rc == 0 && t->wrote) {
    int crc = txn_finish(t);
    lash__unlock(s);
    return crc < 0 ? crc : rc;
  }
  if (rc >= 0 && t->rc < 0) rc = t->rc;
  lash__txn_abort(t);
  lash__unlock(s);
  return rc;
}

int lash__rbegin(lash_store *s, lash_txn *txn, lash_btxn **bt) {
  int rc;
  *bt = NULL;
  if (txn != NULL) {
    if ((rc = lash__txn_usable(s, txn)) < 0) return rc;
    *bt = txn->bt;
    return 0;
  }
  lash__lock(s);
  if ((rc = s->b->m->begin(s->b, LASH_BTXN_READ, bt)) < 0) {
    *bt = NULL;
    lash__unlock(s);
  }
  return rc;
}

void lash__rend(lash_store *s, lash_txn *txn, lash_btxn *bt) {
  if (txn != NULL || bt == NULL) return;
  s->b->m->abort(s->b, bt);
  lash__unlock(s);
}
