/* test_suspend.c - suspended processes and durable timers (issue 9):
 * lash_suspend releases the lease and unlists the row; each wake (an event
 * of its type on any path, a cancel request, the terminal or prune of the
 * awaited row, a timer) lists it again exactly once, in the transaction
 * of its cause; the next start resumes the attempt; lash_check audits the
 * timer and waiter indexes and the fold of process.suspended/woken. */
#include "engine_tu.h"

#include <pthread.h>
#include <sys/wait.h>

#define TTL 30000

static int claim(lash_store *s, const char *id, const char *owner,
                 lash_lease *ls) {
  memset(ls, 0, sizeof *ls);
  return lash_lease_claim(s, NULL, id, owner, "inc", TTL, ls);
}

/* Registers @p id (rerunnable, kind "k"), claims it as A, starts it and
 * sets the wait @p wait; *ls gets the lease. */
static int parked(tu_env *e, const char *id, uint32_t max_attempts,
                  const char *wait, lash_lease *ls) {
  lash_store *s = e->s;
  int rc;
  if ((rc = tu_reg(s, id, "k", LASH_RERUNNABLE, max_attempts)) < 0 ||
      (rc = claim(s, id, "A", ls)) < 0 ||
      (rc = lash_start(s, NULL, ls, NULL)) < 0 ||
      (rc = lash_wait_set(s, NULL, ls, wait, NULL)) < 0)
    diag("parking %s: %s", id, lash_errmsg(s));
  return rc;
}

static lash_wake wake_of(const char *event, const char *process, int64_t at) {
  lash_wake w;
  memset(&w, 0, sizeof w); /* has_after = 0: "since the wait began" */
  w.event = event;
  w.process = process;
  w.at = at;
  return w;
}

static int suspended(lash_store *s, const char *id) {
  lash_record r;
  int v;
  memset(&r, 0, sizeof r);
  if (lash_get(s, NULL, id, &r, NULL) != 0) return -1;
  v = r.suspended;
  lash_record_free(&r);
  return v;
}

/* How many events of @p type the log of @p id holds; *last gets the
 * payload of the last (copied, NUL-safe via tu_bytes_has). */
static int count_type(lash_store *s, const char *id, const char *type,
                      tu_ev *last) {
  tu_evs ev = {0};
  size_t i;
  int n = 0;
  tu_events(s, NULL, id, 0, 0, &ev);
  for (i = 0; i < ev.n; i++)
    if (strcmp(ev.v[i].type, type) == 0) {
      n++;
      if (last != NULL) {
        free(last->payload);
        *last = ev.v[i];
        ev.v[i].payload = NULL;
      }
    }
  tu_evs_free(&ev);
  return n;
}

typedef struct seen {
  const char *id;
  int found;
} seen;

static int seen_cb(void *ud, const lash_record *r) {
  seen *w = ud;
  if (strcmp(r->id, w->id) == 0) w->found = 1;
  return 0;
}

/* 1 when the worklist of kind "k" (what the admitter pages) lists id. */
static int listed(lash_store *s, const char *id) {
  lash_worklist_cursor cur;
  seen w = {id, 0};
  int n;
  memset(&cur, 0, sizeof cur);
  do
    n = lash_worklist_page(s, NULL, "k", &cur, 64, seen_cb, &w);
  while (n > 0 && !cur.done);
  return w.found;
}

static uint64_t n_suspended(lash_store *s) {
  lash_stats st;
  memset(&st, 0, sizeof st);
  lash_store_stats(s, NULL, &st);
  return st.suspended;
}

/* ----------------------------------------------------------- suspend */

static void test_suspend_and_event(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b, c, row;
  lash_record r;
  lash_wake w = wake_of("signal.go", NULL, 0);
  tu_ev last;
  uint64_t seq = 0, wseq = 0, v = 0;
  uint32_t att = 0;
  unsigned char buf[64];

  memset(&last, 0, sizeof last);
  is_rc(s, parked(e, "ev-1", 0, "signal:go", &a), 0, "ev-1 parked");
  ok(listed(s, "ev-1"), "a parked (not suspended) row is on the worklist");
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, &seq), 0,
        "lash_suspend on a signal wait");
  ok(seq > 0, "... returns the seq of process.suspended");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "ev-1", &r, NULL);
  is(r.suspended, 1, "record: suspended");
  is(r.status, LASH_WAITING, "record: still waiting");
  iss(r.wait, "signal:go", "record: the wait");
  iss(r.wake_event, "signal.go", "record: wake_event");
  ok(r.wake_process == NULL && r.wake_at == 0, "record: no other wake");
  lash_record_free(&r);
  is_rc(s, lash_lease_get(s, NULL, "ev-1", &row), 0, "lease row read");
  ok(row.token == 0 && row.fence == a.fence,
     "the lease is released, its fence retained");
  ok(!listed(s, "ev-1"), "a suspended row is not on the worklist");
  isu(n_suspended(s), 1, "stats count one suspended row");
  tu_check(s, "check clean with a suspended row");

  /* Nobody can start it before its wake: a claim finds a free lease, the
   * start refuses. */
  is_rc(s, claim(s, "ev-1", "B", &b), 0, "a claim of a suspended row");
  is_rc(s, lash_start(s, NULL, &b, NULL), LASH_EBUSY,
        "... but lash_start refuses it");
  msg_has(s, "suspended", "... naming why");
  is_rc(s, lash_lease_release(s, NULL, &b), 0, "release");
  is_rc(s, lash_wait_set(s, NULL, &a, "x", NULL), LASH_ESUPERSEDED,
        "the suspended execution's lease is gone");

  /* Another event type does not wake it. */
  is_rc(s,
        lash_append(s, NULL, "ev-1", "signal.other", tu_mp_uint(buf, 1), NULL),
        0, "append another signal");
  is(suspended(s, "ev-1"), 1, "... still suspended");
  /* Its event type does, in the same commit. */
  is_rc(s, lash_append(s, NULL, "ev-1", "signal.go", tu_mp_uint(buf, 7), &seq),
        0, "append signal.go");
  is(suspended(s, "ev-1"), 0, "... woken");
  is(count_type(s, "ev-1", "process.woken", &last), 1, "one process.woken");
  ok(tu_bytes_has(last.payload, last.len, "event"), "... by = event");
  ok(tu_mp_map_uint(last.payload, last.len, "seq", &v) && v == seq,
     "... seq = the signal's seq");
  wseq = last.seq;
  ok(wseq == seq + 1, "process.woken follows its cause");
  ok(listed(s, "ev-1"), "a woken row is on the worklist again");
  isu(n_suspended(s), 0, "stats: none suspended");
  is_rc(s, lash_append(s, NULL, "ev-1", "signal.go", tu_mp_uint(buf, 8), NULL),
        0, "a second signal.go");
  is(count_type(s, "ev-1", "process.woken", NULL), 1,
     "... writes no second process.woken");

  /* The resume: a claim (fence + 1) and a start of the same attempt. */
  is_rc(s, claim(s, "ev-1", "C", &c), 0, "C claims the woken row");
  ok(c.fence == b.fence + 1, "fence + 1 (over the last claim's)");
  is_rc(s, lash_start(s, NULL, &c, &att), 0, "C starts it");
  is(att, 1, "a resume keeps attempt 1");
  count_type(s, "ev-1", "process.started", &last);
  ok(tu_bytes_has(last.payload, last.len, "resumed"),
     "process.started carries resumed");
  /* A crash of the resumed run: the next start is attempt + 1. */
  e->now = c.expires_at;
  is_rc(s, claim(s, "ev-1", "D", &b), 0, "D reclaims after C's lease lapsed");
  is_rc(s, lash_start(s, NULL, &b, &att), 0, "D starts it");
  is(att, 2, "a start after a crash of the resumed run is attempt 2");
  count_type(s, "ev-1", "process.started", &last);
  ok(!tu_bytes_has(last.payload, last.len, "resumed"), "... not a resume");
  free(last.payload);
  tu_check(s, "check clean after the event wake and the resume");
}

static void test_max_attempts(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b;
  lash_wake w = wake_of("signal.go", NULL, 0);
  unsigned char buf[16];
  uint32_t att = 0;
  int i;

  is_rc(s, parked(e, "ma-1", 1, "signal:go", &a), 0, "ma-1 (max_attempts 1)");
  for (i = 0; i < 3; i++) {
    is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), 0, "suspend %d",
          i + 1);
    is_rc(s,
          lash_append(s, NULL, "ma-1", "signal.go", tu_mp_uint(buf, 1), NULL),
          0, "wake %d", i + 1);
    is_rc(s, claim(s, "ma-1", "B", &a), 0, "claim %d", i + 1);
    is_rc(s, lash_start(s, NULL, &a, &att), 0,
          "resume %d is not counted against max_attempts", i + 1);
    is(att, 1, "... attempt 1");
    is_rc(s, lash_wait_set(s, NULL, &a, "signal:go", NULL), 0, "wait again");
  }
  e->now = a.expires_at;
  is_rc(s, claim(s, "ma-1", "C", &b), 0, "reclaim after a crash");
  is_rc(s, lash_start(s, NULL, &b, &att), LASH_EEXHAUSTED,
        "a crash-style re-start is attempt 2 > max_attempts");
  is_rc(s, lash_lease_release(s, NULL, &b), 0, "release");
  tu_check(s, "check clean after resumes");
}

static void test_cancel_and_process(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, c;
  lash_wake w = wake_of("signal.go", NULL, 0);
  lash_wake wp = wake_of(NULL, "child-1", 0);
  lash_txn *txn = NULL;
  lash_prune_report pr;
  tu_ev last;

  memset(&last, 0, sizeof last);
  /* A cancel request wakes any suspended row. */
  is_rc(s, parked(e, "cx-1", 0, "signal:go", &a), 0, "cx-1 parked");
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), 0, "suspended");
  is_rc(s, lash_request_cancel(s, NULL, "cx-1", "stop", NULL), 0,
        "cancel request");
  is(suspended(s, "cx-1"), 0, "the cancel request woke it");
  is(count_type(s, "cx-1", "process.woken", &last), 1, "one process.woken");
  ok(tu_bytes_has(last.payload, last.len, "cancel"), "... by = cancel");
  ok(listed(s, "cx-1"), "listed again");

  /* The terminal of the awaited row wakes it. */
  is_rc(s, tu_reg(s, "child-1", "c", LASH_RERUNNABLE, 0), 0, "child-1");
  is_rc(s, parked(e, "pw-1", 0, "process:child-1", &a), 0, "pw-1 parked");
  is_rc(s, lash_suspend(s, NULL, &a, "process:child-1", &wp, NULL), 0,
        "pw-1 suspended on child-1");
  is_rc(s, claim(s, "child-1", "A", &c), 0, "claim child-1");
  is_rc(s, lash_start(s, NULL, &c, NULL), 0, "start child-1");
  is(suspended(s, "pw-1"), 1, "child-1 running: pw-1 still suspended");
  is_rc(s,
        lash_complete(s, NULL, &c, LASH_COMPLETED,
                      tu_mp_uint((unsigned char[8]){0}, 3)),
        0, "child-1 completes");
  is(suspended(s, "pw-1"), 0, "the child's terminal woke pw-1");
  is(count_type(s, "pw-1", "process.woken", &last), 1, "one process.woken");
  ok(tu_bytes_has(last.payload, last.len, "process") &&
         tu_bytes_has(last.payload, last.len, "child-1"),
     "... by = process, id = child-1");

  /* The prune of the awaited row, in the batch that ended it (before the
   * commit, which would wake its waiters too). */
  is_rc(s, tu_reg(s, "child-2", "c", LASH_RERUNNABLE, 0), 0, "child-2");
  wp.process = "child-2";
  is_rc(s, parked(e, "pw-2", 0, "process:child-2", &a), 0, "pw-2 parked");
  is_rc(s, lash_suspend(s, NULL, &a, "process:child-2", &wp, NULL), 0,
        "pw-2 suspended on child-2");
  is_rc(s, lash_txn_begin(s, &txn), 0, "batch");
  is_rc(s,
        lash_complete_unleased(s, txn, "child-2", LASH_FAILED,
                               tu_mp_uint((unsigned char[8]){0}, 4),
                               LASH_AUTH_WORKFLOW),
        0, "child-2 fails (unleased)");
  is_rc(s, lash_prune(s, txn, e->now + 1, 0, &pr), 0, "prune in the batch");
  ok(pr.processes >= 1, "child-2 pruned");
  is(suspended(s, "pw-2"), 1, "(committed state: pw-2 still suspended)");
  is_rc(s, lash_txn_commit(txn), 0, "commit");
  is(suspended(s, "pw-2"), 0, "the prune woke pw-2");
  is(count_type(s, "pw-2", "process.woken", NULL), 1,
     "exactly one process.woken (the prune's; the terminal found it awake)");
  free(last.payload);
  tu_check(s, "check clean after cancel, terminal and prune wakes");
}

static void test_applied_and_refused(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, o;
  lash_wake w;
  lash_def d;
  tu_snap sn;
  unsigned char buf[16];

  is_rc(s, parked(e, "ap-1", 0, "signal:go", &a), 0, "ap-1 parked");
  /* The signal came after the wait began: the condition holds. */
  is_rc(s, lash_append(s, NULL, "ap-1", "signal.go", tu_mp_uint(buf, 1), NULL),
        0, "signal.go after the wait began");
  w = wake_of("signal.go", NULL, 0);
  tu_snap_take(s, "ap-1", &sn);
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), LASH_APPLIED,
        "condition already true -> LASH_APPLIED");
  ok(tu_snap_same(s, "ap-1", &sn), "... nothing written");
  tu_snap_free(&sn);
  is_rc(s, lash_lease_renew(s, NULL, &a, TTL), 0, "... the lease still held");
  /* A time already past. */
  w = wake_of(NULL, NULL, e->now);
  is_rc(s, lash_suspend(s, NULL, &a, "sleep:0", &w, NULL), LASH_APPLIED,
        "wake.at <= now -> LASH_APPLIED");
  /* An awaited row that is terminal, or unknown. */
  is_rc(s, tu_reg(s, "done-1", "c", LASH_RERUNNABLE, 0), 0, "done-1");
  is_rc(s,
        lash_complete_unleased(s, NULL, "done-1", LASH_COMPLETED,
                               tu_mp_uint(buf, 2), LASH_AUTH_WORKFLOW),
        0, "done-1 completed");
  w = wake_of(NULL, "done-1", 0);
  is_rc(s, lash_suspend(s, NULL, &a, "process:done-1", &w, NULL), LASH_APPLIED,
        "awaited row terminal -> LASH_APPLIED");
  w = wake_of(NULL, "nobody", 0);
  is_rc(s, lash_suspend(s, NULL, &a, "process:nobody", &w, NULL), LASH_APPLIED,
        "awaited row unknown -> LASH_APPLIED");
  is(suspended(s, "ap-1"), 0, "ap-1 never suspended");

  /* The waiter's cursor (has_after): a signal that landed after the body
   * looked but before its process.waiting holds the condition too. */
  {
    lash_lease c;
    uint64_t sig = 0;
    is_rc(s, tu_reg(s, "cur-1", "k", LASH_RERUNNABLE, 0), 0, "cur-1");
    is_rc(s, claim(s, "cur-1", "A", &c), 0, "claim cur-1");
    is_rc(s, lash_start(s, NULL, &c, NULL), 0, "start cur-1 (seq 1)");
    is_rc(s,
          lash_append(s, NULL, "cur-1", "signal.go", tu_mp_uint(buf, 7), &sig),
          0, "a signal lands (seq 2) after the body looked at seq 1");
    is_rc(s, lash_wait_set(s, NULL, &c, "signal:go", NULL), 0,
          "then the row shows the wait");
    w = wake_of("signal.go", NULL, 0);
    w.has_after = 1;
    w.after = 1;
    tu_snap_take(s, "cur-1", &sn);
    is_rc(s, lash_suspend(s, NULL, &c, "signal:go", &w, NULL), LASH_APPLIED,
          "cursor 1: the signal at seq 2 holds -> LASH_APPLIED");
    ok(tu_snap_same(s, "cur-1", &sn), "... nothing written");
    tu_snap_free(&sn);
    w.after = sig;
    is_rc(s, lash_suspend(s, NULL, &c, "signal:go", &w, NULL), 0,
          "cursor past it (the body consumed it): suspended");
    is(suspended(s, "cur-1"), 1, "cur-1 suspended");
  }

  /* Refusals, each writing nothing. */
  tu_snap_take(s, "ap-1", &sn);
  w = wake_of(NULL, NULL, 0);
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), LASH_EINVAL,
        "no wake condition -> EINVAL");
  msg_has(s, "wake", "... naming the wake");
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", NULL, NULL), LASH_EINVAL,
        "NULL wake -> EINVAL");
  w = wake_of("process.started", NULL, 0);
  is_rc(s, lash_suspend(s, NULL, &a, "x", &w, NULL), LASH_EINVAL,
        "a reserved event type -> EINVAL");
  w = wake_of("signal.go", NULL, -5);
  is_rc(s, lash_suspend(s, NULL, &a, "x", &w, NULL), LASH_EINVAL,
        "a negative time -> EINVAL");
  ok(tu_snap_same(s, "ap-1", &sn), "... nothing written");
  tu_snap_free(&sn);

  d = tu_def("ob-1", "k", LASH_OWNER_BOUND, 0);
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "owner_bound ob-1");
  is_rc(s, claim(s, "ob-1", "A", &o), 0, "claim ob-1");
  is_rc(s, lash_start(s, NULL, &o, NULL), 0, "start ob-1");
  w = wake_of("signal.go", NULL, 0);
  tu_snap_take(s, "ob-1", &sn);
  is_rc(s, lash_suspend(s, NULL, &o, "signal:go", &w, NULL), LASH_EINVAL,
        "lash_suspend on owner_bound -> EINVAL");
  msg_has(s, "owner_bound", "... naming the disposition");
  ok(tu_snap_same(s, "ob-1", &sn), "... nothing written");
  tu_snap_free(&sn);
  e->now = a.expires_at + 1;
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), LASH_ESUPERSEDED,
        "an expired lease -> ESUPERSEDED");
  tu_check(s, "check clean after the refusals");
}

/* ------------------------------------------------------------ timers */

static void test_timers(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a;
  lash_wake w;
  tu_ev last;
  unsigned char buf[16];
  int64_t at = -1, t0 = e->now;
  size_t fired = 99;

  memset(&last, 0, sizeof last);
  is_rc(s, lash_timers_next(s, NULL, &at), 0, "timers_next, none yet");
  ok(at == 0, "... 0 when no timer");
  is_rc(s, parked(e, "tm-1", 0, "sleep:1000", &a), 0, "tm-1");
  w = wake_of(NULL, NULL, t0 + 1000);
  is_rc(s, lash_suspend(s, NULL, &a, "sleep:1000", &w, NULL), 0, "tm-1 sleeps");
  is_rc(s, parked(e, "tm-2", 0, "sleep:500", &a), 0, "tm-2");
  w = wake_of(NULL, NULL, t0 + 500);
  is_rc(s, lash_suspend(s, NULL, &a, "sleep:500", &w, NULL), 0, "tm-2 sleeps");
  is_rc(s, parked(e, "tm-3", 0, "signal:go", &a), 0, "tm-3");
  w = wake_of("signal.go", NULL, t0 + 300);
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), 0,
        "tm-3 waits for a signal with a deadline");
  is_rc(s, parked(e, "tm-4", 0, "sleep:2000", &a), 0, "tm-4");
  w = wake_of(NULL, NULL, t0 + 2000);
  is_rc(s, lash_suspend(s, NULL, &a, "sleep:2000", &w, NULL), 0, "tm-4 sleeps");
  is_rc(s, lash_timers_next(s, NULL, &at), 0, "timers_next");
  ok(at == t0 + 300, "... the earliest (tm-3's deadline)");
  /* The signal comes first: its timer entry goes with its suspension. */
  is_rc(s, lash_append(s, NULL, "tm-3", "signal.go", tu_mp_uint(buf, 1), NULL),
        0, "tm-3's signal");
  is_rc(s, lash_timers_next(s, NULL, &at), 0, "timers_next");
  ok(at == t0 + 500, "... now tm-2's");
  is_rc(s, lash_timers_fire(s, NULL, t0 + 400, 0, &fired), 0, "fire at +400");
  is((int)fired, 0, "... nothing due");
  is_rc(s, lash_timers_fire(s, NULL, t0 + 1000, 1, &fired), 0,
        "fire at +1000, limit 1");
  is((int)fired, 1, "... one fired");
  is(suspended(s, "tm-2"), 0, "... the earliest, tm-2");
  is(suspended(s, "tm-1"), 1, "... tm-1 left for the next call");
  is_rc(s, lash_timers_fire(s, NULL, t0 + 1000, 0, &fired), 0, "fire again");
  is((int)fired, 1, "... tm-1 fired");
  is_rc(s, lash_timers_fire(s, NULL, t0 + 1000, 0, &fired), 0,
        "fire a third time");
  is((int)fired, 0, "... a second fire writes nothing");
  is(count_type(s, "tm-1", "process.woken", &last), 1, "tm-1 woken once");
  ok(tu_bytes_has(last.payload, last.len, "timer"), "... by = timer");
  is(count_type(s, "tm-3", "process.woken", NULL), 1, "tm-3 woken once");
  ok(listed(s, "tm-1") && listed(s, "tm-2") && !listed(s, "tm-4"),
     "woken rows listed, the sleeping one not");
  is_rc(s, lash_timers_next(s, NULL, &at), 0, "timers_next");
  ok(at == t0 + 2000, "... tm-4's is left");
  is_rc(s, lash_timers_fire(s, NULL, 0, 0, &fired), LASH_EINVAL,
        "fire at time 0 -> EINVAL");
  free(last.payload);
  tu_check(s, "check clean after timers");
}

/* Two threads on one handle fire the same timers at once: each row wakes
 * once. */
typedef struct firer {
  lash_store *s;
  int64_t now;
  size_t fired;
  int rc;
} firer;

static void *fire_thread(void *ud) {
  firer *f = ud;
  char msg[512];
  size_t n = 0;
  lash_thread_errbuf(msg, sizeof msg); /* this thread's messages */
  f->fired = 0;
  do {
    f->rc = lash_timers_fire(f->s, NULL, f->now, 3, &n);
    f->fired += n;
  } while (f->rc == 0 && n > 0);
  lash_thread_errbuf(NULL, 0);
  return NULL;
}

static int sleepers(tu_env *e, const char *prefix, int n, int64_t at) {
  char id[32];
  lash_lease a;
  lash_wake w = wake_of(NULL, NULL, at);
  int i, rc = 0;
  for (i = 0; i < n && rc == 0; i++) {
    snprintf(id, sizeof id, "%s-%03d", prefix, i);
    if ((rc = parked(e, id, 0, "sleep", &a)) == 0)
      rc = lash_suspend(e->s, NULL, &a, "sleep", &w, NULL);
  }
  return rc;
}

static int woken_once(lash_store *s, const char *prefix, int n) {
  char id[32];
  int i, good = 0;
  for (i = 0; i < n; i++) {
    snprintf(id, sizeof id, "%s-%03d", prefix, i);
    if (count_type(s, id, "process.woken", NULL) == 1 && !suspended(s, id))
      good++;
    else
      diag("%s woken %d times", id, count_type(s, id, "process.woken", NULL));
  }
  return good;
}

static void test_fire_threads(tu_env *e) {
  lash_store *s = e->s;
  pthread_t th[2];
  firer f[2];
  int i, t0 = 0;
  int64_t at = e->now + 100;

  is_rc(s, sleepers(e, "th", 40, at), 0, "40 sleepers");
  for (i = 0; i < 2; i++) {
    f[i].s = s;
    f[i].now = at;
    pthread_create(&th[i], NULL, fire_thread, &f[i]);
  }
  for (i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  ok(f[0].rc == 0 && f[1].rc == 0, "both threads fired without error");
  is((int)(f[0].fired + f[1].fired), 40, "40 fired between them (%zu + %zu)",
     f[0].fired, f[1].fired);
  is(woken_once(s, "th", 40), 40, "each row woken exactly once");
  (void)t0;
  tu_check(s, "check clean after the threads");
}

/* Two OS processes, each with its own store handle, fire at once. */
static void test_fire_processes(tu_env *e) {
  lash_store *s = e->s;
  int64_t at = e->now + 100;
  pid_t pid[2];
  int i, okc = 0, fd[2];
  char go = 'g';

  TU_SKIP_ON_MEM("two OS processes share an LMDB store only");
  is_rc(s, sleepers(e, "pr", 60, at), 0, "60 sleepers");
  if (pipe(fd) != 0) {
    ok(0, "pipe");
    return;
  }
  for (i = 0; i < 2; i++) {
    pid[i] = fork();
    if (pid[i] == 0) {
      lash_store *c = NULL;
      char err[256], b;
      size_t n = 0, total = 0;
      int rc;
      close(fd[1]);
      if (lash_store_open(e->dir, NULL, &c, err, sizeof err) != 0) _exit(3);
      if (read(fd[0], &b, 1) != 1) _exit(4); /* start together */
      do {
        rc = lash_timers_fire(c, NULL, at, 2, &n);
        total += n;
      } while (rc == 0 && n > 0);
      lash_store_close(c);
      _exit(rc == 0 ? 0 : 5);
    }
  }
  close(fd[0]);
  for (i = 0; i < 2; i++)
    if (write(fd[1], &go, 1) != 1) diag("write");
  close(fd[1]);
  for (i = 0; i < 2; i++) {
    int st = 0;
    if (pid[i] > 0 && waitpid(pid[i], &st, 0) == pid[i] && WIFEXITED(st) &&
        WEXITSTATUS(st) == 0)
      okc++;
  }
  is(okc, 2, "both processes fired without error");
  is(woken_once(s, "pr", 60), 60, "each row woken exactly once");
  tu_check(s, "check clean after two processes fired");
}

/* ------------------------------------------------------------ engine */

/* The driver's admitter cannot find a suspended row; once woken, it
 * claims and resumes it. */
static void test_driver(void) {
  et_env t;
  tr_runner r;
  lash_drive_report rep;
  lash_lease a;
  lash_record rec;
  lash_wake w = wake_of("signal.go", NULL, 0);
  unsigned char buf[16];
  lash_store *s;

  TU_SKIP_ON_MEM("the engine opens an LMDB store");
  et_open(&t, NULL);
  s = t.s;
  tr_install(t.e, &r, TR_FINISH, 0);
  is_rc(s, lash_engine_define(t.e, "k"), 0, "engine defines k");
  is_rc(s, tu_reg(s, "dr-1", "k", LASH_RERUNNABLE, 0), 0, "dr-1");
  memset(&a, 0, sizeof a);
  is_rc(s, lash_lease_claim(s, NULL, "dr-1", "peer", "p1", TTL, &a), 0,
        "a peer claims dr-1");
  is_rc(s, lash_start(s, NULL, &a, NULL), 0, "... starts it");
  is_rc(s, lash_wait_set(s, NULL, &a, "signal:go", NULL), 0, "... parks it");
  is_rc(s, lash_suspend(s, NULL, &a, "signal:go", &w, NULL), 0,
        "... and suspends it");
  memset(&rep, 0, sizeof rep);
  is_rc(s, lash_engine_drive(t.e, &rep), 0, "drive");
  et_turns(t.e, 5);
  is((int)rep.admitted, 0, "the admitter does not find the suspended row");
  is(r.starts, 0, "... no body started");
  is_rc(s, lash_append(s, NULL, "dr-1", "signal.go", tu_mp_uint(buf, 1), NULL),
        0, "the signal wakes it");
  memset(&rep, 0, sizeof rep);
  is_rc(s, lash_engine_drive(t.e, &rep), 0, "drive");
  et_turns(t.e, 20);
  is(r.starts, 1, "the woken row is claimed and started");
  memset(&rec, 0, sizeof rec);
  is_rc(s, lash_get(s, NULL, "dr-1", &rec, NULL), 0, "dr-1 read");
  is(rec.status, LASH_COMPLETED, "... and completes");
  is((int)rec.attempt.number, 1, "... in its first attempt (a resume)");
  lash_record_free(&rec);
  tu_check(s, "check clean after the driver resumed it");
  et_close(&t, 1);
}

/* ------------------------------------------------------------ reopen */

static void test_reopen(tu_env *e) {
  lash_record r;
  int64_t at = 0;
  is_rc(e->s, tu_reopen(e), 0, "reopen");
  memset(&r, 0, sizeof r);
  is_rc(e->s, lash_get(e->s, NULL, "tm-4", &r, NULL), 0, "tm-4 read");
  ok(r.suspended && r.wake_at > 0, "tm-4 still suspended with its time");
  lash_record_free(&r);
  is_rc(e->s, lash_timers_next(e->s, NULL, &at), 0, "timers_next");
  ok(at > 0, "... its timer survives the reopen");
  ok(n_suspended(e->s) >= 1, "stats: suspended rows counted");
  tu_check(e->s, "check clean after reopen");
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_suspend_and_event(&e);
  test_max_attempts(&e);
  test_cancel_and_process(&e);
  test_applied_and_refused(&e);
  test_timers(&e);
  test_fire_threads(&e);
  test_fire_processes(&e);
  test_driver();
  test_reopen(&e);
  tu_close(&e);
  return done_testing();
}
