/* test_idle.c - a writer stopped inside its write transaction does not
 * keep the store's other writers waiting (lash_store_opts.write_idle_ms).
 *
 * On PostgreSQL every write locks the meta row until its COMMIT: a child
 * OS process begins a write, writes (the write reaches the server), and is
 * stopped there (SIGSTOP). The parent's write completes within a bounded
 * time all the same (the server ends the idle write and frees its lock);
 * after SIGCONT the child's commit is LASH_EIO, nothing of it was written,
 * and its handle writes again (it reconnects). A held batch
 * (lash_txn_begin_held: eng:batch) idle for longer than the limit still
 * commits, and so does a write of a store opened with write_idle_ms < 0.
 *
 * LMDB's writer keeps its lock while its process lives and the mem backend
 * has no other process: both skip. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define IDLE_MS 1000   /* the stores' write_idle_ms here */
#define BOUND_MS 10000 /* "ends at all": the parent's write behind a stop */

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
  /* a read reconnects (a write right after a failed commit is EPANIC
   * until then: the core marks the store, the backend's begin clears it) */
  rrc = tu_status(cs, "child-1");
  d = tu_def("child-2", "k", LASH_RERUNNABLE, 0);
  wrc = lash_register(cs, NULL, &d, NULL, NULL);
  snprintf(line, sizeof line, "%d %d %d %s", crc, rrc, wrc, msg);
  if (write(out, line, strlen(line)) < 0) _exit(7);
  lash_store_close(cs);
  _exit(0);
}

static void test_stopped_writer(tu_env *e) {
  lash_store *s = e->s;
  int ready[2], out[2], st = 0, crc = 0, rrc = 0, wrc = 0, n = 0, at = 0;
  char c, line[700] = "";
  const char *msg = NULL;
  int64_t t0, took;
  ssize_t got;
  if (!TU_PG) {
    printf("ok %d # skip on the " TU_BACKEND
           " backend: PostgreSQL ends idle writes\n",
           ++tap_n_);
    return;
  }
  ok(pipe(ready) == 0 && pipe(out) == 0, "pipes");
  fflush(stdout);
  if ((child_pid = fork()) == 0) {
    close(ready[0]);
    close(out[0]);
    stopped_writer(lash_store_path(s), &e->opts, ready[1], out[1]);
  }
  close(ready[1]);
  close(out[1]);
  ok(read(ready[0], &c, 1) == 1, "the child wrote inside its transaction");
  ok(waitpid(child_pid, &st, WUNTRACED) == child_pid && WIFSTOPPED(st),
     "... and is stopped there (SIGSTOP)");

  signal(SIGALRM, on_alarm);
  alarm(30);
  t0 = mono_ms();
  is_rc(s, tu_reg(s, "parent-1", "k", LASH_RERUNNABLE, 0), 0,
        "the parent's write completes all the same");
  took = mono_ms() - t0;
  alarm(0);
  ok(took < BOUND_MS, "... within %d ms (took %lld ms; the limit is %d ms)",
     BOUND_MS, (long long)took, IDLE_MS);
  is(tu_status(s, "child-1"), LASH_ENOENT,
     "the stopped child's write is not in the store");

  kill(child_pid, SIGCONT);
  while ((got = read(out[0], line + n, sizeof line - 1 - (size_t)n)) > 0)
    n += (int)got;
  line[n] = '\0';
  close(out[0]);
  close(ready[0]);
  ok(waitpid(child_pid, &st, 0) == child_pid && WIFEXITED(st) &&
         WEXITSTATUS(st) == 0,
     "the child went on and exited");
  child_pid = -1;
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

/* A held batch (eng:batch) idle for longer than the limit commits. */
static void test_held_batch(tu_env *e) {
  lash_store *s = e->s;
  lash_txn *t = NULL;
  lash_def d = tu_def("held-1", "k", LASH_RERUNNABLE, 0);
  lash_record r;
  if (!TU_PG) {
    printf("ok %d # skip on the " TU_BACKEND
           " backend: PostgreSQL ends idle writes\n",
           ++tap_n_);
    return;
  }
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
  if (!TU_PG) {
    printf("ok %d # skip on the " TU_BACKEND
           " backend: PostgreSQL ends idle writes\n",
           ++tap_n_);
    return;
  }
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
  test_held_batch(&e);
  test_never(&e);
  tu_close(&e);
  return done_testing();
}
