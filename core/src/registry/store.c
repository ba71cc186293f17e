/* store.c - opening a store (a target names its backend), closing it, the
 * clock, lease tokens, the wake source, a held batch's begin, the
 * change_seq point read, stats. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include "base/inject.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* -------------------------------------------------------------- clock */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lash__now(lash_store *s) {
  if (s->clock != NULL) return s->clock(s->clock_ud);
  return s->b->m->now != NULL ? s->b->m->now(s->b) : wall_ms();
}

int64_t lash_store_now(lash_store *s) {
  return lash__now(s);
}

void lash_store_set_clock(lash_store *s, lash_clock_fn fn, void *ud) {
  s->clock = fn;
  s->clock_ud = fn != NULL ? ud : NULL;
}

void lash_store_set_ambient(lash_store *s, lash_txn *txn) {
  if (s == NULL) return;
  s->ambient = txn;
  if (txn != NULL) s->ambient_thread = pthread_self();
}

size_t lash_store_max_payload(const lash_store *s) {
  return s->opts.max_payload;
}

int lash_store_reopens(const lash_store *s) {
  /* a test build can make any store one that reopens (base/inject.h) */
  return s->b->reopens || LASH_INJECT("store.reopens") > 0;
}

const char *lash_store_path(const lash_store *s) {
  return s->path;
}

int lash_store_wake_source(lash_store *s, lash_wake_source *out) {
  int rc;
  if (out == NULL) return LASH_EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = LASH_WAKE_NONE;
  out->fd = -1;
  if (s == NULL) return LASH_EINVAL;
  if ((rc = s->b->m->wake_source(s->b, out)) < 0) {
    memset(out, 0, sizeof *out);
    out->kind = LASH_WAKE_NONE;
    out->fd = -1;
  }
  return rc;
}

int lash_store_wake_consume(lash_store *s) {
  if (s == NULL) return LASH_EINVAL;
  return s->b->m->wake_consume != NULL ? s->b->m->wake_consume(s->b) : 0;
}

void lash_store_on_commit(lash_store *s, lash_commit_fn fn, void *ud) {
  s->on_commit = fn;
  s->on_commit_ud = ud;
}

/* ------------------------------------------------------------- tokens */

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t seed64(void) {
  uint64_t seed = 0;
  struct timespec ts;
  ssize_t n = getrandom(&seed, sizeof seed, GRND_NONBLOCK);
  if (n != (ssize_t)sizeof seed) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) seed = 0;
      close(fd);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return seed ^ mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                      ((uint64_t)getpid() << 40));
}

/* The pid, asked once per process (getpid is a system call, and a claim
 * mints a token): a fork's child asks again. */
static int tok_pid; /* 0: not asked since the process began or forked */
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static void tok_forked(void) {
  __atomic_store_n(&tok_pid, 0, __ATOMIC_RELAXED);
}
static void tok_init(void) {
  (void)pthread_atfork(NULL, NULL, tok_forked);
}
static uint64_t tok_pid_now(void) {
  int p;
  pthread_once(&tok_once, tok_init);
  if ((p = __atomic_load_n(&tok_pid, __ATOMIC_RELAXED)) == 0) {
    p = (int)getpid();
    __atomic_store_n(&tok_pid, p, __ATOMIC_RELAXED);
  }
  return (uint64_t)(unsigned)p;
}

/* A random non-zero token: the seed (random once per store), a counter,
 * the pid and the time, mixed, so two stores or processes never agree. */
uint64_t lash__token(lash_store *s) {
  struct timespec ts;
  uint64_t t;
  clock_gettime(CLOCK_REALTIME, &ts);
  t = mix64(s->tok_seed ^ mix64(++s->tok_ctr) ^
            mix64((tok_pid_now() << 32) ^ (uint64_t)ts.tv_nsec ^
                  (uint64_t)ts.tv_sec));
  return t != 0 ? t : 1;
}

/* --------------------------------------------------------------- open */

void lash_store_opts_init(lash_store_opts *o) {
  memset(o, 0, sizeof *o);
  o->durability = LASH_DURABILITY_FULL;
  o->max_bytes = LASH__DEFAULT_MAX_BYTES;
  o->max_payload = LASH__DEFAULT_MAX_PAYLOAD;
  o->max_readers = LASH__DEFAULT_MAX_READERS;
}

/* Every method but the optional ones (wake_consume, audit, now). */
static int methods_complete(const lash_backend_methods *m) {
  return m->name != NULL && m->open != NULL && m->close != NULL &&
         m->begin != NULL && m->commit != NULL && m->abort != NULL &&
         m->load != NULL && m->save != NULL && m->remove != NULL &&
         m->meta_get != NULL && m->meta_put != NULL && m->change_seq != NULL &&
         m->scan != NULL && m->wake_source != NULL && m->stats != NULL &&
         /* version 3: replay keys (A) */
         m->key_get != NULL &&
         /* version 4: the side table (kv) */
         m->kv_get != NULL && m->kv_put != NULL;
}

static void store_free(lash_store *s) {
  int i;
  if (s->b != NULL) s->b->m->close(s->b);
  msgpack_zone_destroy(&s->zone);
  pthread_mutex_destroy(&s->mu);
  lash__buf_free(&s->rbuf);
  lash__buf_free(&s->wbuf);
  lash__buf_free(&s->vbuf);
  lash__buf_free(&s->kvbuf); /* the side table (kv) */
  for (i = 0; i < LASH__OP_EVENTS; i++) {
    lash__buf_free(&s->ebuf[i]);
    lash__buf_free(&s->pbuf[i]);
  }
  lash__txn_free(&s->own);
  lash__txn_free(&s->batch);
  free(s->path);
  free(s);
}

/* Opens @p where (the target without its scheme) through @p m; @p target
 * (as given) is the store's name. */
static int open_with(const lash_backend_methods *m, const char *target,
                     const char *where, const lash_store_opts *opts,
                     lash_store **out, char *err, size_t errlen) {
  lash_store *s = NULL;
  int rc = 0, backend_err = 0;

  pthread_mutexattr_t ma;
  s = calloc(1, sizeof *s);
  if (s == NULL || !msgpack_zone_init(&s->zone, 4096)) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "out of memory opening store %s", target);
    free(s);
    return LASH_ENOMEM;
  }
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&s->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  if (opts != NULL)
    s->opts = *opts;
  else
    lash_store_opts_init(&s->opts);
  if (s->opts.max_payload == 0) s->opts.max_payload = LASH__DEFAULT_MAX_PAYLOAD;
  s->path = strdup(target);
  if (s->path == NULL) {
    rc = lash__fail(s, LASH_ENOMEM, "out of memory opening store %s", target);
    goto out;
  }
  if (s->opts.durability < LASH_DURABILITY_FULL ||
      s->opts.durability > LASH_DURABILITY_NONE) {
    rc = lash__fail(s, LASH_EINVAL,
                    "store %s: durability %d is not one of full (0), "
                    "nometa (1), none (2)",
                    target, s->opts.durability);
    goto out;
  }
  if (s->opts.max_payload > (size_t)1 << 30) {
    rc = lash__fail(s, LASH_EINVAL, "store %s: max_payload %zu is over 1 GiB",
                    target, s->opts.max_payload);
    goto out;
  }
  /* The backend writes its own failure into err. */
  rc = m->open(where, &s->opts, LASH_FORMAT_VERSION, &s->b, err, errlen);
  if (rc < 0) {
    s->b = NULL;
    backend_err = 1;
    goto out;
  }
  s->b->errmsg = s->errmsg;
  s->b->errcap = sizeof s->errmsg;
  s->b->panicked = 0;
  s->tok_seed = seed64();
  s->own.s = s;
  s->batch.s = s;
  s->batch.batch = 1;
  *out = s;
  s = NULL;
out:
  if (s != NULL) {
    if (!backend_err && err != NULL && errlen > 0)
      snprintf(err, errlen, "%s", s->errmsg);
    store_free(s);
  }
  return rc;
}

static int open_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int open_fail(int rc, char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return rc;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

int lash_store_open_backend(const lash_backend_methods *m, const char *target,
                            const lash_store_opts *opts, lash_store **out,
                            char *err, size_t errlen) {
  if (out != NULL) *out = NULL;
  if (m == NULL)
    return open_fail(LASH_EINVAL, err, errlen,
                     "lash_store_open_backend: no methods table given");
  if (m->version < LASH_BACKEND_VERSION_MIN ||
      m->version > LASH_BACKEND_VERSION)
    return open_fail(LASH_EINVAL, err, errlen,
                     "lash_store_open_backend: backend %s has table "
                     "version %d, this lash knows versions %d to %d",
                     m->name != NULL ? m->name : "(unnamed)", m->version,
                     LASH_BACKEND_VERSION_MIN, LASH_BACKEND_VERSION);
  if (!methods_complete(m))
    return open_fail(LASH_EINVAL, err, errlen,
                     "lash_store_open_backend: backend %s lacks a required "
                     "method",
                     m->name != NULL ? m->name : "(unnamed)");
  if (out == NULL || target == NULL || target[0] == '\0')
    return open_fail(LASH_EINVAL, err, errlen, "lash_store_open: %s",
                     target == NULL || target[0] == '\0'
                         ? "no store directory given"
                         : "no output handle given");
  return open_with(m, target, target, opts, out, err, errlen);
}

/* Length of a "scheme:" prefix (letters, then ':'), or 0 for a path. */
static size_t scheme_len(const char *target) {
  size_t n = 0;
  while ((target[n] >= 'a' && target[n] <= 'z') ||
         (target[n] >= 'A' && target[n] <= 'Z'))
    n++;
  return n > 0 && target[n] == ':' ? n : 0;
}

/* The backends a target can name by scheme; the first opens plain paths. */
static const lash_backend_methods *(*const builtin[])(void) = {
    lash_backend_lmdb, lash_backend_pg};
#define NBUILTIN (sizeof builtin / sizeof builtin[0])

int lash_store_open(const char *target, const lash_store_opts *opts,
                    lash_store **out, char *err, size_t errlen) {
  const lash_backend_methods *m = builtin[0]();
  const char *where = target;
  size_t n, i, at;
  char known[256];

  if (out != NULL) *out = NULL;
  if (out == NULL || target == NULL || target[0] == '\0')
    return open_fail(LASH_EINVAL, err, errlen, "lash_store_open: %s",
                     target == NULL || target[0] == '\0'
                         ? "no store directory given"
                         : "no output handle given");
  if ((n = scheme_len(target)) > 0) {
    for (i = 0, m = NULL; i < NBUILTIN && m == NULL; i++)
      if (strlen(builtin[i]()->name) == n &&
          strncmp(target, builtin[i]()->name, n) == 0)
        m = builtin[i]();
    if (m == NULL) {
      for (i = 0, at = 0, known[0] = '\0'; i < NBUILTIN && at < sizeof known;
           i++)
        at += (size_t)snprintf(known + at, sizeof known - at, "%s%s:%s",
                               i > 0 ? ", " : "", builtin[i]()->name,
                               i > 0 ? "//…" : "PATH");
      return open_fail(LASH_EINVAL, err, errlen,
                       "store target %s: unknown scheme \"%.*s:\"; this lash "
                       "knows %s (or a plain directory path)",
                       target, (int)n, target, known);
    }
    where = target + n + 1;
    if (where[0] == '\0')
      return open_fail(LASH_EINVAL, err, errlen,
                       "lash_store_open: no store directory given after "
                       "\"%.*s:\"",
                       (int)n, target);
  }
  return open_with(m, target, where, opts, out, err, errlen);
}

void lash_store_close(lash_store *s) {
  if (s == NULL) return;
  if (s->batch.active) lash_txn_abort(&s->batch);
  lash__txn_abort(&s->batch);
  lash__txn_abort(&s->own);
  store_free(s);
}

/* A batch held across its caller's code: the backend's begin sees
 * b->held (under the store's mutex, so no other thread's write does). */
int lash_txn_begin_held(lash_store *s, lash_txn **out) {
  int rc;
  if (s == NULL) return lash_txn_begin(s, out);
  lash__lock(s);
  s->b->held = 1;
  rc = lash_txn_begin(s, out);
  s->b->held = 0;
  lash__unlock(s);
  return rc;
}

/* ------------------------------------------------------ point reads */

void lash_store_commit_range(const lash_store *s, uint64_t *from,
                             uint64_t *to) {
  *from = s != NULL ? s->report_from : 0;
  *to = s != NULL ? s->report_to : 0;
}

uint64_t lash_change_seq(lash_store *s) {
  uint64_t seq = 0;
  int rc;
  lash__clear(s);
  lash__lock(s);
  rc = s->b->m->change_seq(s->b, &seq);
  lash__unlock(s);
  return rc < 0 ? 0 : seq;
}

int lash_store_stats(lash_store *s, lash_txn *txn, lash_stats *out) {
  lash_btxn *bt = NULL;
  lash_bmeta m;
  lash_bstats bs;
  int rc, i;

  lash__clear(s);
  if (out == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_store_stats: no output given");
  memset(out, 0, sizeof *out);
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  /* A batch's re-registrations drop tombstones at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) goto out;
  if (txn != NULL && txn->meta_loaded) {
    m.change_seq = txn->change_seq;
    memcpy(m.counts, txn->counts, sizeof m.counts);
    m.suspended = txn->suspended;
  } else if ((rc = s->b->m->meta_get(s->b, bt, &m)) < 0) {
    goto out;
  }
  out->change_seq = m.change_seq;
  out->suspended = m.suspended;
  for (i = LASH_PENDING; i <= LASH_ABANDONED; i++) {
    out->count[i] = m.counts[i];
    out->total += m.counts[i];
    if (!LASH_IS_TERMINAL(i)) out->live += m.counts[i];
  }
  memset(&bs, 0, sizeof bs);
  if ((rc = s->b->m->stats(s->b, bt, &bs)) < 0) goto out;
  out->tombstones = bs.tombstones;
  out->bytes_used = bs.bytes_used;
  out->bytes_data = bs.bytes_data;
  out->bytes_available = bs.bytes_available;
  out->no_lock = bs.no_lock;
  out->longest_write_us = (uint64_t)s->longest_write_us;
out:
  lash__rend(s, txn, bt);
  return rc;
}
