/* list.c - the reads that walk many rows, and prune: listings (by status,
 * live by kind, all rows), the worklist's keyset pages, the change feed,
 * and prune. Each is one backend scan with a callback of the rules. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "registry-int.h"

#include <stdlib.h>
#include <string.h>

/* Compares two ids in the order of every scan (bytewise, shorter first). */
static int id_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

/* ------------------------------------------------------------ listings */

typedef struct emit_ctx {
  lash_store *s;
  const lash_list_filter *f; /* NULL: every row */
  lash__buf arena;
  lash_record_fn fn;
  void *ud;
  int passed;
  size_t limit;
  int stopped; /* fn asked to stop */
} emit_ctx;

/* Decodes a scanned row, filters it, passes it to fn: 0 on, 1 stop (fn
 * asked, or the limit is reached), < 0 error. */
static int emit(emit_ctx *c, const lash_bitem *it) {
  lash_store *s = c->s;
  const lash_list_filter *f = c->f;
  lash__rec r;
  lash_record rec;
  int rc;
  if (it->idlen == 0 || it->idlen > LASH_ID_MAX)
    return lash__fail(s, LASH_ECORRUPT, "list: an index key is malformed");
  if (lash__rec_decode(it->rec.data, it->rec.len, &r, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "record of process %.*s cannot be decoded (run check)",
                      (int)it->idlen, it->id);
  if (f != NULL) {
    if (f->kind != NULL && !lash__sv_eq(r.kind, lash__sv_str(f->kind)))
      return 0;
    if (f->live_only && LASH_IS_TERMINAL(r.status)) return 0;
    if (f->status != 0 && r.status != f->status) return 0;
  }
  if (lash__rec_export(&r, &rec, &c->arena) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory listing processes");
  c->passed++;
  if (c->fn != NULL && (rc = c->fn(c->ud, &rec)) != 0) {
    c->stopped = 1;
    return rc < 0 ? rc : 1;
  }
  return c->limit > 0 && (size_t)c->passed >= c->limit ? 1 : 0;
}

static int list_cb(void *ud, const lash_bitem *it) {
  return emit(ud, it);
}

int lash_list(lash_store *s, lash_txn *txn, const lash_list_filter *f,
              lash_record_fn fn, void *ud) {
  lash_btxn *bt = NULL;
  lash_list_filter none;
  lash_bscan q;
  emit_ctx c;
  size_t alen = 0;
  int rc = 0;
  txn = lash__read_txn(s, txn);

  lash__clear(s);
  if (f == NULL) {
    memset(&none, 0, sizeof none);
    f = &none;
  }
  if (f->status != 0 && lash_status_name(f->status) == NULL)
    return lash__fail(s, LASH_EINVAL, "list: status %d is not a status",
                      f->status);
  if (f->kind != NULL && (rc = lash__check_kind(s, f->kind, NULL)) < 0)
    return rc;
  if (f->after != NULL) {
    alen = strnlen(f->after, LASH_ID_MAX + 1);
    if (alen > LASH_ID_MAX)
      return lash__fail(s, LASH_EINVAL,
                        "list: the after id is longer than %d bytes",
                        LASH_ID_MAX);
  }
  if (f->status != 0 && f->live_only && LASH_IS_TERMINAL(f->status)) return 0;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) {
    lash__rend(s, txn, bt);
    return rc;
  }
  /* Pick the index: status, live-by-kind, or all records. */
  memset(&q, 0, sizeof q);
  if (f->status != 0) {
    q.what = LASH_SCAN_STATUS;
    q.status = f->status;
  } else {
    /* (issue 13: the live index is in claim order, not id order; a
     * listing stays in id order, filtered by kind and liveness) */
    q.what = LASH_SCAN_ROWS;
  }
  q.after = f->after;
  q.afterlen = alen;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.f = f;
  c.fn = fn;
  c.ud = ud;
  c.limit = f->limit;
  rc = s->b->m->scan(s->b, bt, &q, list_cb, &c);
  lash__rend(s, txn, bt);
  lash__buf_free(&c.arena);
  return rc < 0 ? rc : c.passed;
}

/* ------------------------------------------------------------ worklist */

typedef struct page_ctx {
  emit_ctx e;
  lash_worklist_cursor *cur;
  size_t boundn;
  int done; /* the scan reached (or passed) its bound */
} page_ctx;

static int bound_cb(void *ud, const lash_bitem *it) {
  lash_worklist_cursor *cur = ud;
  memcpy(cur->bound, it->id, it->idlen);
  cur->bound[it->idlen] = '\0';
  cur->bound_prio = it->prio;
  cur->bound_order = it->order;
  return 1;
}

/* issue 13 (claim): positions in live order (priority desc, creation
 * order, id). */
static int pos_cmp(int64_t ap, uint64_t ao, const char *a, size_t an,
                   int64_t bp, uint64_t bo, const char *b, size_t bn) {
  if (ap != bp) return ap > bp ? -1 : 1;
  if (ao != bo) return ao < bo ? -1 : 1;
  return id_cmp(a, an, b, bn);
}

static int page_cb(void *ud, const lash_bitem *it) {
  page_ctx *p = ud;
  lash_worklist_cursor *cur = p->cur;
  int rc, c;
  c = pos_cmp(it->prio, it->order, it->id, it->idlen, cur->bound_prio,
              cur->bound_order, cur->bound, p->boundn);
  if (c > 0) {
    p->done = 1;
    return 1;
  }
  memcpy(cur->last, it->id, it->idlen);
  cur->last[it->idlen] = '\0';
  cur->last_prio = it->prio;
  cur->last_order = it->order;
  if ((rc = emit(&p->e, it)) < 0 || p->e.stopped) return rc < 0 ? rc : 1;
  if (c == 0) {
    p->done = 1;
    return 1;
  }
  return rc;
}

int lash_worklist_page(lash_store *s, lash_txn *txn, const char *kind,
                       lash_worklist_cursor *cur, size_t limit,
                       lash_record_fn fn, void *ud) {
  lash_btxn *bt = NULL;
  lash_bscan q;
  page_ctx p;
  int rc = 0, kn;

  lash__clear(s);
  if ((kn = lash__check_kind(s, kind, NULL)) < 0) return kn;
  if (cur == NULL)
    return lash__fail(s, LASH_EINVAL, "worklist: no cursor given");
  if (cur->done) return 0;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) goto out;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_LIVE;
  q.kind.data = kind;
  q.kind.len = (size_t)kn;
  memset(&p, 0, sizeof p);
  if (!cur->started) {
    /* The inclusive bound: the last live id of this kind right now. */
    cur->started = 1;
    cur->last[0] = '\0';
    cur->bound[0] = '\0';
    q.flags = LASH_SCAN_LAST | LASH_SCAN_KEYS;
    if ((rc = s->b->m->scan(s->b, bt, &q, bound_cb, cur)) < 0) goto out;
    if (cur->bound[0] == '\0') {
      cur->done = 1;
      goto out;
    }
    q.flags = 0;
  }
  p.e.s = s;
  p.e.fn = fn;
  p.e.ud = ud;
  p.e.limit = limit;
  p.cur = cur;
  p.boundn = strnlen(cur->bound, sizeof cur->bound - 1);
  q.after = cur->last;
  q.afterlen = strnlen(cur->last, sizeof cur->last - 1);
  q.after_prio = cur->last_prio;
  q.after_seq = cur->last_order;
  rc = s->b->m->scan(s->b, bt, &q, page_cb, &p);
  if (rc < 0) goto out;
  /* Ran out of the kind's rows, or reached the bound; not when fn or the
   * limit stopped the page. */
  if (p.done || (!p.e.stopped && !(limit > 0 && (size_t)p.e.passed >= limit)))
    cur->done = 1;
out:
  lash__rend(s, txn, bt);
  lash__buf_free(&p.e.arena);
  return rc < 0 ? rc : p.e.passed;
}

/* --------------------------------------------------------- change feed */

typedef struct changes_ctx {
  lash_store *s;
  lash__buf arena;
  lash_change_fn fn;
  void *ud;
  size_t limit;
  int passed;
  uint64_t *next;
} changes_ctx;

static int changes_cb(void *ud, const lash_bitem *it) {
  changes_ctx *c = ud;
  lash_store *s = c->s;
  char idbuf[LASH_ID_MAX + 1];
  lash_change_entry e;
  lash_tombstone tomb;
  lash_record rec;
  lash__rec r;
  int rc;
  memcpy(idbuf, it->id, it->idlen);
  idbuf[it->idlen] = '\0';
  memset(&e, 0, sizeof e);
  e.change_seq = it->seq;
  e.id = idbuf;
  if (it->rec.data != NULL) {
    if (lash__rec_decode(it->rec.data, it->rec.len, &r, &s->zone) < 0)
      return lash__fail(s, LASH_ECORRUPT,
                        "record of process %s cannot be decoded (run check)",
                        idbuf);
    if (r.change_seq != it->seq) return 0; /* stale; lash_check reports it */
    if (lash__rec_export(&r, &rec, &c->arena) < 0)
      return lash__fail(s, LASH_ENOMEM, "out of memory reading changes");
    e.rec = &rec;
  } else if (it->tomb.data != NULL) {
    if (lash__tomb_read(s, idbuf, it->idlen, it->tomb, &tomb) < 0) return -1;
    if (tomb.change_seq != it->seq) return 0;
    e.deleted = 1;
    e.tomb = &tomb;
  } else {
    return 0;
  }
  c->passed++;
  if (c->next != NULL) *c->next = it->seq;
  if ((rc = c->fn(c->ud, &e)) != 0) return rc < 0 ? rc : 1;
  return c->limit > 0 && (size_t)c->passed >= c->limit ? 1 : 0;
}

int lash_changes_since(lash_store *s, lash_txn *txn, uint64_t cursor,
                       size_t limit, lash_change_fn fn, void *ud,
                       uint64_t *next) {
  lash_btxn *bt = NULL;
  lash_bscan q;
  changes_ctx c;
  int rc = 0;

  lash__clear(s);
  if (next != NULL) *next = cursor;
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_changes_since: no callback given");
  if (cursor == UINT64_MAX) return 0;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) {
    lash__rend(s, txn, bt);
    return rc;
  }
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_CHANGES;
  q.after_seq = cursor;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.fn = fn;
  c.ud = ud;
  c.limit = limit;
  c.next = next;
  rc = s->b->m->scan(s->b, bt, &q, changes_cb, &c);
  lash__rend(s, txn, bt);
  lash__buf_free(&c.arena);
  return rc < 0 ? rc : c.passed;
}

/* --------------------------------------------------------------- prune */

typedef struct prune_ent {
  const char *p; /* set once the id buffer stops growing */
  size_t off, len;
} prune_ent;

typedef struct prune_ctx {
  lash_store *s;
  int64_t before_ms;
  lash__buf ids;
  prune_ent *ents;
  size_t nents, capents;
} prune_ctx;

static int prune_cmp(const void *a, const void *b) {
  const prune_ent *x = a, *y = b;
  return id_cmp(x->p, x->len, y->p, y->len);
}

/* Pass 1 (reads only): collects the ids to prune. */
static int prune_pick(void *ud, const lash_bitem *it) {
  prune_ctx *c = ud;
  lash__rec r;
  if (lash__rec_decode(it->rec.data, it->rec.len, &r, &c->s->zone) < 0)
    return lash__fail(c->s, LASH_ECORRUPT,
                      "prune: the status index names process %.*s, which "
                      "has no readable record (run check)",
                      (int)it->idlen, it->id);
  if (!LASH_IS_TERMINAL(r.status) || r.updated_at >= c->before_ms) return 0;
  if (c->nents == c->capents) {
    size_t cap = c->capents ? c->capents * 2 : 64;
    prune_ent *n = realloc(c->ents, cap * sizeof *n);
    if (n == NULL)
      return lash__fail(c->s, LASH_ENOMEM, "out of memory pruning");
    c->ents = n;
    c->capents = cap;
  }
  if (lash__buf_reserve(&c->ids, it->idlen) < 0)
    return lash__fail(c->s, LASH_ENOMEM, "out of memory pruning");
  c->ents[c->nents].off = c->ids.len;
  c->ents[c->nents].len = it->idlen;
  memcpy(c->ids.p + c->ids.len, it->id, it->idlen);
  c->ids.len += it->idlen;
  c->nents++;
  return 0;
}

int lash_prune(lash_store *s, lash_txn *txn, int64_t before_ms, int status,
               lash_prune_report *out) {
  lash_txn *t = NULL;
  lash_bscan q;
  prune_ctx c;
  size_t i;
  lash_prune_report rep = {0, 0};
  int rc = 0, st, lo, hi, writing = 0;
  int64_t now;

  lash__clear(s);
  if (out != NULL) memset(out, 0, sizeof *out);
  if (status != 0 && (status < LASH_COMPLETED || status > LASH_ABANDONED))
    return lash__fail(s, LASH_EINVAL,
                      "prune: status %d is not a terminal status (only "
                      "terminal rows are pruned)",
                      status);
  memset(&c, 0, sizeof c);
  c.s = s;
  c.before_ms = before_ms;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  /* Prune works on the backend directly: save the cached rows, forget
   * them. */
  if ((rc = lash__wb_flush(t, 1)) < 0) goto out;
  lo = status != 0 ? status : LASH_COMPLETED;
  hi = status != 0 ? status : LASH_ABANDONED;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_STATUS;
  for (st = lo; st <= hi; st++) {
    q.status = st;
    if ((rc = s->b->m->scan(s->b, t->bt, &q, prune_pick, &c)) < 0) goto out;
  }
  if (c.nents == 0) goto out;
  for (i = 0; i < c.nents; i++)
    c.ents[i].p = c.ids.p + c.ents[i].off;
  qsort(c.ents, c.nents, sizeof *c.ents, prune_cmp);
  if ((rc = lash__meta_load(t)) < 0) goto out;
  now = lash__now(s);
  writing = 1;
  t->spilled = 1; /* removes go to the backend directly */
  /* Pass 2: tombstones in id order, with consecutive change seqs. */
  for (i = 0; i < c.nents; i++) {
    char id[LASH_ID_MAX + 1], kind[LASH_NAME_MAX], parent[LASH_ID_MAX + 1];
    char ukey[LASH_ID_MAX + 1];
    size_t plen = 0, ulen = 0;
    size_t idlen = c.ents[i].len;
    lash__rec r;
    lash_tombstone tomb;
    lash_bremove row;
    uint64_t nev = 0;
    memcpy(id, c.ents[i].p, idlen);
    id[idlen] = '\0';
    rc = lash__rec_lookup(s, t, t->bt, id, idlen, &r);
    if (rc != 0) {
      rc = rc < 0 ? rc
                  : lash__fail(s, LASH_ECORRUPT,
                               "prune: process %s vanished mid-prune", id);
      goto out;
    }
    memset(&tomb, 0, sizeof tomb);
    tomb.status = r.status;
    tomb.pruned_at = now;
    tomb.last_seq = r.last_seq > r.floor ? r.last_seq : r.floor;
    tomb.change_seq = lash__next_change_seq(t);
    if ((rc = lash__tomb_encode(&tomb, &s->vbuf)) < 0) {
      rc = t->rc = lash__fail(s, rc, "out of memory pruning %s", id);
      goto out;
    }
    /* The record's views die with its first deletion: copy the kind. */
    if (r.kind.n > LASH_NAME_MAX) {
      rc = lash__fail(s, LASH_ECORRUPT, "process %s has an over-long kind", id);
      goto out;
    }
    memcpy(kind, r.kind.p, r.kind.n);
    if (r.parent.p != NULL && r.parent.n > 0 && r.parent.n <= LASH_ID_MAX) {
      plen = r.parent.n; /* the children index entry goes with it */
      memcpy(parent, r.parent.p, plen);
    }
    if (r.unique_key.p != NULL && r.unique_key.n > 0 &&
        r.unique_key.n <= LASH_ID_MAX) {
      ulen = r.unique_key.n; /* so does its unique key's entry */
      memcpy(ukey, r.unique_key.p, ulen);
    }
    memset(&row, 0, sizeof row);
    row.id = id;
    row.idlen = idlen;
    row.kind.data = kind;
    row.kind.len = r.kind.n;
    row.before.exists = 1;
    row.before.status = r.status;
    row.before.change_seq = r.change_seq;
    lash__rec_index(&r, &row.before); /* terminal: listed nowhere else */
    row.tomb.data = s->vbuf.p;
    row.tomb.len = s->vbuf.len;
    row.tomb_change_seq = tomb.change_seq;
    if ((rc = s->b->m->remove(s->b, t->bt, &row, &nev)) < 0) goto out;
    t->wrote = 1;
    if (plen > 0 &&
        (rc = lash__child_forget(s, t, parent, plen, id, idlen)) < 0)
      goto out;
    if (ulen > 0 && (rc = lash__unique_forget(s, t, ukey, ulen, id, idlen)) < 0)
      goto out;
    if (t->counts[r.status] > 0) t->counts[r.status]--;
    rep.events += nev;
    rep.processes++;
    /* Rows suspended on it wake in this commit (issue 9). */
    if ((rc = lash__wake_waiters(t, id, idlen)) < 0) goto out;
  }
out:
  /* A prune that failed after its first write must not be committed in
   * part by a batch: poison it. */
  if (rc < 0 && writing && t->rc == 0) t->rc = rc;
  free(c.ents);
  lash__buf_free(&c.ids);
  rc = lash__wend(s, t, rc);
  if (rc >= 0 && out != NULL) *out = rep;
  return rc;
}
