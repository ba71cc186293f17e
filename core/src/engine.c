/* engine.c - open/close, options, the pump, run modes, idle and stats.
 *
 * The pump is one uv_idle handle, active only while there is work: each
 * turn it handles the changes the last commits reported, flushes the
 * queued writes (and continues an in-flight scan) in one shared
 * transaction, then re-reads hub-woken waits, delivers done callbacks,
 * wait callbacks and run starts in bounded batches. Nothing reaches host
 * code from inside a caller's stack: only from here or a timer. */
#include "engine-int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1024

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------- the pump */

static int pump_needed(lash_engine *e) {
  if (e->closing) return 0;
  return e->wq.n > e->wq.head || e->dq.n > e->dq.head ||
         e->nchg > e->chg_head || !lash__q_empty(&e->ready) ||
         !lash__q_empty(&e->deliver) || !lash__q_empty(&e->starts) ||
         (e->nslotq > 0 && e->running < e->concurrency) ||
         (e->scan.active && lash__free_slots(e) > 0) ||
         (e->drive_req && lash__free_slots(e) > 0);
}

static void pump_cb(uv_idle_t *h) {
  lash_engine *e = LASH__CONTAINER_OF(h, lash_engine, pump);
  int scan;
  e->pump_depth++;
  lash__changes_process(e);
  if (e->batch == NULL && !e->in_txn && !e->closing) {
    scan = lash__drive_pump(e);
    if (scan || e->wq.n > e->wq.head)
      lash__writer_txn(e, NULL, NULL, scan, NULL);
    lash__changes_process(e);
  }
  lash__hub_drain(e, BATCH);
  lash__writer_deliver(e, BATCH);
  lash__waits_deliver(e, BATCH);
  lash__starts_deliver(e, BATCH);
  e->pump_depth--;
  if (e->pump_depth == 0 && !pump_needed(e) && e->pump_on) {
    uv_idle_stop(&e->pump);
    e->pump_on = 0;
  }
}

void lash__pump_kick(lash_engine *e) {
  if (e->pump_on || e->closing) return;
  uv_idle_start(&e->pump, pump_cb);
  e->pump_on = 1;
}

/* ----------------------------------------------------------------- opts */

void lash_engine_opts_init(lash_engine_opts *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof *o);
  lash_store_opts_init(&o->store);
  o->concurrency = 64;
  o->lease_ttl_ms = 30000;
  o->renew_ms = 10000;
  o->poll_min_ms = 25;
  o->poll_max_ms = 1000;
}

static int name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n >= 1 && n <= LASH_NAME_MAX;
}

static void default_owner(char *out, size_t cap) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
    snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  snprintf(out, cap, "%.100s:%ld", host, (long)getpid());
}

static void default_incarnation(char *out) {
  unsigned char b[8];
  static const char hex[] = "0123456789abcdef";
  size_t i;
  if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
    uint64_t x = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    for (i = 0; i < sizeof b; i++)
      b[i] = (unsigned char)(x >> (8 * i));
  }
  for (i = 0; i < sizeof b; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[16] = '\0';
}

static void handle_closed(uv_handle_t *h) {
  lash_engine *e = h->data;
  e->handles_open--;
}

static void close_handle(uv_handle_t *h) {
  if (h->data == NULL || uv_is_closing(h)) return;
  uv_close(h, handle_closed);
}

static void engine_free(lash_engine *e) {
  size_t i;
  for (i = 0; i < e->nkinds; i++)
    free(e->kinds[i]);
  free(e->kinds);
  lash__wrv_free(&e->wq);
  lash__wrv_free(&e->wq_spare);
  lash__wrv_free(&e->dq);
  free(e->chg);
  free(e->heap);
  lash__hub_free(e);
  lash__map_free(&e->runs_by_id);
  lash__feed_free(e);
  free(e);
}

/* Closes our handles and runs the loop until their callbacks fired. */
static void close_handles(lash_engine *e) {
  close_handle((uv_handle_t *)&e->pump);
  close_handle((uv_handle_t *)&e->heap_timer);
  close_handle((uv_handle_t *)&e->renew_timer);
  close_handle((uv_handle_t *)&e->lapse_timer);
  close_handle((uv_handle_t *)&e->poll_timer);
  close_handle((uv_handle_t *)&e->fs_wake);
  while (e->handles_open > 0)
    uv_run(e->loop, UV_RUN_NOWAIT);
  if (e->loop_owned) {
    while (uv_loop_close(e->loop) == UV_EBUSY)
      uv_run(e->loop, UV_RUN_NOWAIT);
  }
}

#define INIT_HANDLE(e, kind, h)                                                \
  do {                                                                         \
    uv_##kind##_init((e)->loop, (h));                                          \
    (h)->data = (e);                                                           \
    (e)->handles_open++;                                                       \
  } while (0)

int lash_engine_open(const char *dir, const lash_engine_opts *opts,
                     lash_engine **out, char *err, size_t errlen) {
  lash_engine_opts o;
  lash_engine *e = NULL;
  int rc;

  if (out != NULL) *out = NULL;
  set_err(err, errlen, "%s", "");
  if (out == NULL || dir == NULL) {
    set_err(err, errlen, "lash_engine_open: dir and out are required");
    return LASH_EINVAL;
  }
  if (opts != NULL) {
    o = *opts;
  } else {
    lash_engine_opts_init(&o);
  }
  if (o.concurrency == 0) o.concurrency = 64;
  if (o.lease_ttl_ms == 0) o.lease_ttl_ms = 30000;
  if (o.renew_ms == 0) o.renew_ms = o.lease_ttl_ms / 3;
  if (o.poll_min_ms == 0) o.poll_min_ms = 25;
  if (o.poll_max_ms == 0) o.poll_max_ms = 1000;
  if (o.lease_ttl_ms < 1 || o.renew_ms < 1 || o.lease_ttl_ms < 3 * o.renew_ms) {
    set_err(err, errlen,
            "bad lease timings: lease_ttl_ms=%lld renew_ms=%lld (both must "
            "be >= 1 ms and lease_ttl_ms >= 3 * renew_ms)",
            (long long)o.lease_ttl_ms, (long long)o.renew_ms);
    return LASH_EINVAL;
  }
  if (o.poll_min_ms < 1 || o.poll_max_ms < o.poll_min_ms) {
    set_err(err, errlen,
            "bad poll timings: poll_min_ms=%lld poll_max_ms=%lld (need 1 <= "
            "poll_min_ms <= poll_max_ms)",
            (long long)o.poll_min_ms, (long long)o.poll_max_ms);
    return LASH_EINVAL;
  }
  if ((o.owner != NULL && !name_ok(o.owner)) ||
      (o.incarnation != NULL && !name_ok(o.incarnation))) {
    set_err(err, errlen, "owner and incarnation must be 1..%d bytes",
            LASH_NAME_MAX);
    return LASH_EINVAL;
  }

  if ((e = calloc(1, sizeof *e)) == NULL) {
    set_err(err, errlen, "out of memory opening the engine on %s", dir);
    return LASH_ENOMEM;
  }
  e->concurrency = o.concurrency;
  e->eager = !o.no_eager_start;
  e->ttl_ms = o.lease_ttl_ms;
  e->renew_ms = o.renew_ms;
  e->poll_min = (uint64_t)o.poll_min_ms;
  e->poll_max = (uint64_t)o.poll_max_ms;
  if (o.owner != NULL)
    snprintf(e->owner, sizeof e->owner, "%s", o.owner);
  else
    default_owner(e->owner, sizeof e->owner);
  if (o.incarnation != NULL)
    snprintf(e->incarnation, sizeof e->incarnation, "%s", o.incarnation);
  else
    default_incarnation(e->incarnation);
  lash__q_init(&e->ready);
  lash__q_init(&e->waits);
  lash__q_init(&e->deliver);
  lash__q_init(&e->slotq);
  lash__q_init(&e->runs);
  lash__q_init(&e->starts);
  lash__q_init(&e->uncommitted);

  rc = lash_store_open(dir, &o.store, &e->s, err, errlen);
  if (rc < 0) {
    free(e);
    return rc;
  }
  if (o.loop != NULL) {
    e->loop = o.loop;
  } else {
    if (uv_loop_init(&e->own_loop) != 0) {
      set_err(err, errlen, "cannot create a libuv loop for %s", dir);
      lash_store_close(e->s);
      free(e);
      return LASH_ENOMEM;
    }
    e->loop = &e->own_loop;
    e->loop_owned = 1;
  }
  INIT_HANDLE(e, idle, &e->pump);
  INIT_HANDLE(e, timer, &e->heap_timer);
  INIT_HANDLE(e, timer, &e->renew_timer);
  INIT_HANDLE(e, timer, &e->lapse_timer);
  INIT_HANDLE(e, timer, &e->poll_timer);
  if (!o.no_fs_wake) {
    /* A faster cross-process wake than the poll backoff: the backend's wake
     * source (a file its commits write, watched through inotify on Linux).
     * The backoff stays the fallback; the watch does not keep the loop
     * alive. */
    lash_wake_source ws;
    if (lash_store_wake_source(e->s, &ws) == 0 && ws.kind == LASH_WAKE_FILE) {
      INIT_HANDLE(e, fs_event, &e->fs_wake);
      if (uv_fs_event_start(&e->fs_wake, lash__fs_wake_cb, ws.path, 0) == 0)
        uv_unref((uv_handle_t *)&e->fs_wake);
    }
  }
  lash_store_on_commit(e->s, lash__commit_hook, e);
  *out = e;
  return 0;
}

void lash_engine_close(lash_engine *e) {
  if (e == NULL || e->closing) return;
  if (e->batch != NULL) {
    lash_txn_abort(e->batch);
    e->batch = NULL;
  }
  e->scan.active = 0;
  e->drive_req = 0;
  /* Completions already queued still commit, with the lease releases. */
  lash__runs_close(e);
  e->closing = 1;
  lash__waits_detach_all(e);
  /* Writes queued by done callbacks during the close never run: their
   * callbacks still run once, with LASH_ECLOSED. */
  do {
    size_t i;
    for (i = e->wq.head; i < e->wq.n; i++)
      if (e->wq.v[i].done != NULL)
        lash__wrv_push(&e->dq, NULL, e->wq.v[i].ud, e->wq.v[i].done,
                       LASH_ECLOSED);
    e->wq.head = e->wq.n = 0;
  } while (lash__writer_deliver(e, SIZE_MAX) > 0);
  lash_store_on_commit(e->s, NULL, NULL);
  e->poll_on = 0;
  close_handles(e);
  lash_store_close(e->s);
  engine_free(e);
}

lash_store *lash_engine_store(lash_engine *e) {
  return e ? e->s : NULL;
}
struct uv_loop_s *lash_engine_loop(lash_engine *e) {
  return e ? e->loop : NULL;
}
const char *lash_engine_owner(const lash_engine *e) {
  return e ? e->owner : NULL;
}
const char *lash_engine_incarnation(const lash_engine *e) {
  return e ? e->incarnation : NULL;
}

void lash_engine_set_runner(lash_engine *e, const lash_runner *r) {
  if (e == NULL) return;
  if (r != NULL)
    e->runner = *r;
  else
    memset(&e->runner, 0, sizeof e->runner);
  lash__drive_request(e);
}

int lash__kind_declared(const lash_engine *e, const char *kind) {
  size_t i;
  if (kind == NULL) return 0;
  for (i = 0; i < e->nkinds; i++)
    if (strcmp(e->kinds[i], kind) == 0) return 1;
  return 0;
}

int lash_engine_define(lash_engine *e, const char *kind) {
  char *k;
  if (e == NULL || !name_ok(kind)) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  if (lash__kind_declared(e, kind)) return 0;
  if (e->nkinds == e->kinds_cap) {
    size_t cap = e->kinds_cap ? e->kinds_cap * 2 : 8;
    char **nk = realloc(e->kinds, cap * sizeof *nk);
    if (nk == NULL) return LASH_ENOMEM;
    e->kinds = nk;
    e->kinds_cap = cap;
  }
  if ((k = strdup(kind)) == NULL) return LASH_ENOMEM;
  e->kinds[e->nkinds++] = k;
  lash__poll_update(e);
  lash__drive_request(e);
  return 0;
}

/* ------------------------------------------------------------- running */

int lash_engine_idle(lash_engine *e) {
  if (e == NULL) return 1;
  return e->running == 0 && e->nslotq == 0 && e->wq.n == e->wq.head &&
         e->dq.n == e->dq.head && e->nchg == e->chg_head &&
         lash__q_empty(&e->ready) && lash__q_empty(&e->deliver) &&
         lash__q_empty(&e->starts) && !e->scan.active && !e->scan.rescan &&
         !(e->drive_req && e->nkinds > 0 && e->runner.start != NULL) &&
         e->ntimed == 0 && !e->in_txn;
}

int lash_engine_run(lash_engine *e, int mode) {
  int rc = 0;
  if (e == NULL || e->closing || e->in_run || e->batch != NULL)
    return LASH_EINVAL;
  e->in_run = 1;
  switch (mode) {
  case LASH_RUN_DEFAULT:
    e->run_default = 1;
    e->stop = 0;
    lash__poll_update(e);
    lash_engine_drive(e, NULL);
    while (!e->stop && !e->closing && !e->interrupted)
      uv_run(e->loop, UV_RUN_ONCE);
    e->stop = 0;
    if (e->interrupted) {
      e->interrupted = 0;
      rc = LASH_ECANCELED;
    }
    e->run_default = 0;
    lash__poll_update(e);
    break;
  case LASH_RUN_ONCE:
    uv_run(e->loop, UV_RUN_ONCE);
    break;
  case LASH_RUN_NOWAIT:
    uv_run(e->loop, UV_RUN_NOWAIT);
    break;
  case LASH_RUN_UNTIL_IDLE:
    lash_engine_drive(e, NULL);
    while (!e->closing && !lash_engine_idle(e)) {
      if (e->interrupted) {
        e->interrupted = 0;
        rc = LASH_ECANCELED;
        break;
      }
      if (uv_run(e->loop, UV_RUN_ONCE) == 0 && !e->pump_on &&
          !lash_engine_idle(e))
        break; /* nothing alive can make progress */
    }
    break;
  default:
    rc = LASH_EINVAL;
    break;
  }
  e->in_run = 0;
  return rc;
}

int lash_engine_run_until(lash_engine *e, volatile int *flag) {
  if (e == NULL || flag == NULL || e->batch != NULL) return LASH_EINVAL;
  while (!*flag) {
    if (e->closing) return LASH_ECLOSED;
    if (e->interrupted) {
      e->interrupted = 0;
      return LASH_ECANCELED;
    }
    if (uv_run(e->loop, UV_RUN_ONCE) == 0 && !*flag && !e->pump_on)
      return LASH_EINVAL; /* nothing alive could ever set the flag */
  }
  return 0;
}

void lash_engine_stop(lash_engine *e) {
  if (e == NULL) return;
  e->stop = 1;
  uv_stop(e->loop);
}

void lash_engine_interrupt(lash_engine *e) {
  if (e == NULL) return;
  e->interrupted = 1;
  uv_stop(e->loop);
}

void lash_engine_pause(lash_engine *e, int paused) {
  if (e == NULL) return;
  e->paused = paused != 0;
  if (e->paused) {
    /* End the scan in flight; resuming starts a new one. */
    e->scan.active = 0;
    e->scan.rescan = 0;
    e->drive_req = 0;
  } else {
    lash__drive_request(e);
  }
}

void lash_engine_get_stats(lash_engine *e, lash_engine_stats *out) {
  if (out == NULL) return;
  memset(out, 0, sizeof *out);
  if (e == NULL) return;
  *out = e->stats;
  out->running = e->running;
  out->parked = e->parked;
  out->waits = e->nparked_waits;
}
