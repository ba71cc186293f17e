/* test_race.c - real OS processes on one store directory.
 *
 * 1. Eight forked workers race over 2,000 rerunnable rows: each row is
 *    completed exactly once, fences in each row's start history strictly
 *    increase, and the store checks clean. A few rows are started and then
 *    stalled (lease left to lapse), so they are re-run by someone else.
 * 2. Four forked writers register rows and append events with durability
 *    FULL, logging each acknowledged write (fsync'd); they are killed with
 *    SIGKILL after ~300 ms, and every acknowledged write must be in the
 *    reopened store. Every child opens its own store handle after fork. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define NROWS 2000
#define NCHILD 8
#define NCRASH 4
#define STALL_TTL 200

static char g_root[64];

/* ------------------------------------------------------------ the race */

typedef struct ids {
  size_t n;
  char id[64][LASH_ID_MAX + 1];
} ids;

static int collect_ids(void *ud, const lash_record *r) {
  ids *l = (ids *)ud;
  if (l->n < 64) snprintf(l->id[l->n++], sizeof l->id[0], "%s", r->id);
  return 0;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One worker. Returns its exit code; writes "completed errors" to a file. */
static int race_child(const char *dir, int idx) {
  lash_store *s = NULL;
  lash_store_opts o;
  char err[256], owner[32], inc[32], stall_inc[32], path[128];
  unsigned char ob[8];
  lash_bytes out = tu_mp_uint(ob, (uint32_t)idx);
  int completed = 0, errors = 0, stalled = 0, rc;
  int64_t deadline = mono_ms() + 45000;
  FILE *f;

  lash_store_opts_init(&o);
  o.durability = LASH_DURABILITY_NONE;
  if ((rc = lash_store_open(dir, &o, &s, err, sizeof err)) != 0) {
    fprintf(stderr, "child %d: open: %s\n", idx, err);
    return 2;
  }
  snprintf(owner, sizeof owner, "child-%d", idx);
  snprintf(inc, sizeof inc, "pid-%d", (int)getpid());
  snprintf(stall_inc, sizeof stall_inc, "stall-%d", (int)getpid());

  while (mono_ms() < deadline) {
    lash_worklist_cursor cur;
    int seen = 0, did = 0, pages = 0;
    memset(&cur, 0, sizeof cur);
    while (!cur.done && pages++ < 1000) {
      ids page;
      size_t i;
      int prc;
      page.n = 0;
      prc = lash_worklist_page(s, NULL, "w", &cur, 64, collect_ids, &page);
      if (prc < 0) {
        fprintf(stderr, "child %d: page: %s\n", idx, lash_errmsg(s));
        errors++;
        break;
      }
      seen += prc;
      for (i = 0; i < page.n; i++) {
        lash_lease ls;
        lash_record r;
        int stall = stalled < 3;
        uint32_t att = 0;
        memset(&ls, 0, sizeof ls);
        /* A stalled attempt uses its own incarnation, so this worker's
         * later claims cannot re-enter it and must wait for the lapse. */
        rc = lash_lease_claim(s, NULL, page.id[i], owner,
                              stall ? stall_inc : inc,
                              stall ? STALL_TTL : 60000, &ls);
        if (rc == LASH_EBUSY) continue;
        if (rc != 0) {
          fprintf(stderr, "child %d: claim %s: %s\n", idx, page.id[i],
                  lash_errmsg(s));
          errors++;
          continue;
        }
        memset(&r, 0, sizeof r);
        rc = lash_get(s, NULL, page.id[i], &r, NULL);
        if (rc != 0 || LASH_IS_TERMINAL(r.status)) {
          if (rc != 0) errors++;
          lash_record_free(&r);
          lash_lease_release(s, NULL, &ls);
          continue;
        }
        lash_record_free(&r);
        rc = lash_start(s, NULL, &ls, &att);
        if (rc != 0) {
          fprintf(stderr, "child %d: start %s: %s\n", idx, page.id[i],
                  lash_errmsg(s));
          errors++;
          lash_lease_release(s, NULL, &ls);
          continue;
        }
        if (stall) { /* leave the lease to lapse: someone re-runs it */
          stalled++;
          did++;
          continue;
        }
        rc = lash_complete(s, NULL, &ls, LASH_COMPLETED, out);
        if (rc == 0) {
          completed++;
          did++;
        } else {
          /* ESUPERSEDED cannot happen with a 60 s lease; APPLIED would mean
           * someone completed a row whose lease we held. */
          fprintf(stderr, "child %d: complete %s: %d %s\n", idx, page.id[i], rc,
                  lash_errmsg(s));
          errors++;
        }
        lash_lease_release(s, NULL, &ls); /* stale after completion: no-op */
      }
      if (prc == 0 && !cur.done) break;
    }
    if (seen == 0) break;       /* nothing live left */
    if (did == 0) usleep(2000); /* everything busy: wait for leases to lapse */
  }
  if (mono_ms() >= deadline) {
    fprintf(stderr, "child %d: deadline\n", idx);
    errors++;
  }
  lash_store_close(s);
  snprintf(path, sizeof path, "%s/child-%d.out", g_root, idx);
  f = fopen(path, "w");
  if (f) {
    fprintf(f, "%d %d %d\n", completed, errors, stalled);
    fclose(f);
  }
  return errors ? 1 : 0;
}

static void test_race(void) {
  char dir[128], err[256];
  lash_store_opts o;
  lash_store *s = NULL;
  lash_txn *txn = NULL;
  pid_t pids[NCHILD];
  int i, rc, exits_ok = 1, total = 0, child_err = 0, stalled = 0;
  int once = 1, done_all = 1, fences_ok = 1, outcome_ok = 1, rerun = 0;
  int64_t t0 = mono_ms();

  snprintf(dir, sizeof dir, "%s/race", g_root);
  lash_store_opts_init(&o);
  o.durability = LASH_DURABILITY_NONE;
  rc = lash_store_open(dir, &o, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "race: open");
  if (rc != 0) return;
  rc = lash_txn_begin(s, &txn);
  for (i = 0; i < NROWS && rc == 0; i++) {
    char id[32];
    lash_def d;
    snprintf(id, sizeof id, "r-%04d", i);
    d = tu_def(id, "w", LASH_RERUNNABLE, 0);
    rc = lash_register(s, txn, &d, NULL, NULL);
  }
  if (rc == 0)
    rc = lash_txn_commit(txn);
  else
    lash_txn_abort(txn);
  is_rc(s, rc, 0, "race: registered %d rerunnable rows", NROWS);
  lash_store_close(s);
  s = NULL;

  fflush(stdout);
  fflush(stderr);
  for (i = 0; i < NCHILD; i++) {
    pids[i] = fork();
    if (pids[i] == 0) _exit(race_child(dir, i));
  }
  for (i = 0; i < NCHILD; i++) {
    int st = 0;
    char path[128];
    FILE *f;
    int c = 0, e = 0, sl = 0;
    if (pids[i] < 0 || waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
      diag("child %d: status %d", i, st);
      exits_ok = 0;
    }
    snprintf(path, sizeof path, "%s/child-%d.out", g_root, i);
    f = fopen(path, "r");
    if (f && fscanf(f, "%d %d %d", &c, &e, &sl) == 3) {
      total += c;
      child_err += e;
      stalled += sl;
    } else {
      exits_ok = 0;
    }
    if (f) fclose(f);
  }
  ok(exits_ok, "race: all %d workers exited cleanly", NCHILD);
  is(child_err, 0, "race: workers saw no unexpected errors");
  is(total, NROWS, "race: completions acknowledged == rows");
  ok(stalled > 0, "race: some attempts stalled (%d) and were re-run", stalled);
  diag("race: workers took %lld ms", (long long)(mono_ms() - t0));

  rc = lash_store_open(dir, &o, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "race: reopen");
  if (rc != 0) return;
  for (i = 0; i < NROWS; i++) {
    char id[32];
    tu_evs ev = {0};
    lash_record r;
    lash_lease ls;
    size_t k;
    int ncomplete = 0, nstart = 0;
    uint64_t last_fence = 0, f, a;
    snprintf(id, sizeof id, "r-%04d", i);
    memset(&r, 0, sizeof r);
    if (lash_get(s, NULL, id, &r, NULL) != 0 || r.status != LASH_COMPLETED) {
      if (done_all) diag("%s: status %d", id, r.status);
      done_all = 0;
    }
    if (r.outcome.len != 1 ||
        ((const unsigned char *)r.outcome.data)[0] >= NCHILD)
      outcome_ok = 0;
    tu_events(s, NULL, id, 0, 0, &ev);
    for (k = 0; k < ev.n; k++) {
      if (strcmp(ev.v[k].type, "process.completed") == 0) ncomplete++;
      if (strcmp(ev.v[k].type, "process.started") == 0) {
        f = a = 0;
        nstart++;
        if (!tu_mp_map_uint(ev.v[k].payload, ev.v[k].len, "fence", &f) ||
            f <= last_fence) {
          if (fences_ok)
            diag("%s: started fence %" PRIu64 " after %" PRIu64, id, f,
                 last_fence);
          fences_ok = 0;
        }
        last_fence = f;
      }
    }
    if (nstart > 1) rerun++;
    if (ncomplete != 1) {
      if (once) diag("%s: %d process.completed events", id, ncomplete);
      once = 0;
    }
    memset(&ls, 0, sizeof ls);
    if (lash_lease_get(s, NULL, id, &ls) != 0 || ls.token != 0 ||
        ls.fence < last_fence || r.attempt.fence != last_fence)
      fences_ok = 0;
    tu_evs_free(&ev);
    lash_record_free(&r);
  }
  ok(done_all, "race: every row completed");
  ok(once, "race: exactly one process.completed event per row");
  ok(outcome_ok, "race: every outcome is a worker index");
  ok(fences_ok, "race: start fences strictly increase per row; lease fence "
                ">= last start, holder cleared");
  ok(rerun > 0, "race: %d stalled rows were re-run under a larger fence",
     rerun);
  tu_check(s, "race: lash_check == 0 after the race");
  lash_store_close(s);
}

/* --------------------------------------------------------- kill -9 test */

static void crash_child(const char *dir, int c) {
  lash_store *s = NULL;
  lash_store_opts o;
  char err[256], path[128], id[64], line[160];
  unsigned char pb[8];
  lash_bytes pl = tu_mp_uint(pb, 1);
  int fd, n;
  int64_t deadline = mono_ms() + 20000;

  lash_store_opts_init(&o);
  o.durability = LASH_DURABILITY_FULL;
  if (lash_store_open(dir, &o, &s, err, sizeof err) != 0) _exit(2);
  snprintf(path, sizeof path, "%s/crash-%d.log", g_root, c);
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) _exit(3);
  for (n = 0; mono_ms() < deadline; n++) {
    uint64_t seq = 0;
    int len;
    snprintf(id, sizeof id, "k%d-%d", c, n);
    if (tu_reg(s, id, "k", LASH_RERUNNABLE, 0) == 0) {
      len = snprintf(line, sizeof line, "R %s\n", id);
      if (write(fd, line, (size_t)len) != len) _exit(4);
      fsync(fd);
    }
    if (lash_append(s, NULL, id, "progress", pl, &seq) == 0) {
      len = snprintf(line, sizeof line, "A %s %" PRIu64 "\n", id, seq);
      if (write(fd, line, (size_t)len) != len) _exit(4);
      fsync(fd);
    }
  }
  _exit(5); /* not killed in time */
}

static void test_crash(void) {
  char dir[128], err[256];
  lash_store_opts o;
  lash_store *s = NULL;
  pid_t pids[NCRASH];
  int i, rc, killed = 1;
  long acked = 0, found = 0, regs = 0;

  snprintf(dir, sizeof dir, "%s/crash", g_root);
  lash_store_opts_init(&o);
  o.durability = LASH_DURABILITY_FULL;
  rc = lash_store_open(dir, &o, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "crash: create the store");
  if (rc != 0) return;
  lash_store_close(s);
  s = NULL;

  fflush(stdout);
  fflush(stderr);
  for (i = 0; i < NCRASH; i++) {
    pids[i] = fork();
    if (pids[i] == 0) crash_child(dir, i);
  }
  usleep(300 * 1000);
  for (i = 0; i < NCRASH; i++)
    if (pids[i] > 0) kill(pids[i], SIGKILL);
  for (i = 0; i < NCRASH; i++) {
    int st = 0;
    if (pids[i] <= 0 || waitpid(pids[i], &st, 0) != pids[i] ||
        !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
      diag("crash child %d: status %d", i, st);
      killed = 0;
    }
  }
  ok(killed, "crash: all %d writers were killed by SIGKILL mid-run", NCRASH);

  rc = lash_store_open(dir, &o, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "crash: the store reopens after kill -9");
  if (rc != 0) {
    diag("%s", err);
    return;
  }
  for (i = 0; i < NCRASH; i++) {
    char path[128], line[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/crash-%d.log", g_root, i);
    f = fopen(path, "r");
    if (!f) continue;
    while (fgets(line, sizeof line, f)) {
      char id[128];
      uint64_t seq = 0;
      size_t len = strlen(line);
      if (len == 0 || line[len - 1] != '\n')
        break; /* torn last line: never acknowledged */
      if (line[0] == 'R' && sscanf(line, "R %127s", id) == 1) {
        acked++;
        regs++;
        if (tu_status(s, id) > 0)
          found++;
        else
          diag("acknowledged registration of %s lost", id);
      } else if (line[0] == 'A' &&
                 sscanf(line, "A %127s %" SCNu64, id, &seq) == 2) {
        tu_evs ev = {0};
        acked++;
        if (seq > 0 && tu_events(s, NULL, id, seq - 1, 1, &ev) == 0 &&
            ev.n == 1 && ev.v[0].seq == seq &&
            strcmp(ev.v[0].type, "progress") == 0)
          found++;
        else
          diag("acknowledged append %s #%" PRIu64 " lost", id, seq);
        tu_evs_free(&ev);
      }
    }
    fclose(f);
  }
  diag("crash: %ld acknowledged writes (%ld registrations)", acked, regs);
  ok(regs > 0, "crash: writers acknowledged registrations before the kill");
  is(found, acked, "crash: every acknowledged write survived kill -9");
  tu_check(s, "crash: lash_check == 0 after kill -9");
  rc = tu_reg(s, "after-crash", "k", LASH_RERUNNABLE, 0);
  is_rc(s, rc, 0, "crash: the store takes writes after recovery");
  lash_store_close(s);
}

int main(void) {
  if (tu_mkdtemp(g_root, sizeof g_root) != 0) return 1;
  test_race();
  test_crash();
  tu_rmrf(g_root);
  return done_testing();
}
