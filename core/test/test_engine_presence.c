/* test_engine_presence.c - the engine's worker entry (engine/presence.c,
 * issue 11): written in the first writer transaction after a define (not
 * before: an engine without kinds is no worker), with its pid, host and
 * kinds; no commit of its own while idle; heartbeat_at refreshed only in
 * commits that write anyway and at most every LASH__PRESENCE_BEAT_MS (the
 * store's clock, faked here); a new kind rewrites it at once; the entry of a
 * worker killed with SIGKILL reads not alive and is swept by another
 * engine's first write; close removes it. */
#include "engine_tu.h"

#include "engine/presence.h"

#include <signal.h>
#include <sys/wait.h>

typedef struct wl {
  int n;
  lash_worker_info w[8];
  char kinds[8][128];
} wl;

static int wl_cb(void *ud, const lash_worker_info *w) {
  wl *l = ud;
  msgpack_unpacked u;
  size_t i, at = 0;
  if (l->n >= 8) return 1;
  l->w[l->n] = *w;
  l->kinds[l->n][0] = '\0';
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, w->kinds_mp.data, w->kinds_mp.len, NULL) ==
          MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_ARRAY) {
    for (i = 0; i < u.data.via.array.size; i++) {
      const msgpack_object *o = &u.data.via.array.ptr[i];
      if (o->type != MSGPACK_OBJECT_STR) continue;
      at += (size_t)snprintf(l->kinds[l->n] + at, sizeof l->kinds[0] - at,
                             "%s%.*s", i ? "," : "", (int)o->via.str.size,
                             o->via.str.ptr);
    }
  }
  msgpack_unpacked_destroy(&u);
  l->n++;
  return 0;
}

static wl workers(lash_store *s) {
  wl l;
  memset(&l, 0, sizeof l);
  if (lash_workers_list(s, NULL, wl_cb, &l) != 0) l.n = -1;
  return l;
}

static int noop(lash_store *s, lash_txn *txn, void *ud) {
  (void)s;
  (void)txn;
  (void)ud;
  return 0;
}

/* A write that writes something: registers row ud. */
static int reg(lash_store *s, lash_txn *txn, void *ud) {
  lash_def d = tu_def((const char *)ud, "other", LASH_RERUNNABLE, 0);
  return lash_register(s, txn, &d, NULL, NULL);
}

static uint64_t commits(lash_engine *e) {
  lash_engine_stats st;
  lash_engine_get_stats(e, &st);
  return st.commits;
}

static void test_entry(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  wl l;
  uint64_t c0;
  int64_t t0;
  et_fake_clock(&t);
  t0 = t.now;
  is(lash_engine_write_sync(e, noop, NULL), 0, "a write before any define");
  is(workers(t.s).n, 0, "an engine without kinds is no worker");
  is(lash_engine_define(e, "job"), 0, "define job");
  is(workers(t.s).n, 0, "a define alone writes nothing");
  is(lash_engine_write_sync(e, noop, NULL), 0, "the next write");
  l = workers(t.s);
  is(l.n, 1, "the entry is there");
  iss(l.w[0].owner, "test-owner", "owner");
  iss(l.w[0].incarnation, "inc-1", "incarnation");
  is(l.w[0].pid, (int64_t)getpid(), "pid");
  ok(l.w[0].host[0] != '\0', "host %s", l.w[0].host);
  iss(l.kinds[0], "job", "its kinds");
  is(l.w[0].alive, 1, "alive: its owner hold");
  is(l.w[0].started_at, t0, "started_at");
  is(l.w[0].heartbeat_at, t0, "heartbeat_at");

  c0 = commits(e);
  et_turns(e, 50);
  is(commits(e), c0, "idle: no commit");

  t.now += 1000;
  is(lash_engine_write_sync(e, reg, "r-1"), 0, "a write 1 s later");
  is(workers(t.s).w[0].heartbeat_at, t0, "... leaves the heartbeat");
  t.now += LASH__PRESENCE_BEAT_MS;
  is(lash_engine_write_sync(e, noop, NULL), 0,
     "a transaction past the beat that writes nothing");
  is(workers(t.s).w[0].heartbeat_at, t0, "... leaves it (no write of its own)");
  is(lash_engine_write_sync(e, reg, "r-2"), 0, "a write past the beat");
  is(workers(t.s).w[0].heartbeat_at, t.now, "... refreshes it");
  is(lash_engine_define(e, "job2"), 0, "define job2");
  is(lash_engine_write_sync(e, noop, NULL), 0, "the next write");
  iss(workers(t.s).kinds[0], "job,job2", "the kinds at once");
  et_close(&t, 0);
  {
    lash_store *s = NULL;
    lash_store_opts o;
    char err[256];
    lash_store_opts_init(&o);
    ok(lash_store_open(t.dir, &o, &s, err, sizeof err) == 0, "reopen");
    is(workers(s).n, 0, "close removed the entry");
    lash_store_close(s);
  }
  tu_rmrf(t.root);
}

static void test_sweep(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_engine_opts o;
  lash_engine *e2 = NULL;
  char err[256];
  int p[2];
  char c;
  pid_t pid;
  wl l;
  ok(pipe(p) == 0, "pipe");
  fflush(stdout);
  if ((pid = fork()) == 0) {
    lash_store *cs = NULL;
    lash_store_opts so;
    lash_worker_info w;
    close(p[0]);
    lash_store_opts_init(&so);
    memset(&w, 0, sizeof w);
    snprintf(w.owner, sizeof w.owner, "dead");
    snprintf(w.incarnation, sizeof w.incarnation, "d1");
    snprintf(w.host, sizeof w.host, "h");
    w.pid = getpid();
    if (lash_store_open(t.dir, &so, &cs, err, sizeof err) != 0 ||
        lash_owner_hold(cs, "dead", "d1") != 0 ||
        lash_worker_put(cs, NULL, &w) != 0)
      _exit(2);
    if (write(p[1], "h", 1) != 1) _exit(3);
    for (;;)
      pause();
  }
  close(p[1]);
  ok(read(p[0], &c, 1) == 1, "a child holds dead/d1 and wrote its entry");
  close(p[0]);
  l = workers(t.s);
  is(l.n, 1, "one entry");
  is(l.w[0].alive, 1, "alive while the child lives");
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  l = workers(t.s);
  is(l.w[0].alive, 0, "after kill -9: not alive");
  is(lash_engine_define(e, "job"), 0, "define job");
  is(lash_engine_write_sync(e, noop, NULL), 0, "this engine's first write");
  l = workers(t.s);
  is(l.n, 1, "the dead entry was swept");
  iss(l.w[0].owner, "test-owner", "ours is left");
  et_opts(&o);
  o.incarnation = "inc-2";
  ok(lash_engine_open(t.dir, &o, &e2, err, sizeof err) == 0, "a second engine");
  is(lash_engine_define(e2, "job"), 0, "defines job");
  is(lash_engine_write_sync(e2, noop, NULL), 0, "writes");
  is(workers(t.s).n, 2, "a live peer is not swept");
  lash_engine_close(e2);
  is(workers(t.s).n, 1, "its close removed its entry");
  et_close(&t, 1);
}

int main(void) {
  test_entry();
  test_sweep();
  return done_testing();
}
