/* bench_core.c - the core benchmark: raw LMDB against the lash registry.
 *
 *   bench_core [--n N] [--dir DIR] [--keep]
 *
 * Every figure is measured on a fresh store on disk with full durability
 * (fsync per commit):
 *   1. raw LMDB: put+commit of a 16-byte key and a 64-byte value, 1 put per
 *      commit and 256 puts per commit                        -> puts/s
 *   2. the lash registry lifecycle of one row: lash_register,
 *      lash_lease_claim, lash_start, lash_complete(completed) -> rows/s
 *      - txn=NULL:  each call commits on its own (4 commits per row)
 *      - batch=1:   one lash_txn around the 4 calls of a row
 *      - batch=256: one lash_txn around 256 rows' calls
 *   3. the same calls counted per operation (one call against one raw put):
 *      - ops=1:     each call commits on its own
 *      - ops=256:   256 calls (64 rows) per commit
 * Registry figures are also given as a share of raw LMDB puts/s at the same
 * batch size (the target is >= 50%). The figures of one batch size run
 * interleaved in ROUNDS rounds, so a slow spell of the disk hits them all. At
 * the end lash_check runs on each registry store; any problem (or any failed
 * call) makes the exit status 1.
 *
 * --n N      rows (puts) at batch size 1, default 2000; batch=256 runs 50*N
 * --dir DIR  parent of the temporary directory, default $TMPDIR or /tmp
 * --keep     keep the stores instead of removing them
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lash.h"

#define KEY_LEN 16
#define VAL_LEN 64
#define BIG_BATCH 256
#define MAP_SIZE ((size_t)1 << 30)
/* The figures of one batch size are measured interleaved, 1/ROUNDS of the
 * rows each in turn, so that raw and registry see the same disk weather. */
#define ROUNDS 16

static char g_root[4096]; /* the temporary directory, "" when none */
static int g_keep;

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT)
    fprintf(stderr, "bench_core: remove %s: %s\n", path, strerror(errno));
  return 0;
}

static void cleanup(void) {
  if (!g_root[0]) return;
  if (g_keep) {
    fprintf(stderr, "bench_core: stores kept in %s\n", g_root);
  } else {
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  g_root[0] = '\0';
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_core: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1); /* cleanup() runs from atexit */
}

static void subdir(char *buf, size_t cap, const char *name) {
  int n = snprintf(buf, cap, "%s/%s", g_root, name);
  if (n < 0 || (size_t)n >= cap) die("path too long: %s/%s", g_root, name);
}

/* The 16-byte id of row @p i: printable, so the same bytes serve as a raw
 * LMDB key and as a lash process id. Ascending in i. */
static void make_id(char id[KEY_LEN + 1], unsigned i) {
  snprintf(id, KEY_LEN + 1, "p%015u", i);
}

/* One line of the report, in aligned columns. */
static void report(const char *what, const char *batch, unsigned n, double rate,
                   const char *unit, const char *note) {
  char nn[32];
  snprintf(nn, sizeof nn, "N=%u", n);
  if (note && note[0])
    printf("  core %-24s %-11s %-9s %9.0f %-6s  %s\n", what, batch, nn, rate,
           unit, note);
  else
    printf("  core %-24s %-11s %-9s %9.0f %s\n", what, batch, nn, rate, unit);
  fflush(stdout);
}

/* ------------------------------------------------------------ raw LMDB */

static void mdb_check(int rc, const char *what) {
  if (rc != MDB_SUCCESS) die("lmdb %s: %s", what, mdb_strerror(rc));
}

typedef struct raw_env {
  MDB_env *env;
  MDB_dbi dbi;
} raw_env;

/* A fresh env in @p dir: default flags (fsync per commit), 1 GiB map. */
static void raw_open(raw_env *r, const char *dir) {
  MDB_txn *txn;
  if (mkdir(dir, 0700) != 0) die("mkdir %s: %s", dir, strerror(errno));
  mdb_check(mdb_env_create(&r->env), "env_create");
  mdb_check(mdb_env_set_mapsize(r->env, MAP_SIZE), "env_set_mapsize");
  mdb_check(mdb_env_open(r->env, dir, 0, 0600), "env_open");
  mdb_check(mdb_txn_begin(r->env, NULL, 0, &txn), "txn_begin");
  mdb_check(mdb_dbi_open(txn, NULL, 0, &r->dbi), "dbi_open");
  mdb_check(mdb_txn_commit(txn), "txn_commit");
}

/* Puts rows [from, to) as 16-byte keys and 64-byte values, @p batch puts
 * per commit. Returns the seconds taken. */
static double raw_run(raw_env *r, unsigned from, unsigned to, unsigned batch) {
  MDB_txn *txn;
  char id[KEY_LEN + 1];
  unsigned char val[VAL_LEN];
  for (size_t j = 0; j < VAL_LEN; j++)
    val[j] = (unsigned char)('a' + j % 26);

  double t0 = now_s();
  for (unsigned i = from; i < to;) {
    mdb_check(mdb_txn_begin(r->env, NULL, 0, &txn), "txn_begin");
    for (unsigned k = 0; k < batch && i < to; k++, i++) {
      make_id(id, i);
      memcpy(val, &i, sizeof i);
      MDB_val key = {KEY_LEN, id}, data = {VAL_LEN, val};
      mdb_check(mdb_put(txn, r->dbi, &key, &data, 0), "put");
    }
    mdb_check(mdb_txn_commit(txn), "txn_commit");
  }
  return now_s() - t0;
}

/* ------------------------------------------------------- lash registry */

static void lash_fail(lash_store *s, int rc, const char *what, const char *id) {
  die("%s(%s): %s: %s", what, id, lash_err_name(rc), lash_errmsg(s));
}

/* {"i": i} and {"ok": true, "n": i} as MessagePack (i < 2^32). */
static size_t pack_input(unsigned char *b, unsigned i) {
  size_t n = 0;
  b[n++] = 0x81; /* fixmap 1 */
  b[n++] = 0xa1; /* fixstr 1 */
  b[n++] = 'i';
  b[n++] = 0xce; /* uint32 */
  b[n++] = (unsigned char)(i >> 24);
  b[n++] = (unsigned char)(i >> 16);
  b[n++] = (unsigned char)(i >> 8);
  b[n++] = (unsigned char)i;
  return n;
}

static size_t pack_outcome(unsigned char *b, unsigned i) {
  size_t n = 0;
  b[n++] = 0x82; /* fixmap 2 */
  b[n++] = 0xa2; /* fixstr 2 */
  b[n++] = 'o';
  b[n++] = 'k';
  b[n++] = 0xc3; /* true */
  b[n++] = 0xa1;
  b[n++] = 'n';
  b[n++] = 0xce;
  b[n++] = (unsigned char)(i >> 24);
  b[n++] = (unsigned char)(i >> 16);
  b[n++] = (unsigned char)(i >> 8);
  b[n++] = (unsigned char)i;
  return n;
}

/* The whole lifecycle of row @p i, in @p txn (NULL: 4 commits). */
static void lifecycle(lash_store *s, lash_txn *txn, unsigned i) {
  char id[KEY_LEN + 1];
  unsigned char in[16], out[16];
  make_id(id, i);
  lash_def def = {.id = id,
                  .kind = "bench",
                  .input = {in, pack_input(in, i)},
                  .disposition = LASH_RERUNNABLE,
                  .max_attempts = 3};
  int created = 0;
  int rc = lash_register(s, txn, &def, &created, NULL);
  if (rc != 0) lash_fail(s, rc, "lash_register", id);
  if (!created) die("lash_register(%s): row existed", id);

  lash_lease ls;
  rc = lash_lease_claim(s, txn, id, "bench-owner", "inc-1", 60000, &ls);
  if (rc != 0) lash_fail(s, rc, "lash_lease_claim", id);

  uint32_t attempt = 0;
  rc = lash_start(s, txn, &ls, &attempt);
  if (rc != 0) lash_fail(s, rc, "lash_start", id);
  if (attempt != 1) die("lash_start(%s): attempt %" PRIu32, id, attempt);

  lash_bytes outcome = {out, pack_outcome(out, i)};
  rc = lash_complete(s, txn, &ls, LASH_COMPLETED, outcome);
  if (rc != 0) lash_fail(s, rc, "lash_complete", id);
}

static lash_store *open_store(const char *dir) {
  lash_store_opts o;
  lash_store_opts_init(&o);
  o.durability = LASH_DURABILITY_FULL;
  o.max_bytes = MAP_SIZE;
  lash_store *s = NULL;
  char err[512] = "";
  int rc = lash_store_open(dir, &o, &s, err, sizeof err);
  if (rc != 0) die("lash_store_open(%s): %s: %s", dir, lash_err_name(rc), err);
  return s;
}

/* The lifecycles of rows [from, to) in the store @p s; @p batch rows per
 * lash_txn, or 0 for txn == NULL on every call. Returns the seconds taken. */
static double registry_run(lash_store *s, unsigned from, unsigned to,
                           unsigned batch) {
  double t0 = now_s();
  if (batch == 0) {
    for (unsigned i = from; i < to; i++)
      lifecycle(s, NULL, i);
  } else {
    for (unsigned i = from; i < to;) {
      lash_txn *txn = NULL;
      int rc = lash_txn_begin(s, &txn);
      if (rc != 0) lash_fail(s, rc, "lash_txn_begin", "-");
      for (unsigned k = 0; k < batch && i < to; k++, i++)
        lifecycle(s, txn, i);
      rc = lash_txn_commit(txn);
      if (rc != 0) lash_fail(s, rc, "lash_txn_commit", "-");
    }
  }
  return now_s() - t0;
}

/* Start of round @p r of ROUNDS over @p n rows, on a batch boundary. */
static unsigned round_start(unsigned n, unsigned batch, unsigned r) {
  unsigned long long batches = (n + batch - 1) / batch;
  unsigned long long at = batches * r / ROUNDS * batch;
  return at < n ? (unsigned)at : n;
}

/* ---------------------------------------------------------------- check */

typedef struct check_ctx {
  int shown;
} check_ctx;

static void on_problem(void *ud, const char *problem) {
  check_ctx *c = ud;
  if (c->shown++ < 10) fprintf(stderr, "bench_core: check: %s\n", problem);
}

/* Runs lash_check on @p s, prints its line; returns the problem count. */
static int check_store(lash_store *s, const char *batch, unsigned n) {
  check_ctx c = {0};
  double t0 = now_s();
  int rc = lash_check(s, on_problem, &c);
  double dt = now_s() - t0;
  char nn[32];
  snprintf(nn, sizeof nn, "N=%u", n);
  if (rc < 0) {
    printf("  core %-24s %-11s %-9s error %s: %s\n", "lash_check", batch, nn,
           lash_err_name(rc), lash_errmsg(s));
    return 1;
  }
  printf("  core %-24s %-11s %-9s %9d problems  (%.2f s)\n", "lash_check",
         batch, nn, rc, dt);
  fflush(stdout);
  return rc;
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f) {
  fprintf(f, "usage: bench_core [--n N] [--dir DIR] [--keep]\n"
             "  --n N      rows at batch size 1 (default 2000); "
             "batch=256 runs 50*N\n"
             "  --dir DIR  parent of the temporary stores "
             "(default $TMPDIR or /tmp)\n"
             "  --keep     keep the stores\n");
}

static void ratio_note(char *buf, size_t cap, double reg, double raw,
                       const char *extra, int target) {
  double pct = raw > 0 ? 100.0 * reg / raw : 0;
  snprintf(buf, cap, "(%s%.0f%% of raw)%s", extra, pct,
           target && pct < 50 ? "  below the 50% target" : "");
}

int main(int argc, char **argv) {
  unsigned n1 = 2000;
  const char *parent = getenv("TMPDIR");
  if (!parent || !parent[0]) parent = "/tmp";

  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--n") && a + 1 < argc) {
      char *end;
      unsigned long v = strtoul(argv[++a], &end, 10);
      if (*end || v == 0 || v > 1000000UL) {
        fprintf(stderr, "bench_core: bad --n %s\n", argv[a]);
        return 2;
      }
      n1 = (unsigned)v;
    } else if (!strcmp(argv[a], "--dir") && a + 1 < argc) {
      parent = argv[++a];
    } else if (!strcmp(argv[a], "--keep")) {
      g_keep = 1;
    } else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  unsigned nbig = n1 * 50;

  int len = snprintf(g_root, sizeof g_root, "%s/lash-bench-XXXXXX", parent);
  if (len < 0 || (size_t)len >= sizeof g_root - 64) {
    fprintf(stderr, "bench_core: --dir too long\n");
    return 2;
  }
  if (!mkdtemp(g_root)) {
    fprintf(stderr, "bench_core: mkdtemp %s: %s\n", g_root, strerror(errno));
    g_root[0] = '\0';
    return 1;
  }
  atexit(cleanup);

  char dir[4200], note[96];
  raw_env raw_one, raw_big;
  lash_store *reg_null, *reg_one, *reg_big;
  double t_raw = 0, t_null = 0, t_one = 0;

  /* batch size 1 */
  subdir(dir, sizeof dir, "raw-1");
  raw_open(&raw_one, dir);
  subdir(dir, sizeof dir, "registry-null");
  reg_null = open_store(dir);
  subdir(dir, sizeof dir, "registry-1");
  reg_one = open_store(dir);
  for (unsigned r = 0; r < ROUNDS; r++) {
    unsigned from = round_start(n1, 1, r), to = round_start(n1, 1, r + 1);
    t_raw += raw_run(&raw_one, from, to, 1);
    t_null += registry_run(reg_null, from, to, 0);
    t_one += registry_run(reg_one, from, to, 1);
  }
  mdb_env_close(raw_one.env);
  double raw1 = n1 / t_raw, rnull = n1 / t_null, rone = n1 / t_one;
  report("raw lmdb put+commit", "batch=1", n1, raw1, "ops/s", "");
  ratio_note(note, sizeof note, rnull, raw1, "4 commits/row, ", 0);
  report("registry lifecycle", "txn=NULL", n1, rnull, "rows/s", note);
  ratio_note(note, sizeof note, rone, raw1, "", 1);
  report("registry lifecycle", "batch=1", n1, rone, "rows/s", note);
  /* Per operation: each registry call against one raw put, one commit
   * each (the txn=NULL run makes 4 calls and 4 commits per row). */
  ratio_note(note, sizeof note, 4 * rnull, raw1, "", 1);
  report("registry operations", "ops=1", 4 * n1, 4 * rnull, "ops/s", note);

  /* batch size 256 */
  subdir(dir, sizeof dir, "raw-256");
  raw_open(&raw_big, dir);
  subdir(dir, sizeof dir, "registry-256");
  reg_big = open_store(dir);
  subdir(dir, sizeof dir, "registry-ops-256");
  lash_store *reg_ops = open_store(dir);
  t_raw = 0;
  double t_big = 0, t_ops = 0;
  for (unsigned r = 0; r < ROUNDS; r++) {
    unsigned from = round_start(nbig, BIG_BATCH, r);
    unsigned to = round_start(nbig, BIG_BATCH, r + 1);
    t_raw += raw_run(&raw_big, from, to, BIG_BATCH);
    t_big += registry_run(reg_big, from, to, BIG_BATCH);
    /* 256 operations per commit: 64 rows of 4 calls. */
    t_ops += registry_run(reg_ops, from, to, BIG_BATCH / 4);
  }
  mdb_env_close(raw_big.env);
  double rawbig = nbig / t_raw, rbig = nbig / t_big, rops = 4.0 * nbig / t_ops;
  report("raw lmdb put+commit", "batch=256", nbig, rawbig, "ops/s", "");
  ratio_note(note, sizeof note, rbig, rawbig, "", 1);
  report("registry lifecycle", "batch=256", nbig, rbig, "rows/s", note);
  ratio_note(note, sizeof note, rops, rawbig, "", 1);
  report("registry operations", "ops=256", 4 * nbig, rops, "ops/s", note);

  int problems = 0;
  problems += check_store(reg_null, "txn=NULL", n1);
  problems += check_store(reg_one, "batch=1", n1);
  problems += check_store(reg_big, "batch=256", nbig);
  problems += check_store(reg_ops, "ops=256", nbig);
  lash_store_close(reg_ops);

  lash_store_close(reg_null);
  lash_store_close(reg_one);
  lash_store_close(reg_big);
  return problems ? 1 : 0;
}
