/* copy.c - lash_copy: one store copied into another, empty one, of any
 * backend (lash migrate: an LMDB directory to PostgreSQL and back).
 *
 * The copy walks the source's change index in change order, so every row
 * and tombstone reaches the target with the change_seq it has (a backend
 * may append change entries in order only), each row with its record, its
 * events (seqs and replay keys as stored), its lease row released (owner
 * and token cleared, the fence kept: the next claim on the target fences
 * from it) and, through lash__rec_index, its listing in the live, timer
 * and waiter indexes. The meta counters are those of the rows written;
 * change_seq ends at the source's. Rows go in batches of COPY_BATCH per
 * write transaction of the target; a batch the target could not hold
 * (LASH_EFULL) is written again after the backend grew. The source is
 * read in one read transaction: a consistent snapshot on a store nobody
 * writes meanwhile.
 */
#include "registry-int.h"

#include <stdlib.h>
#include <string.h>

#define COPY_BATCH 256

typedef struct copier {
  lash_store *src, *dst;
  lash_btxn *rt;               /* the read of src */
  lash_btxn *wt;               /* the open write of dst */
  lash_bmeta m;                /* the target's bookkeeping as written */
  uint64_t from;               /* the change_seq the batch starts after */
  uint64_t upto;               /* the last change_seq written in the batch */
  size_t nbatch;               /* items taken in this batch */
  lash_copy_report rep, batch; /* committed; this batch's additions */
  lash__evlist evs;            /* the events of the row being copied */
  lash__buf lease;
  int rc_src; /* the failure was the source's (its message is in src) */
  /* the side table: the namespace and the last key copied */
  int ns;
  lash__buf kvkey;
  int kvmore; /* the batch stopped with entries left */
} copier;

static int src_fail(copier *c, int rc) {
  c->rc_src = 1;
  return rc;
}

int lash__evlist_add(lash__evlist *l, const lash_bitem *it,
                     const lash__ev *ev) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    lash_bevent *n = realloc(l->ev, cap * sizeof *n);
    size_t *o, *k;
    if (n != NULL) l->ev = n;
    o = realloc(l->off, cap * sizeof *o);
    if (o != NULL) l->off = o;
    k = realloc(l->koff, cap * sizeof *k);
    if (k != NULL) l->koff = k;
    if (n == NULL || o == NULL || k == NULL) return LASH_ENOMEM;
    l->cap = cap;
  }
  if (lash__buf_reserve(&l->buf, it->ev.len) < 0) return LASH_ENOMEM;
  l->off[l->n] = l->buf.len;
  memcpy(l->buf.p + l->buf.len, it->ev.data, it->ev.len);
  l->buf.len += it->ev.len;
  memset(&l->ev[l->n], 0, sizeof l->ev[l->n]);
  l->ev[l->n].seq = it->seq;
  l->ev[l->n].data.len = it->ev.len;
  l->ev[l->n].key.len = ev->key.p != NULL ? ev->key.n : 0;
  l->koff[l->n] =
      ev->key.p != NULL ? (size_t)(ev->key.p - (const char *)it->ev.data) : 0;
  l->n++;
  return 0;
}

void lash__evlist_fix(lash__evlist *l) {
  size_t i;
  for (i = 0; i < l->n; i++) {
    l->ev[i].data.data = l->buf.p + l->off[i];
    l->ev[i].key.data =
        l->ev[i].key.len > 0 ? l->buf.p + l->off[i] + l->koff[i] : NULL;
  }
}

void lash__evlist_free(lash__evlist *l) {
  lash__buf_free(&l->buf);
  free(l->ev);
  free(l->off);
  free(l->koff);
  memset(l, 0, sizeof *l);
}

static int copy_event(void *ud, const lash_bitem *it) {
  copier *c = ud;
  lash__ev ev;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &c->src->zone) < 0)
    return src_fail(c, lash__fail(c->src, LASH_ECORRUPT,
                                  "an event (seq %llu) cannot be decoded: "
                                  "run lash check on the source",
                                  (unsigned long long)it->seq));
  return lash__evlist_add(&c->evs, it, &ev);
}

/* One row: its events, its lease released, its record and listing. */
static int copy_row(copier *c, const char *id, size_t idlen, lash_bytes rec) {
  lash_store *s = c->src;
  lash__rec r;
  lash_bscan q;
  lash_bsave row;
  lash_brow br;
  int rc;

  c->evs.n = 0;
  c->evs.buf.len = 0;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_EVENTS;
  q.id = id;
  q.idlen = idlen;
  if ((rc = s->b->m->scan(s->b, c->rt, &q, copy_event, c)) < 0)
    return c->rc_src || rc == LASH_ENOMEM ? rc : src_fail(c, rc);
  lash__evlist_fix(&c->evs);
  memset(&row, 0, sizeof row);
  if ((rc = s->b->m->load(s->b, c->rt, id, idlen, LASH_ROW_LEASE, &br)) < 0)
    return src_fail(c, rc);
  if (br.lease.data != NULL) {
    lash_lease ls;
    if (lash__lease_decode(br.lease.data, br.lease.len, &ls, &s->zone) < 0)
      return src_fail(c, lash__fail(s, LASH_ECORRUPT,
                                    "the lease of process %.*s cannot be "
                                    "decoded: run lash check on the source",
                                    (int)idlen, id));
    if (ls.token != 0) c->batch.leases_released++;
    lash__lease_released(&ls);
    memcpy(ls.process_id, id, idlen);
    ls.process_id[idlen] = '\0';
    if (lash__lease_encode(&ls, &c->lease) < 0) return LASH_ENOMEM;
    row.lease.data = c->lease.p;
    row.lease.len = c->lease.len;
  }
  /* The record last: decoding events and the lease reused the zone. */
  if (lash__rec_decode(rec.data, rec.len, &r, &s->zone) < 0)
    return src_fail(c, lash__fail(s, LASH_ECORRUPT,
                                  "the record of process %.*s cannot be "
                                  "decoded: run lash check on the source",
                                  (int)idlen, id));
  if (r.status < 1 || r.status > LASH_STATUS_COUNT)
    return src_fail(c, lash__fail(s, LASH_ECORRUPT,
                                  "the record of process %.*s has status %d",
                                  (int)idlen, id, r.status));
  row.id = id;
  row.idlen = idlen;
  row.kind.data = r.kind.p;
  row.kind.len = r.kind.n;
  row.rec = rec;
  row.after.exists = 1;
  row.after.status = r.status;
  row.after.change_seq = r.change_seq;
  lash__rec_index(&r, &row.after); /* listed, timers, waiters */
  row.events = c->evs.ev;
  row.nevents = c->evs.n;
  if ((rc = c->dst->b->m->save(c->dst->b, c->wt, &row)) < 0) return rc;
  c->batch.rows++;
  c->batch.counts[r.status]++;
  c->batch.events += c->evs.n;
  if (r.suspended) c->batch.suspended++;
  return 0;
}

/* One tombstone, at its change_seq: a remove of a row the target never
 * had. */
static int copy_tomb(copier *c, const char *id, size_t idlen, lash_bytes tomb,
                     uint64_t cs) {
  lash_bremove rm;
  uint64_t gone = 0;
  memset(&rm, 0, sizeof rm);
  rm.id = id;
  rm.idlen = idlen;
  rm.tomb = tomb;
  rm.tomb_change_seq = cs;
  c->batch.tombstones++;
  return c->dst->b->m->remove(c->dst->b, c->wt, &rm, &gone);
}

static int copy_change(void *ud, const lash_bitem *it) {
  copier *c = ud;
  int rc = 0;
  if (c->nbatch >= COPY_BATCH) return 1; /* the batch is full */
  if (it->idlen == 0 || it->idlen > LASH_ID_MAX)
    return src_fail(c, lash__fail(c->src, LASH_ECORRUPT,
                                  "a change entry (seq %llu) names an id of "
                                  "%zu bytes: run lash check on the source",
                                  (unsigned long long)it->seq, it->idlen));
  if (it->rec.data != NULL)
    rc = copy_row(c, it->id, it->idlen, it->rec);
  else if (it->tomb.data != NULL)
    rc = copy_tomb(c, it->id, it->idlen, it->tomb, it->seq);
  /* else a stale entry: nothing is stored under it now */
  if (rc < 0) return rc;
  c->upto = it->seq;
  c->nbatch++;
  return 0;
}

static void add_report(lash_copy_report *to, const lash_copy_report *a) {
  int i;
  to->side += a->side;
  to->rows += a->rows;
  to->events += a->events;
  to->tombstones += a->tombstones;
  to->leases_released += a->leases_released;
  to->suspended += a->suspended;
  for (i = 0; i <= LASH_STATUS_COUNT; i++)
    to->counts[i] += a->counts[i];
}

/* Writes one batch (the changes after c->from) and commits it; 1 when the
 * source had nothing more. */
static int copy_batch(copier *c, uint64_t final_cs) {
  lash_backend *b = c->dst->b;
  lash_bscan q;
  lash_bmeta m;
  int rc, tries, i;
  for (tries = 0;; tries++) {
    memset(&c->batch, 0, sizeof c->batch);
    c->nbatch = 0;
    c->upto = c->from;
    if (c->wt == NULL && (rc = b->m->begin(b, LASH_BTXN_WRITE, &c->wt)) < 0)
      return rc;
    memset(&q, 0, sizeof q);
    q.what = LASH_SCAN_CHANGES;
    q.after_seq = c->from;
    rc = c->src->b->m->scan(c->src->b, c->rt, &q, copy_change, c);
    if (rc < 0 && !c->rc_src && rc != LASH_EFULL && rc != LASH_ENOMEM &&
        c->nbatch == 0)
      c->rc_src = 1; /* the scan itself failed */
    if (rc == 0) {
      m = c->m;
      m.suspended += c->batch.suspended;
      for (i = 0; i <= LASH_STATUS_COUNT; i++)
        m.counts[i] += c->batch.counts[i];
      m.change_seq = c->nbatch < COPY_BATCH ? final_cs : c->upto;
      if (m.change_seq < c->upto) m.change_seq = c->upto;
      if ((rc = b->m->meta_put(b, c->wt, &m)) == 0) {
        rc = b->m->commit(b, c->wt);
        c->wt = NULL;
      }
    }
    if (rc == 0) break;
    if (rc != LASH_EFULL || c->rc_src || b->m->grow == NULL || tries >= 8) {
      if (c->wt != NULL) b->m->abort(b, c->wt);
      c->wt = NULL;
      if (rc == LASH_EIO) b->panicked = 1;
      return rc;
    }
    /* grow ends the write (if still open) and begins a fresh one that
     * sees what the last commit left: the batch is written again. */
    if ((rc = b->m->grow(b, c->wt, &c->wt)) < 0) {
      c->wt = NULL;
      return rc;
    }
  }
  c->m = m;
  c->from = c->upto;
  add_report(&c->rep, &c->batch);
  return c->nbatch < COPY_BATCH ? 1 : 0;
}

/* ------------------------------------------------------ the side table */

/* Namespaces copied: all but the live workers (of the source's hosts). */
static int kv_copied(int ns) {
  return ns != LASH_KV_WORKER;
}

static int copy_kv(void *ud, const lash_bitem *it) {
  copier *c = ud;
  lash_bytes val;
  int rc;
  if (c->nbatch >= COPY_BATCH) {
    c->kvmore = 1;
    return 1;
  }
  val = it->rec;
  if (val.data == NULL) val.data = ""; /* present, empty */
  rc = c->dst->b->m->kv_put(c->dst->b, c->wt, c->ns, it->id, it->idlen, val);
  if (rc < 0) return rc;
  c->kvkey.len = 0;
  if (lash__buf_reserve(&c->kvkey, it->idlen) < 0) return LASH_ENOMEM;
  memcpy(c->kvkey.p, it->id, it->idlen);
  c->kvkey.len = it->idlen;
  c->nbatch++;
  c->batch.side++;
  return 0;
}

/* Copies namespace c->ns after c->kvkey, COPY_BATCH entries per write. */
static int copy_ns(copier *c) {
  lash_backend *b = c->dst->b;
  lash_bscan q;
  int rc;
  c->kvkey.len = 0;
  do {
    memset(&c->batch, 0, sizeof c->batch);
    c->nbatch = 0;
    c->kvmore = 0;
    if ((rc = b->m->begin(b, LASH_BTXN_WRITE, &c->wt)) < 0) return rc;
    memset(&q, 0, sizeof q);
    q.what = LASH_SCAN_KV;
    q.ns = c->ns;
    q.id = "";
    q.after = c->kvkey.len > 0 ? c->kvkey.p : NULL;
    q.afterlen = c->kvkey.len;
    rc = c->src->b->m->scan(c->src->b, c->rt, &q, copy_kv, c);
    if (rc < 0 && !c->rc_src && rc != LASH_ENOMEM && c->nbatch == 0)
      c->rc_src = 1;
    if (rc == 0 && c->nbatch > 0) {
      rc = b->m->commit(b, c->wt);
      c->wt = NULL;
    }
    if (rc < 0) return rc;
    if (c->wt != NULL) {
      b->m->abort(b, c->wt);
      c->wt = NULL;
    }
    add_report(&c->rep, &c->batch);
  } while (c->kvmore);
  return 0;
}

static int kv_seen(void *ud, const lash_bitem *it) {
  (void)it;
  *(int *)ud = 1;
  return 1;
}

/* 1 when the target's side table holds an entry of a copied namespace. */
static int kv_any(lash_store *s, lash_btxn *t) {
  lash_bscan q;
  int ns, rc, seen = 0;
  for (ns = 1; ns <= 255 && !seen; ns++) {
    if (!kv_copied(ns)) continue;
    memset(&q, 0, sizeof q);
    q.what = LASH_SCAN_KV;
    q.flags = LASH_SCAN_LAST | LASH_SCAN_KEYS;
    q.ns = ns;
    q.id = "";
    if ((rc = s->b->m->scan(s->b, t, &q, kv_seen, &seen)) < 0) return rc;
  }
  return seen;
}

/* 0 when the target holds nothing (no row, tombstone or change); else an
 * error naming what it holds. */
static int target_empty(copier *c) {
  lash_backend *b = c->dst->b;
  lash_bstats st;
  lash_bmeta m;
  uint64_t rows = 0;
  int rc, i, kv = 0;
  if ((rc = b->m->begin(b, LASH_BTXN_READ, &c->wt)) < 0) return rc;
  rc = b->m->meta_get(b, c->wt, &m);
  if (rc == 0) rc = b->m->stats(b, c->wt, &st);
  if (rc == 0 && (kv = kv_any(c->dst, c->wt)) < 0) rc = kv;
  b->m->abort(b, c->wt);
  c->wt = NULL;
  if (rc < 0) return rc;
  for (i = 0; i <= LASH_STATUS_COUNT; i++)
    rows += m.counts[i];
  if (rows == 0 && st.tombstones == 0 && m.change_seq == 0 && !kv) return 0;
  return lash__fail(
      c->dst, LASH_EINVAL,
      "the target %s is not empty (%llu processes, %llu "
      "tombstones, change_seq %llu%s): migrate copies into an "
      "empty store only; give a new directory or schema",
      c->dst->path, (unsigned long long)rows, (unsigned long long)st.tombstones,
      (unsigned long long)m.change_seq, kv ? ", side-table entries" : "");
}

int lash_copy(lash_store *from, lash_store *to, lash_copy_report *out) {
  copier c;
  lash_bmeta sm;
  lash_bstats sst;
  uint64_t want = 0;
  int rc, i;

  if (out != NULL) memset(out, 0, sizeof *out);
  if (from == NULL || to == NULL) return LASH_EINVAL;
  lash__clear(to);
  if (from == to || strcmp(from->path, to->path) == 0)
    return lash__fail(to, LASH_EINVAL,
                      "cannot copy the store %s into itself: give another "
                      "target",
                      to->path);
  if (to->opts.read_only)
    return lash__fail(to, LASH_EINVAL,
                      "the target %s is open read-only: open it for writing",
                      to->path);
  memset(&c, 0, sizeof c);
  c.src = from;
  c.dst = to;
  lash__lock(to);
  if ((rc = target_empty(&c)) < 0) goto out_unlocked_src;
  if ((rc = lash__rbegin(from, NULL, &c.rt)) < 0) {
    c.rc_src = 1;
    goto out_unlocked_src;
  }
  if ((rc = from->b->m->meta_get(from->b, c.rt, &sm)) < 0 ||
      (rc = from->b->m->stats(from->b, c.rt, &sst)) < 0) {
    c.rc_src = 1;
    goto out;
  }
  do {
    rc = copy_batch(&c, sm.change_seq);
  } while (rc == 0);
  if (rc > 0) rc = 0;
  for (c.ns = 1; rc == 0 && c.ns <= 255; c.ns++)
    if (kv_copied(c.ns)) rc = copy_ns(&c);
  if (rc < 0) goto out;
  /* Every row and tombstone has one change entry: the counts must match
   * what the source's bookkeeping says it holds. */
  for (i = 0; i <= LASH_STATUS_COUNT; i++)
    want += sm.counts[i];
  if (c.rep.rows != want || c.rep.tombstones != sst.tombstones)
    rc = lash__fail(to, LASH_ECORRUPT,
                    "the source %s counts %llu processes and %llu tombstones "
                    "but its change index led to %llu and %llu: run lash "
                    "check on it; the target %s holds what was copied",
                    from->path, (unsigned long long)want,
                    (unsigned long long)sst.tombstones,
                    (unsigned long long)c.rep.rows,
                    (unsigned long long)c.rep.tombstones, to->path);
out:
  lash__rend(from, NULL, c.rt);
out_unlocked_src:
  if (c.wt != NULL) to->b->m->abort(to->b, c.wt);
  if (rc < 0 && c.rc_src) {
    char msg[LASH__ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", lash_errmsg(from));
    lash__fail(to, rc, "reading the source %s: %s", from->path,
               msg[0] ? msg : lash_strerror(rc));
  } else if (rc < 0 && c.rep.rows + c.rep.tombstones > 0 &&
             strstr(lash_errmsg(to), "holds what was copied") == NULL) {
    char msg[LASH__ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", lash_errmsg(to));
    lash__fail(to, rc,
               "%s (the target %s holds a partial copy: remove it "
               "before trying again)",
               msg[0] ? msg : lash_strerror(rc), to->path);
  }
  c.rep.change_seq = c.m.change_seq;
  if (out != NULL) *out = c.rep;
  lash__unlock(to);
  lash__evlist_free(&c.evs);
  lash__buf_free(&c.lease);
  lash__buf_free(&c.kvkey);
  return rc;
}
