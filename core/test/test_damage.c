/* test_damage.c - the LMDB store under hostile conditions, with real OS
 * processes and real signals: reader slots of kill -9'd readers are
 * reclaimed; a map that fills grows (and stops at a max_bytes ceiling);
 * a truncated or empty data file, a flipped byte in an event and random
 * byte inversions are reported as damage, never a crash of the caller;
 * lash_salvage copies the readable rows of a damaged store. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct lines {
  int n;
  char all[8192];
} lines;

static int quiet;

static void collect(void *ud, const char *line) {
  lines *l = ud;
  size_t have = strlen(l->all);
  l->n++;
  if (l->n <= 5 && !quiet) diag("problem: %s", line);
  snprintf(l->all + have, sizeof l->all - have, "%s\n", line);
}

static void data_path(char *buf, size_t cap, const char *dir) {
  snprintf(buf, cap, "%s/data.mdb", dir);
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A store of n rows (kind "k"), each with one progress event carrying
 * "PAYLOAD-<i>" padded to pad bytes; closed. */
static void make_store(const char *dir, int n, size_t pad) {
  lash_store *s = NULL;
  char err[512], id[32], text[600];
  unsigned char buf[700];
  int i;
  if (lash_store_open(dir, NULL, &s, err, sizeof err) != 0) {
    printf("Bail out! %s\n", err);
    exit(1);
  }
  for (i = 0; i < n; i++) {
    snprintf(id, sizeof id, "row-%05d", i);
    if (tu_reg(s, id, "k", LASH_RERUNNABLE, 0) != 0) {
      printf("Bail out! register %s: %s\n", id, lash_errmsg(s));
      exit(1);
    }
    snprintf(text, sizeof text, "PAYLOAD-%05d-%0*d", i,
             (int)(pad > 20 ? pad - 20 : 1), 0);
    if (lash_append(s, NULL, id, "progress", tu_mp_str(buf, sizeof buf, text),
                    NULL) != 0) {
      printf("Bail out! append %s: %s\n", id, lash_errmsg(s));
      exit(1);
    }
  }
  lash_store_close(s);
}

static int tu_evs_cb_null(void *ud, const lash_event *ev) {
  (void)ud;
  (void)ev;
  return 0;
}

/* ---------------------------------------------------------- readers */

static int hold_read(void *ud, const lash_record *r) {
  int fd = *(int *)ud;
  (void)r;
  if (write(fd, "x", 1) != 1) _exit(9);
  for (;;)
    pause(); /* killed here, inside the read transaction */
  return 0;
}

static void test_reader_slots(void) {
  char root[64], dir[128], err[512];
  lash_store_opts o;
  lash_store *s = NULL;
  int i, killed = 0, status = -1;
  pid_t pid;

  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  make_store(dir, 3, 30);
  lash_store_opts_init(&o);
  is(o.max_readers, 1024u, "max_readers defaults to 1024");
  o.max_readers = 8;
  /* 20 openers, each killed (SIGKILL) while it holds a read. */
  for (i = 0; i < 20; i++) {
    int fds[2];
    char c;
    if (pipe(fds) != 0) break;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
      lash_store *cs = NULL;
      lash_list_filter f;
      close(fds[0]);
      if (lash_store_open(dir, &o, &cs, err, sizeof err) != 0) {
        if (write(fds[1], "E", 1) != 1) _exit(3);
        _exit(2);
      }
      memset(&f, 0, sizeof f);
      lash_list(cs, NULL, &f, hold_read, &fds[1]);
      _exit(4);
    }
    close(fds[1]);
    if (read(fds[0], &c, 1) == 1 && c == 'x') killed++;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
  }
  is(killed, 20,
     "20 openers held a read and were killed with SIGKILL "
     "(max_readers 8)");
  /* A new process still reads and writes. */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    lash_store *cs = NULL;
    if (lash_store_open(dir, &o, &cs, err, sizeof err) != 0) _exit(2);
    if (tu_status(cs, "row-00001") != LASH_PENDING) _exit(3);
    if (tu_reg(cs, "after", "k", LASH_RERUNNABLE, 0) != 0) _exit(4);
    lash_store_close(cs);
    _exit(0);
  }
  waitpid(pid, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "a new process reads and writes afterwards (status %d)", status);
  is(lash_store_open(dir, &o, &s, err, sizeof err), 0, "and so does this one");
  is(tu_status(s, "after"), LASH_PENDING, "... it sees the new row");
  lash_store_close(s);
  tu_rmrf(root);
}

/* -------------------------------------------------------------- map */

static void test_map_grows(void) {
  tu_env e;
  lash_store_opts o;
  lash_store *s;
  char id[32];
  int rc = 0, n_ok = 0;
  lash_stats st;

  lash_store_opts_init(&o);
  ok(o.max_bytes == 0, "no max_bytes ceiling by default");
  o.map_bytes = 256 * 1024; /* a small map, no ceiling */
  s = tu_open(&e, &o);
  n_ok = tu_fill(s, "grow", 2000, 2000, id, sizeof id, &rc);
  is(n_ok, 2000, "2000 rows of 2 KB fit a 256 KiB map that grows (%s: %s)",
     lash_err_name(rc), rc ? lash_errmsg(s) : "");
  memset(&st, 0, sizeof st);
  is(lash_store_stats(s, NULL, &st), 0, "stats");
  ok(st.bytes_used > 4u << 20, "the store holds over 4 MB (%llu bytes)",
     (unsigned long long)st.bytes_used);
  tu_check(s, "check after the map grew");
  is(tu_reopen(&e), 0, "reopens");
  is(tu_status(e.s, "grow-01999"), LASH_PENDING, "the last row is there");
  tu_close(&e);
}

/* ----------------------------------------------------------- damage */

static void test_truncated(void) {
  char root[64], dir[128], path[160], err[512];
  lash_store *s = NULL;
  lines l;
  off_t size;
  int rc, status;
  pid_t pid;

  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  make_store(dir, 400, 200);
  data_path(path, sizeof path, dir);
  size = file_size(path);
  ok(truncate(path, size / 2) == 0, "truncate -s 50%% data.mdb (%lld bytes)",
     (long long)size);
  /* In a child: the old code dies by SIGBUS here. */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    rc = lash_store_open(dir, NULL, &s, err, sizeof err);
    if (rc == 0) {
      lash_check(s, NULL, NULL);
      _exit(0);
    }
    _exit(rc == LASH_ECORRUPT && tu_has(err, "truncated") ? 7 : 8);
  }
  waitpid(pid, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 7,
     "opening a truncated store is ECORRUPT (status %d)", status);
  rc = lash_store_open(dir, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_ECORRUPT, "open: ECORRUPT");
  ok(tu_has(err, "data file is") && tu_has(err, "meta pages say"),
     "the message names both lengths: %s", err);
  memset(&l, 0, sizeof l);
  rc = lash_check_isolated(dir, NULL, collect, &l, err, sizeof err);
  ok(rc >= 1 && tu_has(l.all, "truncated"),
     "check: the truncation is a "
     "problem (%d)",
     rc);
  {
    char dest[160];
    lash_salvage_report rep;
    snprintf(dest, sizeof dest, "%s/saved", root);
    memset(&l, 0, sizeof l);
    rc = lash_salvage(dir, dest, NULL, collect, &l, &rep, err, sizeof err);
    ok(rc == 0 || rc == LASH_ECORRUPT,
       "salvage of a truncated store ends with a report, no crash (%s, "
       "copied %llu): %s",
       lash_err_name(rc), (unsigned long long)rep.copied, err);
  }
  tu_rmrf(root);
}

static void test_empty(void) {
  char root[64], dir[128], path[160], err[512];
  lash_store *s = NULL;
  lines l;
  int rc, fd;

  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  make_store(dir, 3, 30);
  data_path(path, sizeof path, dir);
  fd = open(path, O_WRONLY | O_TRUNC);
  ok(fd >= 0, "data.mdb emptied (0 bytes)");
  if (fd >= 0) close(fd);
  rc = lash_store_open(dir, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_ECORRUPT, "open of a 0-byte data.mdb: ECORRUPT");
  ok(tu_has(err, "empty"), "... says it is empty: %s", err);
  memset(&l, 0, sizeof l);
  rc = lash_check_isolated(dir, NULL, collect, &l, err, sizeof err);
  is(rc, 1, "check: one problem, not ok");
  tu_rmrf(root);
}

/* Finds @p needle in the file; its offset or -1. */
static long find_in_file(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  static char buf[1 << 22];
  size_t n, k = strlen(needle), i;
  long at = -1;
  if (f == NULL) return -1;
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  for (i = 0; i + k <= n; i++)
    if (memcmp(buf + i, needle, k) == 0) {
      at = (long)i;
      break;
    }
  return at;
}

static void flip_byte(const char *path, long at, unsigned char mask) {
  int fd = open(path, O_RDWR);
  unsigned char c;
  if (fd < 0) return;
  if (pread(fd, &c, 1, at) == 1) {
    c ^= mask;
    if (pwrite(fd, &c, 1, at) != 1) diag("pwrite failed");
  }
  close(fd);
}

static void test_flipped_event(void) {
  char root[64], dir[128], path[160], err[512];
  lash_store *s = NULL;
  lines l;
  long at;
  int rc;

  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  make_store(dir, 5, 40);
  data_path(path, sizeof path, dir);
  at = find_in_file(path, "PAYLOAD-00003");
  ok(at > 0, "the payload of row-00003 is in the file at %ld", at);
  flip_byte(path, at + 10, 0x01); /* PAYLOAD-00003 -> PAYLOAD-00002 */
  memset(&l, 0, sizeof l);
  rc = lash_check_isolated(dir, NULL, collect, &l, err, sizeof err);
  ok(rc >= 1 && tu_has(l.all, "row-00003") &&
         tu_has(l.all, "event 1 is damaged"),
     "check names the process and the event (%d)", rc);
  is(lash_store_open(dir, NULL, &s, err, sizeof err), 0, "the store opens");
  if (s != NULL) {
    rc = lash_check(s, NULL, NULL);
    ok(rc >= 1, "lash_check in process reports it too (%d)", rc);
    rc = lash_events_after(s, NULL, "row-00003", 0, 0, tu_evs_cb_null, NULL);
    is_rc(s, rc, LASH_ECORRUPT, "reading that event: ECORRUPT");
    ok(tu_has(lash_errmsg(s), "event 1 of process row-00003"),
       "... naming the id and seq: %s", lash_errmsg(s));
    is(tu_event_count(s, "row-00002"), 1, "another row reads fine");
    lash_store_close(s);
  }
  {
    char dest[160];
    lash_salvage_report rep;
    lash_store *d = NULL;
    lash_stats st;
    snprintf(dest, sizeof dest, "%s/saved", root);
    memset(&l, 0, sizeof l);
    rc = lash_salvage(dir, dest, NULL, collect, &l, &rep, err, sizeof err);
    is(rc, 0, "salvage: %s", err);
    ok(rep.copied == 4 && rep.skipped == 1,
       "salvage copied 4 rows and skipped the damaged one (%llu, %llu)",
       (unsigned long long)rep.copied, (unsigned long long)rep.skipped);
    ok(tu_has(l.all, "skipped process row-00003"), "... and said which");
    is(lash_store_open(dest, NULL, &d, err, sizeof err), 0,
       "the salvaged store opens");
    if (d != NULL) {
      memset(&st, 0, sizeof st);
      lash_store_stats(d, NULL, &st);
      is(st.total, 4, "it holds the 4 rows");
      is(tu_event_count(d, "row-00004"), 1, "a copied row has its event");
      is(tu_status(d, "row-00003"), LASH_ENOENT, "the damaged row is not");
      tu_check(d, "the salvaged store checks clean");
      lash_store_close(d);
    }
  }
  tu_rmrf(root);
}

/* Random byte inversions in the pages of a copy, 50 runs: the check
 * returns a count (never dies with the caller); the caller never faults. */
static void test_inversions(void) {
  char root[64], dir[128], path[160], run[160], cmd[1024], err[512];
  int i, j, clean = 0, damaged = 0, errors = 0;
  off_t size;
  unsigned seed = 12345;

  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  make_store(dir, 300, 100);
  data_path(path, sizeof path, dir);
  size = file_size(path);
  quiet = 1;
  for (i = 0; i < 50; i++) {
    lines l;
    int rc;
    snprintf(run, sizeof run, "%s/run", root);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp %s %s/", run, run,
             path, run);
    if (system(cmd) != 0) break;
    snprintf(cmd, sizeof cmd, "%s/data.mdb", run);
    for (j = 0; j < 8; j++) {
      long at;
      seed = seed * 1103515245u + 12345u;
      at = (long)((seed >> 4) % (unsigned)size);
      flip_byte(cmd, at, 0xff);
    }
    memset(&l, 0, sizeof l);
    rc = lash_check_isolated(run, NULL, collect, &l, err, sizeof err);
    if (rc == 0)
      clean++;
    else if (rc > 0)
      damaged++;
    else {
      errors++;
      diag("run %d: %s: %s", i, lash_err_name(rc), err);
    }
  }
  ok(clean + damaged + errors == 50,
     "50 runs, none crashed this process "
     "(%d clean, %d damaged, %d errors)",
     clean, damaged, errors);
  ok(damaged > 0, "damage was found in %d runs", damaged);
  quiet = 0;
  tu_rmrf(root);
}

int main(void) {
  test_reader_slots();
  test_map_grows();
  test_truncated();
  test_empty();
  test_flipped_event();
  test_inversions();
  return done_testing();
}
