/* test_events.c - the event log: S8.9 sequences, S8.5 fold after every kind
 * of write (and after reopen), S8.6 rejected appends, S8.16 terminal writes,
 * S8.17 signals on terminal rows, cancellation and abandon requests. */
#include "testutil.h"

static int claim(lash_store *s, const char *id, const char *owner,
                 lash_lease *ls) {
  memset(ls, 0, sizeof *ls);
  return lash_lease_claim(s, NULL, id, owner, "inc-1", 30000, ls);
}

static void test_seqs(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  tu_evs ev = {0};
  unsigned char pl[10][8];
  uint64_t seqs[10], n;
  int64_t ats[10];
  lash_record r;
  size_t i;
  int rc, strict = 1, all_ok = 1;

  is_rc(s, tu_reg(s, "ev-1", "k", LASH_RERUNNABLE, 0), 0, "register ev-1");
  for (i = 0; i < 10; i++) {
    lash_bytes b = tu_mp_uint(pl[i], (uint32_t)i);
    e.now += 10;
    ats[i] = e.now;
    seqs[i] = 0;
    rc = lash_append(s, NULL, "ev-1", "progress", b, &seqs[i]);
    if (rc != 0) {
      all_ok = 0;
      diag("append %zu: %s %s", i, lash_err_name(rc), lash_errmsg(s));
    }
    if (i > 0 && seqs[i] <= seqs[i - 1]) strict = 0;
  }
  ok(all_ok, "S8.9 ten appends succeed");
  is(seqs[0], 1, "S8.9 the first event has seq 1");
  ok(strict, "S8.9 returned seqs strictly increase");

  rc = tu_events(s, NULL, "ev-1", 0, 0, &ev);
  is_rc(s, rc, 0, "S8.9 events_after(0)");
  is(ev.n, 10, "S8.9 events_after(0) returns all ten");
  {
    int same = ev.n == 10;
    for (i = 0; same && i < 10; i++) {
      if (ev.v[i].seq != seqs[i] || strcmp(ev.v[i].type, "progress") != 0 ||
          ev.v[i].at != ats[i] || ev.v[i].len != 1 ||
          ev.v[i].payload[0] != (unsigned char)i ||
          strcmp(ev.v[i].pid, "ev-1") != 0) {
        diag("event %zu differs (seq %" PRIu64 " type %s at %" PRId64 ")", i,
             ev.v[i].seq, ev.v[i].type, ev.v[i].at);
        same = 0;
      }
    }
    ok(same, "S8.9 events carry id, seq, type, payload and at, ascending");
  }

  for (n = 0; n <= 10; n++) {
    uint64_t after = n == 0 ? 0 : seqs[n - 1];
    int good = 1;
    rc = tu_events(s, NULL, "ev-1", after, 0, &ev);
    if (rc != 0 || ev.n != 10 - n) good = 0;
    for (i = 0; good && i < ev.n; i++)
      if (ev.v[i].seq != seqs[n + i]) good = 0;
    ok(good,
       "S8.9 events_after(%" PRIu64 ") returns exactly the %" PRIu64
       " events after it, ascending",
       after, 10 - n);
  }
  /* Between two seqs and past the end. */
  rc = tu_events(s, NULL, "ev-1", seqs[9] + 100, 0, &ev);
  ok(rc == 0 && ev.n == 0, "S8.9 events_after(beyond last) is empty");

  rc = tu_events(s, NULL, "ev-1", seqs[2], 3, &ev);
  ok(rc == 0 && ev.n == 3 && ev.v[0].seq == seqs[3] && ev.v[2].seq == seqs[5],
     "S8.9 limit 3 returns the next three");
  rc = tu_events(s, NULL, "ev-1", seqs[8], 5, &ev);
  ok(rc == 0 && ev.n == 1 && ev.v[0].seq == seqs[9],
     "S8.9 limit larger than what is left");

  tu_evs_free(&ev);
  ev.stop_after = 2;
  ev.stop_value = -77;
  rc = lash_events_after(s, NULL, "ev-1", 0, 0, tu_evs_cb, &ev);
  is(rc, -77, "events_after returns a negative stop value");
  is(ev.n, 2, "... and stopped after two events");
  tu_evs_free(&ev);
  ev.stop_after = 3;
  ev.stop_value = 5;
  rc = lash_events_after(s, NULL, "ev-1", 0, 0, tu_evs_cb, &ev);
  is(rc, 0, "events_after returns 0 for a positive stop value");
  is(ev.n, 3, "... and stopped after three events");
  tu_evs_free(&ev);

  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "ev-1", &r, NULL);
  is(r.last_seq, seqs[9], "record last_seq == last appended seq");
  is(r.updated_at, ats[9], "record updated_at == at of the last event");
  is(r.status, LASH_PENDING, "user events leave a pending row pending");
  lash_record_free(&r);

  rc = lash_append(s, NULL, "ev-1", "progress", (lash_bytes){NULL, 0}, NULL);
  is_rc(s, rc, 0, "append with an empty payload and seq NULL");
  rc = lash_append(s, NULL, "ev-none", "progress", (lash_bytes){NULL, 0}, NULL);
  is_rc(s, rc, LASH_ENOENT, "append to an unknown id -> ENOENT");
  msg_has(s, "ev-none", "ENOENT append names the id");
  tu_check(s, "S8.5 check after appends");
  tu_close(&e);
}

static void test_fold(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char buf[64], buf2[64];
  lash_lease ls;
  lash_record r;
  uint64_t seq = 0;
  int rc;
  tu_snap sn;
  lash_prune_report rep;

  is_rc(s, tu_reg(s, "f-1", "k", LASH_RERUNNABLE, 0), 0, "fold: register");
  tu_check(s, "S8.5 fold after register");
  e.now += 1;
  rc = lash_append(s, NULL, "f-1", "progress", tu_mp_str(buf, 64, "p1"), &seq);
  is_rc(s, rc, 0, "fold: append");
  tu_check(s, "S8.5 fold after append");
  e.now += 1;
  rc = lash_append(s, NULL, "f-1", "signal.approve", tu_mp_str(buf, 64, "yes"),
                   &seq);
  is_rc(s, rc, 0, "fold: signal");
  tu_check(s, "S8.5 fold after signal");

  e.now += 1;
  rc = lash_request_abandon(s, NULL, "f-1", "ops", "gone", &seq);
  is_rc(s, rc, 0, "fold: abandon request");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "f-1", &r, NULL);
  ok(r.abandon_requested && tu_streq_(r.abandon_by, "ops") &&
         tu_streq_(r.abandon_reason, "gone"),
     "abandon request folded into the record");
  is(r.status, LASH_PENDING, "abandon request is status-neutral");
  is(r.last_seq, seq, "abandon request seq is the last seq");
  lash_record_free(&r);
  tu_check(s, "S8.5 fold after abandon request");
  tu_snap_take(s, "f-1", &sn);
  rc = lash_request_abandon(s, NULL, "f-1", "ops", "gone", NULL);
  is_rc(s, rc, 0, "identical abandon request repeat -> 0");
  ok(tu_snap_same(s, "f-1", &sn), "identical abandon repeat writes nothing");
  rc = lash_request_abandon(s, NULL, "f-1", "ops", "other reason", NULL);
  is_rc(s, rc, LASH_ECONFLICT, "different abandon request -> ECONFLICT");
  msg_has(s, "f-1", "abandon ECONFLICT names the id");
  ok(tu_snap_same(s, "f-1", &sn), "different abandon request writes nothing");
  rc = lash_request_abandon(s, NULL, "f-1", "someone", "gone", NULL);
  is_rc(s, rc, LASH_ECONFLICT, "abandon request by another -> ECONFLICT");
  ok(tu_snap_same(s, "f-1", &sn), "first abandon request kept");
  tu_snap_free(&sn);
  tu_check(s, "S8.5 fold after refused abandon requests");

  e.now += 1;
  rc = claim(s, "f-1", "w1", &ls);
  is_rc(s, rc, 0, "fold: claim");
  tu_check(s, "S8.5 fold after claim");
  e.now += 1;
  rc = lash_start(s, NULL, &ls, NULL);
  is_rc(s, rc, 0, "fold: start");
  is(tu_status(s, "f-1"), LASH_RUNNING, "start: status running");
  tu_check(s, "S8.5 fold after start");

  e.now += 1;
  rc = lash_wait_set(s, NULL, &ls, "signal:approve", &seq);
  is_rc(s, rc, 0, "fold: wait set");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "f-1", &r, NULL);
  is(r.status, LASH_WAITING, "wait set: status waiting");
  iss(r.wait, "signal:approve", "wait set: wait stored");
  is(r.wait_since, e.now, "wait set: wait_since is the clock");
  is(r.last_seq, seq, "wait set: seq returned");
  lash_record_free(&r);
  tu_check(s, "S8.5 fold after wait set");

  e.now += 1;
  rc = lash_wait_clear(s, NULL, &ls, &seq);
  is_rc(s, rc, 0, "fold: wait clear");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "f-1", &r, NULL);
  is(r.status, LASH_RUNNING, "wait clear: status running");
  ok(r.wait == NULL, "wait clear: no wait");
  lash_record_free(&r);
  tu_check(s, "S8.5 fold after wait clear");
  tu_snap_take(s, "f-1", &sn);
  e.now += 1;
  rc = lash_wait_clear(s, NULL, &ls, NULL);
  is_rc(s, rc, 0, "wait clear when not waiting -> 0");
  ok(tu_snap_same(s, "f-1", &sn), "wait clear when not waiting writes nothing");
  tu_snap_free(&sn);

  e.now += 1;
  rc = lash_append_fenced(s, NULL, &ls, "progress", tu_mp_str(buf, 64, "fp"),
                          &seq);
  is_rc(s, rc, 0, "fold: fenced append");
  tu_check(s, "S8.5 fold after fenced append");

  e.now += 1;
  rc = lash_request_cancel(s, NULL, "f-1", "enough", &seq);
  is_rc(s, rc, 0, "fold: cancel request");
  tu_check(s, "S8.5 fold after cancel request");

  /* A failed append in between. */
  rc = lash_append(s, NULL, "f-1", "process.completed", tu_mp_str(buf, 64, "x"),
                   NULL);
  is_rc(s, rc, LASH_EINVAL, "fold: rejected append");
  tu_check(s, "S8.5 fold after a rejected append");

  e.now += 1;
  rc = lash_complete(s, NULL, &ls, LASH_CANCELLED, tu_mp_str(buf, 64, "bye"));
  is_rc(s, rc, 0, "fold: leased complete");
  is(tu_status(s, "f-1"), LASH_CANCELLED, "leased complete: cancelled");
  tu_check(s, "S8.5 fold after leased complete");
  rc = lash_complete(s, NULL, &ls, LASH_CANCELLED, tu_mp_str(buf, 64, "bye"));
  is(rc, LASH_APPLIED, "fold: repeated leased complete -> APPLIED");
  tu_check(s, "S8.5 fold after a repeated completion");

  is_rc(s, tu_reg(s, "f-2", "k", LASH_OWNER_BOUND, 0), 0, "register f-2");
  e.now += 1;
  rc = lash_complete_unleased(s, NULL, "f-2", LASH_FAILED,
                              tu_mp_str(buf2, 64, "boom"), LASH_AUTH_WORKFLOW);
  is_rc(s, rc, 0, "fold: unleased complete");
  tu_check(s, "S8.5 fold after unleased complete");

  is_rc(s, tu_reg(s, "f-3", "k", LASH_RERUNNABLE, 0), 0, "register f-3");
  rc = lash_request_cancel(s, NULL, "f-3", NULL, NULL);
  is_rc(s, rc, 0, "fold: cancel a pending row");
  tu_check(s, "S8.5 fold after cancel of a pending row");

  is_rc(s, tu_reg(s, "f-4", "k", LASH_RERUNNABLE, 0), 0, "register f-4");
  e.now += 100;
  memset(&rep, 0, sizeof rep);
  rc = lash_prune(s, NULL, e.now - 50, LASH_FAILED, &rep);
  is_rc(s, rc, 0, "fold: prune");
  is(rep.processes, 1, "fold: prune removed one row");
  tu_check(s, "S8.5 fold after prune");

  is(tu_reopen(&e), 0, "fold: reopen");
  s = e.s;
  tu_check(s, "S8.5 fold after reopen");
  memset(&r, 0, sizeof r);
  rc = lash_get(s, NULL, "f-1", &r, NULL);
  is_rc(s, rc, 0, "f-1 readable after reopen");
  is(r.status, LASH_CANCELLED, "f-1 still cancelled after reopen");
  ok(r.cancel_requested && tu_streq_(r.cancel_reason, "enough"),
     "cancel request survives reopen");
  ok(r.abandon_requested, "abandon request survives reopen");
  ok(r.has_attempt && r.attempt.number == 1 &&
         strcmp(r.attempt.owner, "w1") == 0,
     "attempt survives reopen");
  lash_record_free(&r);
  tu_close(&e);
}

static void rejected_append(tu_env *e, const char *id, const char *type,
                            lash_bytes pl, int want, const char *what) {
  lash_store *s = e->s;
  tu_snap sn;
  uint64_t seq = 12345;
  int rc;
  tu_snap_take(s, id, &sn);
  e->now += 1000; /* a write would stamp a new updated_at */
  rc = lash_append(s, NULL, id, type, pl, &seq);
  is_rc(s, rc, want, "S8.6 %s -> %s", what, lash_err_name(want));
  msg_has(s, id, "S8.6 %s: message names the id", what);
  ok(tu_snap_same(s, id, &sn),
     "S8.6 %s: record, last_seq, updated_at, change seq, log unchanged", what);
  tu_snap_free(&sn);
}

static void test_rejected(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char buf[64];
  char longtype[200];
  lash_bytes pl = tu_mp_str(buf, sizeof buf, "p");
  unsigned char *big;
  size_t maxp = lash_store_max_payload(s);
  lash_lease ls;
  tu_snap sn;
  int rc;

  is(maxp, 1024 * 1024, "default max_payload is 1 MiB");
  is_rc(s, tu_reg(s, "x-1", "k", LASH_RERUNNABLE, 0), 0, "register x-1");
  rc = lash_append(s, NULL, "x-1", "progress", pl, NULL);
  is_rc(s, rc, 0, "append one event to x-1");

  rejected_append(&e, "x-1", "process.completed", pl, LASH_EINVAL,
                  "lash_append of process.completed");
  rejected_append(&e, "x-1", "process.started", pl, LASH_EINVAL,
                  "lash_append of process.started");
  rejected_append(&e, "x-1", "process.anything", pl, LASH_EINVAL,
                  "lash_append of process.anything");
  rejected_append(&e, "x-1", "signal.a b", pl, LASH_EINVAL,
                  "signal name 'a b'");
  rejected_append(&e, "x-1", "signal.", pl, LASH_EINVAL, "empty signal name");
  rejected_append(&e, "x-1", "signal.a.b", pl, LASH_EINVAL,
                  "signal name 'a.b'");
  rejected_append(&e, "x-1", "", pl, LASH_EINVAL, "empty event type");
  memset(longtype, 'q', sizeof longtype);
  longtype[LASH_NAME_MAX + 1] = '\0';
  rejected_append(&e, "x-1", longtype, pl, LASH_EINVAL,
                  "event type over LASH_NAME_MAX");

  big = tu_mp_blob(maxp + 1);
  rejected_append(&e, "x-1", "progress", (lash_bytes){big, maxp + 1},
                  LASH_ETOOBIG, "payload of max_payload + 1");
  rejected_append(&e, "x-1", "signal.go", (lash_bytes){big, maxp + 1},
                  LASH_ETOOBIG, "signal payload of max_payload + 1");
  rc = lash_append(s, NULL, "x-1", "progress", (lash_bytes){big, maxp}, NULL);
  is_rc(s, rc, 0, "payload of exactly max_payload is accepted");

  rc = lash_append(s, NULL, "x-1", "signal.Go_go-9", pl, NULL);
  is_rc(s, rc, 0, "signal name [A-Za-z0-9_-]+ accepted");
  tu_check(s, "S8.5 check after rejected appends");

  /* Fenced appends are held to the same rules. */
  rc = claim(s, "x-1", "w1", &ls);
  is_rc(s, rc, 0, "claim x-1");
  rc = lash_start(s, NULL, &ls, NULL);
  is_rc(s, rc, 0, "start x-1");
  tu_snap_take(s, "x-1", &sn);
  rc = lash_append_fenced(s, NULL, &ls, "process.waiting", pl, NULL);
  is_rc(s, rc, LASH_EINVAL, "S8.6 fenced append of process.* -> EINVAL");
  rc = lash_append_fenced(s, NULL, &ls, "signal.a b", pl, NULL);
  is_rc(s, rc, LASH_EINVAL, "S8.6 fenced append of a bad signal -> EINVAL");
  rc = lash_append_fenced(s, NULL, &ls, "progress", (lash_bytes){big, maxp + 1},
                          NULL);
  is_rc(s, rc, LASH_ETOOBIG, "S8.6 fenced append too big -> ETOOBIG");
  ok(tu_snap_same(s, "x-1", &sn), "S8.6 rejected fenced appends wrote nothing");
  tu_snap_free(&sn);
  rc = lash_wait_set(s, NULL, &ls, "", NULL);
  is_rc(s, rc, LASH_EINVAL, "wait set with an empty wait -> EINVAL");
  free(big);
  tu_check(s, "S8.5 check after rejected fenced appends");
  tu_close(&e);
}

static void test_terminal(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char buf[64], obuf[64];
  lash_bytes out = tu_mp_str(obuf, sizeof obuf, "the result");
  lash_lease ls, got;
  lash_record r;
  tu_evs ev = {0};
  tu_snap sn;
  int rc;

  is_rc(s, tu_reg(s, "t-1", "k", LASH_RERUNNABLE, 0), 0, "register t-1");
  rc = claim(s, "t-1", "w1", &ls);
  is_rc(s, rc, 0, "claim t-1");
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start t-1");
  e.now += 10;
  rc = lash_wait_set(s, NULL, &ls, "signal:approve", NULL);
  is_rc(s, rc, 0, "t-1 waits");
  is(tu_status(s, "t-1"), LASH_WAITING, "t-1 is waiting");

  e.now += 123;
  rc = lash_complete(s, NULL, &ls, LASH_COMPLETED, out);
  is_rc(s, rc, 0, "S8.16 complete a waiting row");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "t-1", &r, NULL);
  is(r.status, LASH_COMPLETED, "S8.16 status completed");
  ok(tu_bytes_eq(r.outcome, out.data, out.len), "S8.16 outcome bytes stored");
  ok(r.wait == NULL, "S8.16 wait cleared");
  is(r.updated_at, e.now, "S8.16 updated_at == the clock at completion");
  rc = tu_events(s, NULL, "t-1", 0, 0, &ev);
  ok(rc == 0 && ev.n > 0, "S8.16 events listed");
  if (ev.n > 0) {
    tu_ev *last = &ev.v[ev.n - 1];
    iss(last->type, "process.completed", "S8.16 last event is the terminal");
    is(last->at, r.updated_at, "S8.16 updated_at == the terminal event's at");
    is(last->seq, r.last_seq, "S8.16 last_seq == the terminal event's seq");
    ok(tu_bytes_eq((lash_bytes){last->payload, last->len}, out.data, out.len),
       "S8.16 leased terminal payload is the outcome");
  }
  lash_record_free(&r);
  memset(&got, 0, sizeof got);
  rc = lash_lease_get(s, NULL, "t-1", &got);
  ok(rc == 0 && got.token == 0 && got.fence == ls.fence,
     "S8.16 completion released the lease, fence kept");
  tu_check(s, "S8.5 check after terminal write");

  /* S8.17: signals on terminal rows. */
  tu_snap_take(s, "t-1", &sn);
  e.now += 5;
  rc = lash_append(s, NULL, "t-1", "signal.approve", tu_mp_str(buf, 64, "y"),
                   NULL);
  is_rc(s, rc, LASH_ETERMINAL, "S8.17 signal on a terminal row -> ETERMINAL");
  msg_has(s, "t-1", "S8.17 ETERMINAL message names the id");
  ok(tu_snap_same(s, "t-1", &sn), "S8.17 signal on terminal writes nothing");
  rc = lash_request_abandon(s, NULL, "t-1", "ops", "late", NULL);
  is_rc(s, rc, LASH_ETERMINAL, "abandon request on terminal -> ETERMINAL");
  ok(tu_snap_same(s, "t-1", &sn), "abandon request on terminal wrote nothing");
  rc = lash_request_cancel(s, NULL, "t-1", "late", NULL);
  is_rc(s, rc, LASH_ETERMINAL, "cancel request on terminal -> ETERMINAL");
  ok(tu_snap_same(s, "t-1", &sn), "cancel request on terminal wrote nothing");

  /* A terminal row can be claimed, but no fenced write goes through. */
  rc = claim(s, "t-1", "w2", &ls);
  is_rc(s, rc, 0, "claim a terminal row");
  rc = lash_wait_set(s, NULL, &ls, "signal:x", NULL);
  is_rc(s, rc, LASH_ETERMINAL, "wait set on terminal -> ETERMINAL");
  rc = lash_append_fenced(s, NULL, &ls, "signal.x", tu_mp_str(buf, 64, "y"),
                          NULL);
  is_rc(s, rc, LASH_ETERMINAL, "fenced signal on terminal -> ETERMINAL");
  ok(tu_snap_same(s, "t-1", &sn), "refused fenced writes wrote nothing");
  lash_lease_release(s, NULL, &ls);
  tu_snap_free(&sn);
  tu_evs_free(&ev);

  /* Unleased failure terminal on a fresh row. */
  is_rc(s, tu_reg(s, "t-2", "k", LASH_OWNER_BOUND, 0), 0, "register t-2");
  e.now += 7;
  rc = lash_complete_unleased(s, NULL, "t-2", LASH_FAILED, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, 0, "S8.16 unleased fail of a pending row");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "t-2", &r, NULL);
  is(r.status, LASH_FAILED, "S8.16 status failed");
  ok(tu_bytes_eq(r.outcome, out.data, out.len),
     "S8.16 unleased outcome bytes stored");
  is(r.updated_at, e.now, "S8.16 unleased updated_at == the clock");
  rc = tu_events(s, NULL, "t-2", 0, 0, &ev);
  ok(rc == 0 && ev.n == 1 && strcmp(ev.v[0].type, "process.failed") == 0 &&
         ev.v[0].at == r.updated_at && ev.v[0].seq == r.last_seq,
     "S8.16 one process.failed event at updated_at");
  lash_record_free(&r);
  tu_evs_free(&ev);

  is_rc(s, tu_reg(s, "t-3", "k", LASH_OWNER_BOUND, 0), 0, "register t-3");
  tu_snap_take(s, "t-3", &sn);
  rc = lash_complete_unleased(s, NULL, "t-3", 99, out, LASH_AUTH_WORKFLOW);
  is_rc(s, rc, LASH_EINVAL, "complete with status 99 -> EINVAL");
  rc = lash_complete_unleased(s, NULL, "t-3", LASH_RUNNING, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, LASH_EINVAL, "complete with status running -> EINVAL");
  rc = lash_complete_unleased(s, NULL, "t-3", LASH_PENDING, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, LASH_EINVAL, "complete with status pending -> EINVAL");
  ok(tu_snap_same(s, "t-3", &sn), "bad completion status wrote nothing");
  tu_snap_free(&sn);
  tu_check(s, "S8.5 check after S8.17");
  tu_close(&e);
}

static void test_cancel(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  hook_rec h;
  lash_record r;
  lash_lease ls;
  tu_evs ev = {0};
  tu_snap sn;
  unsigned char buf[32];
  uint64_t seq = 0, seq2 = 0;
  int rc;

  memset(&h, 0, sizeof h);
  lash_store_on_commit(s, hook_fn, &h);

  /* Pending: cancelled at once, in one commit. */
  is_rc(s, tu_reg(s, "c-1", "k", LASH_RERUNNABLE, 0), 0, "register c-1");
  memset(&h, 0, sizeof h);
  e.now += 10;
  rc = lash_request_cancel(s, NULL, "c-1", "stop", &seq);
  is_rc(s, rc, 0, "cancel a pending row");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "c-1", &r, NULL);
  is(r.status, LASH_CANCELLED, "pending row is cancelled at once");
  ok(r.cancel_requested && tu_streq_(r.cancel_reason, "stop"),
     "cancel request recorded with its reason");
  ok(r.outcome.len > 0, "cancelled row has an outcome");
  is(r.updated_at, e.now, "updated_at is the cancel time");
  rc = tu_events(s, NULL, "c-1", 0, 0, &ev);
  ok(rc == 0 && ev.n == 2, "two events: request and terminal");
  if (ev.n == 2) {
    iss(ev.v[0].type, "process.cancel_requested", "first the request");
    iss(ev.v[1].type, "process.cancelled", "then the terminal");
    is(seq, ev.v[0].seq, "returned seq is the request's");
    is(r.last_seq, ev.v[1].seq, "last_seq is the terminal's");
  }
  is(h.calls, 1, "one commit for request + terminal");
  ok(ev.n == 2 && h.n == 1 && strcmp(h.id[0], "c-1") == 0 &&
         h.first_seq[0] == ev.v[0].seq && h.last_seq[0] == r.last_seq &&
         h.status[0] == LASH_CANCELLED && h.registered[0] == 0,
     "hook: one change c-1 first_seq=request, last_seq=terminal, cancelled");
  lash_record_free(&r);
  tu_check(s, "S8.5 check after cancelling a pending row");

  /* External (never started here): only the request; its owner closes it. */
  is_rc(s, tu_reg(s, "c-x", "k", LASH_EXTERNAL, 0), 0, "register c-x");
  rc = lash_request_cancel(s, NULL, "c-x", "stop", &seq);
  is_rc(s, rc, 0, "cancel an external row");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "c-x", &r, NULL);
  is(r.status, LASH_PENDING, "external row is not cancelled by the request");
  ok(r.cancel_requested && r.outcome.len == 0, "request only, no outcome");
  lash_record_free(&r);
  is_rc(s,
        lash_complete_unleased(s, NULL, "c-x", LASH_CANCELLED,
                               tu_mp_str(buf, sizeof buf, "stop"),
                               LASH_AUTH_EXTERNAL),
        0, "the external owner closes it");
  tu_check(s, "check after an external cancel");

  /* Running: only the request. */
  is_rc(s, tu_reg(s, "c-2", "k", LASH_RERUNNABLE, 0), 0, "register c-2");
  memset(&ls, 0, sizeof ls);
  rc = claim(s, "c-2", "w1", &ls);
  is_rc(s, rc, 0, "claim c-2");
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start c-2");
  e.now += 10;
  rc = lash_request_cancel(s, NULL, "c-2", "please", &seq);
  is_rc(s, rc, 0, "cancel a running row");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "c-2", &r, NULL);
  is(r.status, LASH_RUNNING, "running row stays running");
  ok(r.cancel_requested && tu_streq_(r.cancel_reason, "please"),
     "cancel request recorded");
  is(r.outcome.len, 0, "no outcome yet");
  is(r.last_seq, seq, "request is the last event");
  lash_record_free(&r);
  rc = tu_events(s, NULL, "c-2", seq - 1, 0, &ev);
  ok(rc == 0 && ev.n == 1 &&
         strcmp(ev.v[0].type, "process.cancel_requested") == 0,
     "the request event is process.cancel_requested");

  tu_snap_take(s, "c-2", &sn);
  e.now += 10;
  memset(&h, 0, sizeof h);
  rc = lash_request_cancel(s, NULL, "c-2", "please", &seq2);
  is_rc(s, rc, 0, "repeat cancel request -> 0");
  is(seq2, seq, "repeat returns the same seq");
  ok(tu_snap_same(s, "c-2", &sn), "repeat writes nothing");
  seq2 = 0;
  rc = lash_request_cancel(s, NULL, "c-2", "another reason", &seq2);
  is_rc(s, rc, 0, "second request with another reason -> 0");
  is(seq2, seq, "... returns the first request's seq");
  ok(tu_snap_same(s, "c-2", &sn), "... and writes nothing");
  is(h.calls, 0, "no commit hook for requests that wrote nothing");
  tu_snap_free(&sn);

  /* Waiting: stays waiting. */
  is_rc(s, tu_reg(s, "c-3", "k", LASH_RERUNNABLE, 0), 0, "register c-3");
  rc = claim(s, "c-3", "w1", &ls);
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start c-3");
  is_rc(s, lash_wait_set(s, NULL, &ls, "sleep:5000", NULL), 0, "c-3 waits");
  rc = lash_request_cancel(s, NULL, "c-3", NULL, &seq);
  is_rc(s, rc, 0, "cancel a waiting row (NULL reason)");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "c-3", &r, NULL);
  is(r.status, LASH_WAITING, "waiting row stays waiting");
  ok(r.cancel_requested && r.cancel_reason == NULL,
     "request with no reason recorded");
  iss(r.wait, "sleep:5000", "wait kept");
  lash_record_free(&r);

  rc = lash_request_cancel(s, NULL, "c-none", "x", NULL);
  is_rc(s, rc, LASH_ENOENT, "cancel an unknown id -> ENOENT");
  msg_has(s, "c-none", "cancel ENOENT names the id");
  tu_evs_free(&ev);
  lash_store_on_commit(s, NULL, NULL);
  tu_check(s, "S8.5 check after cancel requests");
  tu_close(&e);
}

int main(void) {
  test_seqs();
  test_fold();
  test_rejected();
  test_terminal();
  test_cancel();
  return done_testing();
}
