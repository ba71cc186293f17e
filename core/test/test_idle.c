/* test_idle.c - a writer stopped inside its write transaction does not
 * keep the store's other writers waiting (lash_store_opts.write_idle_ms).
 *
 * On PostgreSQL every write locks the meta row until its COMMIT: a child
 * OS process begins a write, writes (the write reaches the server), and is
 * stopped there (SIGSTOP). The parent's write completes within a bounded
 * time all the same (the server ends the idle write and frees its lock);
 * after SIGCONT the child's commit is LASH_EIO, nothing of it was written,
 * and its handle writes again (it reconnects). An engine's writes take
 * the limit from their lease TTL (TTL - 2 * renew_ms, at least 5 s: both
 * cases). A held batch
 * (lash_txn_begin_held: eng:batch) idle for longer than the limit still
 * commits, and so does a write of a store opened with write_idle_ms < 0.
 *
 * LMDB's writer keeps its lock while its process lives and the mem backend
 * has no other process: both skip. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define IDLE_MS 1000 /* the stores' write_idle_ms here */
#define BOUND_MS                                                               \
  15000 /* "ends at all" behind a stop (the limits: 1 to 6 s)                  \
         */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* LMDB and the mem backend: one skip line, and return. */
#define SKIP_UNLESS_PG()                                                       \
  do {                                                                         \
    if (!TU_PG) {                                                              \
      printf("ok %d # skip on the " TU_BACKEND                                 \
             " backend: PostgreSQL ends idle writes\n",                        \
             ++tap_n_);                                                        \
      return;                                                                  \
    }                                                                          \
  } while (0)

static pid_t child_pid = -1;

/* The parent's write never came back: fail, not hang. */
static void on_alarm(int sig) {
  static const char m[] =
      "not ok - the parent's write is still blocked behind the stopped "
      "writer\n";
  (void)sig;
  if (write(1, m, sizeof m - 1) < 0) {
  }
  if (child_pid > 0) kill(child_pid, SIGKILL);
  _exit(1);
}

/* The child: a write that is stopped inside its transaction. Reports on
 * @p out: "<commit rc> <rc of a write after it> <message>". */
static void stopped_writer(const char *target, const lash_store_opts *opts,
                           int ready, int out) {
  lash_store *cs = NULL;
  lash_txn *t = NULL;
  lash_def d = tu_def("child-1", "k", LASH_RERUNNABLE, 0);
  lash_record r;
  char err[512], line[700], msg[600];
  int crc, rrc, wrc;
  if (lash_store_open(target, opts, &cs, err, sizeof err) != 0) _exit(2);
  if (lash_txn_begin(cs, &t) != 0) _exit(3);
  if (lash_register(cs, t, &d, NULL, NULL) != 0) _exit(4);
  /* a read in the batch sends its write to the server first */
  memset(&r, 0, sizeof r);
  if (lash_get(cs, t, "child-1", &r, NULL) != 0) _exit(5);
  lash_record_free(&r);
  if (write(ready, "w", 1) != 1) _exit(6);
  raise(SIGSTOP); /* ... until the parent's SIGCONT */
  crc = lash_txn_commit(t);
  snprintf(msg, sizeof msg, "%s", lash_errmsg(cs));
  /* the handle reads again (a read or a write reconnects: the backend's
   * begin, which also clears the core's mark of the failed commit) */
  rrc = tu_status(cs, "child-1");
  d = tu_def("child-2", "k", LASH_RERUNNABLE, 0);
  wrc = lash_register(cs, NULL, &d, NULL, NULL);
  snprintf(line, sizeof line, "%d %d %d %s", crc, rrc, wrc, msg);
  if (write(out, line, strlen(line)) < 0) _exit(7);
  lash_store_close(cs);
  _exit(0);
}

/* A child that writes 1 byte on ready once it is inside its write, stops
 * itself there, and reports on out when it goes on. */
typedef void (*child_fn)(const char *target, const lash_store_opts *opts,
                         int ready, int out);

/* Forks @p fn and waits until it is stopped inside its write: the read end
 * of its report. */
static int fork_stopped(tu_env *e, child_fn fn, const char *what) {
  int ready[2], out[2], st = 0;
  char c;
  ok(pipe(ready) == 0 && pipe(out) == 0, "pipes");
  fflush(stdout);
  if ((child_pid = fork()) == 0) {
    close(ready[0]);
    close(out[0]);
    fn(lash_store_path(e->s), &e->opts, ready[1], out[1]);
  }
  close(ready[1]);
  close(out[1]);
  ok(read(ready[0], &c, 1) == 1, "%s wrote inside its write", what);
  close(ready[0]);
  ok(waitpid(child_pid, &st, WUNTRACED) == child_pid && WIFSTOPPED(st),
     "... and is stopped there (SIGSTOP)");
  return out[0];
}

/* The parent's write of @p id behind the stopped child ends, in time. */
static int64_t write_behind(lash_store *s, const char *id, const char *bound) {
  int64_t t0, took;
  signal(SIGALRM, on_alarm);
  alarm(30);
  t0 = mono_ms();
  is_rc(s, tu_reg(s, id, "k", LASH_RERUNNABLE, 0), 0,
        "the parent's write completes all the same");
  took = mono_ms() - t0;
  alarm(0);
  ok(took < BOUND_MS, "... within %d ms, %s (took %lld ms)", BOUND_MS, bound,
     (long long)took);
  return took;
}

/* SIGCONT; the child's report into @p line; its exit. */
static void cont_child(int out, char *line, size_t cap) {
  size_t n = 0;
  ssize_t got;
  int st = 0;
  kill(child_pid, SIGCONT);
  while (n + 1 < cap && (got = read(out, line + n, cap - 1 - n)) > 0)
    n += (size_t)got;
  line[n] = '\0';
  close(out);
  ok(waitpid(child_pid, &st, 0) == child_pid && WIFEXITED(st) &&
         WEXITSTATUS(st) == 0,
     "the child went on and exited");
  child_pid = -1;
}

static void test_stopped_writer(tu_env *e) {
  lash_store *s = e->s;
  int out, crc = 0, rrc = 0, wrc = 0, at = 0;
  char line[700] = "";
  const char *msg = NULL;
  SKIP_UNLESS_PG();
  out = fork_stopped(e, stopped_writer, "the child");
  write_behind(s, "parent-1", "the limit is 1000 ms");
  is(tu_status(s, "child-1"), LASH_ENOENT,
     "the stopped child's write is not in the store");
  cont_child(out, line, sizeof line);
  if (sscanf(line, "%d %d %d %n", &crc, &rrc, &wrc, &at) == 3) msg = line + at;
  is(crc, LASH_EIO, "after SIGCONT its commit is LASH_EIO, not a commit");
  ok(msg != NULL && tu_has(msg, "idle"),
     "... the message says the write sat idle: %s", msg ? msg : "");
  is(tu_status(s, "child-1"), LASH_ENOENT, "... and nothing of it was written");
  is(rrc, LASH_ENOENT, "its handle reads again (it reconnects): no child-1");
  is(wrc, 0, "... and its next write commits");
  is(tu_status(s, "child-2"), LASH_PENDING, "... child-2 is there");
  is(tu_status(s, "parent-1"), LASH_PENDING, "the parent's row is there");
  tu_check(s, "lash_check is clean");
}

/* The engine's writes take their limit from the lease TTL: TTL - 2 *
 * renew_ms, at least 5 s. A child's engine is stopped inside the write of
 * a lash_engine_write_sync. */
static int64_t child_ttl, child_renew;

static int stop_inside(lash_store *s, lash_txn *t, void *ud) {
  lash_def d = tu_def("eng-1", "k", LASH_RERUNNABLE, 0);
  lash_record r;
  int rc = lash_register(s, t, &d, NULL, NULL);
  memset(&r, 0, sizeof r);
  if (rc == 0) rc = lash_get(s, t, "eng-1", &r, NULL);
  lash_record_free(&r);
  if (write(*(int *)ud, "w", 1) != 1) _exit(6);
  raise(SIGSTOP);
  return rc;
}

static void stopped_engine(const char *target, const lash_store_opts *opts,
                           int ready, int out) {
  lash_engine_opts o;
  lash_engine *e = NULL;
  const char *msg = "";
  char err[512], line[700];
  int rc, src;
  (void)opts; /* the engine's own: write_idle_ms from its TTL */
  lash_engine_opts_init(&o);
  o.owner = "stopped";
  o.lease_ttl_ms = child_ttl;
  o.renew_ms = child_renew;
  if (lash_engine_open(target, &o, &e, err, sizeof err) != 0) _exit(2);
  rc = lash_engine_write_sync(e, stop_inside, &ready);
  src = lash_engine_storage_error(e, &msg);
  /* a lost connection is not the engine's storage error: the store's */
  if (src == 0) msg = lash_errmsg(lash_engine_store(e));
  snprintf(line, sizeof line, "%d %d %s", rc, src, msg);
  if (write(out, line, strlen(line)) < 0) _exit(7);
  lash_engine_close(e);
  _exit(0);
}

static void test_stopped_engine(tu_env *e, int64_t ttl, int64_t renew,
                                const char *id) {
  lash_store *s = e->s;
  int out, rc = 0, src = 0, at = 0;
  int64_t limit = ttl - 2 * renew < 5000 ? 5000 : ttl - 2 * renew, took;
  char line[700] = "", what[64];
  SKIP_UNLESS_PG();
  child_ttl = ttl;
  child_renew = renew;
  snprintf(what, sizeof what, "the child's engine (TTL %lld ms)",
           (long long)ttl);
  out = fork_stopped(e, stopped_engine, what);
  took = write_behind(s, id, "not the 30 s of a plain store");
  /* not before the server ended the child's write: limit ms after the
   * child's last statement, which came before it said it was ready */
  ok(took >= limit - 500,
     "... and not before the engine's limit (%lld ms) neared: the limit is "
     "the TTL less two renewals, at least 5 s",
     (long long)limit);
  cont_child(out, line, sizeof line);
  if (sscanf(line, "%d %d %n", &rc, &src, &at) != 2) at = 0;
  is(rc, LASH_EIO, "its write_sync is LASH_EIO");
  is(src, 0,
     "... not a storage error of the engine's: it reconnects and goes on");
  ok(tu_has(line + at, "idle"), "... naming the idle limit: %s", line + at);
  is(tu_status(s, "eng-1"), LASH_ENOENT, "nothing of its write is there");
}

/* A held batch (eng:batch) idle for longer than the limit commits. */
static void test_held_batch(tu_env *e) {
  lash_store *s = e->s;
  lash_txn *t = NULL;
  lash_def d = tu_def("held-1", "k", LASH_RERUNNABLE, 0);
  lash_record r;
  SKIP_UNLESS_PG();
  is_rc(s, lash_txn_begin_held(s, &t), 0, "a held batch begins");
  is_rc(s, lash_register(s, t, &d, NULL, NULL), 0, "it writes held-1");
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, t, "held-1", &r, NULL), 0,
        "... and reads it back (the write went to the server)");
  lash_record_free(&r);
  sleep_ms(2 * IDLE_MS); /* the caller's code runs: the batch is idle */
  d = tu_def("held-2", "k", LASH_RERUNNABLE, 0);
  is_rc(s, lash_register(s, t, &d, NULL, NULL), 0,
        "after idling for twice the limit it writes held-2");
  is_rc(s, lash_txn_commit(t), 0, "... and commits");
  is(tu_status(s, "held-1"), LASH_PENDING, "held-1 is there");
  is(tu_status(s, "held-2"), LASH_PENDING, "held-2 is there");

  /* the same idle time in a batch of lash_txn_begin is ended */
  is_rc(s, lash_txn_begin(s, &t), 0, "a plain batch begins");
  d = tu_def("plain-1", "k", LASH_RERUNNABLE, 0);
  is_rc(s, lash_register(s, t, &d, NULL, NULL), 0, "it writes plain-1");
  sleep_ms(2 * IDLE_MS);
  is_rc(s, lash_txn_commit(t), LASH_EIO,
        "after idling for twice the limit its commit is LASH_EIO");
  is(tu_status(s, "plain-1"), LASH_ENOENT, "... plain-1 is not there");
  d = tu_def("plain-2", "k", LASH_RERUNNABLE, 0);
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0,
        "the handle writes again (it reconnected)");
}

/* write_idle_ms < 0: a write is never ended. */
static void test_never(tu_env *e) {
  lash_store_opts o = e->opts;
  lash_store *s2 = NULL;
  lash_txn *t = NULL;
  lash_def d = tu_def("never-1", "k", LASH_RERUNNABLE, 0);
  char err[512];
  SKIP_UNLESS_PG();
  o.write_idle_ms = -1;
  ok(lash_store_open(lash_store_path(e->s), &o, &s2, err, sizeof err) == 0,
     "a handle with write_idle_ms -1");
  is_rc(s2, lash_txn_begin(s2, &t), 0, "its batch begins");
  is_rc(s2, lash_register(s2, t, &d, NULL, NULL), 0, "it writes never-1");
  sleep_ms(2 * IDLE_MS);
  is_rc(s2, lash_txn_commit(t), 0, "after idling for 2 s it commits");
  is(tu_status(e->s, "never-1"), LASH_PENDING, "never-1 is there");
  lash_store_close(s2);
}

int main(void) {
  tu_env e;
  lash_store_opts o;
  lash_store_opts_init(&o);
  o.write_idle_ms = IDLE_MS;
  tu_open(&e, &o);
  test_stopped_writer(&e);
  test_stopped_engine(&e, 300, 100, "parent-2");   /* the floor: 5 s */
  test_stopped_engine(&e, 8000, 1000, "parent-3"); /* 8000 - 2000: 6 s */
  test_held_batch(&e);
  test_never(&e);
  tu_close(&e);
  return done_testing();
}
