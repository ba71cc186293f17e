/* registry.c - process records and their event logs: register, read,
 * append, requests, fenced transitions, completion, listings, prune.
 *
 * Every write validates first (reads only), then writes: a check failure
 * inside a batch writes nothing and leaves the batch usable. The record is
 * always the fold of its base and its events: writes build lifecycle
 * payloads, fold them through lash__fold (the same code lash_check runs),
 * and save the result with the events in one go (op_save).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "lash-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- validation */

int lash__check_id(lash_store *s, const char *id) {
  size_t n;
  if (id == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "process id is missing: give 1 to %d bytes", LASH_ID_MAX);
  n = strnlen(id, LASH_ID_MAX + 1);
  if (n == 0)
    return lash__fail(s, LASH_EINVAL, "process id is empty: give 1 to %d bytes",
                      LASH_ID_MAX);
  if (n > LASH_ID_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "process id \"%.40s...\" is longer than %d bytes", id,
                      LASH_ID_MAX);
  return (int)n;
}

static int check_name_of(lash_store *s, const char *what, const char *name,
                         const char *id) {
  size_t n;
  const char *sep = id != NULL ? " of process " : "";
  if (id == NULL) id = "";
  if (name == NULL)
    return lash__fail(s, LASH_EINVAL, "%s%s%s is missing: give 1 to %d bytes",
                      what, sep, id, LASH_NAME_MAX);
  n = strnlen(name, LASH_NAME_MAX + 1);
  if (n == 0)
    return lash__fail(s, LASH_EINVAL, "%s%s%s is empty: give 1 to %d bytes",
                      what, sep, id, LASH_NAME_MAX);
  if (n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "%s \"%.40s...\"%s%s is longer than %d bytes", what, name,
                      sep, id, LASH_NAME_MAX);
  return (int)n;
}

int lash__check_name(lash_store *s, const char *what, const char *name) {
  return check_name_of(s, what, name, NULL);
}

int lash__check_payload(lash_store *s, const char *what, const char *id,
                        lash_bytes b) {
  if (b.len > 0 && b.data == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "%s of process %s has %zu bytes but no data pointer",
                      what, id, b.len);
  if (b.len > s->opts.max_payload)
    return lash__fail(s, LASH_ETOOBIG,
                      "payload of %zu bytes is over the %zu-byte limit "
                      "(max_payload): %s of process %s",
                      b.len, s->opts.max_payload, what, id);
  return 0;
}

int lash__check_lease_arg(lash_store *s, const lash_lease *ls) {
  size_t n;
  if (ls == NULL) return lash__fail(s, LASH_EINVAL, "no lease given");
  n = strnlen(ls->process_id, sizeof ls->process_id);
  if (n == 0 || n > LASH_ID_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease names no valid process id (1 to %d bytes)",
                      LASH_ID_MAX);
  n = strnlen(ls->owner, sizeof ls->owner);
  if (n == 0 || n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease on process %s names no valid owner",
                      ls->process_id);
  n = strnlen(ls->incarnation, sizeof ls->incarnation);
  if (n == 0 || n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease on process %s names no valid incarnation",
                      ls->process_id);
  return 0;
}

static int check_text(lash_store *s, const char *what, const char *text,
                      const char *id, size_t max, int nullable) {
  size_t n;
  if (text == NULL) {
    if (nullable) return 0;
    return lash__fail(s, LASH_EINVAL, "%s of process %s is missing", what, id);
  }
  n = strnlen(text, max + 1);
  if (n > max)
    return lash__fail(s, LASH_EINVAL,
                      "%s of process %s is longer than %zu bytes", what, id,
                      max);
  if (n == 0 && !nullable)
    return lash__fail(s, LASH_EINVAL, "%s of process %s is empty", what, id);
  return 0;
}

/* A user event type or "signal.<name>"; "process.*" is reserved. */
static int check_event_type(lash_store *s, const char *id, const char *type) {
  int n = check_name_of(s, "event type", type, id);
  const char *p;
  if (n < 0) return n;
  if (strncmp(type, "process.", 8) == 0)
    return lash__fail(s, LASH_EINVAL,
                      "event type %s on process %s is reserved: types "
                      "starting with \"process.\" are written by lash",
                      type, id);
  if (strncmp(type, "signal.", 7) == 0) {
    if (type[7] == '\0')
      return lash__fail(s, LASH_EINVAL,
                        "signal on process %s has no name: use "
                        "\"signal.<name>\" with [A-Za-z0-9_-]+",
                        id);
    for (p = type + 7; *p != '\0'; p++) {
      char c = *p;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '-'))
        return lash__fail(s, LASH_EINVAL,
                          "signal name \"%s\" on process %s is invalid: use "
                          "[A-Za-z0-9_-]+",
                          type + 7, id);
    }
  }
  return 0;
}

/* ------------------------------------------------------------ loading */

int lash__rec_lookup(lash_store *s, lash_txn *t, MDB_txn *mt, const char *id,
                     size_t idlen, lash__rec *r) {
  MDB_val v;
  lash__chg *c = t != NULL ? lash__chg_find(t, id, idlen) : NULL;
  int rc;
  if (c != NULL && c->rec_state != 0) {
    v.mv_data = c->rec.p;
    v.mv_size = c->rec.len;
    rc = 0;
  } else {
    rc = lash__get(s, mt, LASH__DB_RECORDS, id, idlen, &v);
  }
  if (rc != 0 || r == NULL) return rc;
  if (lash__rec_decode(v.mv_data, v.mv_size, r, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "record of process %s cannot be decoded (run check)", id);
  return 0;
}

int lash__rec_load(lash_store *s, lash_txn *t, MDB_txn *mt, const char *id,
                   size_t idlen, lash__rec *r, lash_tombstone *tomb) {
  MDB_val v;
  lash_tombstone tb;
  int rc = lash__rec_lookup(s, t, mt, id, idlen, r);
  if (rc <= 0) return rc;
  rc = lash__get(s, mt, LASH__DB_TOMBS, id, idlen, &v);
  if (rc < 0) return rc;
  if (rc == 1) return lash__fail(s, LASH_ENOENT, "unknown process %s", id);
  memset(&tb, 0, sizeof tb);
  if (lash__tomb_decode(v.mv_data, v.mv_size, &tb, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "tombstone of process %s cannot be decoded (run check)",
                      id);
  memcpy(tb.id, id, idlen);
  tb.id[idlen] = '\0';
  if (tomb != NULL) *tomb = tb;
  return lash__fail(s, LASH_EPRUNED, "process %s was pruned at %lld", id,
                    (long long)tb.pruned_at);
}

/* -------------------------------------------------------- the write op */

typedef struct op {
  lash_store *s;
  lash_txn *t;
  const char *id; /* the caller's string: stable across writes */
  size_t idlen;
  lash__rec r;
  int existed;
  int old_status;
  uint64_t old_change_seq;
  lash__ev ev[LASH__OP_EVENTS];
  size_t nev;
} op;

static void op_init(op *o, lash_txn *t, const char *id, size_t idlen) {
  memset(o, 0, sizeof *o);
  o->s = t->s;
  o->t = t;
  o->id = id;
  o->idlen = idlen;
}

static int op_load(op *o, lash_tombstone *tomb) {
  int rc = lash__rec_load(o->s, o->t, o->t->mt, o->id, o->idlen, &o->r, tomb);
  if (rc < 0) return rc;
  o->existed = 1;
  o->old_status = o->r.status;
  o->old_change_seq = o->r.change_seq;
  return 0;
}

static uint64_t next_seq(const lash__rec *r) {
  return (r->last_seq > r->floor ? r->last_seq : r->floor) + 1;
}

/* Adds one event (payload must outlive op_save) and folds it in. */
static int op_event(op *o, const char *type, size_t tlen, const void *payload,
                    size_t plen, int64_t at, uint64_t *seq) {
  lash__ev *ev = &o->ev[o->nev];
  ev->type = lash__sv_of(type, tlen);
  ev->payload = lash__sv_of(payload, plen);
  ev->seq = next_seq(&o->r);
  ev->at = at;
  if (lash__fold(&o->r, ev, &o->s->zone) < 0)
    return lash__fail(o->s, LASH_ECORRUPT,
                      "process %s: event %s could not be folded into its "
                      "record",
                      o->id, type);
  o->nev++;
  if (seq != NULL) *seq = ev->seq;
  return 0;
}

static int op_event_lit(op *o, const char *type, const lash__buf *pl,
                        int64_t at, uint64_t *seq) {
  return op_event(o, type, strlen(type), pl->p, pl->len, at, seq);
}

/* Encodes, then writes: the events go to LMDB, the record into the
 * transaction's write-back cache (the status, live and change indexes
 * follow at flush); counters move; the change is noted for the hook. */
static int op_save(op *o, int registered) {
  lash_store *s = o->s;
  lash_txn *t = o->t;
  lash__rec *r = &o->r;
  unsigned char key[LASH__EVKEY_MAX];
  lash__chg *c;
  lash__buf tmp;
  size_t kn, i;
  int rc;

  if ((rc = lash__meta_load(t)) < 0) return rc;
  if (r->kind.n > LASH_NAME_MAX)
    return lash__fail(s, LASH_ECORRUPT, "process %s has an over-long kind",
                      o->id);
  if ((c = lash__chg_get(t, o->id, o->idlen)) == NULL)
    return lash__fail(s, LASH_ENOMEM, "out of memory saving process %s", o->id);
  r->change_seq = t->change_seq + 1;
  if ((rc = lash__rec_encode(r, &s->rbuf)) < 0)
    return lash__fail(s, rc, "out of memory encoding process %s", o->id);
  for (i = 0; i < o->nev; i++)
    if ((rc = lash__ev_encode(&o->ev[i], &s->ebuf[i])) < 0)
      return lash__fail(s, rc, "out of memory encoding an event of %s", o->id);
  if (c->rec_state == 0) {
    /* First save in this transaction: remember the stored state (before
     * any put: r->kind may point into LMDB memory an update may move). */
    c->orig_exists = o->existed;
    c->orig_status = o->old_status;
    c->orig_cs = o->old_change_seq;
    memcpy(c->kind, r->kind.p, r->kind.n);
    c->kind_n = r->kind.n;
  }
  /* Nothing was written so far; from here on a failure poisons t. */
  lash__next_change_seq(t);
  for (i = 0; i < o->nev; i++) {
    kn = lash__evkey(key, o->id, o->idlen, o->ev[i].seq);
    if ((rc = lash__put(t, LASH__DB_EVENTS, key, kn, s->ebuf[i].p,
                        s->ebuf[i].len, 0)) < 0)
      return rc;
  }
  /* r may point into c->rec: swap buffers rather than copy. */
  tmp = c->rec;
  c->rec = s->rbuf;
  s->rbuf = tmp;
  c->rec_state = 2;
  c->cur_status = r->status;
  c->cur_cs = r->change_seq;
  t->wrote = 1;
  if (!o->existed) {
    t->counts[r->status]++;
  } else if (o->old_status != r->status) {
    if (t->counts[o->old_status] > 0) t->counts[o->old_status]--;
    t->counts[r->status]++;
  }
  c->report = 1;
  if (c->first_seq == 0 && o->nev > 0) c->first_seq = o->ev[0].seq;
  c->last_seq = r->last_seq;
  c->status = r->status;
  c->cancel_requested = r->cancel_requested;
  c->registered |= registered;
  return 0;
}

static int refuse_terminal(lash_store *s, const lash__rec *r, const char *id,
                           const char *what) {
  return lash__fail(s, LASH_ETERMINAL, "process %s is already %s: %s", id,
                    lash_status_name(r->status), what);
}

/* Opens the write (own or the caller's batch), loads @p id into @p o and
 * refuses a terminal row, saying @p why. On failure *t may be NULL (the
 * write never began); lash__wend accepts that. */
static int op_open_live(lash_store *s, lash_txn *txn, lash_txn **t, op *o,
                        const char *id, size_t idlen, const char *why) {
  int rc;
  *t = NULL;
  if ((rc = lash__wbegin(s, txn, t)) < 0) return rc;
  op_init(o, *t, id, idlen);
  if ((rc = op_load(o, NULL)) < 0) return rc;
  if (LASH_IS_TERMINAL(o->r.status)) return refuse_terminal(s, &o->r, id, why);
  return 0;
}

/* The seq of the first event of `type` in the log of id (0: none). */
static int find_event(lash_store *s, MDB_txn *mt, const char *id, size_t idlen,
                      const char *type, uint64_t *seq) {
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  unsigned char key[LASH__EVKEY_MAX];
  lash__ev ev;
  size_t tlen = strlen(type);
  int mrc, rc = 0;
  *seq = 0;
  if ((mrc = mdb_cursor_open(mt, s->dbi[LASH__DB_EVENTS], &cur)) != 0)
    return lash__mdb(s, mrc, "reading events");
  k.mv_size = lash__evkey(key, id, idlen, 0);
  k.mv_data = key;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != idlen + 9 || memcmp(k.mv_data, key, idlen + 1) != 0) break;
    if (lash__ev_decode(v.mv_data, v.mv_size, &ev, &s->zone) < 0) {
      rc = lash__fail(s, LASH_ECORRUPT,
                      "an event of process %s cannot be decoded (run check)",
                      id);
      goto out;
    }
    if (ev.type.n == tlen && memcmp(ev.type.p, type, tlen) == 0) {
      *seq = lash__get_be64((const unsigned char *)k.mv_data + idlen + 1);
      goto out;
    }
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND) rc = lash__mdb(s, mrc, "reading events");
out:
  mdb_cursor_close(cur);
  return rc;
}

/* ----------------------------------------------------------- register */

static const char *def_difference(const lash__rec *r, const lash_def *def) {
  if (r->kind.n != strlen(def->kind) ||
      memcmp(r->kind.p, def->kind, r->kind.n) != 0)
    return "kind";
  if (!lash__sv_eq(r->input, lash__sv_of(def->input.data, def->input.len)))
    return "input";
  if (r->disposition != def->disposition) return "disposition";
  if (r->max_attempts != def->max_attempts) return "max_attempts";
  return NULL;
}

int lash_register(lash_store *s, lash_txn *txn, const lash_def *def,
                  int *created, lash_record *out) {
  lash_txn *t = NULL;
  lash_record tmp;
  lash_tombstone tomb;
  op o;
  unsigned char key[8];
  const char *diff;
  int rc, idn, has_tomb = 0;
  uint64_t floor = 0;

  memset(&tmp, 0, sizeof tmp);
  if (created != NULL) *created = 0;
  if (out != NULL) memset(out, 0, sizeof *out);
  lash__clear(s);
  if (def == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_register: no definition given");
  if ((idn = lash__check_id(s, def->id)) < 0) return idn;
  if ((rc = check_name_of(s, "kind", def->kind, def->id)) < 0) return rc;
  if (lash_disposition_name(def->disposition) == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "disposition %d of process %s is not one of "
                      "rerunnable (1), owner_bound (2), external (3)",
                      def->disposition, def->id);
  if ((rc = lash__check_payload(s, "input", def->id, def->input)) < 0)
    return rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, def->id, (size_t)idn);
  memset(&tomb, 0, sizeof tomb);
  rc = lash__rec_lookup(s, t, t->mt, def->id, (size_t)idn, &o.r);
  if (rc == 1) {
    /* Absent: a tombstone, if any, gives the sequence floor. */
    MDB_val v;
    if (!t->tombs_known) {
      MDB_stat st;
      int mrc = mdb_stat(t->mt, s->dbi[LASH__DB_TOMBS], &st);
      if (mrc != 0) {
        rc = lash__mdb(s, mrc, "reading tombstones");
        goto out;
      }
      t->tombs_any = st.ms_entries > 0;
      t->tombs_known = 1;
    }
    rc = t->tombs_any
             ? lash__get(s, t->mt, LASH__DB_TOMBS, def->id, (size_t)idn, &v)
             : 1;
    if (rc == 0) {
      if (lash__tomb_decode(v.mv_data, v.mv_size, &tomb, &s->zone) < 0) {
        rc = lash__fail(s, LASH_ECORRUPT,
                        "tombstone of process %s cannot be decoded (run "
                        "check)",
                        def->id);
        goto out;
      }
      rc = LASH_EPRUNED;
    } else if (rc == 1) {
      rc = LASH_ENOENT;
    }
  }
  if (rc == 0) {
    if ((diff = def_difference(&o.r, def)) != NULL) {
      rc = lash__fail(s, LASH_ECONFLICT,
                      "process %s is already registered with another "
                      "definition (its %s differs): use another id",
                      def->id, diff);
      goto out;
    }
    rc = out != NULL ? lash__rec_export(&o.r, &tmp, NULL) : 0;
    if (rc < 0)
      rc = lash__fail(s, rc, "out of memory copying process %s", def->id);
    goto out;
  }
  if (rc == LASH_EPRUNED) {
    has_tomb = 1;
    floor = tomb.last_seq;
  } else if (rc != LASH_ENOENT) {
    goto out;
  }
  lash__rec_base(&o.r, lash__sv_of(def->id, (size_t)idn),
                 lash__sv_str(def->kind),
                 lash__sv_of(def->input.data, def->input.len), def->disposition,
                 def->max_attempts, lash__now(s), floor);
  if ((rc = op_save(&o, 1)) < 0) goto out;
  if (has_tomb) {
    /* The new row shadows the tombstone; the floor lives on in the row. */
    if ((rc = lash__del(t, LASH__DB_TOMBS, def->id, (size_t)idn)) < 0) goto out;
    lash__be64(key, tomb.change_seq);
    if ((rc = lash__del(t, LASH__DB_CHANGES, key, 8)) < 0) goto out;
  }
  if (created != NULL) *created = 1;
  if (out != NULL && (rc = lash__rec_export(&o.r, &tmp, NULL)) < 0)
    /* The row is already written: a batch cannot keep it silently. */
    rc = t->rc = lash__fail(s, rc, "out of memory copying process %s", def->id);
out:
  rc = lash__wend(s, t, rc);
  if (rc >= 0 && out != NULL)
    *out = tmp;
  else
    lash_record_free(&tmp);
  if (rc < 0 && created != NULL) *created = 0;
  return rc;
}

/* ---------------------------------------------------------------- get */

int lash_get(lash_store *s, lash_txn *txn, const char *id, lash_record *out,
             lash_tombstone *tomb) {
  MDB_txn *mt = NULL;
  lash__rec r;
  int rc, idn;
  if (out != NULL) memset(out, 0, sizeof *out);
  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  rc = lash__rec_load(s, txn, mt, id, (size_t)idn, &r, tomb);
  if (rc == 0 && out != NULL && (rc = lash__rec_export(&r, out, NULL)) < 0)
    rc = lash__fail(s, rc, "out of memory copying process %s", id);
  lash__rend(s, txn, mt);
  return rc;
}

/* ------------------------------------------------------------- events */

int lash_events_after(lash_store *s, lash_txn *txn, const char *id,
                      uint64_t after, size_t limit, lash_event_fn fn,
                      void *ud) {
  MDB_txn *mt = NULL;
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  unsigned char key[LASH__EVKEY_MAX];
  char type[LASH_NAME_MAX + 1];
  lash__rec r;
  lash__ev ev;
  lash_event e;
  size_t n = 0, idlen;
  int rc, idn, mrc;

  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_events_after: no callback given");
  idlen = (size_t)idn;
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  if ((rc = lash__rec_load(s, txn, mt, id, idlen, &r, NULL)) < 0) goto out;
  if (after == UINT64_MAX) goto out;
  if ((mrc = mdb_cursor_open(mt, s->dbi[LASH__DB_EVENTS], &cur)) != 0) {
    rc = lash__mdb(s, mrc, "reading events");
    goto out;
  }
  k.mv_size = lash__evkey(key, id, idlen, after + 1);
  k.mv_data = key;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != idlen + 9 || memcmp(k.mv_data, key, idlen + 1) != 0) break;
    if (lash__ev_decode(v.mv_data, v.mv_size, &ev, &s->zone) < 0 ||
        ev.type.n > LASH_NAME_MAX) {
      rc = lash__fail(s, LASH_ECORRUPT,
                      "an event of process %s cannot be decoded (run check)",
                      id);
      goto out;
    }
    memcpy(type, ev.type.p, ev.type.n);
    type[ev.type.n] = '\0';
    e.process_id = id;
    e.seq = lash__get_be64((const unsigned char *)k.mv_data + idlen + 1);
    e.type = type;
    e.payload.data = ev.payload.p;
    e.payload.len = ev.payload.n;
    e.at = ev.at;
    n++;
    if ((rc = fn(ud, &e)) != 0) {
      rc = rc < 0 ? rc : 0;
      goto out;
    }
    if (limit > 0 && n >= limit) break;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND) rc = lash__mdb(s, mrc, "reading events");
out:
  if (cur != NULL) mdb_cursor_close(cur);
  lash__rend(s, txn, mt);
  return rc;
}

/* ------------------------------------------------------------ appends */

static int append_common(lash_store *s, lash_txn *txn, const char *id,
                         const lash_lease *ls, const char *type,
                         lash_bytes payload, uint64_t *seq) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  int rc, idn;
  int64_t now;

  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = check_event_type(s, id, type)) < 0) return rc;
  if ((rc = lash__check_payload(s, "event payload", id, payload)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, (size_t)idn,
                         "no more events can be appended")) < 0)
    goto out;
  now = lash__now(s);
  if (ls != NULL && (rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if ((rc = op_event(&o, type, strlen(type), payload.data, payload.len, now,
                     seq)) < 0)
    goto out;
  rc = op_save(&o, 0);
out:
  return lash__wend(s, t, rc);
}

int lash_append(lash_store *s, lash_txn *txn, const char *id, const char *type,
                lash_bytes payload, uint64_t *seq) {
  lash__clear(s);
  return append_common(s, txn, id, NULL, type, payload, seq);
}

int lash_append_fenced(lash_store *s, lash_txn *txn, const lash_lease *ls,
                       const char *type, lash_bytes payload, uint64_t *seq) {
  int rc;
  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  return append_common(s, txn, ls->process_id, ls, type, payload, seq);
}

/* ----------------------------------------------------------- requests */

int lash_request_cancel(lash_store *s, lash_txn *txn, const char *id,
                        const char *reason, uint64_t *seq) {
  lash_txn *t = NULL;
  op o;
  int rc, idn;
  int64_t now;
  uint64_t first = 0;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = check_text(s, "cancel reason", reason, id, LASH__REASON_MAX, 1)) <
      0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, (size_t)idn,
                         "a cancel request changes nothing")) < 0)
    goto out;
  if (o.r.cancel_requested) {
    /* Idempotent: report the first request, write nothing. */
    rc = find_event(s, t->mt, id, (size_t)idn, LASH__EV_CANCEL_REQ, &first);
    if (rc == 0 && seq != NULL) *seq = first;
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__pl_cancel(&s->pbuf[0], reason)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_CANCEL_REQ, &s->pbuf[0], now, &first)) <
          0)
    goto out;
  if (o.r.status == LASH_PENDING && !o.r.has_attempt &&
      o.r.disposition != LASH_EXTERNAL) {
    /* Never started here: nobody will notice the request, so cancel now.
     * External rows run elsewhere: their owner honours the request. */
    if ((rc = lash__pl_str_or_nil(&s->pbuf[1], reason)) < 0 ||
        (rc = op_event_lit(&o, lash__terminal_type(LASH_CANCELLED), &s->pbuf[1],
                           now, NULL)) < 0)
      goto out;
  }
  if ((rc = op_save(&o, 0)) == 0 && seq != NULL) *seq = first;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory requesting cancellation of %s", id);
  return lash__wend(s, t, rc);
}

int lash_request_abandon(lash_store *s, lash_txn *txn, const char *id,
                         const char *by, const char *reason, uint64_t *seq) {
  lash_txn *t = NULL;
  op o;
  int rc, idn;
  uint64_t first = 0;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if (by != NULL && (rc = check_name_of(s, "abandon requester", by, id)) < 0)
    return rc;
  if ((rc = check_text(s, "abandon reason", reason, id, LASH__REASON_MAX, 1)) <
      0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, (size_t)idn,
                         "an abandon request changes nothing")) < 0)
    goto out;
  if (o.r.abandon_requested) {
    if (!lash__sv_eq(o.r.abandon_by, lash__sv_str(by)) ||
        !lash__sv_eq(o.r.abandon_reason, lash__sv_str(reason))) {
      rc = lash__fail(s, LASH_ECONFLICT,
                      "process %s already has a different abandon request "
                      "(by %.*s): the first request is kept",
                      id, (int)(o.r.abandon_by.p ? o.r.abandon_by.n : 7),
                      o.r.abandon_by.p ? o.r.abandon_by.p : "nobody");
      goto out;
    }
    rc = find_event(s, t->mt, id, (size_t)idn, LASH__EV_ABANDON_REQ, &first);
    if (rc == 0 && seq != NULL) *seq = first;
    goto out;
  }
  if ((rc = lash__pl_abandon(&s->pbuf[0], by, reason)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_ABANDON_REQ, &s->pbuf[0], lash__now(s),
                         &first)) < 0)
    goto out;
  if ((rc = op_save(&o, 0)) == 0 && seq != NULL) *seq = first;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory requesting abandonment of %s", id);
  return lash__wend(s, t, rc);
}

/* --------------------------------------------------- fenced transitions */

static int attempt_is(const lash__rec *r, const lash_lease *ls) {
  return r->has_attempt && r->att_fence == ls->fence &&
         lash__sv_eq(r->att_owner, lash__sv_str(ls->owner)) &&
         lash__sv_eq(r->att_inc, lash__sv_str(ls->incarnation));
}

int lash_start(lash_store *s, lash_txn *txn, const lash_lease *ls,
               uint32_t *attempt) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;
  uint32_t number;

  lash__clear(s);
  if (attempt != NULL) *attempt = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if ((rc = op_open_live(s, txn, &t, &o, id, strlen(id),
                         "it cannot be started")) < 0)
    goto out;
  if (o.r.disposition == LASH_EXTERNAL) {
    rc = lash__fail(s, LASH_EEXTERNAL,
                    "process %s is externally owned: it is never started "
                    "here; complete it with the external authority",
                    id);
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if (attempt_is(&o.r, ls)) {
    if (attempt != NULL) *attempt = o.r.att_number;
    goto out; /* this execution already started it: nothing to write */
  }
  if (o.r.disposition == LASH_OWNER_BOUND && o.r.has_attempt) {
    rc =
        lash__fail(s, LASH_ESTARTED,
                   "process %s is owner_bound and was already started by "
                   "owner %.*s (incarnation %.*s, attempt %u): it runs at "
                   "most once",
                   id, (int)o.r.att_owner.n, o.r.att_owner.p,
                   (int)o.r.att_inc.n, o.r.att_inc.p, (unsigned)o.r.att_number);
    goto out;
  }
  number = o.r.has_attempt ? o.r.att_number + 1 : 1;
  if (o.r.max_attempts > 0 && number > o.r.max_attempts) {
    rc = lash__fail(s, LASH_EEXHAUSTED,
                    "process %s has used all %u of its attempts "
                    "(max_attempts): attempt %u is refused",
                    id, (unsigned)o.r.max_attempts, (unsigned)number);
    goto out;
  }
  if ((rc = lash__pl_started(&s->pbuf[0], ls->owner, ls->incarnation, ls->fence,
                             number, now)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_STARTED, &s->pbuf[0], now, NULL)) < 0)
    goto out;
  if ((rc = op_save(&o, 0)) == 0 && attempt != NULL) *attempt = number;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory starting %s", id);
  return lash__wend(s, t, rc);
}

static int wait_common(lash_store *s, lash_txn *txn, const lash_lease *ls,
                       const char *wait, uint64_t *seq) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;

  if (seq != NULL) *seq = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if (wait != NULL &&
      (rc = check_text(s, "wait description", wait, id, LASH__WAIT_MAX, 0)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, strlen(id),
                         wait != NULL ? "it cannot wait"
                                      : "it is not waiting")) < 0)
    goto out;
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if (wait != NULL) {
    if ((rc = lash__pl_waiting(&s->pbuf[0], wait, now)) < 0 ||
        (rc = op_event_lit(&o, LASH__EV_WAITING, &s->pbuf[0], now, seq)) < 0)
      goto out;
  } else {
    if (o.r.status != LASH_WAITING) goto out; /* not waiting: a no-op */
    if ((rc = lash__pl_resumed(&s->pbuf[0])) < 0 ||
        (rc = op_event_lit(&o, LASH__EV_RESUMED, &s->pbuf[0], now, seq)) < 0)
      goto out;
  }
  rc = op_save(&o, 0);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory writing the wait of %s", id);
  return lash__wend(s, t, rc);
}

int lash_wait_set(lash_store *s, lash_txn *txn, const lash_lease *ls,
                  const char *wait, uint64_t *seq) {
  lash__clear(s);
  if (wait == NULL) {
    if (seq != NULL) *seq = 0;
    return lash__fail(s, LASH_EINVAL,
                      "lash_wait_set: no wait description given");
  }
  return wait_common(s, txn, ls, wait, seq);
}

int lash_wait_clear(lash_store *s, lash_txn *txn, const lash_lease *ls,
                    uint64_t *seq) {
  lash__clear(s);
  return wait_common(s, txn, ls, NULL, seq);
}

/* --------------------------------------------------------- completion */

static int check_terminal_status(lash_store *s, int status, const char *id) {
  if (status < LASH_COMPLETED || status > LASH_ABANDONED)
    return lash__fail(s, LASH_EINVAL,
                      "status %d for process %s is not a terminal status "
                      "(completed, failed, cancelled, abandoned)",
                      status, id != NULL ? id : "?");
  return 0;
}

/* First writer wins: identical -> APPLIED, different -> SUPERSEDED. */
static int terminal_verdict(const lash__rec *r, int status,
                            lash_bytes outcome) {
  if (r->status == status &&
      lash__sv_eq(r->outcome, lash__sv_of(outcome.data, outcome.len)))
    return LASH_APPLIED;
  return LASH_SUPERSEDED_OUTCOME;
}

int lash_complete(lash_store *s, lash_txn *txn, const lash_lease *ls,
                  int status, lash_bytes outcome) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;

  lash__clear(s);
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if ((rc = check_terminal_status(s, status, id)) < 0 ||
      (rc = lash__check_payload(s, "outcome", id, outcome)) < 0)
    return rc;
  if (lash__authority_wrapper(outcome.data, outcome.len, &s->zone, NULL))
    return lash__fail(s, LASH_EINVAL,
                      "outcome of process %s has the shape of an unleased "
                      "terminal payload ({outcome=<bin>, authority=<str>}): "
                      "shape it differently",
                      id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, id, strlen(id));
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  if (LASH_IS_TERMINAL(o.r.status)) {
    rc = terminal_verdict(&o.r, status, outcome);
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  {
    const char *type = lash__terminal_type(status);
    if ((rc = op_event(&o, type, strlen(type), outcome.data, outcome.len, now,
                       NULL)) < 0)
      goto out;
  }
  if ((rc = op_save(&o, 0)) < 0) goto out;
  /* Release in the same commit: the fence survives, the holder goes. */
  row.owner[0] = '\0';
  row.incarnation[0] = '\0';
  row.token = 0;
  row.expires_at = 0;
  rc = lash__lease_put(t, id, strlen(id), &row);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory completing %s", id);
  return lash__wend(s, t, rc);
}

int lash_complete_unleased(lash_store *s, lash_txn *txn, const char *id,
                           int status, lash_bytes outcome, int authority) {
  lash_txn *t = NULL;
  op o;
  const char *aname = lash_authority_name(authority);
  int rc, idn, ok;

  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = check_terminal_status(s, status, id)) < 0 ||
      (rc = lash__check_payload(s, "outcome", id, outcome)) < 0)
    return rc;
  if (aname == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "authority %d for process %s is not one of external "
                      "(1), workflow (2), reconciled_abandon (3)",
                      authority, id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, id, (size_t)idn);
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  /* SEMANTICS 3.5, checked against the live row. */
  switch (authority) {
  case LASH_AUTH_EXTERNAL:
    ok = o.r.disposition == LASH_EXTERNAL;
    break;
  case LASH_AUTH_WORKFLOW:
    ok = o.r.disposition == LASH_RERUNNABLE ||
         o.r.disposition == LASH_OWNER_BOUND;
    break;
  default:
    ok = o.r.disposition == LASH_EXTERNAL && status == LASH_ABANDONED;
    break;
  }
  if (!ok) {
    rc = lash__fail(s, LASH_EAUTHORITY,
                    "authority %s cannot complete process %s (disposition "
                    "%s) as %s",
                    aname, id, lash_disposition_name(o.r.disposition),
                    lash_status_name(status));
    goto out;
  }
  if (LASH_IS_TERMINAL(o.r.status)) {
    rc = terminal_verdict(&o.r, status, outcome);
    goto out;
  }
  if ((rc = lash__pl_terminal(&s->pbuf[0], outcome, aname)) < 0 ||
      (rc = op_event_lit(&o, lash__terminal_type(status), &s->pbuf[0],
                         lash__now(s), NULL)) < 0)
    goto out;
  rc = op_save(&o, 0);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory completing %s", id);
  return lash__wend(s, t, rc);
}

/* ------------------------------------------------------------ listings */

/* Loads the record of id and passes it to fn. *stop is set when fn asks
 * to stop; its negative value is returned. */
static int emit_id(lash_store *s, MDB_txn *mt, const char *idp, size_t idlen,
                   const lash_list_filter *f, lash__buf *arena,
                   lash_record_fn fn, void *ud, int *passed, int *stop) {
  MDB_val v;
  lash__rec r;
  lash_record rec;
  int rc = lash__get(s, mt, LASH__DB_RECORDS, idp, idlen, &v);
  if (rc < 0) return rc;
  if (rc == 1)
    return lash__fail(s, LASH_ECORRUPT,
                      "an index names process %.*s, which has no record "
                      "(run check)",
                      (int)idlen, idp);
  if (lash__rec_decode(v.mv_data, v.mv_size, &r, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "record of process %.*s cannot be decoded (run check)",
                      (int)idlen, idp);
  if (f != NULL) {
    if (f->kind != NULL && !lash__sv_eq(r.kind, lash__sv_str(f->kind)))
      return 0;
    if (f->live_only && LASH_IS_TERMINAL(r.status)) return 0;
    if (f->status != 0 && r.status != f->status) return 0;
  }
  if (lash__rec_export(&r, &rec, arena) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory listing processes");
  (*passed)++;
  if (fn != NULL && (rc = fn(ud, &rec)) != 0) {
    *stop = 1;
    return rc < 0 ? rc : 0;
  }
  return 0;
}

/* Compares a key's id bytes with a NUL-terminated id, in LMDB order. */
static int id_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

int lash_list(lash_store *s, lash_txn *txn, const lash_list_filter *f,
              lash_record_fn fn, void *ud) {
  MDB_txn *mt = NULL;
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  lash__buf arena = {0};
  unsigned char key[LASH__LIVEKEY_MAX + 1];
  lash_list_filter none;
  size_t prefix = 0, alen = 0, limit;
  int rc = 0, mrc, passed = 0, stop = 0, db;

  lash__clear(s);
  if (f == NULL) {
    memset(&none, 0, sizeof none);
    f = &none;
  }
  if (f->status != 0 && lash_status_name(f->status) == NULL)
    return lash__fail(s, LASH_EINVAL, "list: status %d is not a status",
                      f->status);
  if (f->kind != NULL && (rc = lash__check_name(s, "kind", f->kind)) < 0)
    return rc;
  if (f->after != NULL) {
    alen = strnlen(f->after, LASH_ID_MAX + 1);
    if (alen > LASH_ID_MAX)
      return lash__fail(s, LASH_EINVAL,
                        "list: the after id is longer than %d bytes",
                        LASH_ID_MAX);
  }
  if (f->status != 0 && f->live_only && LASH_IS_TERMINAL(f->status)) return 0;
  limit = f->limit;
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) {
    lash__rend(s, txn, mt);
    return rc;
  }
  /* Pick the index: status, live-by-kind, or all records. */
  if (f->status != 0) {
    db = LASH__DB_BYSTATUS;
    key[0] = (unsigned char)f->status;
    prefix = 1;
  } else if (f->live_only && f->kind != NULL) {
    db = LASH__DB_LIVE;
    prefix = strlen(f->kind) + 1;
    memcpy(key, f->kind, prefix);
  } else {
    db = LASH__DB_RECORDS;
    prefix = 0;
  }
  if (alen > 0) memcpy(key + prefix, f->after, alen);
  if ((mrc = mdb_cursor_open(mt, s->dbi[db], &cur)) != 0) {
    rc = lash__mdb(s, mrc, "listing processes");
    goto out;
  }
  k.mv_data = key;
  k.mv_size = prefix + alen;
  if (k.mv_size == 0)
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  else
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const char *idp = (const char *)k.mv_data + prefix;
    size_t idlen;
    if (k.mv_size < prefix || memcmp(k.mv_data, key, prefix) != 0) break;
    idlen = k.mv_size - prefix;
    if (alen > 0 && id_cmp(idp, idlen, f->after, alen) <= 0) continue;
    if (idlen == 0 || idlen > LASH_ID_MAX) {
      rc = lash__fail(s, LASH_ECORRUPT, "list: an index key is malformed");
      goto out;
    }
    if (db == LASH__DB_RECORDS) {
      lash__rec r;
      lash_record rec;
      if (lash__rec_decode(v.mv_data, v.mv_size, &r, &s->zone) < 0) {
        rc = lash__fail(s, LASH_ECORRUPT,
                        "record of process %.*s cannot be decoded (run check)",
                        (int)idlen, idp);
        goto out;
      }
      if ((f->kind != NULL && !lash__sv_eq(r.kind, lash__sv_str(f->kind))) ||
          (f->live_only && LASH_IS_TERMINAL(r.status)))
        continue;
      if (lash__rec_export(&r, &rec, &arena) < 0) {
        rc = lash__fail(s, LASH_ENOMEM, "out of memory listing processes");
        goto out;
      }
      passed++;
      if (fn != NULL && (rc = fn(ud, &rec)) != 0) {
        rc = rc < 0 ? rc : 0;
        stop = 1;
      }
    } else {
      char idbuf[LASH_ID_MAX + 1];
      memcpy(idbuf, idp, idlen);
      idbuf[idlen] = '\0';
      rc = emit_id(s, mt, idbuf, idlen, f, &arena, fn, ud, &passed, &stop);
    }
    if (rc < 0 || stop) goto out;
    if (limit > 0 && (size_t)passed >= limit) break;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lash__mdb(s, mrc, "listing processes");
out:
  if (cur != NULL) mdb_cursor_close(cur);
  lash__rend(s, txn, mt);
  lash__buf_free(&arena);
  return rc < 0 ? rc : passed;
}

int lash_worklist_page(lash_store *s, lash_txn *txn, const char *kind,
                       lash_worklist_cursor *cur, size_t limit,
                       lash_record_fn fn, void *ud) {
  MDB_txn *mt = NULL;
  MDB_cursor *c = NULL;
  MDB_val k, v;
  lash__buf arena = {0};
  unsigned char key[LASH__LIVEKEY_MAX + 1];
  size_t prefix, lastn, boundn;
  int rc = 0, mrc, passed = 0, stop = 0, kn;

  lash__clear(s);
  if ((kn = lash__check_name(s, "kind", kind)) < 0) return kn;
  if (cur == NULL)
    return lash__fail(s, LASH_EINVAL, "worklist: no cursor given");
  if (cur->done) return 0;
  prefix = (size_t)kn + 1;
  memcpy(key, kind, (size_t)kn);
  key[kn] = 0;
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) {
    lash__rend(s, txn, mt);
    return rc;
  }
  if ((mrc = mdb_cursor_open(mt, s->dbi[LASH__DB_LIVE], &c)) != 0) {
    rc = lash__mdb(s, mrc, "reading the worklist");
    goto out;
  }
  if (!cur->started) {
    /* The inclusive bound: the last live id of this kind right now. */
    key[kn] = 1;
    k.mv_data = key;
    k.mv_size = prefix;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == 0)
      mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    else if (mrc == MDB_NOTFOUND)
      mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    key[kn] = 0;
    cur->started = 1;
    cur->last[0] = '\0';
    if (mrc == 0 && k.mv_size > prefix && k.mv_size - prefix <= LASH_ID_MAX &&
        memcmp(k.mv_data, key, prefix) == 0) {
      memcpy(cur->bound, (const char *)k.mv_data + prefix, k.mv_size - prefix);
      cur->bound[k.mv_size - prefix] = '\0';
    } else if (mrc == 0 || mrc == MDB_NOTFOUND) {
      cur->bound[0] = '\0';
      cur->done = 1;
      goto out;
    } else {
      rc = lash__mdb(s, mrc, "reading the worklist");
      goto out;
    }
  }
  lastn = strnlen(cur->last, sizeof cur->last - 1);
  boundn = strnlen(cur->bound, sizeof cur->bound - 1);
  memcpy(key + prefix, cur->last, lastn);
  k.mv_data = key;
  k.mv_size = prefix + lastn;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    const char *idp = (const char *)k.mv_data + prefix;
    size_t idlen;
    char idbuf[LASH_ID_MAX + 1];
    if (k.mv_size <= prefix || memcmp(k.mv_data, key, prefix) != 0) break;
    idlen = k.mv_size - prefix;
    if (idlen > LASH_ID_MAX) {
      rc = lash__fail(s, LASH_ECORRUPT, "worklist: an index key is malformed");
      goto out;
    }
    if (lastn > 0 && id_cmp(idp, idlen, cur->last, lastn) <= 0) continue;
    if (id_cmp(idp, idlen, cur->bound, boundn) > 0) break;
    memcpy(idbuf, idp, idlen);
    idbuf[idlen] = '\0';
    memcpy(cur->last, idbuf, idlen + 1);
    rc = emit_id(s, mt, idbuf, idlen, NULL, &arena, fn, ud, &passed, &stop);
    if (rc < 0 || stop) goto out;
    if (idlen == boundn && memcmp(idbuf, cur->bound, idlen) == 0) {
      cur->done = 1;
      goto out;
    }
    if (limit > 0 && (size_t)passed >= limit) goto out;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND) {
    rc = lash__mdb(s, mrc, "reading the worklist");
    goto out;
  }
  cur->done = 1; /* the kind's rows ran out before the bound */
out:
  if (c != NULL) mdb_cursor_close(c);
  lash__rend(s, txn, mt);
  lash__buf_free(&arena);
  return rc < 0 ? rc : passed;
}

/* --------------------------------------------------------- change feed */

int lash_changes_since(lash_store *s, lash_txn *txn, uint64_t cursor,
                       size_t limit, lash_change_fn fn, void *ud,
                       uint64_t *next) {
  MDB_txn *mt = NULL;
  MDB_cursor *c = NULL;
  MDB_val k, v, rv;
  lash__buf arena = {0};
  unsigned char key[8];
  char idbuf[LASH_ID_MAX + 1];
  int rc = 0, mrc, passed = 0;

  lash__clear(s);
  if (next != NULL) *next = cursor;
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_changes_since: no callback given");
  if (cursor == UINT64_MAX) return 0;
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) {
    lash__rend(s, txn, mt);
    return rc;
  }
  if ((mrc = mdb_cursor_open(mt, s->dbi[LASH__DB_CHANGES], &c)) != 0) {
    rc = lash__mdb(s, mrc, "reading the change feed");
    goto out;
  }
  lash__be64(key, cursor + 1);
  k.mv_data = key;
  k.mv_size = 8;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    lash_change_entry e;
    lash__rec r;
    lash_record rec;
    lash_tombstone tomb;
    uint64_t cs;
    if (k.mv_size != 8 || v.mv_size == 0 || v.mv_size > LASH_ID_MAX) {
      rc = lash__fail(s, LASH_ECORRUPT, "the change feed is malformed");
      goto out;
    }
    cs = lash__get_be64(k.mv_data);
    memcpy(idbuf, v.mv_data, v.mv_size);
    idbuf[v.mv_size] = '\0';
    memset(&e, 0, sizeof e);
    e.change_seq = cs;
    e.id = idbuf;
    rc = lash__get(s, mt, LASH__DB_RECORDS, idbuf, v.mv_size, &rv);
    if (rc < 0) goto out;
    if (rc == 0) {
      if (lash__rec_decode(rv.mv_data, rv.mv_size, &r, &s->zone) < 0) {
        rc = lash__fail(s, LASH_ECORRUPT,
                        "record of process %s cannot be decoded (run check)",
                        idbuf);
        goto out;
      }
      if (r.change_seq != cs) continue; /* stale entry; lash_check reports it */
      if (lash__rec_export(&r, &rec, &arena) < 0) {
        rc = lash__fail(s, LASH_ENOMEM, "out of memory reading changes");
        goto out;
      }
      e.rec = &rec;
    } else {
      rc = lash__get(s, mt, LASH__DB_TOMBS, idbuf, v.mv_size, &rv);
      if (rc < 0) goto out;
      if (rc == 1) continue;
      memset(&tomb, 0, sizeof tomb);
      if (lash__tomb_decode(rv.mv_data, rv.mv_size, &tomb, &s->zone) < 0) {
        rc = lash__fail(s, LASH_ECORRUPT,
                        "tombstone of process %s cannot be decoded", idbuf);
        goto out;
      }
      if (tomb.change_seq != cs) continue;
      memcpy(tomb.id, idbuf, v.mv_size + 1);
      e.deleted = 1;
      e.tomb = &tomb;
    }
    rc = 0;
    passed++;
    if (next != NULL) *next = cs;
    if ((rc = fn(ud, &e)) != 0) {
      rc = rc < 0 ? rc : 0;
      goto out;
    }
    if (limit > 0 && (size_t)passed >= limit) break;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lash__mdb(s, mrc, "reading the change feed");
out:
  if (c != NULL) mdb_cursor_close(c);
  lash__rend(s, txn, mt);
  lash__buf_free(&arena);
  return rc < 0 ? rc : passed;
}

/* --------------------------------------------------------------- prune */

typedef struct prune_ent {
  const char *p; /* set once the id buffer stops growing */
  size_t off, len;
} prune_ent;

static int prune_cmp(const void *a, const void *b) {
  const prune_ent *x = a, *y = b;
  return id_cmp(x->p, x->len, y->p, y->len);
}

/* Deletes every event of id; counts them. */
static int delete_events(lash_txn *t, const char *id, size_t idlen,
                         uint64_t *count) {
  lash_store *s = t->s;
  MDB_cursor *c = NULL;
  MDB_val k, v;
  unsigned char key[LASH__EVKEY_MAX];
  int mrc, rc = 0;
  if ((mrc = mdb_cursor_open(t->mt, s->dbi[LASH__DB_EVENTS], &c)) != 0)
    return t->rc = lash__mdb(s, mrc, "pruning events");
  lash__evkey(key, id, idlen, 0);
  for (;;) {
    k.mv_data = key;
    k.mv_size = idlen + 9;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND) break;
    if (mrc != 0) {
      rc = t->rc = lash__mdb(s, mrc, "pruning events");
      break;
    }
    if (k.mv_size != idlen + 9 || memcmp(k.mv_data, key, idlen + 1) != 0) break;
    if ((mrc = mdb_cursor_del(c, 0)) != 0) {
      rc = t->rc = lash__mdb(s, mrc, "pruning events");
      break;
    }
    t->wrote = 1;
    (*count)++;
  }
  mdb_cursor_close(c);
  return rc;
}

int lash_prune(lash_store *s, lash_txn *txn, int64_t before_ms, int status,
               lash_prune_report *out) {
  lash_txn *t = NULL;
  MDB_cursor *c = NULL;
  MDB_val k, v;
  lash__buf ids = {0};
  prune_ent *ents = NULL;
  size_t nents = 0, capents = 0, i;
  unsigned char key[LASH_ID_MAX + 9];
  lash_prune_report rep = {0, 0};
  int rc = 0, mrc, st, lo, hi, writing = 0;
  int64_t now;

  lash__clear(s);
  if (out != NULL) memset(out, 0, sizeof *out);
  if (status != 0 && (status < LASH_COMPLETED || status > LASH_ABANDONED))
    return lash__fail(s, LASH_EINVAL,
                      "prune: status %d is not a terminal status (only "
                      "terminal rows are pruned)",
                      status);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  t->tombs_known = 0; /* prune writes tombstones */
  /* Prune works on LMDB directly: write the cached rows, forget them. */
  if ((rc = lash__wb_flush(t, 1)) < 0) goto out;
  lo = status != 0 ? status : LASH_COMPLETED;
  hi = status != 0 ? status : LASH_ABANDONED;
  /* Pass 1 (reads only): the ids to prune. */
  if ((mrc = mdb_cursor_open(t->mt, s->dbi[LASH__DB_BYSTATUS], &c)) != 0) {
    rc = lash__mdb(s, mrc, "pruning");
    goto out;
  }
  for (st = lo; st <= hi; st++) {
    key[0] = (unsigned char)st;
    k.mv_data = key;
    k.mv_size = 1;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      MDB_val rv;
      lash__rec r;
      const char *idp = (const char *)k.mv_data + 1;
      size_t idlen = k.mv_size - 1;
      if (k.mv_size < 2 || ((const unsigned char *)k.mv_data)[0] != st) break;
      rc = lash__get(s, t->mt, LASH__DB_RECORDS, idp, idlen, &rv);
      if (rc < 0) goto out;
      if (rc == 1 ||
          lash__rec_decode(rv.mv_data, rv.mv_size, &r, &s->zone) < 0) {
        rc = lash__fail(s, LASH_ECORRUPT,
                        "prune: the status index names process %.*s, which "
                        "has no readable record (run check)",
                        (int)idlen, idp);
        goto out;
      }
      rc = 0;
      if (!LASH_IS_TERMINAL(r.status) || r.updated_at >= before_ms) continue;
      if (nents == capents) {
        size_t cap = capents ? capents * 2 : 64;
        prune_ent *n = realloc(ents, cap * sizeof *n);
        if (n == NULL) {
          rc = lash__fail(s, LASH_ENOMEM, "out of memory pruning");
          goto out;
        }
        ents = n;
        capents = cap;
      }
      if (lash__buf_reserve(&ids, idlen) < 0) {
        rc = lash__fail(s, LASH_ENOMEM, "out of memory pruning");
        goto out;
      }
      ents[nents].off = ids.len;
      ents[nents].len = idlen;
      memcpy(ids.p + ids.len, idp, idlen);
      ids.len += idlen;
      nents++;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
      rc = lash__mdb(s, mrc, "pruning");
      goto out;
    }
  }
  mdb_cursor_close(c);
  c = NULL;
  if (nents == 0) goto out;
  for (i = 0; i < nents; i++)
    ents[i].p = ids.p + ents[i].off;
  qsort(ents, nents, sizeof *ents, prune_cmp);
  if ((rc = lash__meta_load(t)) < 0) goto out;
  now = lash__now(s);
  writing = 1;
  /* Pass 2: tombstones in id order, with consecutive change seqs. */
  for (i = 0; i < nents; i++) {
    char id[LASH_ID_MAX + 1];
    size_t idlen = ents[i].len;
    MDB_val rv;
    lash__rec r;
    lash_tombstone tomb;
    uint64_t old_cs;
    int old_status;
    memcpy(id, ids.p + ents[i].off, idlen);
    id[idlen] = '\0';
    rc = lash__get(s, t->mt, LASH__DB_RECORDS, id, idlen, &rv);
    if (rc != 0 || lash__rec_decode(rv.mv_data, rv.mv_size, &r, &s->zone) < 0) {
      rc = rc < 0 ? rc
                  : lash__fail(s, LASH_ECORRUPT,
                               "prune: process %s vanished mid-prune", id);
      goto out;
    }
    old_cs = r.change_seq;
    old_status = r.status;
    memset(&tomb, 0, sizeof tomb);
    tomb.status = r.status;
    tomb.pruned_at = now;
    tomb.last_seq = r.last_seq > r.floor ? r.last_seq : r.floor;
    tomb.change_seq = lash__next_change_seq(t);
    if ((rc = lash__tomb_encode(&tomb, &s->vbuf)) < 0) {
      rc = t->rc = lash__fail(s, rc, "out of memory pruning %s", id);
      goto out;
    }
    if ((rc = delete_events(t, id, idlen, &rep.events)) < 0 ||
        (rc = lash__del(t, LASH__DB_LEASES, id, idlen)) < 0 ||
        (rc = lash__del(t, LASH__DB_RECORDS, id, idlen)) < 0)
      goto out;
    key[0] = (unsigned char)old_status;
    memcpy(key + 1, id, idlen);
    if ((rc = lash__del(t, LASH__DB_BYSTATUS, key, idlen + 1)) < 0) goto out;
    lash__be64(key, old_cs);
    if ((rc = lash__del(t, LASH__DB_CHANGES, key, 8)) < 0 ||
        (rc = lash__put(t, LASH__DB_TOMBS, id, idlen, s->vbuf.p, s->vbuf.len,
                        0)) < 0)
      goto out;
    lash__be64(key, tomb.change_seq);
    if ((rc = lash__put(t, LASH__DB_CHANGES, key, 8, id, idlen, MDB_APPEND)) <
        0)
      goto out;
    if (t->counts[old_status] > 0) t->counts[old_status]--;
    rep.processes++;
  }
out:
  /* A prune that failed after its first write must not be committed in
   * part by a batch: poison it. */
  if (rc < 0 && writing && t->rc == 0) t->rc = rc;
  if (c != NULL) mdb_cursor_close(c);
  free(ents);
  lash__buf_free(&ids);
  rc = lash__wend(s, t, rc);
  if (rc >= 0 && out != NULL) *out = rep;
  return rc;
}
