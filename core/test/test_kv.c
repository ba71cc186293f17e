/* test_kv.c - the side table (lash_backend.h version 4, registry kv.c):
 * put, get and delete; prefix scans in bytewise order with a start key;
 * a write batch sees its own puts and an abort leaves nothing; a put
 * commits with the rows of its batch; nested reads inside a scan; bad
 * arguments change nothing; a committed put survives a reopen and is seen
 * by another OS process, and its put by this one. Run on LMDB, .mem and
 * .pg. */
#include "testutil.h"

#include "registry/registry-int.h"

#include <sys/wait.h>

#define K(lit) lit, sizeof lit - 1

/* The value under (ns, key) as a string ("" absent, "?" on error). */
static const char *val_of(lash_store *s, lash_txn *t, int ns, const char *key,
                          size_t n) {
  static char buf[256];
  lash_bytes v;
  int rc = lash__kv_get(s, t, ns, key, n, &v);
  if (rc == LASH_ENOENT) return "";
  if (rc != 0) return "?";
  snprintf(buf, sizeof buf, "=%.*s", (int)v.len, (const char *)v.data);
  return buf;
}

/* Collects a scan's keys and values as "key=val;" (NULs as '|'). */
typedef struct col {
  char all[1024];
  int n, stop_at;
  lash_store *s; /* non-NULL: each item also reads ns 9 (a nested read) */
  int nested_ok;
} col;

static int col_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  col *c = ud;
  size_t at = strlen(c->all), i;
  for (i = 0; i < keylen && at + 2 < sizeof c->all; i++)
    c->all[at++] = key[i] == 0 ? '|' : key[i];
  c->all[at] = '\0';
  snprintf(c->all + at, sizeof c->all - at, "=%.*s;", (int)val.len,
           (const char *)val.data);
  c->n++;
  if (c->s != NULL && strcmp(val_of(c->s, NULL, 9, K("n")), "=nested") == 0)
    c->nested_ok++;
  return c->stop_at > 0 && c->n >= c->stop_at ? 1 : 0;
}

static const char *scan(lash_store *s, lash_txn *t, int ns, const char *pre,
                        size_t plen, const char *after, size_t alen) {
  static col c;
  int rc;
  memset(&c, 0, sizeof c);
  rc = lash__kv_scan(s, t, ns, pre, plen, after, alen, col_cb, &c);
  if (rc != 0) snprintf(c.all, sizeof c.all, "error %s", lash_err_name(rc));
  return c.all;
}

static void test_put_get(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_KIND, K("greet"), "v1", 2), 0, "put");
  iss(val_of(s, NULL, LASH_KV_KIND, K("greet")), "=v1", "get sees it");
  iss(val_of(s, NULL, LASH_KV_WORKER, K("greet")), "",
      "another namespace does not");
  iss(val_of(s, NULL, LASH_KV_KIND, K("gree")), "", "nor a shorter key");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_KIND, K("greet"), "v22", 3), 0,
        "overwrite");
  iss(val_of(s, NULL, LASH_KV_KIND, K("greet")), "=v22", "the new value");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_CHILD, K("p\0c"), "", 0), 0,
        "an empty value");
  iss(val_of(s, NULL, LASH_KV_CHILD, K("p\0c")), "=", "is a value");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_KIND, K("greet"), NULL, 0), 0,
        "delete");
  iss(val_of(s, NULL, LASH_KV_KIND, K("greet")), "", "gone");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_KIND, K("greet"), NULL, 0), 0,
        "deleting an absent key is 0");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_KIND, K("keep"), "k", 1), 0, "put");
  is_rc(s, tu_reopen(&e), 0, "reopen");
  s = e.s;
  iss(val_of(s, NULL, LASH_KV_KIND, K("keep")), "=k", "kept across a reopen");
  iss(val_of(s, NULL, LASH_KV_CHILD, K("p\0c")), "=", "the empty one too");
  tu_check(s, "after the side table's writes");
  tu_close(&e);
}

static void test_bad_args(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  char big[LASH_KV_KEY_MAX + 2];
  lash_bytes v;
  memset(big, 'x', sizeof big);
  is(lash__kv_put(s, NULL, 0, K("a"), "v", 1), LASH_EINVAL, "namespace 0");
  ok(tu_has(lash_errmsg(s), "namespace 0 is out of range"), "says so: %s",
     lash_errmsg(s));
  is(lash__kv_put(s, NULL, 256, K("a"), "v", 1), LASH_EINVAL, "namespace 256");
  is(lash__kv_put(s, NULL, 1, "", 0, "v", 1), LASH_EINVAL, "an empty key");
  ok(tu_has(lash_errmsg(s), "1..255 bytes"), "names the rule: %s",
     lash_errmsg(s));
  is(lash__kv_put(s, NULL, 1, big, LASH_KV_KEY_MAX + 1, "v", 1), LASH_EINVAL,
     "a key of 256 bytes");
  iss(scan(s, NULL, 1, NULL, 0, NULL, 0), "", "nothing was written");
  is_rc(s, lash__kv_put(s, NULL, 1, big, LASH_KV_KEY_MAX, "v", 1), 0,
        "a key of 255 bytes is fine");
  is(lash__kv_get(s, NULL, 1, big, LASH_KV_KEY_MAX + 1, &v), LASH_EINVAL,
     "get with a long key");
  is(lash__kv_scan(s, NULL, 0, NULL, 0, NULL, 0, col_cb, NULL), LASH_EINVAL,
     "scan of namespace 0");
  {
    col c;
    memset(&c, 0, sizeof c);
    is_rc(s,
          lash__kv_scan(s, NULL, 1, big, LASH_KV_KEY_MAX, NULL, 0, col_cb, &c),
          0, "scan of the long key's prefix");
    is(c.n, 1, "finds it");
  }
  tu_close(&e);
}

static void test_scans(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_txn *t = NULL;
  is_rc(s, lash_txn_begin(s, &t), 0, "a batch");
  is_rc(s, lash__kv_put(s, t, 6, K("b"), "4", 1), 0, "b");
  is_rc(s, lash__kv_put(s, t, 6, K("a\0y"), "2", 1), 0, "a NUL y");
  is_rc(s, lash__kv_put(s, t, 6, K("ab"), "3", 1), 0, "ab");
  is_rc(s, lash__kv_put(s, t, 6, K("a\0x"), "1", 1), 0, "a NUL x");
  is_rc(s, lash__kv_put(s, t, 6, K("a"), "0", 1), 0, "a");
  is_rc(s, lash__kv_put(s, t, 5, K("a\0z"), "other", 5), 0, "in ns 5");
  is_rc(s, lash__kv_put(s, t, 7, K("a\0z"), "other", 5), 0, "in ns 7");
  is_rc(s, lash_txn_commit(t), 0, "commit");
  iss(scan(s, NULL, 6, NULL, 0, NULL, 0), "a=0;a|x=1;a|y=2;ab=3;b=4;",
      "all of ns 6, bytewise, shorter first");
  iss(scan(s, NULL, 6, K("a\0"), NULL, 0), "a|x=1;a|y=2;", "the prefix a NUL");
  iss(scan(s, NULL, 6, K("a"), NULL, 0), "a=0;a|x=1;a|y=2;ab=3;",
      "the prefix a");
  iss(scan(s, NULL, 6, K("a\0"), K("a\0x")), "a|y=2;", "after a NUL x");
  iss(scan(s, NULL, 6, NULL, 0, K("a\0y")), "ab=3;b=4;",
      "after a NUL y, no prefix");
  iss(scan(s, NULL, 6, K("a"), K("b")), "", "after past the prefix");
  iss(scan(s, NULL, 6, K("b"), K("a")), "b=4;", "after before the prefix");
  iss(scan(s, NULL, 6, K("c"), NULL, 0), "", "an empty prefix range");
  iss(scan(s, NULL, 8, NULL, 0, NULL, 0), "", "an empty namespace");
  {
    col c;
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    is_rc(s, lash__kv_scan(s, NULL, 6, NULL, 0, NULL, 0, col_cb, &c), 0,
          "a callback > 0 stops");
    is(c.n, 2, "after two");
  }
  {
    /* More than a page of the PostgreSQL scan (256). */
    char key[16];
    int i, n = 0;
    col c;
    is_rc(s, lash_txn_begin(s, &t), 0, "a batch of 600");
    for (i = 0; i < 600; i++) {
      snprintf(key, sizeof key, "k%04d", i);
      n += lash__kv_put(s, t, 10, key, strlen(key), "v", 1) == 0;
    }
    is(n, 600, "600 puts");
    is_rc(s, lash_txn_commit(t), 0, "commit");
    memset(&c, 0, sizeof c);
    is_rc(s, lash__kv_scan(s, NULL, 10, K("k"), NULL, 0, col_cb, &c), 0,
          "scan them");
    is(c.n, 600, "all 600");
    ok(strncmp(c.all, "k0000=v;k0001=v;", 16) == 0, "in order");
  }
  {
    /* A nested read inside a scan's callback. */
    col c;
    is_rc(s, lash__kv_put(s, NULL, 9, K("n"), "nested", 6), 0, "put ns 9");
    memset(&c, 0, sizeof c);
    c.s = s;
    is_rc(s, lash__kv_scan(s, NULL, 6, NULL, 0, NULL, 0, col_cb, &c), 0,
          "scan with reads inside");
    is(c.nested_ok, 5, "each nested read saw the value");
  }
  tu_close(&e);
}

static void test_batch(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_txn *t = NULL;
  lash_def d = tu_def("r-1", "k", LASH_RERUNNABLE, 0);
  is_rc(s, lash__kv_put(s, NULL, 1, K("old"), "o", 1), 0, "a committed value");
  is_rc(s, lash_txn_begin(s, &t), 0, "a batch");
  is_rc(s, lash__kv_put(s, t, 1, K("new"), "n", 1), 0, "put in the batch");
  iss(val_of(s, t, 1, K("new")), "=n", "the batch sees its own put");
  is_rc(s, lash__kv_put(s, t, 1, K("new"), "n2", 2), 0, "again");
  iss(val_of(s, t, 1, K("new")), "=n2", "the newest put wins");
  is_rc(s, lash__kv_put(s, t, 1, K("old"), NULL, 0), 0, "delete old");
  iss(val_of(s, t, 1, K("old")), "", "the batch sees its delete");
  iss(scan(s, t, 1, NULL, 0, NULL, 0), "new=n2;", "and its scan");
  is_rc(s, lash__kv_put(s, t, 1, K("after"), "a", 1), 0, "a put after a scan");
  iss(val_of(s, t, 1, K("after")), "=a", "seen");
  iss(scan(s, t, 1, NULL, 0, NULL, 0), "after=a;new=n2;", "scan again");
  is_rc(s, lash_register(s, t, &d, NULL, NULL), 0, "a row in the same batch");
  lash_txn_abort(t);
  iss(val_of(s, NULL, 1, K("new")), "", "an abort leaves no put");
  iss(val_of(s, NULL, 1, K("old")), "=o", "and no delete");
  is(tu_status(s, "r-1"), LASH_ENOENT, "nor the row");

  is_rc(s, lash_txn_begin(s, &t), 0, "a batch again");
  is_rc(s, lash_register(s, t, &d, NULL, NULL), 0, "a row");
  is_rc(s, lash__kv_put(s, t, 1, K("new"), "n", 1), 0, "a put");
  is_rc(s, lash_txn_commit(t), 0, "commit");
  iss(val_of(s, NULL, 1, K("new")), "=n", "the put committed");
  is(tu_status(s, "r-1"), LASH_PENDING, "with the row");

  is_rc(s, lash_txn_begin(s, &t), 0, "a batch with a put only");
  is_rc(s, lash__kv_put(s, t, 1, K("only"), "y", 1), 0, "a put");
  is_rc(s, lash_txn_commit(t), 0, "commit");
  iss(val_of(s, NULL, 1, K("only")), "=y", "a put alone commits");
  is(lash__kv_put(s, t, 1, K("late"), "l", 1), LASH_EINVAL,
     "a put into a finished batch");
  tu_check(s, "after the batches");
  tu_close(&e);
}

/* Another OS process (a fork that opens the store anew) sees a committed
 * put, and its own put is seen here. */
static void test_processes(void) {
  tu_env e;
  lash_store *s;
  char target[1024];
  pid_t pid;
  int st = 0;
  if (TU_MEM && !TU_PG) {
    printf("ok %d # skip on the mem backend: one process's memory\n", ++tap_n_);
    return;
  }
  s = tu_open(&e, NULL);
  snprintf(target, sizeof target, "%s", lash_store_path(s));
  is_rc(s, lash__kv_put(s, NULL, 2, K("w\0i1"), "parent", 6), 0, "put");
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    lash_store *c = NULL;
    lash_store_opts o;
    char err[512];
    lash_bytes v;
    int code = 0;
    lash_store_opts_init(&o);
    if (lash_store_open(target, &o, &c, err, sizeof err) != 0) _exit(10);
    if (lash__kv_get(c, NULL, 2, K("w\0i1"), &v) != 0 || v.len != 6 ||
        memcmp(v.data, "parent", 6) != 0)
      code = 11;
    else if (lash__kv_put(c, NULL, 2, K("w\0i2"), "child", 5) != 0)
      code = 12;
    lash_store_close(c);
    _exit(code);
  }
  ok(pid > 0, "forked");
  waitpid(pid, &st, 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "the other process read the put and wrote its own (exit %d)",
     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  iss(val_of(s, NULL, 2, K("w\0i2")), "=child", "its put is seen here");
  iss(scan(s, NULL, 2, K("w\0"), NULL, 0), "w|i1=parent;w|i2=child;",
      "both in a scan");
  tu_close(&e);
}

int main(void) {
  test_put_get();
  test_bad_args();
  test_scans();
  test_batch();
  test_processes();
  return done_testing();
}
