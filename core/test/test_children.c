/* test_children.c - the children index (issue 14, registry children.c):
 * lash_register notes a child (def.parent) in its own transaction; an
 * aborted batch leaves no entry; lash_children lists a parent's children in
 * id order, pairs too long for one side-table key included (the hashed
 * buckets); prune takes a pruned child's entry out; a record whose parent
 * is another is never believed from a colliding entry. Run on LMDB, .mem
 * and .pg. */
#include "testutil.h"

#include "kvcount.h"
#include "registry/registry-int.h"

typedef struct kids {
  char all[2048];
  int n;
} kids;

static int kid_cb(void *ud, const lash_record *r) {
  kids *k = ud;
  size_t at = strlen(k->all);
  snprintf(k->all + at, sizeof k->all - at, "%.40s;", r->id);
  k->n++;
  return 0;
}

static const char *children_of(lash_store *s, const char *parent) {
  static kids k;
  int rc;
  memset(&k, 0, sizeof k);
  rc = lash_children(s, NULL, parent, kid_cb, &k);
  if (rc != 0) snprintf(k.all, sizeof k.all, "error %s", lash_err_name(rc));
  return k.all;
}

static int entries(lash_store *s) {
  int n = tu_kv_count(s, LASH_KV_CHILD, NULL, 0);
  return n < 0 ? -1 : n;
}

static int reg(lash_store *s, lash_txn *t, const char *id, const char *parent) {
  lash_def d = tu_def(id, "greet", LASH_RERUNNABLE, 0);
  d.parent = parent;
  return lash_register(s, t, &d, NULL, NULL);
}

static void test_register_and_list(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  char longp[201], longc1[230], longc2[230];
  is_rc(s, reg(s, NULL, "p", NULL), 0, "parent");
  is_rc(s, reg(s, NULL, "p/2", "p"), 0, "child 2");
  is_rc(s, reg(s, NULL, "p/1", "p"), 0, "child 1");
  is_rc(s, reg(s, NULL, "p/1/1", "p/1"), 0, "grandchild");
  is_rc(s, reg(s, NULL, "q", NULL), 0, "no parent");
  iss(children_of(s, "p"), "p/1;p/2;", "children in id order");
  iss(children_of(s, "p/1"), "p/1/1;", "a grandchild is its parent's child");
  iss(children_of(s, "q"), "", "none");
  iss(children_of(s, "nobody"), "", "an unknown parent has none");
  is(entries(s), 3, "one entry per child");
  is_rc(s, reg(s, NULL, "p/1", "p"), 0, "registered again");
  is(entries(s), 3, "no second entry");
  /* a batch that aborts leaves no entry */
  {
    lash_txn *t = NULL;
    is_rc(s, lash_txn_begin(s, &t), 0, "batch");
    is_rc(s, reg(s, t, "p/3", "p"), 0, "child 3 in the batch");
    lash_txn_abort(t);
    iss(children_of(s, "p"), "p/1;p/2;", "aborted: not there");
    is(entries(s), 3, "no entry");
  }
  /* ids too long for one key: the hashed buckets */
  memset(longp, 'p', 200);
  longp[200] = '\0';
  memset(longc1, 'c', 200);
  memcpy(longc1 + 200, "-1", 3);
  memset(longc2, 'c', 200);
  memcpy(longc2 + 200, "-2", 3);
  is_rc(s, reg(s, NULL, longp, NULL), 0, "a long parent");
  is_rc(s, reg(s, NULL, longc2, longp), 0, "a long child");
  is_rc(s, reg(s, NULL, longc1, longp), 0, "another");
  is_rc(s, reg(s, NULL, longc1, longp), 0, "registered again");
  {
    kids k;
    memset(&k, 0, sizeof k);
    is_rc(s, lash_children(s, NULL, longp, kid_cb, &k), 0, "listed");
    is(k.n, 2, "both long children, once each");
  }
  is_rc(s, lash_children(s, NULL, "", kid_cb, NULL), LASH_EINVAL,
        "an empty id is refused");
  tu_check(s, "the store audits clean");
  tu_close(&e);
}

static void test_prune(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  char longp[201], longc[230];
  uint64_t seq;
  lash_prune_report rep;
  memset(longp, 'p', 200);
  longp[200] = '\0';
  memset(longc, 'c', 200);
  memcpy(longc + 200, "-1", 3);
  is_rc(s, reg(s, NULL, "p", NULL), 0, "parent");
  is_rc(s, reg(s, NULL, "p/1", "p"), 0, "child 1");
  is_rc(s, reg(s, NULL, "p/2", "p"), 0, "child 2");
  is_rc(s, reg(s, NULL, longp, NULL), 0, "a long parent");
  is_rc(s, reg(s, NULL, longc, longp), 0, "its long child");
  /* a pending row's cancellation ends it at once */
  is_rc(s, lash_request_cancel(s, NULL, "p/1", "done", &seq), 0, "end p/1");
  is_rc(s, lash_request_cancel(s, NULL, longc, "done", &seq), 0, "end it");
  is(entries(s), 3, "three entries before the prune");
  e.now += 1000;
  is_rc(s, lash_prune(s, NULL, e.now, 0, &rep), 0, "prune");
  is((int)rep.processes, 2, "two rows pruned");
  iss(children_of(s, "p"), "p/2;", "the pruned child is gone");
  iss(children_of(s, longp), "", "the long one too");
  is(entries(s), 1, "and their entries");
  is_rc(s, reg(s, NULL, "p/1", "p"), 0, "registered anew");
  iss(children_of(s, "p"), "p/1;p/2;", "listed again");
  tu_check(s, "the store audits clean");
  tu_close(&e);
}

int main(void) {
  test_register_and_list();
  test_prune();
  return done_testing();
}
