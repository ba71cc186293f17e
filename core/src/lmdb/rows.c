/* rows.c - the LMDB backend's rows: load a row, save one row's changes
 * with its index transition, prune a row into a tombstone, and the meta
 * entries (change_seq, per-status counters). */
#include "lmdb-int.h"

#include <stdio.h>
#include <string.h>

/* -------------------------------------------------------- put/get/del */

int lmdb__get(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn,
              MDB_val *v) {
  MDB_val key;
  int mrc;
  char what[64];
  key.mv_data = (void *)k;
  key.mv_size = kn;
  mrc = mdb_get(mt, s->dbi[db], &key, v);
  if (mrc == 0) return 0;
  if (mrc == MDB_NOTFOUND) return 1;
  snprintf(what, sizeof what, "reading %s", lmdb__db_names[db]);
  return lmdb__fail(s, mrc, what);
}

int lmdb__put(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn,
              const void *v, size_t vn, unsigned flags) {
  MDB_val key, val;
  int mrc;
  char what[64];
  key.mv_data = (void *)k;
  key.mv_size = kn;
  val.mv_data = (void *)v;
  val.mv_size = vn;
  mrc = mdb_put(mt, s->dbi[db], &key, &val, flags);
  if (mrc == 0) return 0;
  if (mrc == MDB_KEYEXIST)
    return lash_backend_fail(&s->base, LASH_ECORRUPT,
                             "store %s: the %s index is out of order (run "
                             "check)",
                             s->path, lmdb__db_names[db]);
  snprintf(what, sizeof what, "writing to %s", lmdb__db_names[db]);
  return lmdb__fail(s, mrc, what);
}

int lmdb__del(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn) {
  MDB_val key;
  int mrc;
  char what[64];
  key.mv_data = (void *)k;
  key.mv_size = kn;
  mrc = mdb_del(mt, s->dbi[db], &key, NULL);
  if (mrc == 0 || mrc == MDB_NOTFOUND) return 0;
  snprintf(what, sizeof what, "deleting from %s", lmdb__db_names[db]);
  return lmdb__fail(s, mrc, what);
}

static lash_bytes bytes_of(const MDB_val *v) {
  lash_bytes b;
  b.data = v->mv_data != NULL ? v->mv_data : (const void *)"";
  b.len = v->mv_size;
  return b;
}

/* ---------------------------------------------------------------- load */

int lmdb__load(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
               unsigned what, lash_brow *out) {
  lmdb__store *s = LMDB__S(b);
  MDB_val v;
  int rc;
  memset(out, 0, sizeof *out);
  if (what & LASH_ROW_RECORD) {
    if ((rc = lmdb__get(s, t->mt, LMDB__DB_RECORDS, id, idlen, &v)) < 0)
      return rc;
    if (rc == 0) out->rec = bytes_of(&v);
  }
  if (what & LASH_ROW_LEASE) {
    if ((rc = lmdb__get(s, t->mt, LMDB__DB_LEASES, id, idlen, &v)) < 0)
      return rc;
    if (rc == 0) out->lease = bytes_of(&v);
  }
  if (what & LASH_ROW_TOMB) {
    /* Most stores never prune: one stat per transaction spares a lookup
     * per registration. */
    if (!t->tombs_known) {
      MDB_stat st;
      int mrc = mdb_stat(t->mt, s->dbi[LMDB__DB_TOMBS], &st);
      if (mrc != 0) return lmdb__fail(s, mrc, "reading tombstones");
      t->tombs_any = st.ms_entries > 0;
      t->tombs_known = 1;
    }
    if (t->tombs_any) {
      if ((rc = lmdb__get(s, t->mt, LMDB__DB_TOMBS, id, idlen, &v)) < 0)
        return rc;
      if (rc == 0) out->tomb = bytes_of(&v);
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- save */

/* replay keys (A): the key index entry of one event. */
static int put_key(lmdb__store *s, MDB_txn *mt, const lash_bsave *row,
                   const lash_bevent *ev) {
  unsigned char key[LMDB__KEYKEY_MAX], seq[8];
  size_t kn;
  if (ev->key.len == 0 || ev->key.len > LASH_NAME_MAX)
    return lash_backend_fail(&s->base, LASH_EINVAL,
                             "store %s: replay key of %zu bytes for process "
                             "%.*s",
                             s->path, ev->key.len, (int)row->idlen, row->id);
  kn = lmdb__keykey(key, row->id, row->idlen, ev->key.data, ev->key.len);
  lmdb__be64(seq, ev->seq);
  return lmdb__put(s, mt, LMDB__DB_KEYS, key, kn, seq, 8, MDB_NOOVERWRITE);
}

int lmdb__key_get(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
                  const char *key, size_t keylen, uint64_t *seq,
                  lash_bytes *ev) {
  lmdb__store *s = LMDB__S(b);
  unsigned char k[LMDB__KEYKEY_MAX];
  MDB_val v;
  int rc;
  *seq = 0;
  if (ev != NULL) ev->data = NULL, ev->len = 0;
  if (s->no_keys || keylen == 0 || keylen > LASH_NAME_MAX) return LASH_ENOENT;
  rc = lmdb__get(s, t->mt, LMDB__DB_KEYS, k,
                 lmdb__keykey(k, id, idlen, key, keylen), &v);
  if (rc < 0) return rc;
  if (rc == 1) return LASH_ENOENT;
  if (v.mv_size != 8)
    return lash_backend_fail(b, LASH_ECORRUPT,
                             "store %s: a key index entry of process %.*s is "
                             "malformed (run check)",
                             s->path, (int)idlen, id);
  *seq = lmdb__get_be64(v.mv_data);
  if (ev == NULL) return 0;
  rc = lmdb__get(s, t->mt, LMDB__DB_EVENTS, k, lmdb__evkey(k, id, idlen, *seq),
                 &v);
  if (rc < 0) return rc;
  if (rc == 1)
    return lash_backend_fail(b, LASH_ECORRUPT,
                             "store %s: the key index of process %.*s names "
                             "event %llu, which is missing (run check)",
                             s->path, (int)idlen, id, (unsigned long long)*seq);
  *ev = bytes_of(&v);
  return 0;
}

static int is_live(const lash_bindex *x) {
  return x->exists && x->listed;
}

/* ---- suspension and timers (issue 9): the timer and waiter entries ---- */

static int awaits_eq(lash_bytes a, lash_bytes b) {
  if (a.data == NULL || b.data == NULL) return a.data == NULL && b.data == NULL;
  return a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

/* Moves the row's timer and waiter entries from @p was to @p now (NULL:
 * the row goes). */
static int susp_move(lmdb__store *s, MDB_txn *mt, const char *id, size_t n,
                     const lash_bindex *was, const lash_bindex *now) {
  unsigned char key[LMDB__WAITKEY_MAX + 1];
  int64_t old_at = was->exists ? was->wake_at : 0;
  int64_t new_at = now != NULL ? now->wake_at : 0;
  lash_bytes none = {NULL, 0};
  lash_bytes old_aw = was->exists ? was->awaits : none;
  lash_bytes new_aw = now != NULL ? now->awaits : none;
  size_t kn;
  int rc;
  if (old_at != new_at) {
    if (old_at > 0) {
      kn = lmdb__timerkey(key, old_at, id, n);
      if ((rc = lmdb__del(s, mt, LMDB__DB_TIMERS, key, kn)) < 0) return rc;
    }
    if (new_at > 0) {
      kn = lmdb__timerkey(key, new_at, id, n);
      if ((rc = lmdb__put(s, mt, LMDB__DB_TIMERS, key, kn, "", 0, 0)) < 0)
        return rc;
    }
  }
  if (!awaits_eq(old_aw, new_aw)) {
    if (old_aw.data != NULL && old_aw.len <= LASH_ID_MAX) {
      kn = lmdb__livekey(key, old_aw, id, n);
      if ((rc = lmdb__del(s, mt, LMDB__DB_WAITERS, key, kn)) < 0) return rc;
    }
    if (new_aw.data != NULL && new_aw.len <= LASH_ID_MAX) {
      kn = lmdb__livekey(key, new_aw, id, n);
      if ((rc = lmdb__put(s, mt, LMDB__DB_WAITERS, key, kn, "", 0, 0)) < 0)
        return rc;
    }
  }
  return 0;
}

int lmdb__save(lash_backend *b, lash_btxn *t, const lash_bsave *row) {
  lmdb__store *s = LMDB__S(b);
  MDB_txn *mt = t->mt;
  unsigned char key[LMDB__LIVEKEY_MAX + 1];
  const char *id = row->id;
  size_t i, kn, n = row->idlen;
  int rc;

  for (i = 0; i < row->nevents; i++) {
    kn = lmdb__evkey(key, id, n, row->events[i].seq);
    if ((rc = lmdb__put(s, mt, LMDB__DB_EVENTS, key, kn,
                        row->events[i].data.data, row->events[i].data.len, 0)) <
        0)
      return rc;
    if (row->events[i].key.data != NULL &&
        (rc = put_key(s, mt, row, &row->events[i])) < 0)
      return rc;
  }
  if (row->rec.data != NULL) {
    const lash_bindex *was = &row->before, *now = &row->after;
    if ((rc = lmdb__put(s, mt, LMDB__DB_RECORDS, id, n, row->rec.data,
                        row->rec.len, 0)) < 0)
      return rc;
    if (!was->exists || was->status != now->status) {
      if (was->exists) {
        kn = lmdb__statkey(key, was->status, id, n);
        if ((rc = lmdb__del(s, mt, LMDB__DB_BYSTATUS, key, kn)) < 0) return rc;
      }
      kn = lmdb__statkey(key, now->status, id, n);
      if ((rc = lmdb__put(s, mt, LMDB__DB_BYSTATUS, key, kn, "", 0, 0)) < 0)
        return rc;
    }
    if (is_live(was) != is_live(now)) {
      kn = lmdb__liveposkey(key, row->kind, now->priority, now->order, id, n);
      if (is_live(now))
        rc = lmdb__put(s, mt, LMDB__DB_LIVE, key, kn, "", 0, 0);
      else
        rc = lmdb__del(s, mt, LMDB__DB_LIVE, key, kn);
      if (rc < 0) return rc;
    }
    if ((rc = susp_move(s, mt, id, n, was, now)) < 0) return rc;
    if (was->exists && was->change_seq != now->change_seq) {
      lmdb__be64(key, was->change_seq);
      if ((rc = lmdb__del(s, mt, LMDB__DB_CHANGES, key, 8)) < 0) return rc;
    }
    lmdb__be64(key, now->change_seq);
    if ((rc = lmdb__put(s, mt, LMDB__DB_CHANGES, key, 8, id, n, 0)) < 0)
      return rc;
  }
  if (row->lease.data != NULL &&
      (rc = lmdb__put(s, mt, LMDB__DB_LEASES, id, n, row->lease.data,
                      row->lease.len, 0)) < 0)
    return rc;
  if (row->drop_tomb) {
    /* The new row shadows the tombstone; the floor lives on in the row. */
    if ((rc = lmdb__del(s, mt, LMDB__DB_TOMBS, id, n)) < 0) return rc;
    lmdb__be64(key, row->tomb_change_seq);
    if ((rc = lmdb__del(s, mt, LMDB__DB_CHANGES, key, 8)) < 0) return rc;
  }
  return 0;
}

/* --------------------------------------------------------------- prune */

/* Deletes every entry "id 0x00 ..." of @p db (events: exactly 8 bytes
 * after the prefix; replay keys (A): any); counts them. */
static int delete_prefixed(lmdb__store *s, MDB_txn *mt, int db, const char *id,
                           size_t idlen, uint64_t *count) {
  MDB_cursor *c = NULL;
  MDB_val k, v;
  unsigned char key[LMDB__EVKEY_MAX];
  int mrc, rc = 0;
  if ((mrc = mdb_cursor_open(mt, s->dbi[db], &c)) != 0)
    return lmdb__fail(s, mrc, "pruning events");
  lmdb__evkey(key, id, idlen, 0);
  for (;;) {
    k.mv_data = key;
    k.mv_size = db == LMDB__DB_EVENTS ? idlen + 9 : idlen + 1;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND) break;
    if (mrc != 0) {
      rc = lmdb__fail(s, mrc, "pruning events");
      break;
    }
    if (k.mv_size < idlen + 2 || memcmp(k.mv_data, key, idlen + 1) != 0 ||
        (db == LMDB__DB_EVENTS && k.mv_size != idlen + 9))
      break;
    if ((mrc = mdb_cursor_del(c, 0)) != 0) {
      rc = lmdb__fail(s, mrc, "pruning events");
      break;
    }
    (*count)++;
  }
  mdb_cursor_close(c);
  return rc;
}

int lmdb__remove(lash_backend *b, lash_btxn *t, const lash_bremove *row,
                 uint64_t *events) {
  lmdb__store *s = LMDB__S(b);
  MDB_txn *mt = t->mt;
  unsigned char key[LMDB__LIVEKEY_MAX + 1];
  const char *id = row->id;
  size_t kn, n = row->idlen;
  uint64_t keys = 0;
  int rc;

  *events = 0;
  if ((rc = delete_prefixed(s, mt, LMDB__DB_EVENTS, id, n, events)) < 0 ||
      (rc = delete_prefixed(s, mt, LMDB__DB_KEYS, id, n, &keys)) < 0 ||
      (rc = lmdb__del(s, mt, LMDB__DB_LEASES, id, n)) < 0 ||
      (rc = lmdb__del(s, mt, LMDB__DB_RECORDS, id, n)) < 0)
    return rc;
  kn = lmdb__statkey(key, row->before.status, id, n);
  if ((rc = lmdb__del(s, mt, LMDB__DB_BYSTATUS, key, kn)) < 0) return rc;
  if (is_live(&row->before)) {
    kn = lmdb__liveposkey(key, row->kind, row->before.priority,
                          row->before.order, id, n);
    if ((rc = lmdb__del(s, mt, LMDB__DB_LIVE, key, kn)) < 0) return rc;
  }
  if ((rc = susp_move(s, mt, id, n, &row->before, NULL)) < 0) return rc;
  lmdb__be64(key, row->before.change_seq);
  if ((rc = lmdb__del(s, mt, LMDB__DB_CHANGES, key, 8)) < 0 ||
      (rc = lmdb__put(s, mt, LMDB__DB_TOMBS, id, n, row->tomb.data,
                      row->tomb.len, 0)) < 0)
    return rc;
  t->tombs_known = 1;
  t->tombs_any = 1;
  lmdb__be64(key, row->tomb_change_seq);
  return lmdb__put(s, mt, LMDB__DB_CHANGES, key, 8, id, n, MDB_APPEND);
}

/* ---------------------------------------------------------------- meta */

int lmdb__meta_get(lash_backend *b, lash_btxn *t, lash_bmeta *out) {
  lmdb__store *s = LMDB__S(b);
  MDB_val v;
  int rc, i;
  memset(out, 0, sizeof *out);
  rc = lmdb__get(s, t->mt, LMDB__DB_META, LMDB__META_CHANGE_SEQ,
                 strlen(LMDB__META_CHANGE_SEQ), &v);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (v.mv_size != 8)
      return lash_backend_fail(b, LASH_ECORRUPT,
                               "store %s: meta change_seq is corrupt", s->path);
    out->change_seq = lmdb__get_be64(v.mv_data);
  }
  rc = lmdb__get(s, t->mt, LMDB__DB_META, LMDB__META_COUNTS,
                 strlen(LMDB__META_COUNTS), &v);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (v.mv_size != 8 * LASH_STATUS_COUNT)
      return lash_backend_fail(b, LASH_ECORRUPT,
                               "store %s: meta counts are corrupt", s->path);
    for (i = 0; i < LASH_STATUS_COUNT; i++)
      out->counts[i + 1] =
          lmdb__get_be64((const unsigned char *)v.mv_data + 8 * i);
  }
  rc = lmdb__get(s, t->mt, LMDB__DB_META, LMDB__META_SUSPENDED,
                 strlen(LMDB__META_SUSPENDED), &v);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (v.mv_size != 8)
      return lash_backend_fail(b, LASH_ECORRUPT,
                               "store %s: meta suspended is corrupt", s->path);
    out->suspended = lmdb__get_be64(v.mv_data);
  }
  return 0;
}

int lmdb__meta_put(lash_backend *b, lash_btxn *t, const lash_bmeta *m) {
  lmdb__store *s = LMDB__S(b);
  unsigned char buf[8 * LASH_STATUS_COUNT];
  int rc, i;
  lmdb__be64(buf, m->change_seq);
  rc = lmdb__put(s, t->mt, LMDB__DB_META, LMDB__META_CHANGE_SEQ,
                 strlen(LMDB__META_CHANGE_SEQ), buf, 8, 0);
  if (rc < 0) return rc;
  for (i = 0; i < LASH_STATUS_COUNT; i++)
    lmdb__be64(buf + 8 * i, m->counts[i + 1]);
  rc = lmdb__put(s, t->mt, LMDB__DB_META, LMDB__META_COUNTS,
                 strlen(LMDB__META_COUNTS), buf, sizeof buf, 0);
  if (rc < 0) return rc;
  lmdb__be64(buf, m->suspended);
  return lmdb__put(s, t->mt, LMDB__DB_META, LMDB__META_SUSPENDED,
                   strlen(LMDB__META_SUSPENDED), buf, 8, 0);
}
