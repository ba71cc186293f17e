/* load.c - reading one row inside the registry: a record through the
 * transaction's write-back cache (else the backend), a tombstone, the
 * events of a row. Below registry.c, lease.c and list.c, which all load
 * rows; it calls only txn.c's cache, record.c's codec and the backend. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "registry-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ loading */

int lash__rec_lookup(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                     size_t idlen, lash__rec *r) {
  lash__chg *c = t != NULL ? lash__chg_find(t, id, idlen) : NULL;
  lash_brow row;
  int rc, own = 0;
  if (c != NULL && c->rec_state != 0) {
    row.rec.data = c->rec.p;
    row.rec.len = c->rec.len;
    own = 1; /* encoded by op_save in this transaction, or kept clean */
  } else {
    if ((rc = s->b->m->load(s->b, bt, id, idlen, LASH_ROW_RECORD, &row)) < 0)
      return rc;
    if (row.rec.data == NULL) return 1;
  }
  if (r == NULL) {
    /* A write transaction asks whether the row exists before it works on
     * it (a claim): keep the record for that work (a damaged one is left
     * to the op that decodes it). */
    lash__rec tmp;
    if (!own && t != NULL &&
        lash__rec_decode(row.rec.data, row.rec.len, &tmp, &s->zone) == 0)
      lash__chg_keep(t, id, idlen, row.rec, &tmp);
    return 0;
  }
  if ((own ? lash__rec_decode_own(row.rec.data, row.rec.len, r, &s->zone)
           : lash__rec_decode(row.rec.data, row.rec.len, r, &s->zone)) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "record of process %s is damaged (checksum or "
                      "encoding): run lash check",
                      id);
  if (!own && t != NULL) lash__chg_keep(t, id, idlen, row.rec, r);
  return 0;
}

int lash__tomb_read(lash_store *s, const char *id, size_t idlen, lash_bytes v,
                    lash_tombstone *tb) {
  memset(tb, 0, sizeof *tb);
  if (lash__tomb_decode(v.data, v.len, tb, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "tombstone of process %s cannot be decoded (run check)",
                      id);
  memcpy(tb->id, id, idlen);
  tb->id[idlen] = '\0';
  return 0;
}

int lash__scan_events(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                      size_t idlen, uint64_t after, lash_bscan_fn fn,
                      void *ud) {
  lash_bscan q;
  int rc;
  /* A batch's new events reach the backend at flush. */
  if ((rc = lash__wb_flush_events(t, id, idlen)) < 0) return rc;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_EVENTS;
  q.id = id;
  q.idlen = idlen;
  q.after_seq = after;
  return s->b->m->scan(s->b, bt, &q, fn, ud);
}

/* The tombstone of an absent id: 0 (in *tb), 1 none, or an error. */
int lash__tomb_lookup(lash_store *s, lash_btxn *bt, const char *id,
                      size_t idlen, lash_tombstone *tb) {
  lash_brow row;
  int rc = s->b->m->load(s->b, bt, id, idlen, LASH_ROW_TOMB, &row);
  if (rc < 0) return rc;
  if (row.tomb.data == NULL) return 1;
  return lash__tomb_read(s, id, idlen, row.tomb, tb);
}

int lash__rec_load(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                   size_t idlen, lash__rec *r, lash_tombstone *tomb) {
  lash_tombstone tb;
  int rc = lash__rec_lookup(s, t, bt, id, idlen, r);
  if (rc <= 0) return rc;
  if ((rc = lash__tomb_lookup(s, bt, id, idlen, &tb)) < 0) return rc;
  if (rc == 1) return lash__fail(s, LASH_ENOENT, "unknown process %s", id);
  if (tomb != NULL) *tomb = tb;
  return lash__fail(s, LASH_EPRUNED, "process %s was pruned at %lld", id,
                    (long long)tb.pruned_at);
}
