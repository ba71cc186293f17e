/* engine/renew.c - the heartbeat thread (see renew.h).
 *
 * Part: renew. May call: the registry (lash.h), writer, pump (handles),
 * base/queue; the holder only through on_wake and the stall hook. */
#include "engine/renew.h"

#include "base/inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A body the loop has been inside this long when the emergency deadline
 * passes means the loop does not answer. */
#define EMERGENCY_STUCK_MS 250
/* Idle this long, the thread sleeps until a lease is held (no ticks): a
 * busy engine's short runs do not wake it one by one. */
#define IDLE_SLEEP_MS 2000

static int fatal(int rc) {
  return rc == LASH_EIO || rc == LASH_EFULL || rc == LASH_EPANIC ||
         rc == LASH_ENOMEM || rc == LASH_ECORRUPT;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u;
}

/* ------------------------------------------------------- the held list */

void lash__renew_hold(lash__renew *r, lash__held *h) {
  int wake;
  pthread_mutex_lock(&r->mu);
  h->r = r;
  h->held_at = mono_ms();
  if (h->budget_ms > 0) h->deadline = (int64_t)h->held_at + h->budget_ms;
  r->n++;
  wake = r->asleep;
  r->asleep = 0;
  lash__q_push(&r->held, &h->link);
  pthread_mutex_unlock(&r->mu);
  if (wake) sem_post(&r->sem);
}

void lash__renew_unhold(lash__renew *r, lash__held *h) {
  pthread_mutex_lock(&r->mu);
  lash__q_remove(&h->link);
  r->n--;
  h->r = NULL;
  pthread_mutex_unlock(&r->mu);
}

/* done = 1: renew it no more (and it is not in its body); 0: again. */
static void held_set_done(lash__held *h, int done) {
  lash__renew *r = h->r;
  if (r != NULL) pthread_mutex_lock(&r->mu);
  h->done = done;
  if (done) h->busy_since = 0;
  if (r != NULL) pthread_mutex_unlock(&r->mu);
}

void lash__held_done(lash__held *h) {
  held_set_done(h, 1);
}

void lash__held_undone(lash__held *h) {
  held_set_done(h, 0);
}

void lash__held_busy(lash__held *h, int on) {
  lash__renew *r = h->r;
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  h->busy_since = on ? mono_ms() : 0;
  h->stalled = 0;
  pthread_mutex_unlock(&r->mu);
}

void lash__held_flags(lash__held *h, int *lost, int *over, int *busy) {
  lash__renew *r = h->r;
  *lost = h->lost;
  if (over != NULL) *over = 0;
  *busy = 0;
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  *lost = h->lost;
  *busy = h->busy_since != 0;
  if (over != NULL && h->over && !h->over_seen && !h->done && !*busy) {
    h->over_seen = 1;
    *over = 1;
  }
  pthread_mutex_unlock(&r->mu);
}

void lash__renew_set_stall(lash__renew *r, lash__stall_fn fn, void *ud) {
  pthread_mutex_lock(&r->mu);
  r->stall = fn;
  r->stall_ud = ud;
  pthread_mutex_unlock(&r->mu);
}

/* The one walk over the held leases from the loop (the thread stopped):
 * releases each that is neither done nor lost. */
int lash__renew_release_all_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash__renew *r = ud;
  lash__q *q;
  int rc;
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    if (h->done || h->lost) continue;
    LASH_INJECT("engine.before_release");
    rc = lash_lease_release(s, txn, &h->lease);
    if (rc < 0 && fatal(rc)) return rc;
  }
  return 0;
}

/* ------------------------------------------------------------ renewal */

/* Copies of the leases to renew (not done, not lost, within budget), taken
 * under mu; NULL when there are none. */
static lash_lease *snapshot(lash__renew *r, size_t *n, uint64_t now,
                            int budget_only) {
  lash_lease *v;
  lash__q *q;
  size_t k = 0;
  *n = 0;
  pthread_mutex_lock(&r->mu);
  if (r->n == 0 || (v = malloc((size_t)r->n * sizeof *v)) == NULL) {
    pthread_mutex_unlock(&r->mu);
    return NULL;
  }
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    if (h->done || h->lost) continue;
    if (budget_only && h->deadline != 0 && (int64_t)now >= h->deadline)
      continue; /* past its budget: the lease lapses */
    v[k++] = h->lease;
  }
  pthread_mutex_unlock(&r->mu);
  *n = k;
  if (k == 0) {
    free(v);
    return NULL;
  }
  return v;
}

static void mark_lost(lash__renew *r, const lash_lease *ls) {
  lash__q *q;
  pthread_mutex_lock(&r->mu);
  r->refused++;
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    if (h->lease.token == ls->token && h->lease.fence == ls->fence &&
        strcmp(h->lease.process_id, ls->process_id) == 0)
      h->lost = 1;
  }
  pthread_mutex_unlock(&r->mu);
}

/* The store could not be reached this round (a lost connection that the
 * store reconnects): a lease not renewed since TTL - one renewal ago may
 * lapse before the store is back, and then another owner may claim its
 * row, so its body is dropped now, before it can run twice at once (its
 * writes would be refused by the fence anyway). 1 when one was. */
static int lapsed(lash__renew *r, uint64_t now) {
  lash__q *q;
  unsigned k = 0;
  pthread_mutex_lock(&r->mu);
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    uint64_t since = h->held_at > r->ok_at ? h->held_at : r->ok_at;
    if (h->done || h->lost) continue;
    if (now >= since + (uint64_t)(r->ttl_ms - r->every_ms)) {
      h->lost = 1;
      k++;
    }
  }
  r->refused += k;
  pthread_mutex_unlock(&r->mu);
  if (k > 0)
    fprintf(stderr,
            "lash: %s: heartbeat: the store was unreachable for too long: "
            "%u leases may lapse before it is back; their bodies are "
            "dropped (their rows run again once the leases lapsed)\n",
            r->owner, k);
  return k > 0;
}

/* One round: each lease in its own short write of the store's (txn NULL),
 * under the store mutex for the whole round. 1 when a lease was lost. */
static int renew_round(lash__renew *r, uint64_t now) {
  lash_lease *v;
  size_t n, i;
  int lost = 0, rc, unreached = 0;
  if ((v = snapshot(r, &n, now, 1)) == NULL) return 0;
  if ((rc = lash_store_lock(r->s, r->every_ms)) < 0) {
    fprintf(stderr,
            "lash: %s: heartbeat: the store stayed busy for %lld ms (a "
            "body holding a write batch?): %zu leases not renewed now\n",
            r->owner, (long long)r->every_ms, n);
    free(v);
    return 0;
  }
  for (i = 0; i < n; i++) {
    LASH_INJECT("engine.renew");
    rc = lash_lease_renew(r->s, NULL, &v[i], r->ttl_ms);
    if (rc == LASH_ESUPERSEDED) {
      fprintf(stderr, "lash: %s: heartbeat: %s; its body is dropped\n",
              r->owner, lash_errmsg(r->s));
      mark_lost(r, &v[i]);
      lost = 1;
    } else if (rc < 0) {
      fprintf(stderr, "lash: %s: heartbeat: renewing the lease of %s: %s\n",
              r->owner, v[i].process_id, lash_errmsg(r->s));
      /* the store is away: the others would fail (and wait) alike */
      if (fatal(rc) && lash_store_reopens(r->s)) {
        unreached = 1;
        break;
      }
    }
  }
  lash_store_unlock(r->s);
  if (!unreached)
    r->ok_at = now;
  else
    lost |= lapsed(r, now);
  pthread_mutex_lock(&r->mu);
  r->renewals++;
  pthread_mutex_unlock(&r->mu);
  free(v);
  return lost;
}

/* ----------------------------------------------------------- watchdog */

/* Under mu: stalls and budgets. 1 when the loop must look (on_wake). */
static int watch(lash__renew *r, uint64_t now, const lash__held **stuck) {
  lash__q *q;
  int wake = 0;
  *stuck = NULL;
  for (q = r->held.next; q != &r->held; q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    uint64_t busy = h->busy_since != 0 ? now - h->busy_since : 0;
    if (h->done || h->lost) continue;
    if (h->busy_since != 0 && busy >= EMERGENCY_STUCK_MS) *stuck = h;
    if (h->busy_since != 0 && !h->stalled && r->stall_ms > 0 &&
        busy >= (uint64_t)r->stall_ms) {
      h->stalled = 1;
      if (r->stall != NULL)
        r->stall(r->stall_ud, h->holder, LASH_STALL_LOOP, (int64_t)busy);
    }
    if (h->deadline != 0 && (int64_t)now >= h->deadline) {
      h->over = 1;
      if (h->busy_since == 0)
        wake |= !h->over_seen; /* the loop ends its wait */
      else if (r->stall != NULL)
        r->stall(r->stall_ud, h->holder, LASH_STALL_BUDGET, h->budget_ms);
    }
  }
  return wake;
}

/* The loop did not answer a stop signal within the grace period: release
 * every lease (abandoning owner_bound rows, as at drain), say so, exit. */
static void emergency(lash__renew *r, const char *stuck_id, uint64_t stuck_ms) {
  lash__q *q;
  lash_lease *v;
  int *ob;
  size_t n = 0, i;
  unsigned released = 0, abandoned = 0;
  lash_txn *t = NULL;
  pthread_mutex_lock(&r->mu);
  v = malloc(((size_t)r->n + 1) * sizeof *v);
  ob = malloc(((size_t)r->n + 1) * sizeof *ob);
  for (q = r->held.next; v != NULL && ob != NULL && q != &r->held;
       q = q->next) {
    lash__held *h = LASH__CONTAINER_OF(q, lash__held, link);
    if (h->done || h->lost) continue;
    ob[n] = h->owner_bound;
    v[n++] = h->lease;
  }
  pthread_mutex_unlock(&r->mu);
  if (v != NULL && ob != NULL && lash_store_lock(r->s, 1000) == 0) {
    /* Nothing of the loop's may run on this thread: no commit hook. */
    lash_store_on_commit(r->s, NULL, NULL);
    if (lash_txn_begin(r->s, &t) == 0) {
      for (i = 0; i < n; i++) {
        int rc = -1;
        if (ob[i]) {
          unsigned char buf[512];
          lash_bytes b;
          int k = lash_abandon_payload(LASH_WRITER_OWNER_DRAIN, r->owner, buf,
                                       sizeof buf);
          if (k >= 0) {
            b.data = buf;
            b.len = (size_t)k;
            rc = lash_complete(r->s, t, &v[i], LASH_ABANDONED, b);
          }
          if (rc >= 0) {
            abandoned++;
            continue;
          }
        }
        if (lash_lease_release(r->s, t, &v[i]) == 0) released++;
      }
      if (lash_txn_commit(t) < 0) released = abandoned = 0;
    }
    lash_store_unlock(r->s);
  }
  fprintf(stderr,
          "lash: %s: the loop did not answer the stop signal in time "
          "(process %s has run %llu ms without yielding): %u leases "
          "released, %u owner_bound rows abandoned; exiting\n",
          r->owner, stuck_id, (unsigned long long)stuck_ms, released,
          abandoned);
  _exit(1);
}

/* Sleeps until @p ms pass or the semaphore is posted (ms < 0: no bound). */
static void nap(lash__renew *r, int64_t ms) {
  struct timespec ts;
  if (ms < 0) {
    while (sem_wait(&r->sem) != 0 && errno == EINTR) {
    }
    return;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  while (sem_timedwait(&r->sem, &ts) != 0 && errno == EINTR) {
  }
}

static int64_t tick_ms(const lash__renew *r) {
  int64_t t = r->every_ms;
  if (r->stall_ms > 0 && r->stall_ms < t) t = r->stall_ms;
  t /= 5;
  return t < 10 ? 10 : t > 100 ? 100 : t;
}

static void *thread_main(void *ud) {
  lash__renew *r = ud;
  char err[512];
  uint64_t next_renew = 0, idle_since = mono_ms();
  int idle = 1;
  lash_thread_errbuf(err, sizeof err);
  for (;;) {
    const lash__held *stuck;
    uint64_t now, emerg;
    int wake, stop, deep;
    uint64_t n;
    emerg = (uint64_t)__atomic_load_n(&r->emerg_at, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->mu);
    n = r->n;
    stop = r->stop;
    deep = n == 0 && emerg == 0 && mono_ms() - idle_since >= IDLE_SLEEP_MS;
    r->asleep = deep;
    pthread_mutex_unlock(&r->mu);
    if (stop) break;
    nap(r, deep ? -1 : tick_ms(r));
    now = mono_ms();
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
      pthread_mutex_unlock(&r->mu);
      break;
    }
    r->asleep = 0;
    if (r->n == 0) {
      if (!idle) idle_since = now;
      idle = 1;
    } else if (idle) {
      /* Fresh leases: the first renewal is one period away. */
      idle = 0;
      next_renew = now + (uint64_t)r->every_ms;
    }
    wake = watch(r, now, &stuck);
    emerg = (uint64_t)__atomic_load_n(&r->emerg_at, __ATOMIC_RELAXED);
    if (emerg != 0 && now >= emerg && stuck != NULL) {
      char id[LASH_ID_MAX + 1];
      uint64_t ms = now - stuck->busy_since;
      snprintf(id, sizeof id, "%s", stuck->lease.process_id);
      pthread_mutex_unlock(&r->mu);
      emergency(r, id, ms);
    }
    n = r->n;
    pthread_mutex_unlock(&r->mu);
    if (n > 0 && now >= next_renew) {
      wake |= renew_round(r, now);
      next_renew = now + (uint64_t)r->every_ms;
    }
    if (wake) uv_async_send(&r->wake);
  }
  return NULL;
}

/* ------------------------------------------------------------ the part */

static void wake_cb(uv_async_t *a) {
  lash__renew *r = LASH__CONTAINER_OF(a, lash__renew, wake);
  if (!r->closed && r->on_wake != NULL) r->on_wake(r->ud);
}

void lash__renew_emergency(lash__renew *r, int64_t grace_ms) {
  int64_t at = (int64_t)mono_ms() + (grace_ms > 0 ? grace_ms : 0);
  int64_t cur = __atomic_load_n(&r->emerg_at, __ATOMIC_RELAXED);
  if (cur == 0 || at < cur)
    __atomic_store_n(&r->emerg_at, at, __ATOMIC_RELAXED);
  sem_post(&r->sem);
}

int lash__renew_init(lash__renew *r, lash_store *s, uv_loop_t *loop,
                     lash__handles *hs, int64_t ttl_ms, int64_t every_ms,
                     int64_t stall_ms, const char *owner,
                     void (*on_wake)(void *ud), void *ud) {
  memset(r, 0, sizeof *r);
  r->s = s;
  r->ttl_ms = ttl_ms;
  r->every_ms = every_ms;
  r->stall_ms = stall_ms;
  snprintf(r->owner, sizeof r->owner, "%s", owner);
  r->on_wake = on_wake;
  r->ud = ud;
  lash__q_init(&r->held);
  pthread_mutex_init(&r->mu, NULL);
  sem_init(&r->sem, 0, 0);
  uv_async_init(loop, &r->wake, wake_cb);
  uv_unref((uv_handle_t *)&r->wake); /* never keeps the loop alive */
  lash__handle_opened(hs, (uv_handle_t *)&r->wake);
  if (pthread_create(&r->th, NULL, thread_main, r) != 0) return LASH_ENOMEM;
  r->th_on = 1;
  return 0;
}

void lash__renew_stop(lash__renew *r) {
  if (!r->th_on) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_mutex_unlock(&r->mu);
  sem_post(&r->sem);
  pthread_join(r->th, NULL);
  r->th_on = 0;
}

void lash__renew_close(lash__renew *r) {
  lash__renew_stop(r);
  r->closed = 1;
  lash__handle_close((uv_handle_t *)&r->wake);
}

void lash__renew_free(lash__renew *r) {
  lash__renew_stop(r);
  pthread_mutex_destroy(&r->mu);
  sem_destroy(&r->sem);
}
