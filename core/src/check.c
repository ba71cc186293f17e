/* check.c - lash_check: verifies that the store is self-consistent.
 *
 * Every record must equal the fold of its registration base and its event
 * log, field by field; every index (live, status, changes) must list
 * exactly the rows it should; counters must match; lease rows must belong
 * to records and never lag their attempt's fence; terminal rows hold no
 * live lease. Runs in one read transaction over the committed state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "lash-int.h"

#include <stdio.h>
#include <string.h>

typedef struct chk {
  lash_store *s;
  MDB_txn *mt;
  lash_problem_fn fn;
  void *ud;
  int n;
  uint64_t meta_seq;
  char ev_last_id[LASH_ID_MAX + 1]; /* events: look each owner up once */
  size_t ev_last_len;
  char line[LASH__ERRMSG_MAX];
} chk;

__attribute__((format(printf, 2, 3))) static void
problem(chk *c, const char *fmt, ...) {
  va_list ap;
  c->n++;
  if (c->fn == NULL) return;
  va_start(ap, fmt);
  vsnprintf(c->line, sizeof c->line, fmt, ap);
  va_end(ap);
  c->fn(c->ud, c->line);
}

/* Copies a key's id bytes into a printable NUL-terminated buffer. */
static const char *show_id(char *buf, const void *p, size_t n) {
  if (n > LASH_ID_MAX) n = LASH_ID_MAX;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

static int has_key(chk *c, int db, const void *k, size_t kn, MDB_val *v) {
  MDB_val tmp;
  int rc = lash__get(c->s, c->mt, db, k, kn, v != NULL ? v : &tmp);
  return rc;
}

/* Loads the record of id: 0 found, 1 absent, <0 error, 2 undecodable. */
static int load_rec(chk *c, const void *id, size_t idlen, lash__rec *r) {
  MDB_val v;
  int rc = has_key(c, LASH__DB_RECORDS, id, idlen, &v);
  if (rc != 0) return rc;
  return lash__rec_decode(v.mv_data, v.mv_size, r, &c->s->zone) < 0 ? 2 : 0;
}

static void cmp_sv(chk *c, const char *id, const char *field, lash__sv stored,
                   lash__sv folded) {
  if (!lash__sv_eq(stored, folded))
    problem(c,
            "process %s: stored %s (%s%.*s%s) differs from the fold of its "
            "log (%s%.*s%s)",
            id, field, stored.p ? "\"" : "nil",
            stored.p ? (int)(stored.n > 60 ? 60 : stored.n) : 0,
            stored.p ? stored.p : "", stored.p ? "\"" : "",
            folded.p ? "\"" : "nil",
            folded.p ? (int)(folded.n > 60 ? 60 : folded.n) : 0,
            folded.p ? folded.p : "", folded.p ? "\"" : "");
}

static void cmp_i64(chk *c, const char *id, const char *field, int64_t stored,
                    int64_t folded) {
  if (stored != folded)
    problem(c,
            "process %s: stored %s %lld differs from the fold of its log "
            "(%lld)",
            id, field, (long long)stored, (long long)folded);
}

static void cmp_u64(chk *c, const char *id, const char *field, uint64_t stored,
                    uint64_t folded) {
  if (stored != folded)
    problem(c,
            "process %s: stored %s %llu differs from the fold of its log "
            "(%llu)",
            id, field, (unsigned long long)stored, (unsigned long long)folded);
}

/* Rebuilds the record from its base and its events; compares. */
static int check_fold(chk *c, const char *id, size_t idlen, const lash__rec *r,
                      int *term_unleased) {
  lash_store *s = c->s;
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  unsigned char key[LASH__EVKEY_MAX];
  lash__rec d;
  lash__ev ev;
  uint64_t prev = r->floor;
  int mrc, rc = 0;

  lash__rec_base(&d, r->id, r->kind, r->input, r->disposition, r->max_attempts,
                 r->created_at, r->floor);
  if ((mrc = mdb_cursor_open(c->mt, s->dbi[LASH__DB_EVENTS], &cur)) != 0)
    return lash__mdb(s, mrc, "checking events");
  k.mv_size = lash__evkey(key, id, idlen, 0);
  k.mv_data = key;
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t seq;
    if (k.mv_size != idlen + 9 || memcmp(k.mv_data, key, idlen + 1) != 0) break;
    seq = lash__get_be64((const unsigned char *)k.mv_data + idlen + 1);
    if (seq != prev + 1)
      problem(c,
              "process %s: event seq %llu follows %llu (sequences start "
              "after the floor %llu and increase by one)",
              id, (unsigned long long)seq, (unsigned long long)prev,
              (unsigned long long)r->floor);
    prev = seq;
    if (lash__ev_decode(v.mv_data, v.mv_size, &ev, &s->zone) < 0) {
      problem(c, "process %s: event %llu cannot be decoded", id,
              (unsigned long long)seq);
      continue;
    }
    ev.seq = seq;
    if (lash__fold(&d, &ev, &s->zone) < 0)
      problem(c, "process %s: event %llu (%.*s) has a malformed payload", id,
              (unsigned long long)seq, (int)ev.type.n, ev.type.p);
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lash__mdb(s, mrc, "checking events");
  mdb_cursor_close(cur);
  if (rc < 0) return rc;

  if (r->status != d.status)
    problem(c,
            "process %s: stored status %s differs from the fold of its "
            "log (%s)",
            id, lash_status_name(r->status), lash_status_name(d.status));
  if (r->has_attempt != d.has_attempt) {
    problem(c, "process %s: stored record %s an attempt, the fold %s", id,
            r->has_attempt ? "has" : "has no",
            d.has_attempt ? "has one" : "has none");
  } else if (r->has_attempt) {
    cmp_sv(c, id, "attempt owner", r->att_owner, d.att_owner);
    cmp_sv(c, id, "attempt incarnation", r->att_inc, d.att_inc);
    cmp_u64(c, id, "attempt fence", r->att_fence, d.att_fence);
    cmp_u64(c, id, "attempt number", r->att_number, d.att_number);
    cmp_i64(c, id, "attempt started_at", r->att_started_at, d.att_started_at);
  }
  if (!lash__sv_eq(r->outcome, d.outcome))
    problem(c,
            "process %s: stored outcome (%zu bytes%s) differs from the "
            "fold of its log (%zu bytes%s)",
            id, r->outcome.n, r->outcome.p ? "" : ", none", d.outcome.n,
            d.outcome.p ? "" : ", none");
  if (LASH_IS_TERMINAL(r->status) != (r->outcome.p != NULL))
    problem(c, "process %s: status %s %s an outcome", id,
            lash_status_name(r->status),
            r->outcome.p ? "must not have" : "must have");
  cmp_sv(c, id, "wait", r->wait, d.wait);
  cmp_i64(c, id, "wait_since", r->wait_since, d.wait_since);
  cmp_i64(c, id, "cancel_requested", r->cancel_requested, d.cancel_requested);
  cmp_sv(c, id, "cancel_reason", r->cancel_reason, d.cancel_reason);
  cmp_i64(c, id, "abandon_requested", r->abandon_requested,
          d.abandon_requested);
  cmp_sv(c, id, "abandon_by", r->abandon_by, d.abandon_by);
  cmp_sv(c, id, "abandon_reason", r->abandon_reason, d.abandon_reason);
  cmp_i64(c, id, "updated_at", r->updated_at, d.updated_at);
  cmp_u64(c, id, "last_seq", r->last_seq, d.last_seq);
  *term_unleased = d.term_unleased;
  return 0;
}

static int valid_id_bytes(const void *p, size_t n) {
  return n >= 1 && n <= LASH_ID_MAX && memchr(p, 0, n) == NULL;
}

/* Walk 1: records, their folds and their index entries. */
static int walk_records(chk *c, uint64_t meta_seq,
                        uint64_t counts[LASH_STATUS_COUNT + 1], int64_t now) {
  lash_store *s = c->s;
  MDB_cursor *cur = NULL;
  MDB_val k, v, x;
  unsigned char key[LASH__LIVEKEY_MAX + 9];
  char id[LASH_ID_MAX + 1];
  int mrc, rc = 0;

  if ((mrc = mdb_cursor_open(c->mt, s->dbi[LASH__DB_RECORDS], &cur)) != 0)
    return lash__mdb(s, mrc, "checking records");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    lash__rec r;
    lash_lease ls;
    size_t idlen = k.mv_size, kn;
    int unleased = 0;
    show_id(id, k.mv_data, idlen);
    if (!valid_id_bytes(k.mv_data, idlen)) {
      problem(c, "a record has an invalid id key (%zu bytes)", idlen);
      continue;
    }
    if (lash__rec_decode(v.mv_data, v.mv_size, &r, &s->zone) < 0) {
      problem(c, "process %s: record cannot be decoded", id);
      continue;
    }
    if (r.id.n != idlen || memcmp(r.id.p, k.mv_data, idlen) != 0)
      problem(c, "process %s: the record names another id (%.*s)", id,
              (int)r.id.n, r.id.p);
    if (r.kind.n == 0 || r.kind.n > LASH_NAME_MAX) {
      problem(c, "process %s: kind has %zu bytes", id, r.kind.n);
      continue;
    }
    if (r.input.n > s->opts.max_payload)
      problem(c, "process %s: input of %zu bytes is over max_payload", id,
              r.input.n);
    if ((rc = check_fold(c, id, idlen, &r, &unleased)) < 0) goto out;
    counts[r.status]++;
    /* live index */
    kn = lash__livekey(key, r.kind, id, idlen);
    rc = has_key(c, LASH__DB_LIVE, key, kn, NULL);
    if (rc < 0) goto out;
    if (!LASH_IS_TERMINAL(r.status) && rc == 1)
      problem(c, "process %s (%s) is missing from the live index", id,
              lash_status_name(r.status));
    /* (terminal rows in the live index are reported by walk_live) */
    kn = lash__statkey(key, r.status, id, idlen);
    if ((rc = has_key(c, LASH__DB_BYSTATUS, key, kn, NULL)) < 0) goto out;
    if (rc == 1)
      problem(c, "process %s is missing from the status index under %s", id,
              lash_status_name(r.status));
    /* change index */
    if (r.change_seq == 0 || r.change_seq > meta_seq)
      problem(c,
              "process %s: change_seq %llu is outside the store's range "
              "(1..%llu)",
              id, (unsigned long long)r.change_seq,
              (unsigned long long)meta_seq);
    lash__be64(key, r.change_seq);
    if ((rc = has_key(c, LASH__DB_CHANGES, key, 8, &x)) < 0) goto out;
    if (rc == 1 || x.mv_size != idlen || memcmp(x.mv_data, id, idlen) != 0)
      problem(c, "process %s: change index has no entry %llu for it", id,
              (unsigned long long)r.change_seq);
    /* tombstone shadowed by a live row must be gone */
    if ((rc = has_key(c, LASH__DB_TOMBS, id, idlen, NULL)) < 0) goto out;
    if (rc == 0) problem(c, "process %s has both a record and a tombstone", id);
    /* lease */
    if ((rc = has_key(c, LASH__DB_LEASES, id, idlen, &x)) < 0) goto out;
    if (rc == 0) {
      if (lash__lease_decode(x.mv_data, x.mv_size, &ls, &s->zone) < 0) {
        problem(c, "process %s: lease row cannot be decoded", id);
      } else {
        if (r.has_attempt && ls.fence < r.att_fence)
          problem(c,
                  "process %s: lease fence %llu is below the attempt's "
                  "fence %llu",
                  id, (unsigned long long)ls.fence,
                  (unsigned long long)r.att_fence);
        /* A leased completion releases the completing lease in the same
         * commit. (Unleased completions touch no lease, and terminal rows
         * may be claimed again later, at a higher fence.) */
        if (LASH_IS_TERMINAL(r.status) && !unleased && r.has_attempt &&
            ls.fence == r.att_fence && ls.token != 0 && ls.expires_at > now)
          problem(c,
                  "process %s is %s but the execution that completed it "
                  "(owner %s, fence %llu) still holds a live lease (until "
                  "%lld)",
                  id, lash_status_name(r.status), ls.owner,
                  (unsigned long long)ls.fence, (long long)ls.expires_at);
      }
    }
    rc = 0;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lash__mdb(s, mrc, "checking records");
out:
  mdb_cursor_close(cur);
  return rc;
}

/* Walks one database, calling fn per entry. */
typedef int (*walk_fn)(chk *c, const MDB_val *k, const MDB_val *v);

static int walk(chk *c, int db, const char *what, walk_fn fn) {
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  int mrc, rc = 0;
  if ((mrc = mdb_cursor_open(c->mt, c->s->dbi[db], &cur)) != 0)
    return lash__mdb(c->s, mrc, what);
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    if ((rc = fn(c, &k, &v)) < 0) break;
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lash__mdb(c->s, mrc, what);
  mdb_cursor_close(cur);
  return rc;
}

static int on_event(chk *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  size_t idlen;
  int rc;
  LASH__UNUSED(v);
  if (k->mv_size < 10 || p[k->mv_size - 9] != 0 ||
      !valid_id_bytes(p, k->mv_size - 9)) {
    problem(c, "an event key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  idlen = k->mv_size - 9;
  if (idlen == c->ev_last_len && memcmp(c->ev_last_id, p, idlen) == 0) return 0;
  memcpy(c->ev_last_id, p, idlen);
  c->ev_last_len = idlen;
  if ((rc = has_key(c, LASH__DB_RECORDS, p, idlen, NULL)) < 0) return rc;
  if (rc == 1)
    problem(c, "events of process %s have no record", show_id(id, p, idlen));
  return 0;
}

static int on_live(chk *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
  char id[LASH_ID_MAX + 1];
  lash__rec r;
  size_t kindn, idlen;
  int rc;
  LASH__UNUSED(v);
  if (nul == NULL || nul == p ||
      !valid_id_bytes(nul + 1, k->mv_size - (size_t)(nul - p) - 1)) {
    problem(c, "a live index key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  kindn = (size_t)(nul - p);
  idlen = k->mv_size - kindn - 1;
  show_id(id, nul + 1, idlen);
  rc = load_rec(c, nul + 1, idlen, &r);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "live index lists process %s, which has no record", id);
  else if (rc == 0 && LASH_IS_TERMINAL(r.status))
    problem(c, "live index lists process %s, which is %s", id,
            lash_status_name(r.status));
  else if (rc == 0 && !lash__sv_eq(r.kind, lash__sv_of(p, kindn)))
    problem(c, "live index lists process %s under kind %.*s, not %.*s", id,
            (int)kindn, p, (int)r.kind.n, r.kind.p);
  return 0;
}

static int on_status(chk *c, const MDB_val *k, const MDB_val *v) {
  const unsigned char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  lash__rec r;
  int rc;
  LASH__UNUSED(v);
  if (k->mv_size < 2 || lash_status_name(p[0]) == NULL ||
      !valid_id_bytes(p + 1, k->mv_size - 1)) {
    problem(c, "a status index key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, p + 1, k->mv_size - 1);
  rc = load_rec(c, p + 1, k->mv_size - 1, &r);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "status index lists process %s, which has no record", id);
  else if (rc == 0 && r.status != p[0])
    problem(c, "status index lists process %s as %s, but it is %s", id,
            lash_status_name(p[0]), lash_status_name(r.status));
  return 0;
}

static int on_change(chk *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  lash__rec r;
  lash_tombstone tb;
  MDB_val x;
  uint64_t cs;
  int rc;
  if (k->mv_size != 8 || !valid_id_bytes(v->mv_data, v->mv_size)) {
    problem(c, "a change index entry is malformed");
    return 0;
  }
  cs = lash__get_be64(k->mv_data);
  show_id(id, v->mv_data, v->mv_size);
  if (cs > c->meta_seq)
    problem(c, "change %llu (process %s) is past the store's change_seq %llu",
            (unsigned long long)cs, id, (unsigned long long)c->meta_seq);
  rc = load_rec(c, v->mv_data, v->mv_size, &r);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (r.change_seq != cs)
      problem(c, "change %llu names process %s, whose change_seq is %llu",
              (unsigned long long)cs, id, (unsigned long long)r.change_seq);
    return 0;
  }
  if (rc == 2) return 0; /* reported by the record walk */
  rc = has_key(c, LASH__DB_TOMBS, v->mv_data, v->mv_size, &x);
  if (rc < 0) return rc;
  if (rc == 1) {
    problem(c,
            "change %llu names process %s, which has no record or "
            "tombstone",
            (unsigned long long)cs, id);
    return 0;
  }
  if (lash__tomb_decode(x.mv_data, x.mv_size, &tb, &c->s->zone) == 0 &&
      tb.change_seq != cs)
    problem(c,
            "change %llu names pruned process %s, whose tombstone has "
            "change_seq %llu",
            (unsigned long long)cs, id, (unsigned long long)tb.change_seq);
  return 0;
}

static int on_lease(chk *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  lash_lease ls;
  int rc;
  if (!valid_id_bytes(k->mv_data, k->mv_size)) {
    problem(c, "a lease key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, k->mv_data, k->mv_size);
  if (lash__lease_decode(v->mv_data, v->mv_size, &ls, &c->s->zone) < 0)
    problem(c, "lease of %s cannot be decoded", id);
  else if (ls.fence == 0)
    problem(c, "lease of %s has fence 0", id);
  rc = has_key(c, LASH__DB_RECORDS, k->mv_data, k->mv_size, NULL);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "a lease row exists for process %s, which has no record", id);
  return 0;
}

static int on_tomb(chk *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  lash_tombstone tb;
  unsigned char key[8];
  MDB_val x;
  int rc;
  if (!valid_id_bytes(k->mv_data, k->mv_size)) {
    problem(c, "a tombstone key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, k->mv_data, k->mv_size);
  if (lash__tomb_decode(v->mv_data, v->mv_size, &tb, &c->s->zone) < 0) {
    problem(c, "tombstone of %s cannot be decoded", id);
    return 0;
  }
  lash__be64(key, tb.change_seq);
  rc = has_key(c, LASH__DB_CHANGES, key, 8, &x);
  if (rc < 0) return rc;
  if (rc == 1 || x.mv_size != k->mv_size ||
      memcmp(x.mv_data, k->mv_data, k->mv_size) != 0)
    problem(c, "tombstone of %s: change index has no entry %llu for it", id,
            (unsigned long long)tb.change_seq);
  return 0;
}

int lash_check(lash_store *s, lash_problem_fn fn, void *ud) {
  chk c;
  uint64_t meta_seq, meta_counts[LASH_STATUS_COUNT + 1];
  uint64_t counts[LASH_STATUS_COUNT + 1];
  int rc, i;

  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  memset(&c, 0, sizeof c);
  memset(counts, 0, sizeof counts);
  c.s = s;
  c.fn = fn;
  c.ud = ud;
  if ((rc = lash__rbegin(s, NULL, &c.mt)) < 0) return rc;
  if ((rc = lash__meta_read(s, c.mt, &meta_seq, meta_counts)) < 0) {
    problem(&c, "%s", s->errmsg);
    lash__clear(s);
    rc = 0;
    meta_seq = UINT64_MAX;
  }
  c.meta_seq = meta_seq;
  if ((rc = walk_records(&c, meta_seq, counts, lash__now(s))) < 0 ||
      (rc = walk(&c, LASH__DB_EVENTS, "checking events", on_event)) < 0 ||
      (rc = walk(&c, LASH__DB_LIVE, "checking the live index", on_live)) < 0 ||
      (rc = walk(&c, LASH__DB_BYSTATUS, "checking the status index",
                 on_status)) < 0 ||
      (rc = walk(&c, LASH__DB_CHANGES, "checking the change index",
                 on_change)) < 0 ||
      (rc = walk(&c, LASH__DB_LEASES, "checking leases", on_lease)) < 0 ||
      (rc = walk(&c, LASH__DB_TOMBS, "checking tombstones", on_tomb)) < 0)
    goto out;
  if (meta_seq != UINT64_MAX)
    for (i = LASH_PENDING; i <= LASH_ABANDONED; i++)
      if (counts[i] != meta_counts[i])
        problem(&c, "counter of %s rows is %llu, but %llu rows are %s",
                lash_status_name(i), (unsigned long long)meta_counts[i],
                (unsigned long long)counts[i], lash_status_name(i));
  rc = c.n;
out:
  lash__rend(s, NULL, c.mt);
  return rc;
}
