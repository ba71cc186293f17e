/* test_schedules.c - durable cron schedules (registry/schedules.c) with the
 * fake clock: bad input names the field and writes nothing; put, get,
 * same and replaced; a tick starts its child NAME@TICK once however often
 * it is fired; catch_up skip, one and all after a pause; "all" in pieces
 * of 256; delete; the change seq moves on a put; the audit stays clean. */
#include "testutil.h"

static lash_schedule def(const char *name, const char *spec, int catch_up) {
  static unsigned char in[16];
  lash_schedule sc;
  memset(&sc, 0, sizeof sc);
  sc.name = name;
  sc.spec = spec;
  sc.kind = "tick";
  sc.input = tu_mp_str(in, sizeof in, "in");
  sc.catch_up = catch_up;
  return sc;
}

static int count_cb(void *ud, const lash_schedule *sc) {
  (void)sc;
  (*(int *)ud)++;
  return 0;
}

static int nsched(lash_store *s) {
  int n = 0;
  lash_schedules_list(s, NULL, count_cb, &n);
  return n;
}

/* Rows of kind "tick" whose id starts with @p prefix. */
typedef struct rows {
  const char *prefix;
  int n;
  char first[LASH_ID_MAX + 1], last[LASH_ID_MAX + 1];
} rows;

static int rows_cb(void *ud, const lash_record *r) {
  rows *w = ud;
  if (strncmp(r->id, w->prefix, strlen(w->prefix)) != 0) return 0;
  if (w->n == 0) snprintf(w->first, sizeof w->first, "%s", r->id);
  snprintf(w->last, sizeof w->last, "%s", r->id);
  w->n++;
  return 0;
}

static rows children(lash_store *s, const char *prefix) {
  rows w;
  lash_list_filter f;
  memset(&w, 0, sizeof w);
  w.prefix = prefix;
  memset(&f, 0, sizeof f);
  f.kind = "tick";
  lash_list(s, NULL, &f, rows_cb, &w);
  return w;
}

static void bad_input(lash_store *s) {
  lash_schedule sc;
  uint64_t cs = lash_change_seq(s);
  sc = def("b", "61 * * * *", 0);
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "bad spec");
  msg_has(s, "minute", "the message names the field");
  msg_has(s, "61", "and the bad text");
  sc = def("b", "* * * * *", 0);
  sc.tz = "Mars/Olympus";
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "unknown tz");
  msg_has(s, "Mars/Olympus", "the message names the zone");
  sc = def("b", "* * * * *", 7);
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "bad catch_up");
  msg_has(s, "catch_up", "the message names catch_up");
  sc = def("", "* * * * *", 0);
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "empty name");
  msg_has(s, "schedule name", "the message names the name");
  sc = def("b", "* * * * *", 0);
  sc.kind = "";
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "empty kind");
  msg_has(s, "kind", "the message names the kind");
  sc = def("b", "0 0 30 2 *", 0);
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), LASH_EINVAL, "Feb 30");
  is(nsched(s), 0, "nothing was written");
  isu(lash_change_seq(s), cs, "the change seq did not move");
}

static void put_get(tu_env *e) {
  lash_store *s = e->s;
  lash_schedule sc = def("p", "*/5 * * * *", 0), got;
  uint64_t cs = lash_change_seq(s);
  unsigned char other[16];
  int how = 0;
  is_rc(s, lash_schedule_put(s, NULL, &sc, &how), 0, "put");
  is(how, LASH_SCHEDULE_CREATED, "created");
  ok(lash_change_seq(s) > cs, "the change seq moved");
  is_rc(s, lash_schedule_get(s, NULL, "p", &got), 0, "get");
  iss(got.spec, "*/5 * * * *", "its spec");
  iss(got.kind, "tick", "its kind");
  iss(got.tz, "", "UTC");
  is(got.disposition, LASH_RERUNNABLE, "children rerunnable by default");
  /* TU_T0 is 2023-11-14T22:13:20Z: the next fifth minute is 22:15 */
  is(got.next_at, TU_T0 + 100000, "next_at is the first tick after now");
  is(got.created_at, TU_T0, "created_at");
  lash_schedule_free(&got);
  cs = lash_change_seq(s);
  is_rc(s, lash_schedule_put(s, NULL, &sc, &how), 0, "put again");
  is(how, LASH_SCHEDULE_SAME, "the same: nothing written");
  isu(lash_change_seq(s), cs, "the change seq did not move");
  tu_clock_add(&e->now, 1000);
  sc.input = tu_mp_str(other, sizeof other, "other");
  is_rc(s, lash_schedule_put(s, NULL, &sc, &how), 0, "put other input");
  is(how, LASH_SCHEDULE_REPLACED, "replaced");
  is_rc(s, lash_schedule_get(s, NULL, "p", &got), 0, "get");
  is(got.created_at, TU_T0, "created_at kept");
  is(got.updated_at, TU_T0 + 1000, "updated_at");
  lash_schedule_free(&got);
  is_rc(s, lash_schedule_get(s, NULL, "nope", &got), LASH_ENOENT, "unknown");
  msg_has(s, "nope", "named");
  is_rc(s, lash_schedule_delete(s, NULL, "p"), 0, "delete");
  is_rc(s, lash_schedule_delete(s, NULL, "p"), LASH_ENOENT, "delete again");
  is(nsched(s), 0, "gone");
}

static void tick_once(tu_env *e) {
  lash_store *s = e->s;
  lash_schedule sc = def("t", "* * * * *", 0), got;
  lash_record r;
  size_t n = 9;
  rows w;
  int64_t due;
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), 0, "put t");
  lash_schedule_get(s, NULL, "t", &got);
  due = got.next_at;
  lash_schedule_free(&got);
  is_rc(s, lash_schedule_tick(s, NULL, "t", due - 1, &n), 0, "early tick");
  is(n, 0, "starts nothing");
  is_rc(s, lash_schedule_tick(s, NULL, "t", due, &n), 0, "tick");
  is(n, 1, "starts one child");
  is_rc(s, lash_schedule_tick(s, NULL, "t", due, &n), 0, "the same tick again");
  is(n, 0, "starts nothing (another engine fired it)");
  is_rc(s, lash_schedule_tick(s, NULL, "t", due + 30000, &n), 0, "later");
  is(n, 0, "nothing before the next minute");
  is_rc(s, lash_get(s, NULL, "t@2023-11-14T22:14:00Z", &r, NULL), 0,
        "the child is t@<tick>");
  iss(r.kind, "tick", "of the schedule's kind");
  is(r.status, LASH_PENDING, "pending");
  lash_record_free(&r);
  lash_schedule_get(s, NULL, "t", &got);
  is(got.next_at, due + 60000, "next_at moved a minute on");
  is(got.last_at, due, "last_at");
  is(got.started, 1, "started");
  lash_schedule_free(&got);
  w = children(s, "t@");
  is(w.n, 1, "one child in all");
  is_rc(s, lash_schedule_tick(s, NULL, "gone", due, &n), LASH_ENOENT,
        "tick of no schedule");
  lash_schedule_delete(s, NULL, "t");
}

static void catch_up(tu_env *e) {
  lash_store *s = e->s;
  const char *spec = "0 */10 * * * *";
  lash_schedule a = def("skip", spec, LASH_CATCHUP_SKIP);
  lash_schedule b = def("one", spec, LASH_CATCHUP_ONE);
  lash_schedule c = def("all", spec, LASH_CATCHUP_ALL);
  lash_schedule got;
  size_t n;
  rows w;
  lash_schedule_put(s, NULL, &a, NULL);
  lash_schedule_put(s, NULL, &b, NULL);
  lash_schedule_put(s, NULL, &c, NULL);
  /* Ticks at :20 :30 :40 :50 passed; now is 22:52, the last one 2 min late
   * (more than its grace of 60 s). */
  e->now = TU_T0 - 200000 + 2400000 + 120000; /* 22:10 + 40 min + 2 min */
  is_rc(s, lash_schedule_tick(s, NULL, "skip", e->now, &n), 0, "skip");
  is(n, 0, "skip starts none of the missed ticks");
  is_rc(s, lash_schedule_tick(s, NULL, "one", e->now, &n), 0, "one");
  is(n, 1, "one starts one");
  w = children(s, "one@");
  iss(w.first, "one@2023-11-14T22:50:00Z", "the latest missed tick");
  is_rc(s, lash_schedule_tick(s, NULL, "all", e->now, &n), 0, "all");
  is(n, 4, "all starts each missed tick");
  w = children(s, "all@");
  iss(w.first, "all@2023-11-14T22:20:00Z", "from the first");
  iss(w.last, "all@2023-11-14T22:50:00Z", "to the last");
  lash_schedule_get(s, NULL, "skip", &got);
  is(got.next_at, TU_T0 - 200000 + 3000000, "skip: next_at is 23:00");
  lash_schedule_free(&got);
  /* on time (within the grace): skip starts it */
  e->now = TU_T0 - 200000 + 3000000 + 500;
  is_rc(s, lash_schedule_tick(s, NULL, "skip", e->now, &n), 0, "on time");
  is(n, 1, "skip starts a tick on time");
  lash_schedule_delete(s, NULL, "skip");
  lash_schedule_delete(s, NULL, "one");
  lash_schedule_delete(s, NULL, "all");
}

static void all_in_pieces(tu_env *e) {
  lash_store *s = e->s;
  lash_schedule sc = def("sec", "@every 1s", LASH_CATCHUP_ALL), got;
  int64_t t0;
  size_t n, total = 0;
  int calls = 0;
  rows w;
  e->now = (e->now / 1000 + 1) * 1000;
  t0 = e->now;
  lash_schedule_put(s, NULL, &sc, NULL);
  e->now = t0 + 600000;
  do {
    n = 0;
    if (lash_schedule_tick(s, NULL, "sec", e->now, &n) != 0) break;
    total += n;
    calls++;
  } while (n > 0 && calls < 10);
  is(total, 600, "600 missed ticks, 600 children");
  is(calls, 4, "in writes of at most 256 (256, 256, 88, then none)");
  w = children(s, "sec@");
  is(w.n, 600, "600 rows");
  lash_schedule_get(s, NULL, "sec", &got);
  is(got.next_at, t0 + 601000, "next_at after now");
  is(got.started, 600, "started");
  lash_schedule_free(&got);
  lash_schedule_delete(s, NULL, "sec");
}

static void zone(tu_env *e) {
  lash_store *s = e->s;
  lash_schedule sc = def("ny", "0 9 * * *", 0), got;
  int64_t ticks[3];
  sc.tz = "America/New_York";
  is_rc(s, lash_schedule_put(s, NULL, &sc, NULL), 0, "put in a zone");
  lash_schedule_get(s, NULL, "ny", &got);
  iss(got.tz, "America/New_York", "the zone is stored");
  is(lash_schedule_ticks(&got, got.next_at - 1, ticks, 3), 3, "three ticks");
  is(ticks[1] - ticks[0], 86400000, "a day apart (no change in November)");
  lash_schedule_free(&got);
  lash_schedule_delete(s, NULL, "ny");
  (void)e;
}

int main(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  bad_input(s);
  put_get(&e);
  tick_once(&e);
  catch_up(&e);
  all_in_pieces(&e);
  zone(&e);
  tu_check(s, "the audit is clean");
  tu_close(&e);
  return done_testing();
}
