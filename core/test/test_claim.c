/* test_claim.c - issue 13 (claim): priority and keyed concurrency.
 * The live index of a kind is in claim order (priority desc, creation
 * order, id), paged by the worklist cursor; bad definitions write nothing;
 * a row of a concurrency key whose slots are full waits off the worklist
 * and is listed again when a slot frees (terminal, suspension). */
#include "testutil.h"

#include "kvcount.h"
#include "registry/registry-int.h" /* lash__kv_put: damage for the audit */

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

/* ------------------------------------------------- keyed concurrency */

static int reg_conc(lash_store *s, const char *id, const char *key, int lim,
                    int64_t prio) {
  lash_def d = tu_def(id, "ck", LASH_RERUNNABLE, 0);
  d.concurrency_key = key;
  d.concurrency_limit = lim;
  d.priority = prio;
  return lash_register(s, NULL, &d, NULL, NULL);
}

static char start_msg[1024]; /* the message of the last refused start */

/* Claims and starts @p id as @p owner: lash_start's code (the lease is
 * released when the start is refused). */
static int claim_start(lash_store *s, const char *id, const char *owner,
                       lash_lease *ls) {
  int rc;
  memset(ls, 0, sizeof *ls);
  if ((rc = lash_lease_claim(s, NULL, id, owner, "inc", TTL, ls)) < 0)
    return rc;
  rc = lash_start(s, NULL, ls, NULL);
  if (rc < 0) {
    snprintf(start_msg, sizeof start_msg, "%s", lash_errmsg(s));
    lash_lease_release(s, NULL, ls);
  }
  return rc;
}

static int conc_state(lash_store *s, const char *id) {
  lash_record r;
  int v;
  memset(&r, 0, sizeof r);
  if (lash_get(s, NULL, id, &r, NULL) != 0) return -1;
  v = r.conc_state;
  lash_record_free(&r);
  return v;
}

static int done_ok(lash_store *s, const lash_lease *ls) {
  unsigned char mb[8];
  return lash_complete(s, NULL, ls, LASH_COMPLETED, tu_mp_uint(mb, 1));
}

static void test_concurrency(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a1, a2, a3, a4, b1, x;
  lash_record r;
  char buf[512];
  int i;
  is_rc(s, reg_conc(s, "a1", "acct-a", 2, 0), 0, "a1 (key acct-a, limit 2)");
  is_rc(s, reg_conc(s, "a2", "acct-a", 2, 0), 0, "a2");
  is_rc(s, reg_conc(s, "a3", "acct-a", 2, 0), 0, "a3");
  is_rc(s, reg_conc(s, "a4", "acct-a", 2, 0), 0, "a4");
  is_rc(s, reg_conc(s, "b1", "acct-b", 0, 0), 0, "b1 (key acct-b, limit 1)");
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "b1", &r, NULL), 0, "b1 read");
  iss(r.concurrency_key, "acct-b", "the record holds its key");
  is(r.concurrency_limit, 1, "... and the default limit 1");
  lash_record_free(&r);
  is_rc(s, claim_start(s, "a1", "A", &a1), 0, "a1 starts");
  is_rc(s, claim_start(s, "a2", "B", &a2), 0, "a2 starts (another owner)");
  is(conc_state(s, "a1"), LASH_CONC_HOLDS, "a1 holds a slot");
  is_rc(s, claim_start(s, "a3", "C", &a3), LASH_EBUSY,
        "a3: the key's 2 slots are taken: EBUSY");
  ok(tu_has(start_msg, "acct-a"), "... naming the key: %s", start_msg);
  is(conc_state(s, "a3"), LASH_CONC_WAITS, "a3 waits for a slot");
  is(tu_status(s, "a3"), LASH_PENDING, "... still pending, not started");
  is_rc(s, claim_start(s, "a4", "C", &a4), LASH_EBUSY, "a4 waits too");
  is_rc(s, claim_start(s, "b1", "C", &b1), 0, "b1 starts (its own key)");
  is_rc(s, worklist(s, "ck", 2, buf, sizeof buf), 0, "worklist");
  iss(buf, "a1 a2 b1", "the waiting rows are off the worklist");
  tu_check(s, "check clean with waiting rows");

  /* A row that ends frees its slot: the first waiter gets it. */
  is_rc(s, done_ok(s, &a1), 0, "a1 completes");
  is(conc_state(s, "a1"), LASH_CONC_NONE, "a1 holds nothing");
  is(conc_state(s, "a3"), LASH_CONC_HOLDS, "a3 got the slot (first waiter)");
  is(conc_state(s, "a4"), LASH_CONC_WAITS, "a4 still waits");
  is_rc(s, worklist(s, "ck", 2, buf, sizeof buf), 0, "worklist");
  iss(buf, "a2 a3 b1", "a3 is listed again");
  is_rc(s, claim_start(s, "a3", "C", &a3), 0, "a3 starts on its slot");
  is_rc(s, claim_start(s, "a4", "C", &a4), LASH_EBUSY, "a4 still waits");

  /* A suspended row frees its slot; woken, it needs one again. */
  {
    lash_wake w;
    memset(&w, 0, sizeof w);
    w.event = "signal.go";
    is_rc(s, lash_suspend(s, NULL, &a2, "signal:go", &w, NULL), 0,
          "a2 suspends");
  }
  is(conc_state(s, "a4"), LASH_CONC_HOLDS, "a4 got a2's slot");
  is_rc(s, claim_start(s, "a4", "C", &a4), 0, "a4 starts");
  is_rc(s,
        lash_append(s, NULL, "a2", "signal.go",
                    tu_mp_uint((unsigned char *)buf, 1), NULL),
        0, "a2 woken by its signal");
  is_rc(s, claim_start(s, "a2", "B", &a2), LASH_EBUSY,
        "a2 woken: the slots are taken (a3, a4): it waits");
  is(conc_state(s, "a2"), LASH_CONC_WAITS, "a2 waits");
  is_rc(s, done_ok(s, &a3), 0, "a3 completes");
  is(conc_state(s, "a2"), LASH_CONC_HOLDS, "a2 got a3's slot");
  is_rc(s, claim_start(s, "a2", "B", &a2), 0, "a2 resumes");
  tu_check(s, "check clean after hand-offs");

  /* A crashed owner's row keeps its slot until it is taken over; then the
   * slot moves with it (no second slot). */
  is_rc(s, reg_conc(s, "a5", "acct-a", 2, 0), 0, "a5");
  is_rc(s, claim_start(s, "a5", "D", &x), LASH_EBUSY, "a5 waits");
  e->now = a4.expires_at + 1; /* a4's owner is gone: its lease lapsed */
  is_rc(s, claim_start(s, "a5", "D", &x), LASH_EBUSY,
        "a lapsed lease still holds its slot: a5 waits on");
  is_rc(s, claim_start(s, "a4", "E", &a4), 0, "a4 taken over by E");
  is(conc_state(s, "a4"), LASH_CONC_HOLDS, "... on the slot it held");
  is(conc_state(s, "a5"), LASH_CONC_WAITS, "a5 still waits (no new slot)");
  is_rc(s, done_ok(s, &a4), 0, "a4 completes");
  is(conc_state(s, "a5"), LASH_CONC_HOLDS, "a5 got the slot");

  /* Waiters are served by priority, then creation order. */
  is_rc(s, reg_conc(s, "p-lo", "acct-p", 1, 0), 0, "p-lo");
  is_rc(s, reg_conc(s, "p-lo2", "acct-p", 1, 0), 0, "p-lo2");
  is_rc(s, reg_conc(s, "p-hi", "acct-p", 1, 9), 0, "p-hi (priority 9)");
  is_rc(s, claim_start(s, "p-lo", "A", &x), 0, "p-lo runs");
  is_rc(s, claim_start(s, "p-lo2", "A", &a1), LASH_EBUSY, "p-lo2 waits");
  is_rc(s, claim_start(s, "p-hi", "A", &a1), LASH_EBUSY, "p-hi waits");
  is_rc(s, done_ok(s, &x), 0, "p-lo completes");
  is(conc_state(s, "p-hi"), LASH_CONC_HOLDS, "p-hi (higher priority) first");
  is(conc_state(s, "p-lo2"), LASH_CONC_WAITS, "p-lo2 waits on");

  /* In one batch: many rows of one key, one slot. */
  {
    lash_txn *txn = NULL;
    char id[32];
    int started = 0, waiting = 0;
    for (i = 0; i < 20; i++) {
      snprintf(id, sizeof id, "m-%02d", i);
      is_rc(s, reg_conc(s, id, "acct-m", 3, 0), 0, "%s", id);
    }
    is_rc(s, lash_txn_begin(s, &txn), 0, "a batch");
    for (i = 0; i < 20; i++) {
      lash_lease ls;
      int rc;
      snprintf(id, sizeof id, "m-%02d", i);
      memset(&ls, 0, sizeof ls);
      rc = lash_lease_claim(s, txn, id, "M", "inc", TTL, &ls);
      if (rc == 0) rc = lash_start(s, txn, &ls, NULL);
      if (rc == 0) started++;
      if (rc == LASH_EBUSY) {
        waiting++;
        lash_lease_release(s, txn, &ls);
      }
    }
    is_rc(s, lash_txn_commit(txn), 0, "the batch commits");
    is(started, 3, "3 of 20 started in one batch (limit 3)");
    is(waiting, 17, "17 wait");
  }
  tu_check(s, "check clean at the end");
  /* The audit sees a slot count that disagrees with the rows. */
  {
    int np = 0;
    is_rc(s, lash__kv_put(s, NULL, LASH_KV_CONC_COUNT, "acct-m", 6, NULL, 0), 0,
          "the slot count of acct-m dropped (damage)");
    ok(lash_check(s, tu_problem_, &np) > 0 && np >= 1,
       "lash_check reports the rows holding slots of acct-m");
    is_rc(s,
          lash__kv_put(s, NULL, LASH_KV_CONC_COUNT, "acct-m", 6,
                       "\x81\xa1n\x03", 4),
          0, "acct-m's count mended");
    tu_check(s, "check clean again");
  }
}

/* A key's queue is consumed from its head: handed entries stay until a
 * batch of them (or the emptied queue) goes at once; a row queued before
 * the head (a higher priority) moves it back; a store with the count of
 * the layout before (in the queues' namespace) goes on and moves it. */
static void test_queue_head(tu_env *e) {
  lash_store *s = e->s;
  lash_lease cur, x;
  char id[32], want[32];
  int i, in_order = 1, n;
  for (i = 0; i < 150; i++) {
    snprintf(id, sizeof id, "q-%03d", i);
    if (reg_conc(s, id, "acct-q", 1, 0) < 0) in_order = 0;
  }
  ok(in_order, "150 rows of acct-q registered");
  is(conc_state(s, "q-000"), LASH_CONC_HOLDS, "q-000 holds the slot");
  is(tu_kv_count(s, LASH_KV_CONC, "acct-q", 7), 149, "149 in the queue");
  /* 100 handoffs, each to the next in creation order */
  for (i = 0; i < 100 && in_order; i++) {
    snprintf(id, sizeof id, "q-%03d", i);
    snprintf(want, sizeof want, "q-%03d", i + 1);
    in_order = claim_start(s, id, "A", &cur) == 0 && done_ok(s, &cur) == 0 &&
               conc_state(s, want) == LASH_CONC_HOLDS;
  }
  ok(in_order, "100 rows ran in turn, each handing its slot to the next");
  n = tu_kv_count(s, LASH_KV_CONC, "acct-q", 7);
  ok(n >= 49 && n <= 49 + 64,
     "the consumed entries went in batches (%d entries for 49 waiters)", n);
  /* A higher priority comes before the head: it is next. */
  is_rc(s, reg_conc(s, "q-hi", "acct-q", 1, 9), 0, "q-hi (priority 9)");
  is(conc_state(s, "q-hi"), LASH_CONC_WAITS, "q-hi waits");
  is_rc(s, claim_start(s, "q-100", "A", &cur), 0, "q-100 runs");
  is_rc(s, done_ok(s, &cur), 0, "q-100 completes");
  is(conc_state(s, "q-hi"), LASH_CONC_HOLDS, "q-hi got the slot first");
  is(conc_state(s, "q-101"), LASH_CONC_WAITS, "q-101 waits on");
  tu_check(s, "check clean with a moved head");
  is_rc(s, claim_start(s, "q-hi", "A", &cur), 0, "q-hi runs");
  is_rc(s, done_ok(s, &cur), 0, "q-hi completes");
  is(conc_state(s, "q-101"), LASH_CONC_HOLDS,
     "q-101 next (the consumed entries between are skipped)");
  for (i = 101; i < 150 && in_order; i++) {
    snprintf(id, sizeof id, "q-%03d", i);
    in_order = claim_start(s, id, "A", &cur) == 0 && done_ok(s, &cur) == 0;
  }
  ok(in_order, "the rest ran");
  is(tu_kv_count(s, LASH_KV_CONC, "acct-q", 7), 0,
     "the emptied queue left no entries");
  is(tu_kv_count(s, LASH_KV_CONC_COUNT, "acct-q", 6), 0,
     "nor a count (the key is idle)");
  tu_check(s, "check clean after the queue emptied");

  /* The audit sees a waiter behind its queue's head. */
  is_rc(s, reg_conc(s, "h-1", "acct-h", 1, 0), 0, "h-1");
  is_rc(s, reg_conc(s, "h-2", "acct-h", 1, 0), 0, "h-2 (waits)");
  {
    /* {n = 1, h = 16 bytes of 0xff}: every position is before it */
    static const char dmg[] = "\x82\xa1n\x01\xa1h\xc4\x10"
                              "\xff\xff\xff\xff\xff\xff\xff\xff"
                              "\xff\xff\xff\xff\xff\xff\xff\xff";
    int np = 0;
    is_rc(s,
          lash__kv_put(s, NULL, LASH_KV_CONC_COUNT, "acct-h", 6, dmg,
                       sizeof dmg - 1),
          0, "acct-h's head moved past h-2 (damage)");
    ok(lash_check(s, tu_problem_, &np) > 0 && np == 1,
       "lash_check reports h-2 behind the head");
    is_rc(s,
          lash__kv_put(s, NULL, LASH_KV_CONC_COUNT, "acct-h", 6,
                       "\x81\xa1n\x01", 4),
          0, "acct-h's count mended");
    tu_check(s, "check clean again");
  }

  /* The layout before: {n} under the key in LASH_KV_CONC. */
  is_rc(s, reg_conc(s, "o-1", "acct-o", 1, 0), 0, "o-1");
  is_rc(s, reg_conc(s, "o-2", "acct-o", 1, 0), 0, "o-2 (waits)");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_CONC_COUNT, "acct-o", 6, NULL, 0), 0,
        "acct-o's count dropped from its place");
  is_rc(s, lash__kv_put(s, NULL, LASH_KV_CONC, "acct-o", 6, "\x81\xa1n\x01", 4),
        0, "... and written the way the layout before did");
  is_rc(s, claim_start(s, "o-1", "A", &x), 0, "o-1 runs");
  is_rc(s, done_ok(s, &x), 0, "o-1 completes");
  is(conc_state(s, "o-2"), LASH_CONC_HOLDS, "o-2 got the slot");
  {
    lash_bytes v;
    is_rc(s, lash__kv_get(s, NULL, LASH_KV_CONC, "acct-o", 6, &v), LASH_ENOENT,
          "the count of the layout before is gone");
  }
  is(tu_kv_count(s, LASH_KV_CONC_COUNT, "acct-o", 6), 1, "it moved");
  tu_check(s, "check clean after the count moved");
}

/* ---------------------------------------------------------- rate limits */

static void test_rate(tu_env *e) {
  lash_store *s = e->s;
  int64_t next = 0, t0 = e->now;
  int i, taken = 0;
  /* 5 per second: one every 200 ms */
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 0, "first token");
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 1, "second: empty");
  is((long)(next - t0), 200, "... the next is due in 200 ms");
  e->now = t0 + 199;
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 1,
        "at 199 ms: empty");
  e->now = t0 + 200;
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 0,
        "at 200 ms: taken");
  /* over 10 s, polling every ms: 50 (+ the first) */
  for (i = 201; i <= 10200; i++) {
    e->now = t0 + i;
    if (lash_rate_take(s, NULL, "rk", 5, 1000, &next) == 0) taken++;
  }
  is(taken, 50, "10 s at 5/s: 50 tokens");
  /* a token given back is taken again at once */
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 1, "empty now");
  is_rc(s, lash_rate_give_back(s, NULL, "rk", 5, 1000), 0, "give back");
  /* (the last token was taken at 10200: giving it back makes it free) */
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 0, "taken again");
  /* in a batch: the bucket is the transaction's own until it commits */
  {
    lash_txn *txn = NULL;
    e->now += 1000;
    is_rc(s, lash_txn_begin(s, &txn), 0, "batch");
    is_rc(s, lash_rate_take(s, txn, "rk", 5, 1000, &next), 0, "taken in it");
    is_rc(s, lash_rate_take(s, txn, "rk", 5, 1000, &next), 1,
          "... and it sees its own take");
    lash_txn_abort(txn);
    is_rc(s, lash_rate_take(s, NULL, "rk", 5, 1000, &next), 0,
          "an aborted batch took nothing");
  }
  is_rc(s, lash_rate_take(s, NULL, "rk", 0, 1000, &next), LASH_EINVAL,
        "n 0: EINVAL");
  ok(tu_has(lash_errmsg(s), "rk"), "... naming the kind: %s", lash_errmsg(s));
  is_rc(s, lash_rate_take(s, NULL, "rk", 5, 0, &next), LASH_EINVAL,
        "per_ms 0: EINVAL");
  is_rc(s, lash_rate_take(s, NULL, "", 5, 10, &next), LASH_EINVAL,
        "no kind: EINVAL");
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_priority_order(&e);
  test_bad_input(&e);
  test_concurrency(&e);
  test_queue_head(&e);
  test_rate(&e);
  tu_close(&e);
  return done_testing();
}
