/* engine/engine.c - the engine: open/close, options and their defaults,
 * the pump's turn, run modes, idle and stats, and the public entry points
 * that take a lash_engine (each checks the handle and calls its part).
 *
 * A turn of the pump routes the changes the last commits reported, flushes
 * the queued writes (and continues an in-flight scan) in one shared
 * transaction, then re-reads hub-marked waits, delivers done callbacks,
 * wait callbacks and run starts in bounded batches. Nothing reaches host
 * code from inside a caller's stack: only from here or a timer.
 *
 * Part: engine (the top). May call: every part. */
#include "engine/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1024
/* An engine's least write_idle_ms: the sessions' bound on a lost network
 * (pg: tcp_user_timeout 5 s), so a cut they survive a write survives too. */
#define LASH__WRITE_IDLE_MIN_MS 5000

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

/* Work that needs a transaction waits while the writer backs off after a
 * transient failure (its timer kicks the pump): the loop does not spin
 * while the server is away. */
static int pump_needed(lash_engine *e) {
  int writes;
  if (e->closing) return 0;
  writes = !lash__writer_waiting(&e->writer) &&
           (lash__writer_queued(&e->writer) || lash__admit_pending(&e->admit) ||
            (e->admit.nkinds > 0 && lash__suspender_pending(&e->susp)));
  return writes || lash__writer_delivering(&e->writer) ||
         lash__changes_pending(&e->changes) || lash__hub_has_ready(&e->hub) ||
         lash__awaiter_pending(&e->awaiter) || lash__runs_starts_due(&e->runs);
}

static int turn(void *ud) {
  lash_engine *e = ud;
  int waiting = lash__writer_waiting(&e->writer);
  lash__changes_process(&e->changes);
  if (lash__writer_free(&e->writer) && !e->closing && !waiting) {
    int scan = lash__admit_pump(&e->admit);
    if (scan || lash__writer_queued(&e->writer))
      lash__writer_txn(&e->writer, NULL, NULL);
    lash__changes_process(&e->changes);
  }
  lash__awaiter_drain(&e->awaiter, BATCH);
  lash__writer_deliver(&e->writer, BATCH);
  lash__awaiter_deliver(&e->awaiter, BATCH);
  lash__runs_start(&e->runs, BATCH);
  /* After the re-reads: what is still parked now may be suspended (its
   * write goes in the next turn's transaction). */
  if (e->admit.nkinds > 0 && !e->closing && !waiting)
    lash__suspender_pump(&e->susp);
  return pump_needed(e);
}

/* The writer's transient failures (a lost connection, writer.c): one line
 * on stderr per backoff step (then one every STILL_MS at the longest
 * step), one when writes commit again; when a backoff ends, admission is
 * asked again (the failed turn's scan was dropped). */
#define STILL_MS 30000
static void on_retry(void *ud, int event, unsigned fails, int64_t ms,
                     const char *msg) {
  lash_engine *e = ud;
  uint64_t now = uv_now(e->loop);
  switch (event) {
  case LASH__RETRY_FAILED:
    if (fails > 1 && ms == e->retry_said_ms &&
        now - e->retry_said_at < STILL_MS)
      break;
    fprintf(stderr,
            "lash: %s: storage: %s; writing again in %lld ms (attempt %u; "
            "nothing of the failed write was kept)\n",
            e->admit.owner, msg[0] ? msg : "a write failed (EIO)",
            (long long)ms, fails);
    e->retry_said_ms = ms;
    e->retry_said_at = now;
    break;
  case LASH__RETRY_RECOVERED:
    fprintf(stderr,
            "lash: %s: storage: writing again after %u failed attempts "
            "(%lld ms)\n",
            e->admit.owner, fails, (long long)ms);
    e->retry_said_ms = 0;
    break;
  default:
    if (!e->closing) lash__admit_request(&e->admit);
    break;
  }
}

/* The feed polls while waits are parked, kinds are declared or a worker
 * runs (other OS processes' writes reach nothing else). */
static int feed_wanted(void *ud) {
  lash_engine *e = ud;
  return e->awaiter.nparked > 0 || e->admit.nkinds > 0 || e->run_default;
}

/* The heartbeat's news, on the loop: lost leases are dropped, and the rows
 * they held are claimable again (by this engine too): drive. */
static void on_heartbeat(void *ud) {
  lash_engine *e = ud;
  if (e->closing) return;
  if (lash__runs_heartbeat(&e->runs) > 0) lash__admit_request(&e->admit);
}

/* The timer part woke suspended rows: claim what this engine runs. */
static void on_fired(void *ud) {
  lash_engine *e = ud;
  if (!e->closing) lash__admit_request(&e->admit);
}

static void on_flush(void *ud) {
  lash_engine *e = ud;
  lash__changes_flush(&e->changes);
}

/* Another OS process committed (the feed saw it). */
static void on_foreign(void *ud, const lash__feed_row *row, uint64_t from) {
  lash_engine *e = ud;
  lash__suspender_foreign(&e->susp);
  lash__changes_foreign(&e->changes, row, from);
}

/* The store's change seq moved: a schedule may have been put elsewhere. */
static void on_moved(void *ud) {
  lash_engine *e = ud;
  lash__sched_moved(&e->sched);
}

/* ----------------------------------------------------------------- opts */

/* The one place engine defaults are applied (opts_init and open). */
static void apply_defaults(lash_engine_opts *o) {
  if (o->concurrency == 0) o->concurrency = 64;
  if (o->lease_ttl_ms == 0) o->lease_ttl_ms = 30000;
  if (o->renew_ms == 0) o->renew_ms = o->lease_ttl_ms / 3;
  if (o->poll_min_ms == 0) o->poll_min_ms = 25;
  if (o->poll_max_ms == 0) o->poll_max_ms = 1000;
  if (o->stall_ms == 0) o->stall_ms = 5000;
  if (o->suspend_after_ms == 0) o->suspend_after_ms = 60000;
  if (o->max_cached == 0) o->max_cached = 10000;
}

void lash_engine_opts_init(lash_engine_opts *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof *o);
  lash_store_opts_init(&o->store);
  apply_defaults(o);
}

static int name_ok(const char *s) {
  return s != NULL && lash_check_string(LASH_RULE_OWNER, "owner", s, strlen(s),
                                        NULL, 0) == 0;
}

static int check_opts(const lash_engine_opts *o, char *err, size_t errlen) {
  if (o->lease_ttl_ms < 1 || o->renew_ms < 1 ||
      o->lease_ttl_ms < 3 * o->renew_ms) {
    set_err(err, errlen,
            "bad lease timings: lease_ttl_ms=%lld renew_ms=%lld (both must "
            "be >= 1 ms and lease_ttl_ms >= 3 * renew_ms)",
            (long long)o->lease_ttl_ms, (long long)o->renew_ms);
    return LASH_EINVAL;
  }
  if (o->poll_min_ms < 1 || o->poll_max_ms < o->poll_min_ms) {
    set_err(err, errlen,
            "bad poll timings: poll_min_ms=%lld poll_max_ms=%lld (need 1 <= "
            "poll_min_ms <= poll_max_ms)",
            (long long)o->poll_min_ms, (long long)o->poll_max_ms);
    return LASH_EINVAL;
  }
  if ((o->owner != NULL && !name_ok(o->owner)) ||
      (o->incarnation != NULL && !name_ok(o->incarnation))) {
    set_err(err, errlen,
            "owner and incarnation must be 1..%d bytes of UTF-8 without "
            "control characters",
            LASH_NAME_MAX);
    return LASH_EINVAL;
  }
  return 0;
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

/* ------------------------------------------------------- open and close */

/* Runs the loop until every handle's close callback fired. */
static void wait_handles(lash_engine *e) {
  while (e->handles.open > 0)
    uv_run(e->loop, UV_RUN_NOWAIT);
  if (e->loop_owned) {
    while (uv_loop_close(e->loop) == UV_EBUSY)
      uv_run(e->loop, UV_RUN_NOWAIT);
  }
}

/* Frees what the parts allocated (the commit hook is already gone). */
static void parts_free(lash_engine *e) {
  lash__renew_free(&e->renew);
  lash__admit_free(&e->admit);
  lash__sched_free(&e->sched);
  lash__runs_free(&e->runs);
  lash__awaiter_free(&e->awaiter);
  lash__feed_free(&e->feed);
  lash__hub_free(&e->hub);
  lash__writer_free_mem(&e->writer);
}

/* Closes every part's handles (their flags say closed first). */
static void parts_close(lash_engine *e) {
  lash__pump_close(&e->pump);
  lash__writer_close_timer(&e->writer);
  lash__observer_close(&e->obs);
  lash__suspender_close(&e->susp);
  lash__sched_close(&e->sched);
  lash__admit_close(&e->admit);
  lash__renew_close(&e->renew);
  lash__feed_close(&e->feed);
}

static int parts_init(lash_engine *e, const lash_engine_opts *o) {
  char owner[LASH_NAME_MAX + 1], inc[LASH_NAME_MAX + 1];
  lash__feed_hooks fh;
  int rc;
  if (o->owner != NULL)
    snprintf(owner, sizeof owner, "%s", o->owner);
  else
    default_owner(owner, sizeof owner);
  if (o->incarnation != NULL)
    snprintf(inc, sizeof inc, "%s", o->incarnation);
  else
    default_incarnation(inc);
  fh.ud = e;
  fh.flush = on_flush;
  fh.foreign = on_foreign;
  fh.wanted = feed_wanted;
  fh.wanted_ud = e;
  fh.moved = on_moved;

  lash__pump_init(&e->pump, e->loop, &e->handles, turn, e);
  lash__observer_init(&e->obs, e->loop, &e->handles);
  lash__writer_init(&e->writer, e->s, &e->pump, e->loop, &e->handles);
  lash__writer_on_retry(&e->writer, on_retry, e);
  lash__hub_init(&e->hub, &e->pump);
  rc = lash__feed_init(&e->feed, e->s, e->loop, &e->handles,
                       (uint64_t)o->poll_min_ms, (uint64_t)o->poll_max_ms,
                       o->no_fs_wake, &fh);
  if (rc == 0)
    rc =
        lash__renew_init(&e->renew, e->s, e->loop, &e->handles, o->lease_ttl_ms,
                         o->renew_ms, o->stall_ms, owner, on_heartbeat, e);
  lash__awaiter_init(&e->awaiter, e, e->s, e->loop, &e->handles, &e->pump,
                     &e->hub, &e->feed, &e->runs.slots,
                     (uint64_t)o->poll_min_ms, (uint64_t)o->poll_max_ms);
  lash__runs_init(&e->runs, e, e->s, &e->pump, &e->writer, &e->renew,
                  o->concurrency);
  if (rc == 0)
    rc = lash__admit_init(&e->admit, e->s, e->loop, &e->handles, &e->pump,
                          &e->writer, &e->runs, owner, inc, o->lease_ttl_ms,
                          !o->no_eager_start);
  lash__suspender_init(&e->susp, e->s, e->loop, &e->handles, &e->pump,
                       &e->writer, &e->awaiter, &e->runs, o->max_cached,
                       o->suspend_after_ms == LASH_SUSPEND_AT_ONCE ? 0
                       : o->suspend_after_ms < 0                   ? -1
                                                 : o->suspend_after_ms,
                       on_fired, e);
  lash__changes_init(&e->changes, e->s, &e->pump, &e->hub, &e->feed, &e->runs,
                     &e->admit);
  e->changes.on_timer = lash__suspender_note; /* issue 13 */
  e->changes.timer_ud = &e->susp;
  if (rc == 0)
    rc = lash__presence_init(&e->presence, e->s, &e->writer, &e->admit);
  e->runs.obs = e->admit.obs = e->susp.obs = &e->obs;
  lash__sched_init(&e->sched, e->s, e->loop, &e->handles, &e->pump, &e->writer,
                   &e->admit);
  return rc;
}

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
  if (opts != NULL)
    o = *opts;
  else
    lash_engine_opts_init(&o);
  apply_defaults(&o);
  if ((rc = check_opts(&o, err, errlen)) < 0) return rc;
  /* While a stopped writer holds the store, no other owner renews: ended
   * after TTL - 2 renewals, their leases keep one renewal of slack; the
   * floor spares a live writer that its host or its network slowed down. */
  if (o.store.write_idle_ms == 0) {
    int64_t idle = o.lease_ttl_ms - 2 * o.renew_ms;
    o.store.write_idle_ms =
        idle > LASH__WRITE_IDLE_MIN_MS ? idle : LASH__WRITE_IDLE_MIN_MS;
  }

  if ((e = calloc(1, sizeof *e)) == NULL) {
    set_err(err, errlen, "out of memory opening the engine on %s", dir);
    return LASH_ENOMEM;
  }
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
  if ((rc = parts_init(e, &o)) < 0) {
    set_err(err, errlen, "out of memory opening the engine on %s", dir);
    e->closing = 1;
    lash__awaiter_close(&e->awaiter);
    parts_close(e);
    lash__changes_free(&e->changes);
    wait_handles(e);
    parts_free(e);
    lash_store_close(e->s);
    free(e);
    return rc;
  }
  *out = e;
  return 0;
}

void lash_engine_close(lash_engine *e) {
  if (e == NULL || e->closing) return;
  e->obs.fn = NULL;            /* the host hears nothing from the close */
  lash__renew_stop(&e->renew); /* no renewal races the releases below */
  lash__writer_abort_batch(&e->writer);
  lash__admit_stop(&e->admit);
  /* Completions already queued still commit, with the lease releases; one
   * failing now is not queued again (its row is run again elsewhere). */
  e->writer.no_again = 1;
  lash__runs_close(&e->runs);
  /* The worker entry goes with one more commit (issue 11). */
  if (lash__presence_leave(&e->presence))
    (void)lash__writer_txn(&e->writer, NULL, NULL);
  e->closing = 1;
  lash__writer_refuse(&e->writer);
  parts_close(e);
  lash__awaiter_close(&e->awaiter);
  /* Writes queued by done callbacks during the close never run: their
   * callbacks still run once, with LASH_ECLOSED. */
  lash__writer_close(&e->writer);
  lash__changes_free(&e->changes);
  wait_handles(e);
  parts_free(e);
  lash_store_close(e->s);
  free(e);
}

void lash_engine_set_observer(lash_engine *e, lash_observe_fn fn, void *ud,
                              int64_t summary_ms) {
  if (e == NULL || e->closing) return;
  lash__observer_set(&e->obs, fn, ud, summary_ms);
}

lash_store *lash_engine_store(lash_engine *e) {
  return e ? e->s : NULL;
}
struct uv_loop_s *lash_engine_loop(lash_engine *e) {
  return e ? e->loop : NULL;
}
const char *lash_engine_owner(const lash_engine *e) {
  return e ? e->admit.owner : NULL;
}
const char *lash_engine_incarnation(const lash_engine *e) {
  return e ? e->admit.incarnation : NULL;
}

void lash_engine_set_runner(lash_engine *e, const lash_runner *r) {
  if (e == NULL) return;
  if (r != NULL)
    e->runs.runner = *r;
  else
    memset(&e->runs.runner, 0, sizeof e->runs.runner);
  lash__renew_set_stall(&e->renew, e->runs.runner.stall, e->runs.runner.ud);
  lash__admit_request(&e->admit);
}

int lash_engine_define(lash_engine *e, const char *kind) {
  int rc;
  if (e == NULL) return LASH_EINVAL;
  if ((rc = lash__admit_define(&e->admit, kind)) <= 0) return rc;
  lash__presence_changed(&e->presence);
  lash__feed_update(&e->feed);
  lash__admit_request(&e->admit);
  lash__sched_reread(&e->sched);
  return 0;
}

void lash_engine_schedules_changed(lash_engine *e) {
  if (e == NULL || e->closing) return;
  lash__sched_soon(&e->sched);
}

int lash_engine_set_timeout(lash_engine *e, const char *kind,
                            int64_t timeout_ms) {
  if (e == NULL) return LASH_EINVAL;
  return lash__admit_set_timeout(&e->admit, kind, timeout_ms);
}

int lash_engine_set_retry(lash_engine *e, const char *kind,
                          const lash_retry_policy *p) {
  if (e == NULL) return LASH_EINVAL;
  return lash__admit_set_retry(&e->admit, kind, p);
}

int lash_engine_set_rate(lash_engine *e, const char *kind, uint32_t n,
                         int64_t per_ms) {
  if (e == NULL) return LASH_EINVAL;
  return lash__admit_set_rate(&e->admit, kind, n, per_ms);
}

void lash_engine_emergency(lash_engine *e, int64_t grace_ms) {
  if (e != NULL && !e->closing) lash__renew_emergency(&e->renew, grace_ms);
}

/* ---------------------------------------------------------- the writer */

int lash_engine_write(lash_engine *e, lash_write_fn fn, void *ud,
                      lash_done_fn done) {
  if (e == NULL || fn == NULL) return LASH_EINVAL;
  return lash__writer_queue(&e->writer, fn, ud, done);
}

int lash_engine_write_again(lash_engine *e, lash_write_fn fn, void *ud,
                            lash_done_fn done) {
  if (e == NULL || fn == NULL) return LASH_EINVAL;
  return lash__writer_queue_again(&e->writer, fn, ud, done);
}

int lash_engine_write_sync(lash_engine *e, lash_write_fn fn, void *ud) {
  if (e == NULL || fn == NULL) return LASH_EINVAL;
  return lash__writer_sync(&e->writer, fn, ud);
}

int lash_engine_batch_begin(lash_engine *e) {
  if (e == NULL) return LASH_EINVAL;
  return lash__writer_batch_begin(&e->writer);
}

int lash_engine_batch_end(lash_engine *e, int commit) {
  if (e == NULL) return LASH_EINVAL;
  return lash__writer_batch_end(&e->writer, commit);
}

/* ----------------------------------------------------------------- waits */

int lash_await_terminal(lash_engine *e, lash_run *run, const char *id,
                        int64_t timeout_ms, lash_wait_fn cb, void *ud,
                        lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (e == NULL) return LASH_EINVAL;
  return lash__await_terminal(&e->awaiter, run, id, timeout_ms, cb, ud, out);
}

int lash_await_event(lash_engine *e, lash_run *run, const char *id,
                     const char *type, uint64_t after_seq, int64_t timeout_ms,
                     lash_wait_fn cb, void *ud, lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (e == NULL) return LASH_EINVAL;
  return lash__await_event(&e->awaiter, run, id, type, after_seq, timeout_ms,
                           cb, ud, out);
}

int lash_await_sleep(lash_engine *e, lash_run *run, int64_t ms, lash_wait_fn cb,
                     void *ud, lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (e == NULL) return LASH_EINVAL;
  return lash__await_sleep(&e->awaiter, run, ms, cb, ud, out);
}

int lash_await_manual(lash_engine *e, lash_run *run, lash_wait_fn cb, void *ud,
                      lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (e == NULL) return LASH_EINVAL;
  return lash__await_manual(&e->awaiter, run, cb, ud, out);
}

void lash_engine_set_attach(lash_engine *e, const lash_attach *a) {
  if (e == NULL) return;
  lash__awaiter_set_attach(&e->awaiter, a);
}

/* ------------------------------------------------------------- admission */

int lash_engine_drive(lash_engine *e, lash_drive_report *out) {
  if (e == NULL) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return LASH_EINVAL;
  }
  return lash__admit_drive(&e->admit, out);
}

int lash_engine_admit(lash_engine *e, lash_txn *txn, const char *id) {
  if (e == NULL) return LASH_EINVAL;
  return lash__admit_one(&e->admit, txn, id);
}

int lash_engine_register(lash_engine *e, lash_txn *txn, const lash_def *def,
                         int *created, lash_record *out, int *admitted) {
  if (e == NULL) {
    if (admitted != NULL) *admitted = 0;
    return LASH_EINVAL;
  }
  return lash__admit_register(&e->admit, txn, def, created, out, admitted);
}

void lash_engine_pause(lash_engine *e, int paused) {
  if (e == NULL) return;
  lash__admit_pause(&e->admit, paused);
}

int lash_engine_drain(lash_engine *e, unsigned *abandoned) {
  if (abandoned != NULL) *abandoned = 0;
  if (e == NULL) return LASH_EINVAL;
  return lash__admit_drain(&e->admit, abandoned);
}

/* ------------------------------------------------------------- running */

int lash_engine_reconcile(lash_engine *e, const char *id, int *result,
                          lash_lease *holder) {
  if (result != NULL) *result = LASH_RECONCILE_NOTHING;
  if (e == NULL || id == NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  return lash__admit_reconcile(&e->admit, id, result, holder);
}

int lash_engine_idle(lash_engine *e) {
  if (e == NULL) return 1;
  return e->runs.slots.running == 0 && lash__awaiter_idle(&e->awaiter) &&
         !lash__writer_pending(&e->writer) && !e->writer.in_txn &&
         !lash__writer_waiting(&e->writer) && /* a failed turn to redo */
         !lash__changes_pending(&e->changes) && !lash__hub_has_ready(&e->hub) &&
         !lash__runs_starts_due(&e->runs) && !lash__admit_busy(&e->admit) &&
         (e->admit.nkinds == 0 || lash__suspender_idle(&e->susp));
}

int lash_engine_run(lash_engine *e, int mode) {
  int rc = 0;
  if (e == NULL || e->in_run || e->writer.batch != NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  e->in_run = 1;
  switch (mode) {
  case LASH_RUN_DEFAULT:
    e->run_default = 1;
    e->stop = 0;
    lash__feed_update(&e->feed);
    lash_engine_drive(e, NULL);
    while (!e->stop && !e->closing && !e->interrupted &&
           e->writer.storage_rc == 0)
      uv_run(e->loop, UV_RUN_ONCE);
    e->stop = 0;
    if (e->interrupted) {
      e->interrupted = 0;
      rc = LASH_ECANCELED;
    } else if (e->writer.storage_rc != 0) {
      rc = e->writer.storage_rc;
    }
    e->run_default = 0;
    lash__feed_update(&e->feed);
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
      if (e->writer.storage_rc != 0) {
        rc = e->writer.storage_rc;
        break;
      }
      if (e->interrupted) {
        e->interrupted = 0;
        rc = LASH_ECANCELED;
        break;
      }
      if (uv_run(e->loop, UV_RUN_ONCE) == 0 && !e->pump.on &&
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
  if (e == NULL || flag == NULL || e->writer.batch != NULL) return LASH_EINVAL;
  while (!*flag) {
    if (e->closing) return LASH_ECLOSED;
    if (e->interrupted) {
      e->interrupted = 0;
      return LASH_ECANCELED;
    }
    if (uv_run(e->loop, UV_RUN_ONCE) == 0 && !*flag && !e->pump.on)
      return LASH_ECLOSED; /* the loop is dead: nothing could set the flag */
  }
  return 0;
}

void lash_engine_stop(lash_engine *e) {
  if (e == NULL) return;
  e->stop = 1;
  /* Only a lash_engine_run of ours is ended: on a host's loop (luv) the
   * host's uv_run is not ours to stop. */
  if (e->in_run) uv_stop(e->loop);
}

void lash_engine_interrupt(lash_engine *e) {
  if (e == NULL) return;
  e->interrupted = 1;
  uv_stop(e->loop);
}

int lash_engine_storage_error(lash_engine *e, const char **msg) {
  if (msg != NULL) *msg = e != NULL ? e->writer.storage_msg : "";
  return e != NULL ? e->writer.storage_rc : LASH_EINVAL;
}

void lash_engine_get_stats(lash_engine *e, lash_engine_stats *out) {
  if (out == NULL) return;
  memset(out, 0, sizeof *out);
  if (e == NULL) return;
  out->running = e->runs.slots.running;
  out->parked = e->runs.slots.parked;
  out->waits = e->awaiter.nparked;
  out->backoff_reads = e->awaiter.backoff_reads;
  out->hub_wakes = e->awaiter.hub_wakes;
  out->commits = e->writer.commits;
  out->drives = e->admit.drives;
  out->feed_changes = e->feed.changes;
  out->taken_over = e->admit.taken_over;
  out->owners_gone = e->admit.owners_gone;
  out->owner_held = e->admit.owner_held;
  out->suspended = e->susp.suspended;
  out->timers_fired = e->susp.fired;
}
