/* schedules.c - durable cron schedules in the side table (LASH_KV_SCHEDULE:
 * name -> a MessagePack map), and the tick: in one write transaction the
 * schedule is re-read, the children of its due ticks are registered (ids
 * NAME@TICK, lash_register being idempotent per id) and next_at moves
 * past now, so a tick makes one child whichever engines fire it.
 *
 * The stored map: {spec, kind, input (bin), tz, catch_up, disposition,
 * max_attempts, timeout_ms, next_at, last_at, started, created_at,
 * updated_at}. Every put and delete moves the store's change seq, so the
 * change feed of other OS processes sees that something moved and their
 * engines re-read the schedules (engine/schedule.c). */
#include "registry-int.h"

#include <stdlib.h>
#include <string.h>

#define TICKS_PER_WRITE 256
#define GRACE_MIN_MS 1000
#define GRACE_MAX_MS 60000

static const char *const CATCHUP_NAMES[] = {"skip", "one", "all"};

const char *lash_catchup_name(int c) {
  return c >= 0 && c <= LASH_CATCHUP_ALL ? CATCHUP_NAMES[c] : NULL;
}

int lash_catchup_parse(const char *name) {
  int i;
  if (name == NULL) return -1;
  for (i = 0; i <= LASH_CATCHUP_ALL; i++)
    if (strcmp(name, CATCHUP_NAMES[i]) == 0) return i;
  return -1;
}

/* ------------------------------------------------------------- codec */

static void pack_str(msgpack_packer *pk, const char *k, const char *v) {
  size_t n = v != NULL ? strlen(v) : 0;
  msgpack_pack_str_with_body(pk, k, strlen(k));
  msgpack_pack_str_with_body(pk, v != NULL ? v : "", n);
}

static void pack_i64(msgpack_packer *pk, const char *k, int64_t v) {
  msgpack_pack_str_with_body(pk, k, strlen(k));
  msgpack_pack_int64(pk, v);
}

static int sched_encode(const lash_schedule *sc, lash__buf *b) {
  msgpack_packer pk;
  lash__packer(&pk, b);
  msgpack_pack_map(&pk, 13);
  pack_str(&pk, "spec", sc->spec);
  pack_str(&pk, "kind", sc->kind);
  msgpack_pack_str_with_body(&pk, "input", 5);
  msgpack_pack_bin_with_body(&pk, sc->input.data != NULL ? sc->input.data : "",
                             sc->input.len);
  pack_str(&pk, "tz", sc->tz);
  pack_i64(&pk, "catch_up", sc->catch_up);
  pack_i64(&pk, "disposition", sc->disposition);
  pack_i64(&pk, "max_attempts", sc->max_attempts);
  pack_i64(&pk, "timeout_ms", sc->timeout_ms);
  pack_i64(&pk, "next_at", sc->next_at);
  pack_i64(&pk, "last_at", sc->last_at);
  pack_i64(&pk, "started", (int64_t)sc->started);
  pack_i64(&pk, "created_at", sc->created_at);
  pack_i64(&pk, "updated_at", sc->updated_at);
  return b->p == NULL && b->len > 0 ? LASH_ENOMEM : 0;
}

static int get_str(const msgpack_object *m, const char *k, lash__sv *v) {
  return lash__mp_sv(lash__mp_map_get(m, k), v, 0);
}

static int get_i64(const msgpack_object *m, const char *k, int64_t *v) {
  return lash__mp_i64(lash__mp_map_get(m, k), v);
}

/* Decodes @p val of schedule @p name into *out: its strings and input are
 * copied into one block (out->priv_). 0, LASH_ECORRUPT, LASH_ENOMEM. */
static int sched_decode(const char *name, size_t namelen, lash_bytes val,
                        msgpack_zone *z, lash_schedule *out) {
  msgpack_object m;
  lash__sv spec, kind, input, tz;
  int64_t cu, disp, maxa, tmo, started;
  char *blk, *p;
  memset(out, 0, sizeof *out);
  msgpack_zone_clear(z);
  if (lash__mp_unpack(val.data, val.len, z, &m) < 0 ||
      m.type != MSGPACK_OBJECT_MAP || get_str(&m, "spec", &spec) < 0 ||
      get_str(&m, "kind", &kind) < 0 ||
      lash__mp_bin(lash__mp_map_get(&m, "input"), &input) < 0 ||
      get_str(&m, "tz", &tz) < 0 || get_i64(&m, "catch_up", &cu) < 0 ||
      get_i64(&m, "disposition", &disp) < 0 ||
      get_i64(&m, "max_attempts", &maxa) < 0 ||
      get_i64(&m, "timeout_ms", &tmo) < 0 ||
      get_i64(&m, "next_at", &out->next_at) < 0 ||
      get_i64(&m, "last_at", &out->last_at) < 0 ||
      get_i64(&m, "started", &started) < 0 ||
      get_i64(&m, "created_at", &out->created_at) < 0 ||
      get_i64(&m, "updated_at", &out->updated_at) < 0 || cu < 0 ||
      cu > LASH_CATCHUP_ALL || maxa < 0 || maxa > UINT32_MAX)
    return LASH_ECORRUPT;
  blk = malloc(namelen + spec.n + kind.n + tz.n + input.n + 5);
  if (blk == NULL) return LASH_ENOMEM;
  p = blk;
#define COPY(field, sv)                                                        \
  do {                                                                         \
    memcpy(p, (sv).p, (sv).n);                                                 \
    p[(sv).n] = '\0';                                                          \
    out->field = p;                                                            \
    p += (sv).n + 1;                                                           \
  } while (0)
  {
    lash__sv nm = lash__sv_of(name, namelen);
    COPY(name, nm);
  }
  COPY(spec, spec);
  COPY(kind, kind);
  COPY(tz, tz);
#undef COPY
  memcpy(p, input.p, input.n);
  out->input.data = p;
  out->input.len = input.n;
  out->catch_up = (int)cu;
  out->disposition = (int)disp;
  out->max_attempts = (uint32_t)maxa;
  out->timeout_ms = tmo;
  out->started = (uint64_t)started;
  out->priv_ = blk;
  return 0;
}

void lash_schedule_free(lash_schedule *sc) {
  if (sc == NULL) return;
  free(sc->priv_);
  memset(sc, 0, sizeof *sc);
}

/* ------------------------------------------------------------- ticks */

int lash_schedule_ticks(const lash_schedule *sc, int64_t after_ms, int64_t *out,
                        int n) {
  lash_cron c;
  int i, rc;
  if (sc == NULL || sc->spec == NULL || (n > 0 && out == NULL))
    return LASH_EINVAL;
  if (lash_cron_parse(sc->spec, &c, NULL, 0) != 0) return LASH_EINVAL;
  for (i = 0; i < n; i++) {
    rc = lash_cron_next(&c, sc->tz, i == 0 ? after_ms : out[i - 1], &out[i]);
    if (rc == LASH_ENOENT) break;
    if (rc != 0) return rc;
  }
  return i;
}

/* ----------------------------------------------------------- checks */

static int sched_check(lash_store *s, const lash_schedule *sc, lash_cron *c,
                       size_t *namelen) {
  char err[512];
  int rc;
  if (sc == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_schedule_put: no schedule given");
  if ((rc = lash__check_name(s, "schedule name", sc->name)) < 0) return rc;
  *namelen = (size_t)rc;
  if (sc->spec == NULL)
    return lash__fail(s, LASH_EINVAL, "schedule %s: spec: missing", sc->name);
  if (lash_cron_parse(sc->spec, c, err, sizeof err) != 0)
    return lash__fail(s, LASH_EINVAL, "schedule %s: spec: %s", sc->name, err);
  if (lash_cron_tz_check(sc->tz, err, sizeof err) != 0)
    return lash__fail(s, LASH_EINVAL, "schedule %s: %s", sc->name, err);
  if ((rc = lash__check_kind(s, sc->kind, NULL)) < 0) return rc;
  if (lash_catchup_name(sc->catch_up) == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "schedule %s: catch_up %d is none of skip (0), one "
                      "(1), all (2)",
                      sc->name, sc->catch_up);
  if (sc->disposition != 0 && lash_disposition_name(sc->disposition) == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "schedule %s: disposition %d is not a disposition",
                      sc->name, sc->disposition);
  if (sc->timeout_ms < 0)
    return lash__fail(s, LASH_EINVAL,
                      "schedule %s: timeout_ms must be >= 0, got %lld",
                      sc->name, (long long)sc->timeout_ms);
  if (sc->input.len > lash_store_max_payload(s))
    return lash__fail(s, LASH_ETOOBIG,
                      "schedule %s: input of %zu bytes is over the limit of "
                      "%zu",
                      sc->name, sc->input.len, lash_store_max_payload(s));
  return 0;
}

/* 1 when the definitions of @p a and @p b are equal. */
static int same_def(const lash_schedule *a, const lash_schedule *b) {
  const char *ta = a->tz != NULL ? a->tz : "", *tb = b->tz != NULL ? b->tz : "";
  int da = a->disposition ? a->disposition : LASH_RERUNNABLE;
  int db = b->disposition ? b->disposition : LASH_RERUNNABLE;
  return strcmp(a->spec, b->spec) == 0 && strcmp(a->kind, b->kind) == 0 &&
         strcmp(ta, tb) == 0 && a->catch_up == b->catch_up && da == db &&
         a->max_attempts == b->max_attempts && a->timeout_ms == b->timeout_ms &&
         a->input.len == b->input.len &&
         (a->input.len == 0 ||
          memcmp(a->input.data, b->input.data, a->input.len) == 0);
}

/* The side table changed: other processes' feeds see the seq move. */
static int touch(lash_txn *t) {
  int rc = lash__meta_load(t);
  if (rc < 0) return rc;
  lash__next_change_seq(t);
  t->wrote = 1;
  return 0;
}

static int sched_write(lash_store *s, lash_txn *t, const lash_schedule *sc,
                       size_t namelen) {
  lash__buf b;
  int rc;
  memset(&b, 0, sizeof b);
  rc = sched_encode(sc, &b);
  if (rc == 0)
    rc = lash__kv_put(s, t, LASH_KV_SCHEDULE, sc->name, namelen, b.p, b.len);
  lash__buf_free(&b);
  return rc;
}

/* ------------------------------------------------------------ the API */

int lash_schedule_put(lash_store *s, lash_txn *txn, const lash_schedule *sc,
                      int *how) {
  lash_txn *t = NULL;
  lash_schedule cur, nw;
  lash_cron c;
  lash_bytes val;
  size_t namelen = 0;
  int64_t now;
  int rc, had = 0;

  lash__clear(s);
  if (how != NULL) *how = 0;
  if ((rc = sched_check(s, sc, &c, &namelen)) < 0) return rc;
  memset(&cur, 0, sizeof cur);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  rc = lash__kv_get(s, t, LASH_KV_SCHEDULE, sc->name, namelen, &val);
  if (rc == 0) {
    had = 1;
    rc = sched_decode(sc->name, namelen, val, &s->zone, &cur);
    if (rc == LASH_ECORRUPT)
      rc = lash__fail(s, rc, "schedule %s: the stored value is unreadable",
                      sc->name);
    else if (rc == LASH_ENOMEM)
      rc = lash__fail(s, rc, "out of memory reading schedule %s", sc->name);
  } else if (rc == LASH_ENOENT) {
    rc = 0;
  }
  if (rc < 0) goto out;
  if (had && same_def(&cur, sc)) {
    if (how != NULL) *how = LASH_SCHEDULE_SAME;
    goto out;
  }
  now = lash__now(s);
  nw = *sc;
  if (nw.tz == NULL) nw.tz = "";
  if (nw.disposition == 0) nw.disposition = LASH_RERUNNABLE;
  rc = lash_cron_next(&c, nw.tz, now, &nw.next_at);
  if (rc != 0) {
    rc = lash__fail(s, LASH_EINVAL,
                    "schedule %s: spec \"%s\" has no tick after now", sc->name,
                    sc->spec);
    goto out;
  }
  nw.last_at = had ? cur.last_at : 0;
  nw.started = had ? cur.started : 0;
  nw.created_at = had ? cur.created_at : now;
  nw.updated_at = now;
  if ((rc = sched_write(s, t, &nw, namelen)) < 0) goto out;
  if ((rc = touch(t)) < 0) goto out;
  if (how != NULL) *how = had ? LASH_SCHEDULE_REPLACED : LASH_SCHEDULE_CREATED;
out:
  lash_schedule_free(&cur);
  return lash__wend(s, t, rc);
}

int lash_schedule_get(lash_store *s, lash_txn *txn, const char *name,
                      lash_schedule *out) {
  lash_bytes val;
  int rc;
  lash__clear(s);
  if (out == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_schedule_get: no output given");
  memset(out, 0, sizeof *out);
  if ((rc = lash__check_name(s, "schedule name", name)) < 0) return rc;
  /* A write transaction of the caller (its own puts seen), else a read. */
  rc = lash__kv_get(s, txn, LASH_KV_SCHEDULE, name, (size_t)rc, &val);
  if (rc == LASH_ENOENT)
    return lash__fail(s, rc, "no schedule named %s (lash schedules lists them)",
                      name);
  if (rc < 0) return rc;
  rc = sched_decode(name, strlen(name), val, &s->zone, out);
  if (rc == LASH_ECORRUPT)
    return lash__fail(s, rc, "schedule %s: the stored value is unreadable",
                      name);
  if (rc == LASH_ENOMEM)
    return lash__fail(s, rc, "out of memory reading schedule %s", name);
  return 0;
}

int lash_schedule_delete(lash_store *s, lash_txn *txn, const char *name) {
  lash_txn *t = NULL;
  lash_bytes val;
  size_t namelen;
  int rc;
  lash__clear(s);
  if ((rc = lash__check_name(s, "schedule name", name)) < 0) return rc;
  namelen = (size_t)rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  rc = lash__kv_get(s, t, LASH_KV_SCHEDULE, name, namelen, &val);
  if (rc == LASH_ENOENT)
    rc = lash__fail(s, rc, "no schedule named %s (lash schedules lists them)",
                    name);
  if (rc == 0)
    rc = lash__kv_put(s, t, LASH_KV_SCHEDULE, name, namelen, NULL, 0);
  if (rc == 0) rc = touch(t);
  return lash__wend(s, t, rc);
}

typedef struct list_ctx {
  lash_store *s;
  lash_schedule_fn fn;
  void *ud;
  int rc;
} list_ctx;

static int list_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  list_ctx *l = ud;
  lash_schedule sc;
  int rc = sched_decode(key, keylen, val, &l->s->zone, &sc);
  if (rc < 0) {
    l->rc = lash__fail(l->s, rc,
                       "schedule %.*s: the stored value is "
                       "unreadable",
                       (int)keylen, key);
    return l->rc;
  }
  rc = l->fn(l->ud, &sc);
  lash_schedule_free(&sc);
  if (rc != 0) l->rc = rc;
  return rc;
}

int lash_schedules_list(lash_store *s, lash_txn *txn, lash_schedule_fn fn,
                        void *ud) {
  list_ctx l;
  int rc;
  lash__clear(s);
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_schedules_list: no callback");
  l.s = s;
  l.fn = fn;
  l.ud = ud;
  l.rc = 0;
  rc = lash__kv_scan(s, txn, LASH_KV_SCHEDULE, "", 0, NULL, 0, list_cb, &l);
  if (l.rc != 0) return l.rc < 0 ? l.rc : 0;
  return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ the tick */

/* The grace of tick @p t under catch_up skip: the time to the tick after
 * it, clamped to [GRACE_MIN_MS, GRACE_MAX_MS]. */
static int64_t grace_of(const lash_cron *c, const char *tz, int64_t t) {
  int64_t n;
  if (lash_cron_next(c, tz, t, &n) != 0) return GRACE_MAX_MS;
  n -= t;
  return n < GRACE_MIN_MS ? GRACE_MIN_MS : n > GRACE_MAX_MS ? GRACE_MAX_MS : n;
}

/* The latest tick in [from, now] (from is a tick <= now). */
static int64_t latest_due(const lash_cron *c, const char *tz, int64_t from,
                          int64_t now) {
  int64_t win = 3600000, best = from;
  for (;;) {
    int64_t after = now - win, t;
    if (after < from) after = from;
    /* ticks in (after, now] */
    while (lash_cron_next(c, tz, after, &t) == 0 && t <= now) {
      best = t;
      after = t;
    }
    if (best > from || now - win <= from) return best;
    win *= 24; /* no tick in the last window: look further back */
  }
}

static int start_child(lash_store *s, lash_txn *t, const lash_schedule *sc,
                       int64_t tick, size_t *n) {
  char id[LASH_ID_MAX + 1], iso[40];
  lash_def d;
  int created = 0, rc;
  snprintf(id, sizeof id, "%s@%s", sc->name, lash_cron_iso(tick, iso, 40));
  memset(&d, 0, sizeof d);
  d.id = id;
  d.kind = sc->kind;
  d.input = sc->input;
  d.disposition = sc->disposition ? sc->disposition : LASH_RERUNNABLE;
  d.max_attempts = sc->max_attempts;
  d.timeout_ms = sc->timeout_ms;
  rc = lash_register(s, t, &d, &created, NULL);
  /* A row of that id with another definition (started by hand, or by the
   * schedule before it was replaced): that tick has its row. */
  if (rc == LASH_ECONFLICT) return 0;
  if (rc < 0) return rc;
  if (created) (*n)++;
  return 0;
}

/* The tick registers rows through lash_register, which takes a caller's
 * transaction only as a batch: without one, the tick opens a batch of its
 * own (committed at its end). */
static int batch_end(lash_txn *t, int rc) {
  int crc;
  if (rc < 0 || !t->wrote) {
    lash_txn_abort(t);
    return rc;
  }
  crc = lash_txn_commit(t);
  return crc < 0 ? crc : rc;
}

int lash_schedule_tick(lash_store *s, lash_txn *txn, const char *name,
                       int64_t now, size_t *started) {
  lash_txn *t = NULL, *own = NULL;
  lash_schedule sc;
  lash_cron c;
  lash_bytes val;
  size_t namelen, n = 0;
  int64_t next;
  int rc, k;

  lash__clear(s);
  if (started != NULL) *started = 0;
  memset(&sc, 0, sizeof sc);
  if ((rc = lash__check_name(s, "schedule name", name)) < 0) return rc;
  namelen = (size_t)rc;
  if (txn == NULL) {
    if ((rc = lash_txn_begin(s, &own)) < 0) return rc;
    txn = own;
  }
  if ((rc = lash__wbegin(s, txn, &t)) < 0) goto out;
  rc = lash__kv_get(s, t, LASH_KV_SCHEDULE, name, namelen, &val);
  if (rc == 0) rc = sched_decode(name, namelen, val, &s->zone, &sc);
  if (rc == LASH_ECORRUPT)
    rc = lash__fail(s, rc, "schedule %s: the stored value is unreadable", name);
  if (rc < 0 || sc.next_at > now) goto out; /* gone, or another did it */
  if (lash_cron_parse(sc.spec, &c, NULL, 0) != 0) {
    rc = lash__fail(s, LASH_ECORRUPT,
                    "schedule %s: stored spec \"%s\" does "
                    "not parse",
                    name, sc.spec);
    goto out;
  }
  next = sc.next_at;
  if (sc.catch_up == LASH_CATCHUP_ALL) {
    /* Each due tick, oldest first; the rest in the next call. */
    for (k = 0; k < TICKS_PER_WRITE && next <= now; k++) {
      if ((rc = start_child(s, t, &sc, next, &n)) < 0) goto out;
      sc.last_at = next;
      if (lash_cron_next(&c, sc.tz, next, &next) != 0) next = INT64_MAX;
    }
  } else {
    int64_t last = latest_due(&c, sc.tz, sc.next_at, now);
    if (sc.catch_up == LASH_CATCHUP_ONE ||
        now - last < grace_of(&c, sc.tz, last)) {
      if ((rc = start_child(s, t, &sc, last, &n)) < 0) goto out;
      sc.last_at = last;
    }
    if (lash_cron_next(&c, sc.tz, now, &next) != 0) next = INT64_MAX;
  }
  sc.next_at = next;
  sc.started += n;
  rc = sched_write(s, t, &sc, namelen);
out:
  lash_schedule_free(&sc);
  if (t != NULL) rc = lash__wend(s, t, rc);
  if (own != NULL) rc = batch_end(own, rc);
  if (rc >= 0 && started != NULL) *started = n;
  return rc;
}
