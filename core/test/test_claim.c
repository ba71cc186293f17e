/* test_claim.c - issue 13 (claim): priority and keyed concurrency.
 * The live index of a kind is in claim order (priority desc, creation
 * order, id), paged by the worklist cursor; bad definitions write nothing;
 * a row of a concurrency key whose slots are full waits off the worklist
 * and is listed again when a slot frees (terminal, suspension). */
#include "testutil.h"

#define TTL 30000

/* The ids the worklist of @p kind passes, pages of @p limit, joined by
 * spaces into buf. */
typedef struct order_ctx {
  char *buf;
  size_t cap, len;
} order_ctx;

static int order_cb(void *ud, const lash_record *r) {
  order_ctx *o = ud;
  int n = snprintf(o->buf + o->len, o->cap - o->len, "%s%s",
                   o->len > 0 ? " " : "", r->id);
  if (n > 0 && (size_t)n < o->cap - o->len) o->len += (size_t)n;
  return 0;
}

static int worklist(lash_store *s, const char *kind, size_t limit, char *buf,
                    size_t cap) {
  lash_worklist_cursor cur;
  order_ctx o;
  int n, pages = 0;
  memset(&cur, 0, sizeof cur);
  o.buf = buf;
  o.cap = cap;
  o.len = 0;
  buf[0] = '\0';
  while (!cur.done && pages < 1000) {
    n = lash_worklist_page(s, NULL, kind, &cur, limit, order_cb, &o);
    if (n < 0) return n;
    pages++;
    if (n == 0) break;
  }
  return 0;
}

static int reg_prio(lash_store *s, const char *id, const char *kind,
                    int64_t prio) {
  lash_def d = tu_def(id, kind, LASH_RERUNNABLE, 0);
  d.priority = prio;
  return lash_register(s, NULL, &d, NULL, NULL);
}

static void test_priority_order(tu_env *e) {
  lash_store *s = e->s;
  char buf[512];
  lash_record r;
  size_t lim;
  /* ids against creation order, so id order and creation order differ */
  is_rc(s, reg_prio(s, "p-z", "pk", 0), 0, "p-z (priority 0)");
  is_rc(s, reg_prio(s, "p-y", "pk", 5), 0, "p-y (priority 5)");
  is_rc(s, reg_prio(s, "p-x", "pk", -3), 0, "p-x (priority -3)");
  is_rc(s, reg_prio(s, "p-w", "pk", 5), 0, "p-w (priority 5, after p-y)");
  is_rc(s, reg_prio(s, "p-v", "pk", 0), 0, "p-v (priority 0, after p-z)");
  is_rc(s, reg_prio(s, "p-u", "pk", LASH_PRIORITY_MAX), 0, "p-u (max)");
  is_rc(s, reg_prio(s, "p-t", "pk", LASH_PRIORITY_MIN), 0, "p-t (min)");
  for (lim = 1; lim <= 8; lim += 3) {
    is_rc(s, worklist(s, "pk", lim, buf, sizeof buf), 0, "worklist, pages %zu",
          lim);
    iss(buf, "p-u p-y p-w p-z p-v p-x p-t",
        "pages of %zu: priority desc, then creation order (not id)", lim);
  }
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "p-w", &r, NULL), 0, "p-w read");
  is((long)r.priority, 5, "the record holds its priority");
  ok(r.created_seq > 0, "... and its creation order");
  lash_record_free(&r);
  /* The same definition again is idempotent; another priority conflicts. */
  is_rc(s, reg_prio(s, "p-w", "pk", 5), 0, "same definition: idempotent");
  is_rc(s, reg_prio(s, "p-w", "pk", 4), LASH_ECONFLICT,
        "another priority: ECONFLICT");
  ok(tu_has(lash_errmsg(s), "priority"), "... naming the field: %s",
     lash_errmsg(s));
  /* A row that ends leaves the index; the order of the rest stands. */
  {
    lash_lease ls;
    unsigned char mb[8];
    memset(&ls, 0, sizeof ls);
    is_rc(s, lash_lease_claim(s, NULL, "p-y", "A", "inc", TTL, &ls), 0,
          "claim p-y");
    is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start p-y");
    is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, tu_mp_uint(mb, 1)), 0,
          "complete p-y");
  }
  is_rc(s, worklist(s, "pk", 2, buf, sizeof buf), 0, "worklist again");
  iss(buf, "p-u p-w p-z p-v p-x p-t", "the ended row is gone, order kept");
  /* A listing stays in id order. */
  {
    lash_list_filter f;
    order_ctx o;
    memset(&f, 0, sizeof f);
    f.live_only = 1;
    f.kind = "pk";
    o.buf = buf;
    o.cap = sizeof buf;
    o.len = 0;
    buf[0] = '\0';
    is(lash_list(s, NULL, &f, order_cb, &o), 6, "lash_list live of pk");
    iss(buf, "p-t p-u p-v p-w p-x p-z", "... in id order");
    f.after = "p-v";
    f.limit = 2;
    o.len = 0;
    buf[0] = '\0';
    is(lash_list(s, NULL, &f, order_cb, &o), 2, "lash_list after p-v");
    iss(buf, "p-w p-x", "... pages by id");
  }
  tu_check(s, "check clean with priorities");
}

static void test_bad_input(tu_env *e) {
  lash_store *s = e->s;
  lash_def d;
  uint64_t cs = lash_change_seq(s);
  d = tu_def("bad-1", "pk", LASH_RERUNNABLE, 0);
  d.priority = LASH_PRIORITY_MAX + 1;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "priority out of range: EINVAL");
  ok(tu_has(lash_errmsg(s), "priority"), "... naming it: %s", lash_errmsg(s));
  d = tu_def("bad-2", "pk", LASH_RERUNNABLE, 0);
  d.concurrency_key = "acct-1";
  d.concurrency_limit = -1;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "concurrency_limit -1: EINVAL");
  ok(tu_has(lash_errmsg(s), "concurrency_limit"), "... naming it: %s",
     lash_errmsg(s));
  d = tu_def("bad-3", "pk", LASH_RERUNNABLE, 0);
  d.concurrency_limit = 2;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "a limit without a key: EINVAL");
  ok(tu_has(lash_errmsg(s), "concurrency_key"), "... naming the key: %s",
     lash_errmsg(s));
  d = tu_def("bad-4", "pk", LASH_RERUNNABLE, 0);
  d.concurrency_key = "";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "an empty key: EINVAL");
  ok(tu_has(lash_errmsg(s), "concurrency_key"), "... naming it: %s",
     lash_errmsg(s));
  is(tu_status(s, "bad-1"), LASH_ENOENT, "nothing was written (bad-1)");
  is(tu_status(s, "bad-2"), LASH_ENOENT, "nothing was written (bad-2)");
  isu(lash_change_seq(s), cs, "the change seq did not move");
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_priority_order(&e);
  test_bad_input(&e);
  tu_close(&e);
  return done_testing();
}
