/* test_register.c - registration: S8.1, S8.2, S8.3 and bad input. */
#include "testutil.h"

static void test_new_row(tu_env *e) {
  lash_store *s = e->s;
  lash_record r;
  tu_evs ev = {0};
  unsigned char in[64];
  lash_def d = tu_def("reg-1", "greet", LASH_RERUNNABLE, 3);
  int created = -1, rc;
  uint64_t before = lash_change_seq(s);

  d.input = tu_mp_str(in, sizeof in, "hello input");
  memset(&r, 0, sizeof r);
  rc = lash_register(s, NULL, &d, &created, &r);
  is_rc(s, rc, 0, "S8.1 register a new id");
  is(created, 1, "S8.1 created = 1 for a new id");
  iss(r.id, "reg-1", "S8.1 record id");
  iss(r.kind, "greet", "S8.1 record kind");
  ok(tu_bytes_eq(r.input, d.input.data, d.input.len), "S8.1 input stored");
  is(r.disposition, LASH_RERUNNABLE, "S8.1 disposition stored");
  is(r.max_attempts, 3, "S8.1 max_attempts stored");
  is(r.status, LASH_PENDING, "S8.1 status pending");
  is(r.outcome.len, 0, "S8.1 no outcome");
  ok(r.wait == NULL, "S8.1 no wait");
  is(r.has_attempt, 0, "S8.1 no attempt");
  is(r.cancel_requested, 0, "S8.1 no cancel request");
  is(r.abandon_requested, 0, "S8.1 no abandon request");
  is(r.last_seq, 0, "S8.1 last_seq 0");
  is(r.created_at, e->now, "S8.1 created_at from the store clock");
  is(r.updated_at, r.created_at, "S8.1 updated_at == created_at");
  ok(r.change_seq > before, "S8.1 record change_seq moved past the old one");
  is(lash_change_seq(s), r.change_seq,
     "S8.1 store change seq == the record's change seq");
  lash_record_free(&r);
  ok(r.id == NULL && r.priv_ == NULL, "lash_record_free zeroes the record");
  lash_record_free(NULL); /* NULL-safe */

  memset(&r, 0, sizeof r);
  rc = lash_get(s, NULL, "reg-1", &r, NULL);
  is_rc(s, rc, 0, "S8.1 lash_get finds it");
  is(r.status, LASH_PENDING, "S8.1 lash_get status pending");
  ok(tu_bytes_eq(r.input, d.input.data, d.input.len), "S8.1 lash_get input");
  lash_record_free(&r);

  rc = tu_events(s, NULL, "reg-1", 0, 0, &ev);
  is_rc(s, rc, 0, "S8.1 events_after on a new row");
  is(ev.n, 0, "S8.1 a new row has no events");
  tu_evs_free(&ev);

  /* Registration with created == NULL and out == NULL. */
  rc = tu_reg(s, "reg-2", "greet", LASH_OWNER_BOUND, 0);
  is_rc(s, rc, 0, "register with created and out NULL");
  is(tu_status(s, "reg-2"), LASH_PENDING, "owner_bound row is pending");
  rc = tu_reg(s, "reg-3", "greet", LASH_EXTERNAL, 0);
  is_rc(s, rc, 0, "register an external row");
  is(tu_status(s, "reg-3"), LASH_PENDING, "external row is pending");
  tu_check(s, "S8.5 check after registrations");
}

static void test_identical(tu_env *e) {
  lash_store *s = e->s;
  lash_record r1, r2;
  unsigned char in[64];
  lash_def d = tu_def("same-1", "greet", LASH_OWNER_BOUND, 0);
  int created = -1, rc;
  uint64_t cseq;

  d.input = tu_mp_str(in, sizeof in, "same input");
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  rc = lash_register(s, NULL, &d, &created, &r1);
  is_rc(s, rc, 0, "S8.2 first registration");
  is(created, 1, "S8.2 first registration created");
  cseq = lash_change_seq(s);

  e->now += 5000; /* a later clock must not leak into the stored row */
  created = -1;
  rc = lash_register(s, NULL, &d, &created, &r2);
  is_rc(s, rc, 0, "S8.2 identical re-register succeeds");
  is(created, 0, "S8.2 identical re-register: created = 0");
  ok(tu_rec_same(&r1, &r2), "S8.2 returns the stored row unchanged");
  is(lash_change_seq(s), cseq, "S8.2 change seq unchanged");
  is(tu_event_count(s, "same-1"), 0, "S8.2 no events added");
  lash_record_free(&r2);

  /* A copy of the input in another buffer is still identical. */
  {
    unsigned char copy[64];
    memcpy(copy, in, d.input.len);
    d.input.data = copy;
    created = -1;
    rc = lash_register(s, NULL, &d, &created, NULL);
    is_rc(s, rc, 0, "S8.2 identical input from another buffer");
    is(created, 0, "S8.2 ... is not a new row");
    is(lash_change_seq(s), cseq, "S8.2 ... change seq unchanged");
  }
  memset(&r2, 0, sizeof r2);
  lash_get(s, NULL, "same-1", &r2, NULL);
  ok(tu_rec_same(&r1, &r2), "S8.2 stored row still the same");
  lash_record_free(&r1);
  lash_record_free(&r2);
  tu_check(s, "S8.5 check after identical re-registration");
}

static void conflict_case(tu_env *e, const lash_def *base, const lash_def *d,
                          const char *what) {
  lash_store *s = e->s;
  tu_snap sn;
  lash_record out;
  int created = -1, rc;

  tu_snap_take(s, base->id, &sn);
  memset(&out, 0, sizeof out);
  rc = lash_register(s, NULL, d, &created, &out);
  is_rc(s, rc, LASH_ECONFLICT, "S8.3 different %s -> ECONFLICT", what);
  msg_has(s, base->id, "S8.3 different %s: message names the id", what);
  ok(tu_snap_same(s, base->id, &sn), "S8.3 different %s: nothing written",
     what);
  lash_record_free(&out);
  tu_snap_free(&sn);
}

static void test_conflict(tu_env *e) {
  lash_store *s = e->s;
  unsigned char in1[32], in2[32];
  lash_def base = tu_def("conf-1", "greet", LASH_RERUNNABLE, 2), d;
  int rc;

  base.input = tu_mp_str(in1, sizeof in1, "one");
  rc = lash_register(s, NULL, &base, NULL, NULL);
  is_rc(s, rc, 0, "S8.3 base registration");

  d = base;
  d.input = tu_mp_str(in2, sizeof in2, "two");
  conflict_case(e, &base, &d, "input");
  d = base;
  d.input.len = 0; /* an empty input is a different input */
  d.input.data = NULL;
  conflict_case(e, &base, &d, "empty input");
  d = base;
  d.kind = "other";
  conflict_case(e, &base, &d, "kind");
  d = base;
  d.disposition = LASH_OWNER_BOUND;
  conflict_case(e, &base, &d, "disposition owner_bound");
  d = base;
  d.disposition = LASH_EXTERNAL;
  conflict_case(e, &base, &d, "disposition external");
  d = base;
  d.max_attempts = 3;
  conflict_case(e, &base, &d, "max_attempts");
  d = base;
  d.max_attempts = 0;
  conflict_case(e, &base, &d, "max_attempts 0 (unlimited)");

  /* A conflict on a started row changes nothing either. */
  {
    lash_lease ls;
    tu_snap sn;
    memset(&ls, 0, sizeof ls);
    rc = lash_lease_claim(s, NULL, "conf-1", "w1", "i1", 30000, &ls);
    is_rc(s, rc, 0, "S8.3 claim the base row");
    rc = lash_start(s, NULL, &ls, NULL);
    is_rc(s, rc, 0, "S8.3 start the base row");
    tu_snap_take(s, "conf-1", &sn);
    d = base;
    d.kind = "else";
    rc = lash_register(s, NULL, &d, NULL, NULL);
    is_rc(s, rc, LASH_ECONFLICT, "S8.3 conflict on a running row");
    ok(tu_snap_same(s, "conf-1", &sn), "S8.3 running row untouched");
    tu_snap_free(&sn);
    rc = lash_register(s, NULL, &base, NULL, NULL);
    is_rc(s, rc, 0, "S8.2 identical re-register of a running row");
    is(tu_status(s, "conf-1"), LASH_RUNNING,
       "S8.2 ... leaves it running (not reset to pending)");
  }
  tu_check(s, "S8.5 check after conflicts");
}

static void bad_case(tu_env *e, const lash_def *d, int want, const char *part,
                     const char *what) {
  lash_store *s = e->s;
  lash_record out;
  uint64_t cseq = lash_change_seq(s);
  lash_stats st0, st1;
  int created = -1, rc;

  memset(&st0, 0, sizeof st0);
  memset(&st1, 0, sizeof st1);
  lash_store_stats(s, NULL, &st0);
  memset(&out, 0, sizeof out);
  rc = lash_register(s, NULL, d, &created, &out);
  is_rc(s, rc, want, "%s -> %s", what, lash_err_name(want));
  if (part != NULL) msg_has(s, part, "%s: message names '%s'", what, part);
  is(lash_change_seq(s), cseq, "%s: change seq unchanged", what);
  lash_store_stats(s, NULL, &st1);
  is(st1.total, st0.total, "%s: no row added", what);
  lash_record_free(&out);
}

static void test_bad_input(tu_env *e) {
  lash_store *s = e->s;
  char id255[256], id256[257], kind127[128], kind128[129];
  lash_def d;
  int rc;

  memset(id255, 'i', 255);
  id255[255] = '\0';
  memset(id256, 'j', 256);
  id256[256] = '\0';
  memset(kind127, 'k', 127);
  kind127[127] = '\0';
  memset(kind128, 'k', 128);
  kind128[128] = '\0';

  d = tu_def("", "greet", LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "id", "empty id");
  d = tu_def(NULL, "greet", LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "id", "NULL id");
  d = tu_def(id256, "greet", LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "id", "256-byte id");
  d = tu_def("bk-1", "", LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "kind", "empty kind");
  d = tu_def("bk-1", NULL, LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "kind", "NULL kind");
  d = tu_def("bk-1", kind128, LASH_RERUNNABLE, 0);
  bad_case(e, &d, LASH_EINVAL, "kind", "128-byte kind");
  d = tu_def("bad-disp", "greet", 0, 0);
  bad_case(e, &d, LASH_EINVAL, "disposition", "disposition 0");
  d = tu_def("bad-disp", "greet", 99, 0);
  bad_case(e, &d, LASH_EINVAL, "disposition", "disposition 99");
  d = tu_def("bad-disp", "greet", -1, 0);
  bad_case(e, &d, LASH_EINVAL, "disposition", "disposition -1");
  is(tu_status(s, "bad-disp"), LASH_ENOENT, "rejected ids were not created");

  /* Bounds that are fine. */
  d = tu_def(id255, "greet", LASH_RERUNNABLE, 0);
  rc = lash_register(s, NULL, &d, NULL, NULL);
  is_rc(s, rc, 0, "255-byte id is accepted");
  is(tu_status(s, id255), LASH_PENDING, "255-byte id readable");
  d = tu_def("kind-127", kind127, LASH_RERUNNABLE, 0);
  rc = lash_register(s, NULL, &d, NULL, NULL);
  is_rc(s, rc, 0, "127-byte kind is accepted");
  d = tu_def("no-input", "greet", LASH_RERUNNABLE, 0);
  d.input.data = NULL;
  d.input.len = 0;
  rc = lash_register(s, NULL, &d, NULL, NULL);
  is_rc(s, rc, 0, "empty input is accepted");

  rc = lash_register(s, NULL, NULL, NULL, NULL);
  is_rc(s, rc, LASH_EINVAL, "NULL def -> EINVAL");
  tu_check(s, "S8.5 check after bad input");
}

static void test_too_big(void) {
  tu_env e;
  lash_store_opts o;
  lash_store *s;
  unsigned char *big, *fit;
  lash_def d;
  int rc;

  lash_store_opts_init(&o);
  o.max_payload = 1024;
  s = tu_open(&e, &o);
  is(lash_store_max_payload(s), 1024, "max_payload option taken");

  big = tu_mp_blob(1025);
  d = tu_def("big-1", "greet", LASH_RERUNNABLE, 0);
  d.input.data = big;
  d.input.len = 1025;
  bad_case(&e, &d, LASH_ETOOBIG, "big-1", "input of max_payload + 1 bytes");
  is(tu_status(s, "big-1"), LASH_ENOENT, "too-big row was not created");
  free(big);

  fit = tu_mp_blob(1024);
  d = tu_def("fit-1", "greet", LASH_RERUNNABLE, 0);
  d.input.data = fit;
  d.input.len = 1024;
  rc = lash_register(s, NULL, &d, NULL, NULL);
  is_rc(s, rc, 0, "input of exactly max_payload bytes is accepted");
  free(fit);
  tu_check(s, "S8.5 check after ETOOBIG");
  tu_close(&e);
}

static void test_get(tu_env *e) {
  lash_store *s = e->s;
  lash_record r;
  lash_tombstone t;
  int rc;

  memset(&r, 0, sizeof r);
  rc = lash_get(s, NULL, "nobody-here", &r, &t);
  is_rc(s, rc, LASH_ENOENT, "lash_get unknown id -> ENOENT");
  msg_has(s, "nobody-here", "ENOENT message names the id");
  lash_record_free(&r);
  rc = lash_get(s, NULL, "", &r, NULL);
  is_rc(s, rc, LASH_EINVAL, "lash_get empty id -> EINVAL");
  lash_record_free(&r);
  rc = tu_events(s, NULL, "nobody-here", 0, 0, &(tu_evs){0});
  is_rc(s, rc, LASH_ENOENT, "events_after unknown id -> ENOENT");
  msg_has(s, "nobody-here", "events_after ENOENT names the id");

  /* Persisted across reopen. */
  is(tu_reopen(e), 0, "reopen the store");
  memset(&r, 0, sizeof r);
  rc = lash_get(e->s, NULL, "reg-1", &r, NULL);
  is_rc(e->s, rc, 0, "registered row survives reopen");
  is(r.status, LASH_PENDING, "still pending after reopen");
  iss(r.kind, "greet", "kind after reopen");
  lash_record_free(&r);
  tu_check(e->s, "S8.5 check after reopen");
}

static void test_names(void) {
  iss(lash_version(), LASH_VERSION_STRING, "lash_version");
  iss(lash_err_name(LASH_ECONFLICT), "ECONFLICT", "err name ECONFLICT");
  iss(lash_err_name(0), "OK", "err name OK");
  iss(lash_strerror(LASH_ENOENT), "unknown process", "strerror ENOENT");
  ok(lash_strerror(-999) != NULL, "strerror never NULL");
  iss(lash_status_name(LASH_PENDING), "pending", "status name pending");
  iss(lash_status_name(LASH_ABANDONED), "abandoned", "status name abandoned");
  ok(lash_status_name(99) == NULL, "status name unknown -> NULL");
  is(lash_status_parse("waiting"), LASH_WAITING, "status parse waiting");
  is(lash_status_parse("nope"), 0, "status parse unknown");
  iss(lash_disposition_name(LASH_OWNER_BOUND), "owner_bound",
      "disposition name owner_bound");
  is(lash_disposition_parse("external"), LASH_EXTERNAL,
     "disposition parse external");
  is(lash_disposition_parse("x"), 0, "disposition parse unknown");
  iss(lash_writer_name(LASH_WRITER_ENGINE_GAVE_UP), "engine_gave_up",
      "writer name");
}

/* timeout_ms: stored (as an optional field), kept by later writes, part
 * of the definition, never negative. */
static void test_timeout(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("budget-1", "greet", LASH_RERUNNABLE, 0);
  lash_record r;
  lash_lease ls;
  int created = -1;

  d.timeout_ms = 1500;
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0,
        "register with timeout_ms");
  is(created, 1, "created");
  memset(&r, 0, sizeof r);
  is_rc(s, lash_get(s, NULL, "budget-1", &r, NULL), 0, "get");
  is(r.timeout_ms, 1500, "timeout_ms stored");
  lash_record_free(&r);
  is_rc(s, lash_lease_claim(s, NULL, "budget-1", "o", "i", 30000, &ls), 0,
        "claim");
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start (rewrites the record)");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "budget-1", &r, NULL);
  is(r.timeout_ms, 1500, "kept by the start");
  is(r.status, LASH_RUNNING, "running");
  lash_record_free(&r);
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0,
        "the same definition again");
  is(created, 0, "not created");
  d.timeout_ms = 0;
  is(lash_register(s, NULL, &d, NULL, NULL), LASH_ECONFLICT,
     "another timeout_ms is another definition");
  ok(strstr(lash_errmsg(s), "timeout_ms") != NULL, "the message names it");
  d.id = "budget-2";
  d.timeout_ms = -1;
  is(lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL, "negative: EINVAL");
  ok(strstr(lash_errmsg(s), "timeout_ms") != NULL, "the message names it");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "same-1", &r, NULL);
  is(r.timeout_ms, 0, "a row without one reads 0");
  lash_record_free(&r);
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_names();
  test_new_row(&e);
  test_identical(&e);
  test_conflict(&e);
  test_bad_input(&e);
  test_get(&e);
  test_timeout(&e);
  tu_close(&e);
  test_too_big();
  return done_testing();
}
