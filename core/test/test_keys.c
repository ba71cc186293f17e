/* test_keys.c - replay keys (SEMANTICS 1.4; S8.10-S8.14): a keyed append
 * replayed with an equal payload returns the original seq and writes
 * nothing; another payload or type is a conflict; the comparison is
 * canonical; a replay precedes the terminal and the lease checks; the
 * journal types need a lease and a cmd: key; lifecycle events carry
 * derived keys when read; the parent field of a registration. The fold
 * invariant (lash_check) holds after all of it, also after reopening. */
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static lash_bytes raw(const void *p, size_t n) {
  lash_bytes b;
  b.data = p;
  b.len = n;
  return b;
}
#define RAW(lit) raw(lit, sizeof lit - 1)

/* The events of id after @p after: seqs, types and keys ("" for none). */
typedef struct kev {
  size_t n;
  uint64_t seq[64];
  char type[64][LASH_NAME_MAX + 1];
  char key[64][1400];
} kev;

static int kev_cb(void *ud, const lash_event *ev) {
  kev *k = ud;
  if (k->n >= 64) return 1;
  k->seq[k->n] = ev->seq;
  snprintf(k->type[k->n], sizeof k->type[0], "%s", ev->type);
  snprintf(k->key[k->n], sizeof k->key[0], "%s",
           ev->key != NULL ? ev->key : "");
  k->n++;
  return 0;
}

static int kev_read(lash_store *s, const char *id, uint64_t after, kev *k) {
  memset(k, 0, sizeof *k);
  return lash_events_after(s, NULL, id, after, 0, kev_cb, k);
}

/* The key read with event @p seq of id ("" none, "?" no such event). */
static const char *key_of(lash_store *s, const char *id, uint64_t seq) {
  static kev k;
  size_t i;
  if (kev_read(s, id, 0, &k) != 0) return "?";
  for (i = 0; i < k.n; i++)
    if (k.seq[i] == seq) return k.key[i];
  return "?";
}

/* Registers @p id, claims it for @p owner and records the start. */
static int run_row(lash_store *s, const char *id, const char *owner,
                   lash_lease *ls) {
  int rc = tu_reg(s, id, "k", LASH_RERUNNABLE, 0);
  memset(ls, 0, sizeof *ls);
  if (rc == 0) rc = lash_lease_claim(s, NULL, id, owner, "inc-1", 30000, ls);
  return rc == 0 ? lash_start(s, NULL, ls, NULL) : rc;
}

/* A fenced process.step {name = "x"} (or "y") under @p key. */
static int step(lash_store *s, const lash_lease *ls, const char *name,
                const char *key, uint64_t *seq) {
  lash_bytes p =
      name[0] == 'x' ? RAW("\x81\xa4name\xa1x") : RAW("\x81\xa4name\xa1y");
  return lash_append_keyed(s, NULL, NULL, ls, "process.step", p, key, seq);
}

/* --------------------------------------------------- S8.10 and S8.14 */

static void test_replay(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_bytes p = RAW("\x81\xa1"
                     "a\x01"); /* {a = 1} */
  lash_txn *t = NULL;
  uint64_t seq = 0, again = 0, next = 0;
  tu_snap sn;
  int rc;

  is_rc(s, tu_reg(s, "r-1", "k", LASH_RERUNNABLE, 0), 0, "register r-1");
  is_rc(s,
        lash_append_keyed(s, NULL, "r-1", NULL, "progress", p, "step-1", &seq),
        0, "a keyed append writes");
  is(seq, 1, "it gets seq 1");
  e.now += 100;
  tu_snap_take(s, "r-1", &sn);
  rc = lash_append_keyed(s, NULL, "r-1", NULL, "progress", p, "step-1", &again);
  is_rc(s, rc, LASH_APPLIED, "S8.10 the same key, type and payload: APPLIED");
  is(again, seq, "S8.10 a replay returns the original event's seq");
  ok(tu_snap_same(s, "r-1", &sn),
     "S8.10/S8.14 a replay adds no event and leaves the record and "
     "change_seq unchanged");
  tu_snap_free(&sn);
  is_rc(s, lash_append(s, NULL, "r-1", "progress", p, &next), 0,
        "an unkeyed append after the replay");
  is(next, seq + 1,
     "S8.14 the replay allocated no seq (the floor did not move)");
  is_rc(s, lash_append(s, NULL, "r-1", "progress", p, &again), 0,
        "an unkeyed append is never deduplicated");
  is(again, next + 1, "the same unkeyed event again is a new event");

  /* In one batch: the second append finds the first among the batch's
   * unsaved events. */
  is_rc(s, lash_txn_begin(s, &t), 0, "a batch");
  seq = again = 0;
  is_rc(s, lash_append_keyed(s, t, "r-1", NULL, "progress", p, "step-2", &seq),
        0, "a keyed append in the batch");
  rc = lash_append_keyed(s, t, "r-1", NULL, "progress", p, "step-2", &again);
  is_rc(s, rc, LASH_APPLIED, "its replay in the same batch is APPLIED");
  is(again, seq, "with the seq of the batch's own event");
  rc = lash_append_keyed(s, t, "r-1", NULL, "progress", RAW("\x02"), "step-2",
                         &again);
  is_rc(s, rc, LASH_ECONFLICT,
        "another payload under that key in the same batch conflicts");
  is_rc(s, lash_txn_commit(t), 0,
        "the batch commits (the conflict wrote "
        "nothing and left it usable)");
  is(tu_event_count(s, "r-1"), (long)seq, "the batch wrote one event");
  again = 0;
  is_rc(
      s,
      lash_append_keyed(s, NULL, "r-1", NULL, "progress", p, "step-2", &again),
      LASH_APPLIED, "after the commit the key index has it");
  is(again, seq, "with the same seq");
  tu_check(s, "the fold holds after replays");
  is_rc(s, tu_reopen(&e), 0, "reopen");
  s = e.s;
  again = 0;
  is_rc(
      s,
      lash_append_keyed(s, NULL, "r-1", NULL, "progress", p, "step-1", &again),
      LASH_APPLIED, "keys survive a reopen");
  is(again, 1, "step-1 is still event 1");
  tu_check(s, "the fold holds after reopen");
  tu_close(&e);
}

/* ------------------------------------------------------------ S8.11 */

static void test_conflict(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  uint64_t seq = 0, got = 7;
  tu_snap sn;

  is_rc(s, tu_reg(s, "c-1", "k", LASH_RERUNNABLE, 0), 0, "register c-1");
  is_rc(s,
        lash_append_keyed(s, NULL, "c-1", NULL, "progress", RAW("\x01"), "k-1",
                          &seq),
        0, "a keyed append");
  tu_snap_take(s, "c-1", &sn);
  is_rc(s,
        lash_append_keyed(s, NULL, "c-1", NULL, "progress", RAW("\x02"), "k-1",
                          &got),
        LASH_ECONFLICT, "S8.11 the same key with another payload conflicts");
  msg_has(s, "k-1", "the message names the key");
  msg_has(s, "event 1 (progress)", "and the stored event's seq and type");
  msg_has(s, "payload", "and what differs");
  is(got, 0, "no seq is returned");
  is_rc(s,
        lash_append_keyed(s, NULL, "c-1", NULL, "signal.go", RAW("\x01"), "k-1",
                          &got),
        LASH_ECONFLICT, "S8.11 the same key with another type conflicts");
  msg_has(s, "another type", "the message says the type differs");
  ok(tu_snap_same(s, "c-1", &sn), "S8.11 a conflict writes nothing");
  tu_snap_free(&sn);
  is_rc(s, tu_reg(s, "c-2", "k", LASH_RERUNNABLE, 0), 0, "register c-2");
  is_rc(s,
        lash_append_keyed(s, NULL, "c-2", NULL, "progress", RAW("\x02"), "k-1",
                          &got),
        0, "keys are per process: c-2 may use k-1 with anything");
  tu_check(s, "the fold holds after conflicts");
  tu_close(&e);
}

/* ------------------------------------------------------------ S8.12 */

static void test_canonical(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
#define B(lit)                                                                 \
  { lit, sizeof lit - 1 }
  const struct {
    lash_bytes a, b;
    int equal;
    const char *what;
  } cases[] = {
      {B("\x82\xa1"
         "a\x01\xa1"
         "b\x02"),
       B("\x82\xa1"
         "b\x02\xa1"
         "a\x01"),
       1, "maps in another key order"},
      {B("\x81\xa1x\x82\xa1"
         "a\x01\xa1"
         "b\x02"),
       B("\x81\xa1x\x82\xa1"
         "b\x02\xa1"
         "a\x01"),
       1, "nested maps in another order"},
      {B("\xcb\x00\x00\x00\x00\x00\x00\x00\x00"),
       B("\xcb\x80\x00\x00\x00\x00\x00\x00\x00"), 1, "0.0 and -0.0"},
      {B("\x01"), B("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), 1,
       "integer 1 and float 1.0"},
      {B("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), B("\xca\x3f\x80\x00\x00"), 1,
       "float64 1.0 and float32 1.0"},
      {B("\x00"), B("\xcb\x80\x00\x00\x00\x00\x00\x00\x00"), 1,
       "integer 0 and -0.0"},
      {B("\xff"), B("\xcb\xbf\xf0\x00\x00\x00\x00\x00\x00"), 1,
       "integer -1 and float -1.0"},
      {B("\x05"), B("\xcd\x00\x05"), 1, "5 as fixint and as uint16"},
      {B("\x92\x01\x02"), B("\x92\x02\x01"), 0, "arrays in another order"},
      {B("\x01"), B("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x01"), 0,
       "1 and 1.0000000000000002"},
      {B("\xa1"
         "1"),
       B("\x01"), 0, "the string \"1\" and the number 1"},
      {B("\x82\xa1"
         "a\x01\xa1"
         "b\x02"),
       B("\x82\xa1"
         "a\x01\xa1"
         "b\x03"),
       0, "maps with another value"},
      {B("\x82\xa1"
         "a\x01\xa1"
         "b\x02"),
       B("\x81\xa1"
         "a\x01"),
       0, "a map and its subset"},
      {B("\xc0"), B("\xc2"), 0, "nil and false"},
  };
#undef B
  char id[32], reason[4097];
  size_t i;
  uint64_t s1 = 0, s2 = 0;
  tu_snap sn;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t a = 0, b = 0;
    int rc;
    snprintf(id, sizeof id, "canon-%zu", i);
    tu_reg(s, id, "k", LASH_RERUNNABLE, 0);
    lash_append_keyed(s, NULL, id, NULL, "progress", cases[i].a, "key", &a);
    rc =
        lash_append_keyed(s, NULL, id, NULL, "progress", cases[i].b, "key", &b);
    if (cases[i].equal)
      ok(rc == LASH_APPLIED && a == b && tu_event_count(s, id) == 1,
         "S8.12 %s are equal: a replay (rc %s)", cases[i].what,
         lash_err_name(rc));
    else
      ok(rc == LASH_ECONFLICT && tu_event_count(s, id) == 1,
         "S8.12 %s differ: a conflict (rc %s)", cases[i].what,
         lash_err_name(rc));
  }

  /* A repeated cancel with a very long reason is idempotent, and its
   * derived key has a fixed length whatever the reason. */
  memset(reason, 'r', 4096);
  reason[4096] = '\0';
  {
    lash_lease ls;
    is_rc(s, run_row(s, "cancel-1", "w", &ls), 0,
          "a started row (it keeps running after a cancel)");
  }
  is_rc(s, lash_request_cancel(s, NULL, "cancel-1", reason, &s1), 0,
        "a cancel with a 4096-byte reason");
  tu_snap_take(s, "cancel-1", &sn);
  is_rc(s, lash_request_cancel(s, NULL, "cancel-1", reason, &s2), 0,
        "the same cancel again");
  is(s2, s1, "S8.12 the repeated long cancel returns the first request");
  ok(tu_snap_same(s, "cancel-1", &sn), "S8.12 and writes nothing");
  tu_snap_free(&sn);
  {
    const char *k = key_of(s, "cancel-1", s1);
    ok(strncmp(k, "process:cancel-1:cancel:", 24) == 0 && strlen(k) == 24 + 16,
       "the cancel's derived key is process:ID:cancel:<16 hex> (%s)", k);
  }
  is_rc(s, tu_reg(s, "cancel-2", "k", LASH_RERUNNABLE, 0), 0, "register");
  is_rc(s, lash_request_cancel(s, NULL, "cancel-2", "", &s2), 0,
        "a cancel with an empty reason (cancels the pending row)");
  {
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, "%s", key_of(s, "cancel-2", s2));
    is_rc(s, tu_reg(s, "cancel-3", "k", LASH_RERUNNABLE, 0), 0, "register");
    is_rc(s, lash_request_cancel(s, NULL, "cancel-3", NULL, &s2), 0,
          "a cancel without a reason");
    snprintf(k2, sizeof k2, "%s", key_of(s, "cancel-3", s2));
    ok(strcmp(k1 + strlen("process:cancel-2"),
              k2 + strlen("process:cancel-3")) != 0,
       "an absent and an empty reason hash differently (%s, %s)", k1, k2);
  }
  tu_check(s, "the fold holds after the canonical cases");
  tu_close(&e);
}

/* ------------------------------------------------------------ S8.13 */

static void test_updated_at(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_record r;
  uint64_t seq = 0, got = 0;
  int64_t later;

  is_rc(s, tu_reg(s, "u-1", "k", LASH_RERUNNABLE, 0), 0, "register");
  e.now += 10;
  is_rc(s,
        lash_append_keyed(s, NULL, "u-1", NULL, "progress", RAW("\x01"),
                          "first", &seq),
        0, "keyed append at t+10");
  e.now += 10;
  later = e.now;
  is_rc(s, lash_append(s, NULL, "u-1", "progress", RAW("\x02"), NULL), 0,
        "another event at t+20");
  e.now += 10;
  is_rc(s,
        lash_append_keyed(s, NULL, "u-1", NULL, "progress", RAW("\x01"),
                          "first", &got),
        LASH_APPLIED, "replaying the older event at t+30");
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "u-1", &r, NULL), 0, "get");
  is(r.updated_at, later,
     "S8.13 a replay of an older event never rewinds "
     "(nor moves) updated_at");
  is(r.last_seq, seq + 1, "last_seq unchanged");
  lash_record_free(&r);
  tu_close(&e);
}

/* ------------------------------------- the terminal and the lease checks */

static void test_order(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_lease ls, other;
  uint64_t seq = 0, got = 0;
  tu_snap sn;

  is_rc(s, run_row(s, "o-1", "w1", &ls), 0, "a started row");
  is_rc(s, step(s, &ls, "x", "cmd:1", &seq), 0, "a fenced journal event");
  e.now += 60000; /* the lease lapses */
  is_rc(s, lash_lease_claim(s, NULL, "o-1", "w2", "inc-1", 30000, &other), 0,
        "another worker claims");
  ok(other.fence > ls.fence, "with a higher fence");
  tu_snap_take(s, "o-1", &sn);
  is_rc(s, step(s, &ls, "x", "cmd:1", &got), LASH_APPLIED,
        "a replay with the stale lease is APPLIED (the key "
        "comes before the lease check)");
  is(got, seq, "with the journaled seq");
  ok(tu_snap_same(s, "o-1", &sn), "and writes nothing");
  tu_snap_free(&sn);
  is_rc(s, step(s, &ls, "y", "cmd:2", &got), LASH_ESUPERSEDED,
        "a new key with the stale lease is refused");
  is_rc(s,
        lash_append_keyed(s, NULL, "o-2", &ls, "process.step",
                          RAW("\x81\xa4name\xa1y"), "cmd:2", &got),
        LASH_EINVAL, "a lease of o-1 for o-2 is refused");
  is_rc(s, lash_start(s, NULL, &other, NULL), 0, "the new execution starts");
  is_rc(s, lash_complete(s, NULL, &other, LASH_COMPLETED, RAW("\x01")), 0,
        "and completes");
  tu_snap_take(s, "o-1", &sn);
  is_rc(s, step(s, &other, "x", "cmd:1", &got), LASH_APPLIED,
        "a replay on the terminal row is APPLIED (the key "
        "comes before the terminal check)");
  is_rc(s,
        lash_append_keyed(s, NULL, "o-1", NULL, "note", RAW("\x01"), "late",
                          &got),
        LASH_ETERMINAL, "a new key on the terminal row is ETERMINAL");
  ok(tu_snap_same(s, "o-1", &sn), "neither writes");
  tu_snap_free(&sn);
  tu_check(s, "the fold holds");
  tu_close(&e);
}

/* ------------------------------------------------ journal types, keys */

static void test_journal_types(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  static const char *const types[] = {"process.step",    "process.child",
                                      "process.sleep",   "process.wait",
                                      "process.timeout", "process.value"};
  char longkey[200];
  lash_lease ls;
  uint64_t seq = 0;
  size_t i;
  tu_snap sn;
  int all = 1;

  is_rc(s, run_row(s, "j-1", "w1", &ls), 0, "a started row");
  tu_snap_take(s, "j-1", &sn);
  is_rc(s,
        lash_append_keyed(s, NULL, "j-1", NULL, "process.step", RAW("\x80"),
                          "cmd:1", &seq),
        LASH_EINVAL, "a journal type unfenced is refused");
  msg_has(s, "journal type", "the message says why");
  is_rc(s, lash_append(s, NULL, "j-1", "process.step", RAW("\x80"), &seq),
        LASH_EINVAL, "and through lash_append");
  is_rc(s, lash_append_fenced(s, NULL, &ls, "process.step", RAW("\x80"), &seq),
        LASH_EINVAL, "a journal type fenced without a key is refused");
  msg_has(s, "cmd:", "the message names the cmd: prefix");
  is_rc(s,
        lash_append_keyed(s, NULL, NULL, &ls, "process.step", RAW("\x80"),
                          "step-1", &seq),
        LASH_EINVAL, "a journal type with a key not starting cmd: is refused");
  is_rc(s,
        lash_append_keyed(s, NULL, NULL, &ls, "process.started", RAW("\x80"),
                          "cmd:1", &seq),
        LASH_EINVAL,
        "another process. type stays refused, even fenced with "
        "a cmd: key");
  is_rc(s,
        lash_append_keyed(s, NULL, "j-1", NULL, "progress", RAW("\x80"),
                          "process:j-1:terminal:x", &seq),
        LASH_EINVAL, "a key starting process: is reserved");
  msg_has(s, "reserved", "the message says it is reserved");
  is_rc(s,
        lash_append_keyed(s, NULL, "j-1", NULL, "progress", RAW("\x80"), "",
                          &seq),
        LASH_EINVAL, "an empty key is refused");
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  is_rc(s,
        lash_append_keyed(s, NULL, "j-1", NULL, "progress", RAW("\x80"),
                          longkey, &seq),
        LASH_EINVAL, "a key over 127 bytes is refused");
  is_rc(s,
        lash_append_keyed(s, NULL, "j-1", NULL, "progress", RAW("\x80"), "a\tb",
                          &seq),
        LASH_EINVAL, "a key with a control character is refused");
  ok(tu_snap_same(s, "j-1", &sn), "none of the refusals wrote anything");
  tu_snap_free(&sn);
  for (i = 0; i < sizeof types / sizeof types[0]; i++) {
    char key[16];
    snprintf(key, sizeof key, "cmd:%zu", i + 1);
    if (lash_append_keyed(s, NULL, NULL, &ls, types[i], RAW("\x80"), key,
                          &seq) != 0) {
      diag("%s: %s", types[i], lash_errmsg(s));
      all = 0;
    }
  }
  ok(all, "every journal type is accepted fenced with a cmd: key");
  is_rc(s,
        lash_append_keyed(s, NULL, NULL, &ls, "shipped", RAW("\x80"), "cmd:7",
                          &seq),
        0, "a user event may carry a cmd: key (ctx:emit)");
  is(tu_status(s, "j-1"), LASH_RUNNING, "journal events leave the status");
  tu_check(s, "the fold accepts journal events");
  is_rc(s, tu_reopen(&e), 0, "reopen");
  s = e.s;
  tu_check(s, "and after reopening");
  tu_close(&e);
}

/* ------------------------------------------------- keys when read */

static void test_read_keys(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  char want[256];
  lash_lease ls;
  kev k;
  uint64_t wseq = 0, seq = 0;
  int64_t since;

  is_rc(s, run_row(s, "rk-1", "w1", &ls), 0, "a started row");
  is_rc(s,
        lash_append_keyed(s, NULL, NULL, &ls, "process.value", RAW("\x80"),
                          "cmd:1", &seq),
        0, "a journal event");
  since = e.now += 5;
  is_rc(s, lash_wait_set(s, NULL, &ls, "signal:go", &wseq), 0, "wait");
  is_rc(s, lash_append(s, NULL, "rk-1", "signal.go", RAW("\x80"), NULL), 0,
        "a signal without a key");
  is_rc(s, lash_wait_clear(s, NULL, &ls, NULL), 0, "resume");
  is_rc(s, lash_request_abandon(s, NULL, "rk-1", "op", NULL, NULL), 0,
        "abandon request");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, RAW("\x01")), 0,
        "complete");
  is_rc(s, kev_read(s, "rk-1", 0, &k), 0, "read the log");
  is(k.n, 7, "seven events");
  iss(k.key[0], "process:rk-1:first-started:attempt:1",
      "process.started carries its derived key");
  iss(k.key[1], "cmd:1", "a keyed event carries its stored key");
  snprintf(want, sizeof want, "process:rk-1:wait:signal:go:since:%lld:entered",
           (long long)since);
  iss(k.key[2], want, "process.waiting carries wait and since");
  iss(k.key[3], "", "an unkeyed signal has none");
  snprintf(want, sizeof want, "process:rk-1:wait:signal:go:since:%lld:cleared",
           (long long)since);
  iss(k.key[4], want, "process.resumed names the wait it cleared");
  iss(k.key[5], "process:rk-1:abandon-requested", "the abandon request");
  iss(k.key[6], "process:rk-1:terminal:process.completed", "the terminal");
  is_rc(s, kev_read(s, "rk-1", wseq, &k), 0, "read after the wait");
  ok(k.n >= 2 && strcmp(k.key[1], want) == 0,
     "read from after the waiting event, process.resumed still names it "
     "(%s)",
     k.n >= 2 ? k.key[1] : "");
  tu_close(&e);
}

/* ------------------------------------------------------------ parent */

static void test_parent(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_def d = tu_def("child-1", "k", LASH_RERUNNABLE, 0);
  lash_record r;
  int created = 0;
  tu_snap sn;

  d.parent = "parent-1";
  memset(&r, 0, sizeof r);
  is_rc(s, lash_register(s, NULL, &d, &created, &r), 0,
        "register with a parent");
  ok(created && r.parent != NULL && strcmp(r.parent, "parent-1") == 0,
     "the record names its parent");
  lash_record_free(&r);
  tu_snap_take(s, "child-1", &sn);
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0, "the same again");
  ok(!created, "is idempotent");
  d.parent = "parent-2";
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), LASH_ECONFLICT,
        "another parent conflicts");
  msg_has(s, "parent", "the message names the parent");
  d.parent = NULL;
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), LASH_ECONFLICT,
        "no parent conflicts with a parent");
  ok(tu_snap_same(s, "child-1", &sn), "the conflicts wrote nothing");
  tu_snap_free(&sn);
  d = tu_def("orphan", "k", LASH_RERUNNABLE, 0);
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register without one");
  d.parent = "p";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_ECONFLICT,
        "a parent given later conflicts");
  d = tu_def("bad", "k", LASH_RERUNNABLE, 0);
  d.parent = "a\nb";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "a parent with a control character is refused");
  msg_has(s, "parent", "the message names the parent");
  d = tu_def("timed", "k", LASH_RERUNNABLE, 0);
  d.parent = "parent-1";
  d.timeout_ms = 500;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0,
        "a parent beside a time budget");
  is_rc(s, tu_reopen(&e), 0, "reopen");
  s = e.s;
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "child-1", &r, NULL), 0, "get child-1");
  ok(r.parent != NULL && strcmp(r.parent, "parent-1") == 0,
     "the parent is kept across a reopen");
  lash_record_free(&r);
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "timed", &r, NULL), 0, "get timed");
  ok(r.parent != NULL && strcmp(r.parent, "parent-1") == 0 &&
         r.timeout_ms == 500,
     "parent and timeout_ms both kept");
  lash_record_free(&r);
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "orphan", &r, NULL), 0, "get orphan");
  ok(r.parent == NULL, "no parent reads as NULL");
  lash_record_free(&r);
  tu_check(s, "the fold holds with parents");
  tu_close(&e);
}

/* ------------------------------------------------------------ prune */

static void test_prune(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  lash_prune_report rep;
  lash_lease ls;
  uint64_t seq = 0;

  is_rc(s, run_row(s, "p-1", "w", &ls), 0, "a started row");
  is_rc(s,
        lash_append_keyed(s, NULL, "p-1", NULL, "progress", RAW("\x01"), "once",
                          &seq),
        0, "keyed append");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, RAW("\x01")), 0,
        "complete");
  e.now += 1000;
  is_rc(s, lash_prune(s, NULL, e.now, 0, &rep), 0, "prune");
  is(rep.processes, 1, "one row pruned");
  tu_check(s, "the key index emptied with the row");
  is_rc(s, tu_reg(s, "p-1", "k", LASH_RERUNNABLE, 0), 0, "register again");
  is_rc(s,
        lash_append_keyed(s, NULL, "p-1", NULL, "progress", RAW("\x02"), "once",
                          &seq),
        0, "the new row may use the key afresh");
  ok(seq > 2, "its seq continues after the floor (%" PRIu64 ")", seq);
  tu_check(s, "the fold holds after prune and reuse");
  tu_close(&e);
}

int main(void) {
  test_replay();
  test_conflict();
  test_canonical();
  test_updated_at();
  test_order();
  test_journal_types();
  test_read_keys();
  test_parent();
  test_prune();
  return done_testing();
}
