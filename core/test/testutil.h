/* testutil.h - shared helpers for the core C tests.
 *
 * A temporary store directory under /tmp (removed at the end), a fake clock
 * installed with lash_store_set_clock, a check helper that fails the test on
 * any lash_check problem, event collection, record snapshots to prove that a
 * rejected call changed nothing, and tiny MessagePack encoders/decoders so
 * every payload the tests write is valid MessagePack. */
#ifndef LASH_TESTUTIL_H
#define LASH_TESTUTIL_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lash.h"
#include "tap.h"

/* ------------------------------------------------------------ backends */

/* Built with -DLASH_TEST_MEM, the registry tests run a second time on the
 * in-memory test backend (core/test/mem_backend.c); built with
 * -DLASH_TEST_PG, on PostgreSQL: every store the tests open goes through
 * tu_store_open, which maps the test's directory to a schema of its own
 * on the server named by $LASH_TEST_PG (postgresql://…; unset: the
 * whole test is one TAP skip line). */
#ifdef LASH_TEST_MEM
#include "mem_backend.h"
#define TU_MEM 1
#define TU_PG 0
#define TU_BACKEND "mem"
#define tu_store_open(target, opts, out, err, errlen)                          \
  lash_store_open_backend(lash_test_mem_backend(), (target), (opts), (out),    \
                          (err), (errlen))
#define tu_store_drop(target) lash_test_mem_drop(target)
#elif defined(LASH_TEST_PG)
#define TU_MEM 1
#define TU_PG 1
#define TU_BACKEND "postgresql"
/* Before main: no server configured, the whole test is one skip line. */
__attribute__((constructor)) static void tu_pg_check_(void) {
  const char *base = getenv("LASH_TEST_PG");
  if (base == NULL || strncmp(base, "postgresql://", 13) != 0) {
    printf("1..0 # skip no PostgreSQL server configured (set "
           "LASH_TEST_PG=postgresql://…; scripts/test does)\n");
    fflush(stdout);
    exit(0);
  }
}
static inline int tu_pg_open_(const char *dir, const lash_store_opts *opts,
                              lash_store **out, char *err, size_t errlen) {
  const char *base = getenv("LASH_TEST_PG");
  char target[1024];
  uint32_t h = 2166136261u;
  const char *p;
  for (p = dir; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  snprintf(target, sizeof target, "%s%sschema=t_%08x_%d", base,
           strchr(base, '?') ? "&" : "?", h, (int)getpid());
  return lash_store_open(target, opts, out, err, errlen);
}
#define tu_store_open tu_pg_open_
#define tu_store_drop(target) ((void)(target))
#else
#define TU_MEM 0
#define TU_PG 0
#define TU_BACKEND "lmdb"
#define tu_store_open lash_store_open
#define tu_store_drop(target) ((void)(target))
#endif

/* Inside a test function: on another backend than LMDB, one TAP skip line
 * and return (the test is about LMDB's files or OS processes). */
#define TU_SKIP_ON_MEM(why)                                                    \
  do {                                                                         \
    if (TU_MEM) {                                                              \
      printf("ok %d # skip on the " TU_BACKEND " backend: %s\n", ++tap_n_,     \
             (why));                                                           \
      return;                                                                  \
    }                                                                          \
  } while (0)

/* The same on PostgreSQL only (max_bytes is a map size of LMDB and of the
 * mem backend; a database server's disk is its own). */
#define TU_SKIP_ON_PG(why)                                                     \
  do {                                                                         \
    if (TU_PG) {                                                               \
      printf("ok %d # skip on the postgresql backend: %s\n", ++tap_n_, (why)); \
      return;                                                                  \
    }                                                                          \
  } while (0)

/* ------------------------------------------------------------ temp dirs */

static inline int tu_rmrf_cb_(const char *path, const struct stat *sb, int flag,
                              struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes @p path and everything under it. */
static inline void tu_rmrf(const char *path) {
  nftw(path, tu_rmrf_cb_, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates a fresh directory /tmp/lash-test-<6 random chars> into @p buf
 * (>= 64 bytes): mkdtemp's template ends in six 'X'. */
static inline int tu_mkdtemp(char *buf, size_t cap) {
  int n = snprintf(buf, cap, "/tmp/lash-test-");
  memset(buf + n, 'X', 6);
  buf[n + 6] = '\0';
  if (mkdtemp(buf) == NULL) {
    diag("mkdtemp: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* ----------------------------------------------------------- fake clock */

/* Atomic: the engine's heartbeat thread reads the clock too. */
static inline int64_t tu_clock_fn(void *ud) {
  return __atomic_load_n((int64_t *)ud, __ATOMIC_RELAXED);
}
static inline void tu_clock_add(int64_t *now, int64_t ms) {
  __atomic_add_fetch(now, ms, __ATOMIC_RELAXED);
}

#define TU_T0 INT64_C(1700000000000)

/* One store in a fresh temp directory, with a fake clock at env->now. The
 * store lives in root/store, a directory lash creates itself. */
typedef struct tu_env {
  char root[64];
  char dir[128];
  lash_store *s;
  int64_t now;
  lash_store_opts opts;
} tu_env;

static inline int tu_env_open_store_(tu_env *e) {
  char err[512] = "";
  int rc = tu_store_open(e->dir, &e->opts, &e->s, err, sizeof err);
  if (rc != 0) {
    diag("lash_store_open(%s): %s (%s)", e->dir, lash_err_name(rc), err);
    e->s = NULL;
    return rc;
  }
  lash_store_set_clock(e->s, tu_clock_fn, &e->now);
  return 0;
}

/* Opens a store with @p opts (NULL: defaults). Bails out of the whole test
 * executable if the store cannot be opened: nothing else can run. */
static inline lash_store *tu_open(tu_env *e, const lash_store_opts *opts) {
  memset(e, 0, sizeof *e);
  e->now = TU_T0;
  if (opts)
    e->opts = *opts;
  else
    lash_store_opts_init(&e->opts);
  if (tu_mkdtemp(e->root, sizeof e->root) != 0) {
    printf("Bail out! cannot create a temp dir\n");
    exit(1);
  }
  snprintf(e->dir, sizeof e->dir, "%s/store", e->root);
  if (tu_env_open_store_(e) != 0) {
    printf("Bail out! cannot open a store in %s\n", e->dir);
    tu_rmrf(e->root);
    exit(1);
  }
  return e->s;
}

/* Closes and reopens the same directory (same opts, same fake clock). */
static inline int tu_reopen(tu_env *e) {
  lash_store_close(e->s);
  e->s = NULL;
  return tu_env_open_store_(e);
}

static inline void tu_close(tu_env *e) {
  lash_store_close(e->s);
  e->s = NULL;
  tu_store_drop(e->dir);
  tu_rmrf(e->root);
}

/* ---------------------------------------------------------------- check */

static inline void tu_problem_(void *ud, const char *problem) {
  int *n = (int *)ud;
  if (*n < 20) diag("lash_check: %s", problem);
  (*n)++;
}

/* Runs lash_check and records one TAP line that fails on any problem. */
#define tu_check(s, ...)                                                       \
  do {                                                                         \
    int np_ = 0;                                                               \
    int rc_ = lash_check((s), tu_problem_, &np_);                              \
    if (!tap_ok_(rc_ == 0, "lash_check() == 0", __FILE__, __LINE__,            \
                 __VA_ARGS__))                                                 \
      printf("#   lash_check returned %d (%d problems reported)\n", rc_, np_); \
  } while (0)

/* ----------------------------------------------------- messages & codes */

static inline int tu_has(const char *hay, const char *needle) {
  return hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
}

/* is() on error codes that also prints the names and the store message. */
#define is_rc(s, got, want, ...)                                               \
  do {                                                                         \
    int g2_ = (got), w2_ = (want);                                             \
    if (!tap_ok_(g2_ == w2_, #got " == " #want, __FILE__, __LINE__,            \
                 __VA_ARGS__))                                                 \
      printf("#   got: %d (%s)\n#   expected: %d (%s)\n#   errmsg: %s\n", g2_, \
             lash_err_name(g2_), w2_, lash_err_name(w2_),                      \
             (s) ? lash_errmsg(s) : "(no store)");                             \
  } while (0)

/* ok() that the store's message contains @p needle. */
#define msg_has(s, needle, ...)                                                \
  do {                                                                         \
    const char *m_ = lash_errmsg(s);                                           \
    if (!tap_ok_(tu_has(m_, (needle)), "errmsg contains " #needle, __FILE__,   \
                 __LINE__, __VA_ARGS__))                                       \
      printf("#   errmsg: '%s'\n#   wanted: '%s'\n", m_ ? m_ : "(null)",       \
             (needle));                                                        \
  } while (0)

/* ------------------------------------------------------------- payloads */

/* Writes @p s as a MessagePack string into @p buf; returns the bytes. */
static inline lash_bytes tu_mp_str(unsigned char *buf, size_t cap,
                                   const char *s) {
  size_t n = strlen(s), h;
  lash_bytes b = {buf, 0};
  if (n < 32) {
    buf[0] = (unsigned char)(0xa0 | n);
    h = 1;
  } else if (n < 256) {
    buf[0] = 0xd9;
    buf[1] = (unsigned char)n;
    h = 2;
  } else {
    buf[0] = 0xda;
    buf[1] = (unsigned char)(n >> 8);
    buf[2] = (unsigned char)n;
    h = 3;
  }
  if (h + n > cap) {
    printf("Bail out! tu_mp_str buffer too small\n");
    exit(1);
  }
  memcpy(buf + h, s, n);
  b.len = h + n;
  return b;
}

/* A MessagePack positive integer (0..2^32-1). */
static inline lash_bytes tu_mp_uint(unsigned char *buf, uint32_t v) {
  lash_bytes b = {buf, 0};
  if (v < 128) {
    buf[0] = (unsigned char)v;
    b.len = 1;
  } else {
    buf[0] = 0xce;
    buf[1] = (unsigned char)(v >> 24);
    buf[2] = (unsigned char)(v >> 16);
    buf[3] = (unsigned char)(v >> 8);
    buf[4] = (unsigned char)v;
    b.len = 5;
  }
  return b;
}

/* A malloc'd MessagePack str32 of exactly @p total bytes (>= 5). */
static inline unsigned char *tu_mp_blob(size_t total) {
  unsigned char *p = malloc(total);
  size_t n = total - 5;
  if (p == NULL) {
    printf("Bail out! out of memory\n");
    exit(1);
  }
  p[0] = 0xdb;
  p[1] = (unsigned char)(n >> 24);
  p[2] = (unsigned char)(n >> 16);
  p[3] = (unsigned char)(n >> 8);
  p[4] = (unsigned char)n;
  memset(p + 5, 'x', n);
  return p;
}

static inline int tu_bytes_eq(lash_bytes a, const void *data, size_t len) {
  if (a.len != len) return 0;
  if (len == 0) return 1;
  return a.data != NULL && data != NULL && memcmp(a.data, data, len) == 0;
}

static inline int tu_bytes_has(const void *hay, size_t hlen, const char *s) {
  size_t n = strlen(s), i;
  const unsigned char *h = (const unsigned char *)hay;
  if (h == NULL || n > hlen) return 0;
  for (i = 0; i + n <= hlen; i++)
    if (memcmp(h + i, s, n) == 0) return 1;
  return 0;
}

/* Finds map key @p key in a MessagePack map and returns its unsigned value.
 * Returns 1 when found. */
static inline int tu_mp_map_uint(const void *data, size_t len, const char *key,
                                 uint64_t *out) {
  msgpack_unpacked u;
  size_t off = 0;
  int found = 0;
  uint32_t i;
  msgpack_unpacked_init(&u);
  if (data != NULL &&
      msgpack_unpack_next(&u, (const char *)data, len, &off) ==
          MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_MAP) {
    for (i = 0; i < u.data.via.map.size; i++) {
      msgpack_object_kv *kv = &u.data.via.map.ptr[i];
      if (kv->key.type == MSGPACK_OBJECT_STR &&
          kv->key.via.str.size == strlen(key) &&
          memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0 &&
          kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = kv->val.via.u64;
        found = 1;
        break;
      }
    }
  }
  msgpack_unpacked_destroy(&u);
  return found;
}

/* --------------------------------------------------------------- events */

typedef struct tu_ev {
  uint64_t seq;
  char type[LASH_NAME_MAX + 64];
  unsigned char *payload;
  size_t len;
  int64_t at;
  char pid[LASH_ID_MAX + 1];
} tu_ev;

typedef struct tu_evs {
  tu_ev *v;
  size_t n, cap;
  int stop_after; /* >0: return stop_value after that many events */
  int stop_value;
} tu_evs;

static inline int tu_evs_cb(void *ud, const lash_event *ev) {
  tu_evs *e = (tu_evs *)ud;
  tu_ev *t;
  if (e->n == e->cap) {
    e->cap = e->cap ? 2 * e->cap : 16;
    e->v = realloc(e->v, e->cap * sizeof *e->v);
  }
  t = &e->v[e->n++];
  memset(t, 0, sizeof *t);
  t->seq = ev->seq;
  snprintf(t->type, sizeof t->type, "%s", ev->type ? ev->type : "");
  snprintf(t->pid, sizeof t->pid, "%s", ev->process_id ? ev->process_id : "");
  t->len = ev->payload.len;
  t->payload = malloc(t->len ? t->len : 1);
  if (t->len) memcpy(t->payload, ev->payload.data, t->len);
  t->at = ev->at;
  if (e->stop_after > 0 && (int)e->n >= e->stop_after) return e->stop_value;
  return 0;
}

static inline void tu_evs_free(tu_evs *e) {
  size_t i;
  for (i = 0; i < e->n; i++)
    free(e->v[i].payload);
  free(e->v);
  memset(e, 0, sizeof *e);
}

/* Collects the events of @p id after @p after (limit 0 = all) into @p out
 * (which it first frees); returns lash_events_after's code. */
static inline int tu_events(lash_store *s, lash_txn *txn, const char *id,
                            uint64_t after, size_t limit, tu_evs *out) {
  tu_evs_free(out);
  return lash_events_after(s, txn, id, after, limit, tu_evs_cb, out);
}

/* Number of events of @p id (all types), or -1 on error. */
static inline long tu_event_count(lash_store *s, const char *id) {
  tu_evs e = {0};
  long n;
  int rc = tu_events(s, NULL, id, 0, 0, &e);
  n = rc == 0 ? (long)e.n : -1;
  tu_evs_free(&e);
  return n;
}

/* ------------------------------------------------------- record compare */

static inline int tu_streq_(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static inline int tu_bytes_same_(lash_bytes a, lash_bytes b) {
  return tu_bytes_eq(a, b.data, b.len);
}

/* 1 if every field of the two records is equal; else diag()s the first
 * difference and returns 0. */
static inline int tu_rec_same(const lash_record *a, const lash_record *b) {
#define TU_DIFF_(cond, what)                                                   \
  if (!(cond)) {                                                               \
    diag("record field differs: %s", what);                                    \
    return 0;                                                                  \
  }
  TU_DIFF_(tu_streq_(a->id, b->id), "id");
  TU_DIFF_(tu_streq_(a->kind, b->kind), "kind");
  TU_DIFF_(tu_bytes_same_(a->input, b->input), "input");
  TU_DIFF_(a->disposition == b->disposition, "disposition");
  TU_DIFF_(a->max_attempts == b->max_attempts, "max_attempts");
  TU_DIFF_(a->status == b->status, "status");
  TU_DIFF_(a->has_attempt == b->has_attempt, "has_attempt");
  if (a->has_attempt) {
    TU_DIFF_(strcmp(a->attempt.owner, b->attempt.owner) == 0, "attempt.owner");
    TU_DIFF_(strcmp(a->attempt.incarnation, b->attempt.incarnation) == 0,
             "attempt.incarnation");
    TU_DIFF_(a->attempt.fence == b->attempt.fence, "attempt.fence");
    TU_DIFF_(a->attempt.number == b->attempt.number, "attempt.number");
    TU_DIFF_(a->attempt.started_at == b->attempt.started_at,
             "attempt.started_at");
  }
  TU_DIFF_(tu_bytes_same_(a->outcome, b->outcome), "outcome");
  TU_DIFF_(tu_streq_(a->wait, b->wait), "wait");
  TU_DIFF_(a->wait_since == b->wait_since, "wait_since");
  TU_DIFF_(a->cancel_requested == b->cancel_requested, "cancel_requested");
  TU_DIFF_(tu_streq_(a->cancel_reason, b->cancel_reason), "cancel_reason");
  TU_DIFF_(a->abandon_requested == b->abandon_requested, "abandon_requested");
  TU_DIFF_(tu_streq_(a->abandon_by, b->abandon_by), "abandon_by");
  TU_DIFF_(tu_streq_(a->abandon_reason, b->abandon_reason), "abandon_reason");
  TU_DIFF_(a->created_at == b->created_at, "created_at");
  TU_DIFF_(a->updated_at == b->updated_at, "updated_at");
  TU_DIFF_(a->last_seq == b->last_seq, "last_seq");
  TU_DIFF_(a->change_seq == b->change_seq, "change_seq");
  TU_DIFF_(tu_streq_(a->parent, b->parent), "parent");
#undef TU_DIFF_
  return 1;
}

/* ------------------------------------------------------------ snapshots */

/* What "nothing changed" compares: the record, the store change seq and
 * the event log length. */
typedef struct tu_snap {
  int rc;
  lash_record rec;
  uint64_t cseq;
  long nevents;
} tu_snap;

static inline void tu_snap_take(lash_store *s, const char *id, tu_snap *sn) {
  memset(sn, 0, sizeof *sn);
  sn->rc = lash_get(s, NULL, id, &sn->rec, NULL);
  sn->cseq = lash_change_seq(s);
  sn->nevents = sn->rc == 0 ? tu_event_count(s, id) : -1;
}

static inline void tu_snap_free(tu_snap *sn) {
  lash_record_free(&sn->rec);
}

/* 1 if the row, the log length and the store change seq are unchanged. */
static inline int tu_snap_same(lash_store *s, const char *id,
                               const tu_snap *sn) {
  tu_snap now;
  int same = 1;
  tu_snap_take(s, id, &now);
  if (now.rc != sn->rc) {
    diag("lash_get rc %d -> %d", sn->rc, now.rc);
    same = 0;
  } else if (now.rc == 0 && !tu_rec_same(&sn->rec, &now.rec)) {
    same = 0;
  }
  if (now.cseq != sn->cseq) {
    diag("change seq %" PRIu64 " -> %" PRIu64, sn->cseq, now.cseq);
    same = 0;
  }
  if (now.nevents != sn->nevents) {
    diag("event count %ld -> %ld", sn->nevents, now.nevents);
    same = 0;
  }
  tu_snap_free(&now);
  return same;
}

/* ------------------------------------------------------------ shortcuts */

static inline lash_def tu_def(const char *id, const char *kind, int disposition,
                              uint32_t max_attempts) {
  lash_def d;
  memset(&d, 0, sizeof d);
  d.id = id;
  d.kind = kind;
  d.input.data = "\x80"; /* an empty MessagePack map */
  d.input.len = 1;
  d.disposition = disposition;
  d.max_attempts = max_attempts;
  return d;
}

/* Registers rows "<prefix>-00000".. of kind "k", each with a @p size-byte
 * input, own commit each, until @p n are in or one fails. Returns how many
 * went in; *rc gets the last result, @p id (idcap bytes) the last id
 * tried. */
static inline int tu_fill(lash_store *s, const char *prefix, int n, size_t size,
                          char *id, size_t idcap, int *rc) {
  unsigned char *blob = tu_mp_blob(size);
  int i, done = 0;
  *rc = 0;
  for (i = 0; i < n; i++) {
    lash_def d;
    snprintf(id, idcap, "%s-%05d", prefix, i);
    d = tu_def(id, "k", LASH_RERUNNABLE, 0);
    d.input.data = blob;
    d.input.len = size;
    if ((*rc = lash_register(s, NULL, &d, NULL, NULL)) != 0) break;
    done++;
  }
  free(blob);
  return done;
}

/* Registers a row (input {}) and returns lash_register's code. */
static inline int tu_reg(lash_store *s, const char *id, const char *kind,
                         int disposition, uint32_t max_attempts) {
  lash_def d = tu_def(id, kind, disposition, max_attempts);
  return lash_register(s, NULL, &d, NULL, NULL);
}

/* Status of @p id, or the negative lash_get code. */
static inline int tu_status(lash_store *s, const char *id) {
  lash_record r;
  int rc;
  memset(&r, 0, sizeof r);
  rc = lash_get(s, NULL, id, &r, NULL);
  if (rc == 0) rc = r.status;
  lash_record_free(&r);
  return rc;
}

/* ------------------------------------------------- commit hook recorder */

/* Records the last commit hook call (its first 8 changes). */
typedef struct hook_rec {
  int calls;
  size_t n;
  char id[8][LASH_ID_MAX + 1];
  uint64_t first_seq[8], last_seq[8];
  int status[8], registered[8];
} hook_rec;

static inline void hook_fn(void *ud, const lash_change *c, size_t n) {
  hook_rec *h = (hook_rec *)ud;
  size_t i;
  h->calls++;
  h->n = n;
  for (i = 0; i < n && i < 8; i++) {
    snprintf(h->id[i], sizeof h->id[i], "%s", c[i].id);
    h->first_seq[i] = c[i].first_seq;
    h->last_seq[i] = c[i].last_seq;
    h->status[i] = c[i].status;
    h->registered[i] = c[i].registered;
  }
}

#endif
