/* test_store.c - opening stores (modes, bad directories, format version,
 * a full map), durability modes, read-only stores, write batches, the commit
 * hook and stats. */
#include "testutil.h"

#include "lash_backend.h"

#include "base/inject.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <malloc.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* ---------------------------------------------------------- open & modes */

static void test_open_modes(void) {
  char root[64], dir[128], err[512], path[512];
  lash_store *s = NULL;
  struct stat sb;
  DIR *dh;
  struct dirent *de;
  int rc, files = 0, modes_ok = 1;
  mode_t old;

  TU_SKIP_ON_MEM("file modes and directories of an LMDB store");
  old = umask(022);
  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  err[0] = '\0';
  rc = lash_store_open(dir, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "open creates a missing store directory");
  if (rc != 0) diag("err: %s", err);
  ok(s != NULL, "open returns a handle");
  iss(lash_store_path(s), dir, "lash_store_path is the directory");
  is(lash_store_max_payload(s), 1024 * 1024, "default max_payload 1 MiB");
  is(tu_reg(s, "m-1", "k", LASH_RERUNNABLE, 0), 0, "write something");
  ok(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "store directory exists");
  is(sb.st_mode & 0777, 0700, "store directory mode 0700");
  dh = opendir(dir);
  while (dh && (de = readdir(dh)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
      files++;
      if ((sb.st_mode & 0777) != 0600) {
        diag("%s has mode %o", path, (unsigned)(sb.st_mode & 0777));
        modes_ok = 0;
      }
    }
  }
  if (dh) closedir(dh);
  ok(files >= 1, "store directory holds data files (%d)", files);
  ok(modes_ok, "every data file has mode 0600");
  lash_store_close(s);
  lash_store_close(NULL); /* NULL is a no-op */

  /* Reopening an existing store. */
  s = NULL;
  rc = lash_store_open(dir, NULL, &s, NULL, 0);
  is_rc(NULL, rc, 0, "reopen an existing store (err NULL)");
  is(tu_status(s, "m-1"), LASH_PENDING, "row is there after reopen");
  lash_store_close(s);

  /* Missing parent. */
  snprintf(dir, sizeof dir, "%s/missing/store", root);
  s = (lash_store *)&rc; /* must be reset to NULL */
  err[0] = '\0';
  rc = lash_store_open(dir, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EACCES, "open under a missing parent -> EACCES");
  ok(s == NULL, "failed open leaves *out NULL");
  ok(tu_has(err, dir), "message names the directory ('%s')", err);

  /* Parent is a regular file. */
  snprintf(path, sizeof path, "%s/file", root);
  {
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd >= 0) close(fd);
  }
  snprintf(dir, sizeof dir, "%s/file/store", root);
  err[0] = '\0';
  s = NULL;
  rc = lash_store_open(dir, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EACCES, "open where the parent is a file -> EACCES");
  ok(s == NULL, "... *out NULL");
  ok(tu_has(err, dir), "... message names the directory ('%s')", err);

  /* The directory itself is a regular file. */
  err[0] = '\0';
  rc = lash_store_open(path, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EACCES, "open where the store path is a file -> EACCES");
  ok(s == NULL && tu_has(err, path), "... message names it ('%s')", err);

  /* Tiny error buffer: still NUL-terminated, no overflow. */
  {
    char tiny[8];
    memset(tiny, 'Z', sizeof tiny);
    rc = lash_store_open(dir, NULL, &s, tiny, 4);
    ok(rc == LASH_EACCES && memchr(tiny, '\0', 4) != NULL && tiny[4] == 'Z',
       "error text truncated to errlen and NUL-terminated");
  }
  rc = lash_store_open(NULL, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "open NULL dir -> EINVAL");
  rc = lash_store_open("", NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "open empty dir -> EINVAL");

  umask(old);
  tu_rmrf(root);
}

/* ------------------------------------------------------- format version */

/* Copy of @p msg with every occurrence of @p dir blanked out. */
static void strip(char *out, size_t cap, const char *msg, const char *dir) {
  const char *p = msg, *q;
  size_t n = 0, dl = strlen(dir);
  out[0] = '\0';
  while ((q = strstr(p, dir)) != NULL && n < cap - 1) {
    size_t k = (size_t)(q - p);
    if (k > cap - 1 - n) k = cap - 1 - n;
    memcpy(out + n, p, k);
    n += k;
    p = q + dl;
  }
  snprintf(out + n, cap - n, "%s", p);
}

/* Finds meta/"format" and rewrites it. mode 0: patch to another version
 * (written into @p other), mode 1: restore @p saved. */
static int patch_format(const char *dir, int mode, unsigned char *saved,
                        size_t *savedlen, char *other, size_t othercap) {
  MDB_env *env = NULL;
  MDB_txn *txn = NULL;
  MDB_dbi dbi;
  MDB_val k, v;
  unsigned char buf[64];
  int rc, done = -1;
  size_t i;

  if (mdb_env_create(&env) != 0) return -1;
  mdb_env_set_maxdbs(env, 64);
  if ((rc = mdb_env_open(env, dir, 0, 0600)) != 0) {
    diag("mdb_env_open: %s", mdb_strerror(rc));
    goto out;
  }
  if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) goto out;
  if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) != 0) {
    diag("mdb_dbi_open(meta): %s", mdb_strerror(rc));
    goto out;
  }
  k.mv_data = "format";
  k.mv_size = 6;
  if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND) {
    k.mv_size = 7; /* with the NUL */
    rc = mdb_get(txn, dbi, &k, &v);
  }
  if (rc != 0) {
    diag("meta/format not found: %s", mdb_strerror(rc));
    goto out;
  }
  if (v.mv_size == 0 || v.mv_size > sizeof buf) {
    diag("meta/format has size %zu", v.mv_size);
    goto out;
  }
  memcpy(buf, v.mv_data, v.mv_size);
  if (mode == 0) {
    int ascii = 1, bin1 = 0;
    char hex[200] = "";
    memcpy(saved, buf, v.mv_size);
    *savedlen = v.mv_size;
    for (i = 0; i < v.mv_size; i++) {
      if (buf[i] < '0' || buf[i] > '9') ascii = 0;
      snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02x ", buf[i]);
    }
    diag("meta/format value (%zu bytes): %s", v.mv_size, hex);
    if (ascii) {
      /* "1" -> "7", "0001" -> "4242"-like: fill with the digits of 4242. */
      static const char digits[] = "4242424242424242";
      if (v.mv_size == 1)
        buf[0] = '7';
      else
        memcpy(buf, digits, v.mv_size < 16 ? v.mv_size : 16);
      snprintf(other, othercap, "%.*s", (int)v.mv_size, (char *)buf);
    } else {
      /* A binary integer equal to LASH_FORMAT_VERSION, either endianness. */
      size_t nz = 0, at = 0;
      for (i = 0; i < v.mv_size; i++)
        if (buf[i] != 0) {
          nz++;
          at = i;
        }
      if (nz == 1 && buf[at] == LASH_FORMAT_VERSION) bin1 = 1;
      if (!bin1) {
        diag("meta/format is not a recognisable encoding of %d",
             LASH_FORMAT_VERSION);
        goto out;
      }
      if (v.mv_size == 1) {
        buf[0] = 7;
        snprintf(other, othercap, "7");
      } else {
        /* 4242 = 0x1092 in the same byte order as the stored value. */
        memset(buf, 0, v.mv_size);
        if (at == 0) {
          buf[0] = 0x92;
          buf[1] = 0x10;
        } else {
          buf[v.mv_size - 1] = 0x92;
          buf[v.mv_size - 2] = 0x10;
        }
        snprintf(other, othercap, "4242");
      }
    }
  } else {
    memcpy(buf, saved, *savedlen);
  }
  v.mv_data = buf;
  v.mv_size = mode == 0 ? v.mv_size : *savedlen;
  if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
    diag("mdb_put: %s", mdb_strerror(rc));
    goto out;
  }
  rc = mdb_txn_commit(txn);
  txn = NULL;
  done = rc == 0 ? 0 : -1;
out:
  if (txn) mdb_txn_abort(txn);
  mdb_env_close(env);
  return done;
}

static void test_format(void) {
  tu_env e;
  lash_store *s;
  unsigned char saved[64];
  size_t savedlen = 0;
  char other[32] = "", err[1024] = "", stripped[1024], want[16];
  int rc;

  TU_SKIP_ON_MEM("rewrites the format version inside the LMDB file");
  s = tu_open(&e, NULL);
  tu_reg(s, "fmt-1", "k", LASH_RERUNNABLE, 0);
  lash_store_close(s);
  e.s = NULL;
  rc = patch_format(e.dir, 0, saved, &savedlen, other, sizeof other);
  ok(rc == 0, "rewrote meta/format to version %s with LMDB", other);
  if (rc == 0) {
    rc = lash_store_open(e.dir, NULL, &s, err, sizeof err);
    is_rc(NULL, rc, LASH_EFORMAT, "open a store of another format version");
    ok(s == NULL, "... no handle");
    strip(stripped, sizeof stripped, err, e.dir);
    snprintf(want, sizeof want, "%d", LASH_FORMAT_VERSION);
    ok(tu_has(stripped, other), "message names the store's version %s ('%s')",
       other, err);
    ok(tu_has(stripped, want), "message names our version %s ('%s')", want,
       err);
    ok(tu_has(err, e.dir), "message names the directory");
    if (s) lash_store_close(s);
    s = NULL;
    rc = patch_format(e.dir, 1, saved, &savedlen, other, sizeof other);
    ok(rc == 0, "restored meta/format");
    rc = tu_env_open_store_(&e);
    is(rc, 0, "store opens again with the right version");
    if (rc == 0)
      is(tu_status(e.s, "fmt-1"), LASH_PENDING, "... and its row is there");
  } else {
    tu_env_open_store_(&e);
  }
  tu_close(&e);
}

#ifdef LASH_TEST_PG
#include <libpq-fe.h>

/* The PostgreSQL twin of test_format: another version in the meta row is
 * EFORMAT naming both; restored, the store opens again. */
static void test_format_pg(void) {
  tu_env e;
  lash_store *s = NULL;
  char target[1024], sql[256], err[1024] = "", want[16];
  const char *sch;
  PGconn *c;
  int rc;
  s = tu_open(&e, NULL);
  tu_reg(s, "fmt-1", "k", LASH_RERUNNABLE, 0);
  snprintf(target, sizeof target, "%s", lash_store_path(s));
  lash_store_close(s);
  e.s = NULL;
  sch = strstr(target, "schema=") + 7;
  c = PQconnectdb(getenv("LASH_TEST_PG"));
  snprintf(sql, sizeof sql, "UPDATE \"%s\".meta SET format = 4242", sch);
  PQclear(PQexec(c, sql));
  rc = lash_store_open(target, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EFORMAT, "open a schema of another format version");
  ok(s == NULL, "... no handle");
  snprintf(want, sizeof want, "%d", LASH_FORMAT_VERSION);
  ok(tu_has(err, "4242") && tu_has(err, want), "message names both ('%s')",
     err);
  ok(tu_has(err, sch), "message names the schema");
  snprintf(sql, sizeof sql, "UPDATE \"%s\".meta SET format = %d", sch,
           LASH_FORMAT_VERSION);
  PQclear(PQexec(c, sql));
  PQfinish(c);
  rc = lash_store_open(target, NULL, &e.s, err, sizeof err);
  is(rc, 0, "store opens again with the right version");
  if (rc == 0) is(tu_status(e.s, "fmt-1"), LASH_PENDING, "... and its row");
  tu_close(&e);
}

/* Connection loss mid-batch: the commit fails with EIO and writes nothing;
 * the next call reconnects and the store keeps working. The server ends
 * the store's connections (pg_terminate_backend), as a restart would. */
static void test_connection_loss_pg(void) {
  char target[1024], sql[256], err[1024] = "", app[64];
  lash_store *s = NULL;
  lash_txn *txn = NULL;
  lash_def d;
  PGconn *c;
  PGresult *r;
  int rc;
  snprintf(app, sizeof app, "lashloss%d", (int)getpid());
  snprintf(target, sizeof target, "%s%sschema=t_loss_%d&application_name=%s",
           getenv("LASH_TEST_PG"),
           strchr(getenv("LASH_TEST_PG"), '?') ? "&" : "?", (int)getpid(), app);
  rc = lash_store_open(target, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "open with an application_name of the test's");
  if (rc != 0) {
    diag("%s", err);
    return;
  }
  is(tu_reg(s, "a", "k", LASH_RERUNNABLE, 0), 0, "a committed row");
  is(lash_txn_begin(s, &txn), 0, "a batch");
  d = tu_def("b", "k", LASH_RERUNNABLE, 0);
  is(lash_register(s, txn, &d, NULL, NULL), 0, "... registers b");
  c = PQconnectdb(getenv("LASH_TEST_PG"));
  snprintf(sql, sizeof sql,
           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
           "WHERE application_name = '%s'",
           app);
  r = PQexec(c, sql);
  ok(PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) >= 1,
     "the server ended the store's connections (%s)",
     PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "-");
  PQclear(r);
  PQfinish(c);
  rc = lash_txn_commit(txn);
  is_rc(s, rc, LASH_EIO, "the batch's commit fails with EIO");
  ok(tu_has(lash_errmsg(s), "lost the connection"),
     "... saying the connection was lost ('%s')", lash_errmsg(s));
  /* the server was asked what became of the transaction (txid_status) */
  ok(tu_has(lash_errmsg(s), "rolled that transaction back: nothing of it "
                            "was written"),
     "... and that the server rolled it back");
  /* A write first (no read in between): it reconnects by itself. */
  is(tu_reg(s, "c", "k", LASH_RERUNNABLE, 0), 0,
     "the next write reconnects and commits (not EPANIC)");
  is(tu_status(s, "b"), LASH_ENOENT, "nothing of the batch was written");
  is(tu_status(s, "a"), LASH_PENDING, "the committed row is there");
  is(tu_status(s, "c"), LASH_PENDING, "... and reads its write");
  lash_store_close(s);
}

#ifdef LASH_TEST_HOOKS
/* A commit whose connection is lost after the server committed it (the
 * hooks build's pg.commit_lost): the store asks the server on a new
 * connection (txid_status), finds it committed and says so, 0; the row is
 * there once, and the store keeps working. */
static void test_commit_lost_pg(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_txn *txn = NULL;
  lash_def d;
  int created;
  is(lash_txn_begin(s, &txn), 0, "a batch");
  d = tu_def("cl-1", "k", LASH_RERUNNABLE, 0);
  is(lash_register(s, txn, &d, NULL, NULL), 0, "... registers cl-1");
  lash__inject_arm("pg.commit_lost", -1, 0, 1);
  is_rc(s, lash_txn_commit(txn), 0,
        "its commit, whose connection was lost after the server committed, "
        "is 0");
  is(lash__inject_hits("pg.commit_lost"), 1, "(the connection was lost)");
  lash__inject_reset();
  is(tu_status(s, "cl-1"), LASH_PENDING, "the row is there");
  created = -1;
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0, "registered again");
  is(created, 0, "... it was there: the lost commit was written once");
  is(tu_reg(s, "cl-2", "k", LASH_RERUNNABLE, 0), 0, "the next write commits");
  is(tu_status(s, "cl-2"), LASH_PENDING, "... and reads back");
  tu_close(&e);
}
#endif

/* A flush's multi-row writes travel in a pipeline with binary
 * parameters (pending.c): a statement of it that the server refuses (a
 * trigger of the test's, here) fails the commit with the server's message
 * and writes nothing of the batch; the connection is not left in the
 * pipeline, so the next writes and reads work. */
static void test_refused_flush_pg(void) {
  tu_env e;
  lash_store *s;
  lash_txn *txn = NULL;
  lash_def d;
  char sql[1024];
  const char *sch;
  PGconn *c;
  PGresult *r;
  int rc, i;
  s = tu_open(&e, NULL);
  is(tu_reg(s, "ok-1", "k", LASH_RERUNNABLE, 0), 0, "a committed row");
  sch = strstr(lash_store_path(s), "schema=") + 7;
  c = PQconnectdb(getenv("LASH_TEST_PG"));
  snprintf(sql, sizeof sql,
           "CREATE FUNCTION \"%s\".refuse() RETURNS trigger AS $$BEGIN IF "
           "NEW.id = 'bad'::bytea THEN RAISE EXCEPTION 'refused by the "
           "test'; END IF; RETURN NEW; END$$ LANGUAGE plpgsql; CREATE "
           "TRIGGER refuse BEFORE INSERT OR UPDATE ON \"%s\".rows FOR EACH "
           "ROW EXECUTE FUNCTION \"%s\".refuse()",
           sch, sch, sch);
  r = PQexec(c, sql);
  ok(PQresultStatus(r) == PGRES_COMMAND_OK, "a trigger that refuses 'bad' (%s)",
     PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  for (i = 0; i < 2; i++) {
    is(lash_txn_begin(s, &txn), 0, "a batch (%d)", i);
    d = tu_def(i == 0 ? "good-2" : "good-3", "k", LASH_RERUNNABLE, 0);
    is(lash_register(s, txn, &d, NULL, NULL), 0, "... registers a good row");
    d = tu_def("bad", "k", LASH_RERUNNABLE, 0);
    is(lash_register(s, txn, &d, NULL, NULL), 0, "... and 'bad'");
    rc = lash_txn_commit(txn);
    ok(rc < 0, "the commit fails (%d)", rc);
    ok(tu_has(lash_errmsg(s), "refused by the test"),
       "... with the server's message ('%s')", lash_errmsg(s));
    is(tu_status(s, i == 0 ? "good-2" : "good-3"), LASH_ENOENT,
       "nothing of the batch was written");
  }
  is(tu_reg(s, "ok-4", "k", LASH_RERUNNABLE, 0), 0,
     "the next write commits (the connection is usable)");
  is(tu_status(s, "ok-4"), LASH_PENDING, "... and its row reads back");
  is(tu_status(s, "ok-1"), LASH_PENDING, "the first row is there");
  tu_close(&e);
}

/* The rows a commit wrote stay cached for the next write (the meta row's
 * xmin says nobody wrote in between), with the bytes of every version
 * since; past a bound those no row uses any more are freed. Many small
 * commits on a few rows: every event is there, in order, through this
 * handle (its cache) and through another one (the database). */
struct kept_seen {
  int n, bad;
  char want[16];
};

static int kept_ev(void *ud, const lash_event *ev) {
  struct kept_seen *k = ud;
  char exp[48];
  if (strcmp(ev->type, "progress") != 0) return 0;
  snprintf(exp, sizeof exp, "%s.%d", k->want, k->n);
  if (ev->payload.len != strlen(exp) ||
      memcmp(ev->payload.data, exp, ev->payload.len) != 0)
    k->bad++;
  k->n++;
  return 0;
}

static void test_kept_cache_pg(void) {
  enum { ROWS = 8, COMMITS = 1600 };
  tu_env e;
  lash_store *s, *other = NULL;
  lash_wake_source ws;
  char id[16], pay[32], err[1024] = "";
  int i, fails = 0, rc, all_ok = 1;
  /* freed bytes are scribbled over: a cached row pointing at bytes the
   * compaction freed reads garbage */
  mallopt(M_PERTURB, 0x5a);
  s = tu_open(&e, NULL);
  /* with a wake source, reads after a commit answer from the cache too */
  is(lash_store_wake_source(s, &ws), 0, "a wake source (LISTEN)");
  for (i = 0; i < ROWS; i++) {
    snprintf(id, sizeof id, "kc-%d", i);
    tu_reg(s, id, "k", LASH_RERUNNABLE, 0);
  }
  for (i = 0; i < COMMITS; i++) {
    lash_bytes b;
    snprintf(id, sizeof id, "kc-%d", i % ROWS);
    snprintf(pay, sizeof pay, "%s.%d", id, i / ROWS);
    b.data = pay;
    b.len = strlen(pay);
    if (lash_append(s, NULL, id, "progress", b, NULL) != 0) fails++;
  }
  is(fails, 0, "%d commits of one event each on %d rows", COMMITS, ROWS);
  rc = lash_store_open(lash_store_path(s), NULL, &other, err, sizeof err);
  is_rc(NULL, rc, 0, "another handle on the store");
  for (i = 0; i < ROWS; i++) {
    struct kept_seen here, there;
    memset(&here, 0, sizeof here);
    memset(&there, 0, sizeof there);
    snprintf(id, sizeof id, "kc-%d", i);
    snprintf(here.want, sizeof here.want, "%s", id);
    snprintf(there.want, sizeof there.want, "%s", id);
    if (lash_events_after(s, NULL, id, 0, 0, kept_ev, &here) != 0 ||
        (other != NULL &&
         lash_events_after(other, NULL, id, 0, 0, kept_ev, &there) != 0) ||
        here.n != COMMITS / ROWS || here.bad != 0 ||
        (other != NULL && (there.n != COMMITS / ROWS || there.bad != 0))) {
      diag("%s: %d events (%d wrong) here, %d (%d wrong) there", id, here.n,
           here.bad, there.n, there.bad);
      all_ok = 0;
    }
  }
  ok(all_ok, "every row has its %d events in order, read by both handles",
     COMMITS / ROWS);
  if (other != NULL) lash_store_close(other);
  tu_close(&e);
}

/* Two handles write the same store in turns, each holding the leases of
 * its own rows (as two workers do): the rows each cached at its last
 * commit stay cached across the other's commits only while the other did
 * not write them (pg__cache_verify: their tuples' xmin). Every few turns a
 * handle appends to one of the other's rows, unfenced (a signal): the
 * holder's next fenced append must come after it, not overwrite it with
 * the sequence number its stale copy would give. Every event is there, in
 * order, read by both handles and by a third. */
static void test_cache_two_writers_pg(void) {
  enum { ROWS = 8, TURNS = 120 };
  tu_env e;
  lash_store *h[2], *third = NULL;
  lash_lease ls[ROWS];
  char id[16], err[1024] = "";
  long want[ROWS], got;
  int i, t, fails = 0, rc, all_ok = 1;
  lash_bytes pl = {"\xc0", 1};
  h[0] = tu_open(&e, NULL);
  rc = lash_store_open(lash_store_path(h[0]), NULL, &h[1], err, sizeof err);
  is_rc(NULL, rc, 0, "a second handle on the store");
  if (rc != 0) {
    tu_close(&e);
    return;
  }
  lash_store_set_clock(h[1], tu_clock_fn, &e.now);
  for (i = 0; i < ROWS; i++) {
    snprintf(id, sizeof id, "tw-%d", i);
    tu_reg(h[0], id, "k", LASH_RERUNNABLE, 0);
    /* rows 0..3 are handle 0's, 4..7 handle 1's */
    if (lash_lease_claim(h[i / 4], NULL, id, i < 4 ? "w0" : "w1", "i1", 600000,
                         &ls[i]) != 0 ||
        lash_start(h[i / 4], NULL, &ls[i], NULL) != 0)
      fails++;
  }
  is(fails, 0, "each handle claims and starts its four rows");
  for (i = 0; i < ROWS; i++) {
    snprintf(id, sizeof id, "tw-%d", i);
    want[i] = tu_event_count(h[0], id);
  }
  for (t = 0; t < TURNS; t++) {
    int w = t % 2, mine = 4 * w + (t / 2) % 4, theirs = 4 * (1 - w) + t % 4;
    /* the holder's fenced append: its cached copy of the row, if kept */
    if (lash_append_fenced(h[w], NULL, &ls[mine], "progress", pl, NULL) != 0)
      fails++;
    want[mine]++;
    if (t % 3 == 0) { /* and now and then one to the other's row */
      snprintf(id, sizeof id, "tw-%d", theirs);
      if (lash_append(h[w], NULL, id, "progress", pl, NULL) != 0) fails++;
      want[theirs]++;
    }
  }
  is(fails, 0, "%d turns of writes by two handles", TURNS);
  rc = lash_store_open(lash_store_path(h[0]), NULL, &third, err, sizeof err);
  is_rc(NULL, rc, 0, "a third handle on the store");
  for (i = 0; i < ROWS; i++) {
    int k;
    snprintf(id, sizeof id, "tw-%d", i);
    for (k = 0; k < 3; k++) {
      lash_store *r = k < 2 ? h[k] : third;
      tu_evs ev;
      size_t j;
      int gaps = 0;
      if (r == NULL) continue;
      memset(&ev, 0, sizeof ev);
      got = tu_events(r, NULL, id, 0, 0, &ev) == 0 ? (long)ev.n : -1;
      for (j = 0; j < ev.n; j++)
        if (ev.v[j].seq != j + 1) gaps++;
      tu_evs_free(&ev);
      if (got != want[i] || gaps != 0) {
        diag("%s read by handle %d: %ld events (want %ld), %d out of place", id,
             k, got, want[i], gaps);
        all_ok = 0;
      }
    }
  }
  ok(all_ok, "every row has all its events in order, read by three handles");
  if (third != NULL) lash_store_close(third);
  lash_store_close(h[1]);
  tu_close(&e);
}
#endif

/* ------------------------------------------------------------ map full */

static void test_map_full(void) {
  tu_env e;
  lash_store_opts o;
  lash_store *s;
  char id[32];
  int rc = 0, n_ok = 0;
  lash_stats st;

  TU_SKIP_ON_PG("max_bytes bounds an LMDB map, not a database server");
  lash_store_opts_init(&o);
  o.max_bytes = 256 * 1024;
  s = tu_open(&e, &o);
  n_ok = tu_fill(s, "full", 2000, 2000, id, sizeof id, &rc);
  is_rc(s, rc, LASH_EFULL, "registering until the 256 KiB map is full");
  msg_has(s, "max_bytes", "EFULL message mentions max_bytes");
  ok(n_ok > 10, "some rows fit first (%d)", n_ok);
  is(tu_status(s, id), LASH_ENOENT, "the failed row is not there");
  is(tu_status(s, "full-00000"), LASH_PENDING, "earlier rows readable");
  memset(&st, 0, sizeof st);
  rc = lash_store_stats(s, NULL, &st);
  ok(rc == 0 && st.total == (uint64_t)n_ok, "stats total == rows written");
  ok(st.bytes_used + st.bytes_available == o.max_bytes,
     "stats: bytes used + available = the max_bytes option");
  tu_check(s, "S8.5 check after EFULL");
  rc = lash_append(s, NULL, "full-00000", "progress", (lash_bytes){"\xc0", 1},
                   NULL);
  ok(rc == 0 || rc == LASH_EFULL, "a small append after EFULL: %s",
     lash_err_name(rc));
  is(tu_reopen(&e), 0, "store still opens after EFULL");
  s = e.s;
  tu_check(s, "S8.5 check after reopening a full store");
  memset(&st, 0, sizeof st);
  lash_store_stats(s, NULL, &st);
  is(st.total, n_ok, "every acknowledged row survived");
  tu_close(&e);
}

/* ------------------------------------------------- durability, readonly */

static void test_durability(void) {
  static const int modes[] = {LASH_DURABILITY_FULL, LASH_DURABILITY_NOMETA,
                              LASH_DURABILITY_NONE};
  size_t i;
  for (i = 0; i < 3; i++) {
    tu_env e;
    lash_store_opts o;
    lash_store *s;
    lash_store_opts_init(&o);
    o.durability = modes[i];
    s = tu_open(&e, &o);
    is(tu_reg(s, "d-1", "k", LASH_RERUNNABLE, 0), 0, "durability %d: register",
       modes[i]);
    is(tu_reopen(&e), 0, "durability %d: reopen", modes[i]);
    is(tu_status(e.s, "d-1"), LASH_PENDING, "durability %d: row persisted",
       modes[i]);
    tu_close(&e);
  }
  {
    char root[64], dir[128], err[256];
    lash_store_opts o;
    lash_store *s = NULL;
    int rc;
    tu_mkdtemp(root, sizeof root);
    snprintf(dir, sizeof dir, "%s/store", root);
    lash_store_opts_init(&o);
    is(o.durability, LASH_DURABILITY_FULL, "default durability FULL");
    ok(o.max_bytes == 0 || o.max_bytes == (size_t)1 << 30,
       "default max_bytes 0 or 1 GiB");
    o.durability = 99;
    rc = tu_store_open(dir, &o, &s, err, sizeof err);
    is_rc(NULL, rc, LASH_EINVAL, "durability 99 -> EINVAL");
    ok(s == NULL, "... no handle");
    tu_rmrf(root);
  }
}

static void test_read_only(void) {
  tu_env e;
  lash_store_opts o;
  lash_store *s = tu_open(&e, NULL), *ro = NULL;
  lash_txn *txn = NULL;
  char err[256];
  int rc;

  tu_reg(s, "ro-1", "k", LASH_RERUNNABLE, 0);
  lash_store_close(s);
  e.s = NULL;
  lash_store_opts_init(&o);
  o.read_only = 1;
  rc = tu_store_open(e.dir, &o, &ro, err, sizeof err);
  is_rc(NULL, rc, 0, "open read-only");
  if (rc == 0) {
    uint64_t cs = lash_change_seq(ro);
    is(tu_status(ro, "ro-1"), LASH_PENDING, "read-only store reads");
    rc = lash_txn_begin(ro, &txn);
    is_rc(ro, rc, LASH_EACCES, "lash_txn_begin on a read-only store");
    rc = tu_reg(ro, "ro-2", "k", LASH_RERUNNABLE, 0);
    ok(rc < 0, "register on a read-only store fails (%s)", lash_err_name(rc));
    is(tu_status(ro, "ro-2"), LASH_ENOENT, "... and writes nothing");
    is(lash_change_seq(ro), cs, "... change seq unchanged");
    lash_store_close(ro);
  }
  tu_env_open_store_(&e);
  tu_close(&e);
}

/* --------------------------------------------------------------- batches */

static void test_batch(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char pb[16];
  lash_bytes pl = tu_mp_str(pb, sizeof pb, "p");
  hook_rec h;
  lash_txn *txn = NULL, *txn2 = NULL;
  lash_lease lx, got;
  lash_record r;
  lash_def dx = tu_def("bx", "k", LASH_RERUNNABLE, 0), dc;
  uint64_t seq = 0, cseq;
  int created = -1, rc;
  tu_snap sn;

  memset(&h, 0, sizeof h);
  lash_store_on_commit(s, hook_fn, &h);
  tu_reg(s, "by", "k", LASH_RERUNNABLE, 0);
  lash_append(s, NULL, "by", "progress", pl, NULL);
  is(h.calls, 2, "hook called once per commit outside batches");
  memset(&h, 0, sizeof h);
  cseq = lash_change_seq(s);

  rc = lash_txn_begin(s, &txn);
  is_rc(s, rc, 0, "begin a batch");
  rc = lash_txn_begin(s, &txn2);
  is_rc(s, rc, LASH_EINVAL, "a second batch on the same store -> EINVAL");
  rc = lash_register(s, txn, &dx, &created, NULL);
  is_rc(s, rc, 0, "register bx in the batch");
  is(created, 1, "... created");
  is(tu_status(s, "bx"), LASH_ENOENT,
     "reads with txn NULL see committed state");
  memset(&r, 0, sizeof r);
  rc = lash_get(s, txn, "bx", &r, NULL);
  ok(rc == 0 && r.status == LASH_PENDING, "reads in the batch see its writes");
  lash_record_free(&r);
  rc = lash_append(s, txn, "bx", "progress", pl, &seq);
  ok(rc == 0 && seq == 1, "append bx seq 1 in the batch");
  rc = lash_append(s, txn, "bx", "progress", pl, &seq);
  ok(rc == 0 && seq == 2, "append bx seq 2 in the batch");
  rc = lash_append(s, txn, "by", "progress", pl, &seq);
  ok(rc == 0 && seq == 2, "append by seq 2 in the batch");
  memset(&lx, 0, sizeof lx);
  rc = lash_lease_claim(s, txn, "bx", "A", "a1", 30000, &lx);
  is_rc(s, rc, 0, "claim bx in the batch");

  /* A failing op inside the batch leaves the others. */
  dc = dx;
  dc.kind = "other";
  rc = lash_register(s, txn, &dc, NULL, NULL);
  is_rc(s, rc, LASH_ECONFLICT, "conflicting register inside the batch");
  msg_has(s, "bx", "... names the id");
  rc = lash_append(s, txn, "bx", "process.x", pl, NULL);
  is_rc(s, rc, LASH_EINVAL, "rejected append inside the batch");
  rc = tu_reg(s, "bw", "k", LASH_OWNER_BOUND, 0); /* txn NULL */
  is_rc(s, rc, LASH_EINVAL, "register with txn NULL during a batch -> EINVAL");
  tu_snap_take(s, "by", &sn);
  rc = lash_append(s, NULL, "by", "progress", pl, NULL);
  is_rc(s, rc, LASH_EINVAL, "append with txn NULL during a batch -> EINVAL");
  rc = lash_request_cancel(s, NULL, "by", "x", NULL);
  is_rc(s, rc, LASH_EINVAL, "cancel with txn NULL during a batch -> EINVAL");
  memset(&got, 0, sizeof got);
  rc = lash_lease_claim(s, NULL, "by", "B", "b1", 30000, &got);
  is_rc(s, rc, LASH_EINVAL, "claim with txn NULL during a batch -> EINVAL");
  ok(tu_snap_same(s, "by", &sn), "refused txn NULL writes changed nothing");
  tu_snap_free(&sn);
  is(lash_change_seq(s), cseq, "change seq unchanged before commit");
  {
    lash_def dw = tu_def("bw", "k", LASH_OWNER_BOUND, 0);
    rc = lash_register(s, txn, &dw, NULL, NULL);
    is_rc(s, rc, 0, "register bw in the batch after the failures");
  }
  is(h.calls, 0, "hook not called before commit");
  rc = lash_txn_commit(txn);
  is_rc(s, rc, 0, "commit the batch");
  is(h.calls, 1, "hook called once for the batch");
  is(h.n, 3, "hook: one change per process (bx, by, bw)");
  if (h.n == 3) {
    ok(strcmp(h.id[0], "bx") == 0 && strcmp(h.id[1], "by") == 0 &&
           strcmp(h.id[2], "bw") == 0,
       "hook: changes in first-change order");
    ok(h.registered[0] == 1 && h.first_seq[0] == 1 && h.last_seq[0] == 2 &&
           h.status[0] == LASH_PENDING,
       "hook: bx registered, first_seq 1, last_seq 2");
    ok(h.registered[1] == 0 && h.first_seq[1] == 2 && h.last_seq[1] == 2,
       "hook: by first_seq 2, last_seq 2");
    ok(h.registered[2] == 1 && h.first_seq[2] == 0 && h.last_seq[2] == 0,
       "hook: bw registered with no events (first_seq 0)");
  }
  is(tu_status(s, "bx"), LASH_PENDING, "bx committed");
  is(tu_status(s, "bw"), LASH_PENDING, "bw committed");
  is(tu_event_count(s, "bx"), 2, "bx has its two events");
  is(tu_event_count(s, "by"), 2, "by has two events");
  memset(&got, 0, sizeof got);
  rc = lash_lease_get(s, NULL, "bx", &got);
  ok(rc == 0 && got.token == lx.token && got.fence == lx.fence,
     "bx lease committed");
  ok(lash_change_seq(s) > cseq, "change seq moved by the commit");
  tu_check(s, "S8.5 check after a batch");

  /* Abort discards everything. */
  memset(&h, 0, sizeof h);
  tu_snap_take(s, "by", &sn);
  rc = lash_txn_begin(s, &txn);
  is_rc(s, rc, 0, "begin a batch to abort");
  {
    lash_def dv = tu_def("bv", "k", LASH_RERUNNABLE, 0);
    rc = lash_register(s, txn, &dv, NULL, NULL);
    is_rc(s, rc, 0, "register bv in the batch");
  }
  rc = lash_append(s, txn, "by", "progress", pl, NULL);
  is_rc(s, rc, 0, "append by in the batch");
  lash_txn_abort(txn);
  lash_txn_abort(NULL);
  is(tu_status(s, "bv"), LASH_ENOENT, "abort discarded the registration");
  ok(tu_snap_same(s, "by", &sn), "abort discarded the append");
  is(h.calls, 0, "no hook after abort");
  tu_snap_free(&sn);
  rc = tu_reg(s, "bu", "k", LASH_RERUNNABLE, 0);
  is_rc(s, rc, 0, "writes with txn NULL work again after abort");

  /* A batch of claims and starts. */
  {
    static const char *ids[] = {"bs-1", "bs-2", "bs-3"};
    lash_lease ls[3];
    int i, all = 1;
    for (i = 0; i < 3; i++)
      tu_reg(s, ids[i], "k", LASH_RERUNNABLE, 0);
    memset(&h, 0, sizeof h);
    rc = lash_txn_begin(s, &txn);
    for (i = 0; i < 3; i++) {
      memset(&ls[i], 0, sizeof ls[i]);
      if (lash_lease_claim(s, txn, ids[i], "A", "a1", 30000, &ls[i]) != 0 ||
          lash_start(s, txn, &ls[i], NULL) != 0)
        all = 0;
    }
    ok(rc == 0 && all, "claims and starts in one batch");
    rc = lash_txn_commit(txn);
    is_rc(s, rc, 0, "commit claims and starts");
    ok(tu_status(s, "bs-1") == LASH_RUNNING &&
           tu_status(s, "bs-3") == LASH_RUNNING,
       "rows running after the commit");
    ok(h.calls == 1 && h.n == 3 && h.status[0] == LASH_RUNNING,
       "one hook call with three running changes");
  }

  /* Closing with an open batch aborts it. */
  rc = lash_txn_begin(s, &txn);
  {
    lash_def dq = tu_def("bq", "k", LASH_RERUNNABLE, 0);
    lash_register(s, txn, &dq, NULL, NULL);
  }
  lash_store_close(s);
  e.s = NULL;
  rc = tu_env_open_store_(&e);
  is(rc, 0, "reopen after closing with an open batch");
  s = e.s;
  is(tu_status(s, "bq"), LASH_ENOENT, "closing aborted the open batch");
  is(tu_status(s, "bx"), LASH_PENDING, "committed rows are there");
  tu_check(s, "S8.5 check after batches");
  tu_close(&e);
}

/* ----------------------------------------------------------------- stats */

static void test_stats(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char ob[16];
  lash_bytes out = tu_mp_str(ob, sizeof ob, "o");
  lash_stats st;
  lash_lease ls;
  int rc;

  tu_reg(s, "p1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "p2", "k", LASH_OWNER_BOUND, 0);
  tu_reg(s, "r1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "w1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "c1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "c2", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "c3", "k", LASH_EXTERNAL, 0);
  tu_reg(s, "f1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "x1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "a1", "k", LASH_EXTERNAL, 0);
  memset(&ls, 0, sizeof ls);
  lash_lease_claim(s, NULL, "r1", "A", "i", 30000, &ls);
  lash_start(s, NULL, &ls, NULL);
  memset(&ls, 0, sizeof ls);
  lash_lease_claim(s, NULL, "w1", "A", "i", 30000, &ls);
  lash_start(s, NULL, &ls, NULL);
  lash_wait_set(s, NULL, &ls, "sleep:1", NULL);
  lash_complete_unleased(s, NULL, "c1", LASH_COMPLETED, out,
                         LASH_AUTH_WORKFLOW);
  lash_complete_unleased(s, NULL, "c2", LASH_COMPLETED, out,
                         LASH_AUTH_WORKFLOW);
  lash_complete_unleased(s, NULL, "c3", LASH_COMPLETED, out,
                         LASH_AUTH_EXTERNAL);
  lash_complete_unleased(s, NULL, "f1", LASH_FAILED, out, LASH_AUTH_WORKFLOW);
  lash_request_cancel(s, NULL, "x1", "r", NULL);
  lash_complete_unleased(s, NULL, "a1", LASH_ABANDONED, out,
                         LASH_AUTH_RECONCILED_ABANDON);

  memset(&st, 0, sizeof st);
  rc = lash_store_stats(s, NULL, &st);
  is_rc(s, rc, 0, "stats");
  is(st.count[LASH_PENDING], 2, "stats pending 2");
  is(st.count[LASH_RUNNING], 1, "stats running 1");
  is(st.count[LASH_WAITING], 1, "stats waiting 1");
  is(st.count[LASH_COMPLETED], 3, "stats completed 3");
  is(st.count[LASH_FAILED], 1, "stats failed 1");
  is(st.count[LASH_CANCELLED], 1, "stats cancelled 1");
  is(st.count[LASH_ABANDONED], 1, "stats abandoned 1");
  is(st.live, 4, "stats live 4");
  is(st.total, 10, "stats total 10");
  is(st.tombstones, 0, "stats tombstones 0");
  is(st.change_seq, lash_change_seq(s), "stats change_seq");
#ifdef LASH_TEST_MEM
  is(st.bytes_used + st.bytes_available, (uint64_t)1 << 30,
     "stats: used + available is 1 GiB by default");
#else
  if (!TU_PG)
    is(st.bytes_used + st.bytes_available, (uint64_t)64 << 30,
       "stats: used + available is the 64 GiB (sparse) map by default");
#endif
  ok(st.bytes_used > 0 && st.bytes_available > 0, "stats bytes_used");
  is(tu_reopen(&e), 0, "reopen");
  memset(&st, 0, sizeof st);
  lash_store_stats(e.s, NULL, &st);
  ok(st.count[LASH_COMPLETED] == 3 && st.total == 10 && st.live == 4,
     "stats persist across reopen");

  /* The clock. */
  is(lash_store_now(e.s), e.now, "lash_store_now uses the fake clock");
  lash_store_set_clock(e.s, NULL, NULL);
  {
    int64_t wall = (int64_t)time(NULL) * 1000, now = lash_store_now(e.s);
    ok(now > wall - 5000 && now < wall + 5000,
       "set_clock(NULL) restores the wall clock");
  }
  tu_check(e.s, "S8.5 check after stats");
  tu_close(&e);
}

/* Another OS process opens the store with a larger map and fills past the
 * first one's size: the first process's reads (and its change-seq poll)
 * adopt the new size instead of failing with EIO. */
static void test_map_grown_elsewhere(void) {
  static char big[200000];
  char root[64], dir[128], err[256], id[32];
  lash_store_opts o;
  lash_store *a = NULL;
  lash_record r;
  uint64_t cs0;
  pid_t pid;
  int status = -1, rc;

  TU_SKIP_ON_MEM("another OS process grows the LMDB map");
  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  lash_store_opts_init(&o);
  o.max_bytes = 1 << 20;
  is(lash_store_open(dir, &o, &a, err, sizeof err), 0, "A opens with 1 MiB");
  is(tu_reg(a, "x", "k", LASH_RERUNNABLE, 0), 0, "A registers x");
  cs0 = lash_change_seq(a);
  memset(&r, 0, sizeof r);
  is(lash_get(a, NULL, "x", &r, NULL), 0, "A reads x");
  lash_record_free(&r);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    lash_store *b = NULL;
    lash_store_opts ob;
    int i;
    lash_store_opts_init(&ob);
    ob.max_bytes = 64 << 20;
    if (lash_store_open(dir, &ob, &b, err, sizeof err) != 0) _exit(2);
    for (i = 0; i < 40; i++) {
      lash_def d;
      memset(&d, 0, sizeof d);
      snprintf(id, sizeof id, "b%d", i);
      d.id = id;
      d.kind = "k";
      d.input.data = big;
      d.input.len = sizeof big;
      d.disposition = LASH_RERUNNABLE;
      d.max_attempts = 0;
      if (lash_register(b, NULL, &d, NULL, NULL) != 0) _exit(3);
    }
    lash_store_close(b);
    _exit(0);
  }
  waitpid(pid, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "B (64 MiB map) wrote 8 MB into the store");
  memset(&r, 0, sizeof r);
  rc = lash_get(a, NULL, "b39", &r, NULL);
  is(rc, 0, "A reads B's last row after the map grew (not EIO)");
  lash_record_free(&r);
  ok(lash_change_seq(a) > cs0, "A's change-seq poll sees B's writes");
  is(tu_reg(a, "y", "k", LASH_RERUNNABLE, 0), 0, "A writes again");
  tu_check(a, "store consistent");
  lash_store_close(a);
  tu_rmrf(root);
}

/* ------------------------------------------------------------ targets */

/* A path or lmdb:PATH opens the LMDB store; another scheme is refused
 * with a message naming the schemes this lash knows. */
static void test_targets(void) {
  static const char *const bad[] = {"mysql://db.example/lash", "foo:bar",
                                    "mem:x"};
  char root[64], dir[128], target[160], err[512];
  lash_store *s = NULL, *s2 = NULL;
  size_t i;
  int rc;

  TU_SKIP_ON_MEM("lash_store_open's own targets are LMDB stores");
  if (tu_mkdtemp(root, sizeof root) != 0) return;
  snprintf(dir, sizeof dir, "%s/store", root);
  snprintf(target, sizeof target, "lmdb:%s", dir);
  rc = lash_store_open(target, NULL, &s, err, sizeof err);
  is_rc(NULL, rc, 0, "open lmdb:PATH");
  iss(lash_store_path(s), target, "lash_store_path is the target as given");
  is(tu_reg(s, "t-1", "k", LASH_RERUNNABLE, 0), 0, "write through lmdb:PATH");
  lash_store_close(s);
  rc = lash_store_open(dir, NULL, &s2, err, sizeof err);
  is_rc(NULL, rc, 0, "the plain path opens the same store");
  is(tu_status(s2, "t-1"), LASH_PENDING, "... and sees its row");
  lash_store_close(s2);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = (lash_store *)&rc;
    err[0] = '\0';
    rc = lash_store_open(bad[i], NULL, &s, err, sizeof err);
    is_rc(NULL, rc, LASH_EINVAL, "target %s -> EINVAL", bad[i]);
    ok(s == NULL, "... no handle");
    ok(tu_has(err, "lmdb:"), "... message names the known scheme ('%s')", err);
  }
  rc = lash_store_open("lmdb:", NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "lmdb: without a path -> EINVAL");
  /* postgresql:// is known: a malformed one is EINVAL naming what is
   * wrong, an unreachable server EIO naming the target; no handle. */
  s = (lash_store *)&rc;
  rc = lash_store_open("postgresql:db", NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "postgresql:db (no //) -> EINVAL");
  ok(s == NULL && tu_has(err, "postgresql://"), "... says the form ('%s')",
     err);
  rc = lash_store_open("postgresql://127.0.0.1:1/x?schema=No-Caps", NULL, &s,
                       err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "a schema that is not a plain name -> EINVAL");
  ok(s == NULL && tu_has(err, "No-Caps"), "... names it ('%s')", err);
  rc = lash_store_open("postgresql://u:secret@127.0.0.1:1/x", NULL, &s, err,
                       sizeof err);
  is_rc(NULL, rc, LASH_EIO, "no server listening -> EIO");
  ok(s == NULL && tu_has(err, "127.0.0.1:1") && !tu_has(err, "secret"),
     "... names the target without its password ('%s')", err);
  /* A relative path without a scheme is a path, even with a colon later. */
  {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != NULL && chdir(root) == 0) {
      s = NULL;
      rc = lash_store_open("./rel:store", NULL, &s, err, sizeof err);
      is_rc(NULL, rc, 0, "./rel:store is a relative path");
      lash_store_close(s);
      s = NULL;
      rc = lash_store_open("plain", NULL, &s, err, sizeof err);
      is_rc(NULL, rc, 0, "a plain relative path opens");
      lash_store_close(s);
      ok(chdir(cwd) == 0, "back to the old directory");
    }
  }
  tu_rmrf(root);
}

/* A methods table of another version (or incomplete) is refused. */
static void test_backend_table(void) {
  lash_backend_methods m = *lash_backend_lmdb();
  lash_store *s = (lash_store *)&m;
  char err[256] = "";
  int rc;
  m.version = LASH_BACKEND_VERSION + 1;
  rc = lash_store_open_backend(&m, "/nonexistent/x", NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "a table of an unknown version -> EINVAL");
  ok(s == NULL && tu_has(err, "version"), "... no handle, says why ('%s')",
     err);
  m.version = LASH_BACKEND_VERSION;
  m.scan = NULL;
  rc = lash_store_open_backend(&m, "/nonexistent/x", NULL, &s, err, sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "a table without scan -> EINVAL");
  rc = lash_store_open_backend(NULL, "/nonexistent/x", NULL, &s, err,
                               sizeof err);
  is_rc(NULL, rc, LASH_EINVAL, "no table -> EINVAL");
}

int main(void) {
  test_targets();
  test_backend_table();
  test_map_grown_elsewhere();
  test_open_modes();
  test_format();
#ifdef LASH_TEST_PG
  test_format_pg();
  test_connection_loss_pg();
#ifdef LASH_TEST_HOOKS
  test_commit_lost_pg();
#endif
  test_refused_flush_pg();
  test_kept_cache_pg();
  test_cache_two_writers_pg();
#endif
  test_map_full();
  test_durability();
  test_read_only();
  test_batch();
  test_stats();
  return done_testing();
}
