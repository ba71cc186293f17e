/* test_lease.c - the lease protocol: S8.23-S8.32, S8.15, S8.33 and fences
 * that only grow. Expiry comes from the fake clock; nothing sleeps. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>

#define TTL 30000

static int claim(lash_store *s, const char *id, const char *owner,
                 const char *inc, int64_t ttl, lash_lease *ls) {
  memset(ls, 0, sizeof *ls);
  return lash_lease_claim(s, NULL, id, owner, inc, ttl, ls);
}

static int lease_eq(const lash_lease *a, const lash_lease *b) {
  return strcmp(a->process_id, b->process_id) == 0 &&
         strcmp(a->owner, b->owner) == 0 &&
         strcmp(a->incarnation, b->incarnation) == 0 && a->token == b->token &&
         a->fence == b->fence && a->expires_at == b->expires_at;
}

/* 1 if the stored lease row of @p id equals @p want. */
static int stored_is(lash_store *s, const char *id, const lash_lease *want) {
  lash_lease got;
  int rc;
  memset(&got, 0, sizeof got);
  rc = lash_lease_get(s, NULL, id, &got);
  if (rc != 0) {
    diag("lash_lease_get(%s): %s", id, lash_err_name(rc));
    return 0;
  }
  if (!lease_eq(&got, want)) {
    diag("stored lease: owner %s token %" PRIu64 " fence %" PRIu64
         " expires %" PRId64,
         got.owner, got.token, got.fence, got.expires_at);
    diag("wanted:       owner %s token %" PRIu64 " fence %" PRIu64
         " expires %" PRId64,
         want->owner, want->token, want->fence, want->expires_at);
    return 0;
  }
  return 1;
}

static void test_claim(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, a2, b, c, d, x, got;
  int rc;
  int64_t old_exp;

  /* S8.23 */
  rc = claim(s, "ghost", "A", "a1", TTL, &a);
  is_rc(s, rc, LASH_ENOENT, "S8.23 claim an unknown id -> ENOENT");
  msg_has(s, "ghost", "S8.23 message names the id");
  rc = lash_lease_get(s, NULL, "ghost", &got);
  is_rc(s, rc, LASH_ENOENT, "S8.23 no lease row afterwards");

  is_rc(s, tu_reg(s, "l-1", "k", LASH_RERUNNABLE, 0), 0, "register l-1");
  rc = lash_lease_get(s, NULL, "l-1", &got);
  is_rc(s, rc, LASH_ENOENT, "never-claimed row has no lease row");
  rc = claim(s, "l-1", "", "a1", TTL, &a);
  is_rc(s, rc, LASH_EINVAL, "claim with an empty owner -> EINVAL");
  rc = lash_lease_get(s, NULL, "l-1", &got);
  is_rc(s, rc, LASH_ENOENT, "... and no lease row created");

  rc = claim(s, "l-1", "A", "a1", TTL, &a);
  is_rc(s, rc, 0, "first claim");
  iss(a.process_id, "l-1", "lease process_id");
  iss(a.owner, "A", "lease owner");
  iss(a.incarnation, "a1", "lease incarnation");
  ok(a.token != 0, "lease token minted (non-zero)");
  is(a.fence, 1, "first fence is 1");
  is(a.expires_at, e->now + TTL, "expires_at = now + ttl");
  ok(stored_is(s, "l-1", &a), "lash_lease_get returns the lease");

  /* S8.24 */
  e->now += 10;
  rc = claim(s, "l-1", "B", "b1", TTL, &b);
  is_rc(s, rc, LASH_EBUSY, "S8.24 another owner's claim -> EBUSY");
  msg_has(s, "l-1", "S8.24 EBUSY message names the id");
  is(b.token, a.token, "S8.24 *out names the holder's token");
  iss(b.owner, "A", "S8.24 *out names the holder's owner");
  is(b.fence, a.fence, "S8.24 *out carries the holder's fence");
  ok(stored_is(s, "l-1", &a), "S8.24 holder's lease untouched");
  rc = claim(s, "l-1", "A", "a2", TTL, &b);
  is_rc(s, rc, LASH_EBUSY, "S8.24 same owner, new incarnation -> EBUSY");
  is(b.token, a.token, "S8.24 ... naming the holder's token");

  /* S8.25 */
  e->now += 1000;
  old_exp = a.expires_at;
  rc = claim(s, "l-1", "A", "a1", TTL, &a2);
  is_rc(s, rc, 0, "S8.25 same incarnation re-claims");
  is(a2.token, a.token, "S8.25 same token");
  is(a2.fence, a.fence, "S8.25 same fence");
  is(a2.expires_at, e->now + TTL, "S8.25 expiry extended to now + ttl");
  ok(a2.expires_at > old_exp, "S8.25 later expiry");
  ok(stored_is(s, "l-1", &a2), "S8.25 extension persisted");
  a = a2;

  /* S8.26 after release */
  rc = lash_lease_release(s, NULL, &a);
  is_rc(s, rc, 0, "release");
  memset(&got, 0, sizeof got);
  rc = lash_lease_get(s, NULL, "l-1", &got);
  is_rc(s, rc, 0, "released lease row still readable");
  is(got.token, 0, "released lease: token 0");
  is(got.fence, a.fence, "released lease: fence retained");
  rc = lash_lease_release(s, NULL, &a);
  is_rc(s, rc, 0, "second release is a silent no-op");
  rc = claim(s, "l-1", "B", "b1", TTL, &b);
  is_rc(s, rc, 0, "S8.26 claim after release");
  ok(b.fence > a.fence, "S8.26 strictly larger fence after release");
  is(b.fence, a.fence + 1, "S8.26 fence = retained + 1");
  ok(b.token != a.token && b.token != 0, "S8.26 fresh token");

  /* S8.26 after expiry; expires_at == now counts as expired. */
  e->now = b.expires_at - 1;
  rc = claim(s, "l-1", "C", "c1", TTL, &c);
  is_rc(s, rc, LASH_EBUSY, "a lease 1 ms before expiry is live");
  e->now = b.expires_at;
  rc = claim(s, "l-1", "C", "c1", TTL, &c);
  is_rc(s, rc, 0, "S8.26 claim at expires_at == now (expired)");
  is(c.fence, b.fence + 1, "S8.26 strictly larger fence after expiry");
  ok(c.token != b.token && c.token != 0, "S8.26 fresh token after expiry");
  ok(stored_is(s, "l-1", &c), "S8.26 new holder stored");

  /* S8.27 renew */
  e->now += 100;
  rc = lash_lease_renew(s, NULL, &c, 5000);
  is_rc(s, rc, 0, "S8.27 renew a current lease");
  is(c.expires_at, e->now + 5000, "S8.27 renew sets ls->expires_at");
  ok(stored_is(s, "l-1", &c), "S8.27 renewed expiry persisted");
  e->now += 4000;
  rc = lash_lease_renew(s, NULL, &c, 5000);
  is_rc(s, rc, 0, "S8.27 renewed lease renews again");
  is(c.expires_at, e->now + 5000, "S8.27 second renewal expiry");
  is(tu_reopen(e), 0, "reopen");
  s = e->s;
  ok(stored_is(s, "l-1", &c), "S8.27 renewed lease survives reopen");

  /* S8.28 renew at expires_at == now and after being superseded. */
  e->now = c.expires_at;
  x = c;
  rc = lash_lease_renew(s, NULL, &x, 5000);
  is_rc(s, rc, LASH_ESUPERSEDED, "S8.28 renew at expires_at == now");
  msg_has(s, "l-1", "S8.28 message names the id");
  is(x.expires_at, c.expires_at, "S8.28 failed renew leaves ls unchanged");
  ok(stored_is(s, "l-1", &c), "S8.28 failed renew writes nothing");
  rc = claim(s, "l-1", "D", "d1", TTL, &d);
  is_rc(s, rc, 0, "D claims the expired lease");
  is(d.fence, c.fence + 1, "D's fence = C's + 1");
  e->now -= 10; /* even with a clock where C would still be live */
  rc = lash_lease_renew(s, NULL, &x, 5000);
  is_rc(s, rc, LASH_ESUPERSEDED, "S8.28 renew a superseded lease");
  ok(stored_is(s, "l-1", &d), "S8.28 successor untouched");
  e->now += 10;

  /* S8.29 stale release. */
  rc = lash_lease_release(s, NULL, &c);
  is_rc(s, rc, 0, "S8.29 stale release returns 0");
  ok(stored_is(s, "l-1", &d), "S8.29 successor still holds");
  rc = claim(s, "l-1", "E", "e1", TTL, &x);
  is_rc(s, rc, LASH_EBUSY, "S8.29 a third claimant gets EBUSY");
  is(x.token, d.token, "S8.29 ... naming the successor's token");
  tu_check(s, "S8.5 check after claims");
}

static void test_fenced_completion(tu_env *e) {
  lash_store *s = e->s;
  unsigned char obuf[64], obuf2[64], pbuf[64];
  lash_bytes out = tu_mp_str(obuf, sizeof obuf, "result");
  lash_bytes out2 = tu_mp_str(obuf2, sizeof obuf2, "other result");
  lash_bytes pl = tu_mp_str(pbuf, sizeof pbuf, "p");
  lash_lease a, b, got;
  tu_snap sn;
  int rc;

  /* S8.30 superseded lease. */
  is_rc(s, tu_reg(s, "l-2", "k", LASH_RERUNNABLE, 0), 0, "register l-2");
  is_rc(s, claim(s, "l-2", "A", "a1", TTL, &a), 0, "A claims l-2");
  is_rc(s, lash_start(s, NULL, &a, NULL), 0, "A starts l-2");
  e->now = a.expires_at + 1;
  is_rc(s, claim(s, "l-2", "B", "b1", TTL, &b), 0, "B reclaims l-2");
  tu_snap_take(s, "l-2", &sn);
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is_rc(s, rc, LASH_ESUPERSEDED, "S8.30 complete with a superseded lease");
  msg_has(s, "l-2", "S8.30 message names the id");
  ok(tu_snap_same(s, "l-2", &sn), "S8.30 nothing written");
  is(tu_status(s, "l-2"), LASH_RUNNING, "S8.30 row stays live");
  ok(stored_is(s, "l-2", &b), "S8.30 successor's token and fence intact");
  rc = lash_append_fenced(s, NULL, &a, "progress", pl, NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "revenant fenced append refused");
  rc = lash_wait_set(s, NULL, &a, "signal:x", NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "revenant wait set refused");
  rc = lash_wait_clear(s, NULL, &a, NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "revenant wait clear refused");
  rc = lash_start(s, NULL, &a, NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "revenant start refused");
  ok(tu_snap_same(s, "l-2", &sn), "revenant writes wrote nothing");
  ok(stored_is(s, "l-2", &b), "successor still holds");
  tu_snap_free(&sn);
  rc = lash_complete(s, NULL, &b, LASH_COMPLETED, out);
  is_rc(s, rc, 0, "successor completes");

  /* S8.31 expired, un-reclaimed. */
  is_rc(s, tu_reg(s, "l-3", "k", LASH_RERUNNABLE, 0), 0, "register l-3");
  is_rc(s, claim(s, "l-3", "A", "a1", TTL, &a), 0, "A claims l-3");
  is_rc(s, lash_start(s, NULL, &a, NULL), 0, "A starts l-3");
  e->now = a.expires_at; /* == now: expired */
  tu_snap_take(s, "l-3", &sn);
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is_rc(s, rc, LASH_ESUPERSEDED, "S8.31 complete with an expired lease");
  msg_has(s, "l-3", "S8.31 message names the id");
  ok(tu_snap_same(s, "l-3", &sn), "S8.31 nothing written");
  is(tu_status(s, "l-3"), LASH_RUNNING, "S8.31 row non-terminal");
  rc = lash_append_fenced(s, NULL, &a, "progress", pl, NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "expired lease fenced append refused");
  ok(tu_snap_same(s, "l-3", &sn), "... nothing written");
  tu_snap_free(&sn);

  /* S8.32 / S8.15 leased completion. */
  is_rc(s, tu_reg(s, "l-4", "k", LASH_RERUNNABLE, 0), 0, "register l-4");
  is_rc(s, claim(s, "l-4", "A", "a1", TTL, &a), 0, "A claims l-4");
  is_rc(s, lash_start(s, NULL, &a, NULL), 0, "A starts l-4");
  e->now += 50;
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is_rc(s, rc, 0, "S8.32 leased completion");
  is(tu_status(s, "l-4"), LASH_COMPLETED, "S8.32 terminal");
  memset(&got, 0, sizeof got);
  rc = lash_lease_get(s, NULL, "l-4", &got);
  is_rc(s, rc, 0, "S8.32 lease row kept");
  is(got.token, 0, "S8.32 holder cleared (token 0)");
  is(got.fence, a.fence, "S8.32 fence kept");
  tu_snap_take(s, "l-4", &sn);
  e->now += 50;
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is(rc, LASH_APPLIED, "S8.32 repeating returns LASH_APPLIED");
  ok(tu_snap_same(s, "l-4", &sn), "S8.32 repeat writes nothing");
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out2);
  is(rc, LASH_SUPERSEDED_OUTCOME, "S8.15 different outcome -> SUPERSEDED");
  ok(tu_snap_same(s, "l-4", &sn), "S8.15 different outcome writes nothing");
  rc = lash_complete(s, NULL, &a, LASH_FAILED, out);
  is(rc, LASH_SUPERSEDED_OUTCOME, "S8.15 different status -> SUPERSEDED");
  ok(tu_snap_same(s, "l-4", &sn), "S8.15 different status writes nothing");
  e->now = a.expires_at + 1000;
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is(rc, LASH_APPLIED, "S8.15 terminal check precedes the lease check");
  ok(tu_snap_same(s, "l-4", &sn), "... writes nothing");
  tu_snap_free(&sn);

  /* S8.15 through the unleased verb. */
  is_rc(s, tu_reg(s, "l-5", "k", LASH_OWNER_BOUND, 0), 0, "register l-5");
  rc = lash_complete_unleased(s, NULL, "l-5", LASH_FAILED, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, 0, "S8.15 unleased completion");
  tu_snap_take(s, "l-5", &sn);
  rc = lash_complete_unleased(s, NULL, "l-5", LASH_FAILED, out,
                              LASH_AUTH_WORKFLOW);
  is(rc, LASH_APPLIED, "S8.15 identical unleased repeat -> APPLIED");
  rc = lash_complete_unleased(s, NULL, "l-5", LASH_FAILED, out2,
                              LASH_AUTH_WORKFLOW);
  is(rc, LASH_SUPERSEDED_OUTCOME, "S8.15 other unleased outcome -> SUPERSEDED");
  rc = lash_complete_unleased(s, NULL, "l-5", LASH_COMPLETED, out,
                              LASH_AUTH_WORKFLOW);
  is(rc, LASH_SUPERSEDED_OUTCOME, "S8.15 other unleased status -> SUPERSEDED");
  ok(tu_snap_same(s, "l-5", &sn), "S8.15 none of them writes");
  tu_snap_free(&sn);
  rc = lash_lease_get(s, NULL, "l-5", &got);
  is_rc(s, rc, LASH_ENOENT, "unleased completion touched no lease");
  tu_check(s, "S8.5 check after fenced completions");
}

static void test_fence_growth(tu_env *e) {
  lash_store *s = e->s;
  lash_lease ls, got, x, y;
  uint64_t prev = 0;
  int i, rc, grows = 1, kept = 1;
  static const char *owners[] = {"A", "B", "A", "C"};

  is_rc(s, tu_reg(s, "l-6", "k", LASH_RERUNNABLE, 0), 0, "register l-6");
  for (i = 0; i < 12; i++) {
    rc = claim(s, "l-6", owners[i % 4], "inc", TTL, &ls);
    if (rc != 0 || ls.fence <= prev) {
      diag("cycle %d: rc %s fence %" PRIu64 " prev %" PRIu64, i,
           lash_err_name(rc), ls.fence, prev);
      grows = 0;
    }
    prev = ls.fence;
    if (i % 2 == 0) {
      lash_lease_release(s, NULL, &ls);
    } else {
      e->now = ls.expires_at; /* let it lapse instead */
    }
    memset(&got, 0, sizeof got);
    rc = lash_lease_get(s, NULL, "l-6", &got);
    if (rc != 0 || got.fence != prev) kept = 0;
  }
  ok(grows, "fence strictly grows over 12 claim/release/expire cycles");
  ok(kept, "fence survives every release and expiry");
  is(prev, 12, "fence counted every acquisition");

  /* S8.33 a lease of one process presented for another. */
  is_rc(s, tu_reg(s, "l-7", "k", LASH_RERUNNABLE, 0), 0, "register l-7");
  is_rc(s, claim(s, "l-7", "X", "x1", TTL, &x), 0, "X claims l-7");
  is_rc(s, claim(s, "l-6", "Y", "y1", TTL, &y), 0, "Y claims l-6");
  snprintf(y.process_id, sizeof y.process_id, "%s", "l-7");
  rc = lash_start(s, NULL, &y, NULL);
  is_rc(s, rc, LASH_ESUPERSEDED, "S8.33 l-6's lease presented for l-7");
  is(tu_status(s, "l-7"), LASH_PENDING, "S8.33 l-7 not started");
  ok(stored_is(s, "l-7", &x), "S8.33 l-7's lease untouched");
  rc = lash_lease_release(s, NULL, &y);
  is_rc(s, rc, 0, "release of a foreign token is a silent no-op");
  ok(stored_is(s, "l-7", &x), "... and frees nothing");
  tu_check(s, "S8.5 check after fence cycles");
}

/* Outcome bytes are opaque: a map32 header that claims 4 billion entries is
 * stored as given, never unpacked (it would ask msgpack-c for 256 GiB). */
static void test_opaque_outcome(tu_env *e) {
  static const unsigned char hostile[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
  lash_store *s = e->s;
  lash_lease ls;
  lash_record r;
  lash_bytes b;
  b.data = hostile;
  b.len = sizeof hostile;
  is(tu_reg(s, "opaque-1", "k", LASH_RERUNNABLE, 0), 0, "register opaque-1");
  memset(&ls, 0, sizeof ls);
  is(claim(s, "opaque-1", "w1", "inc", 30000, &ls), 0, "claim opaque-1");
  is(lash_start(s, NULL, &ls, NULL), 0, "start opaque-1");
  is(lash_complete(s, NULL, &ls, LASH_COMPLETED, b), 0,
     "complete with a map32 header claiming 2^32-1 entries");
  memset(&r, 0, sizeof r);
  is(lash_get(s, NULL, "opaque-1", &r, NULL), 0, "read it back");
  ok(r.outcome.len == sizeof hostile &&
         memcmp(r.outcome.data, hostile, sizeof hostile) == 0,
     "the outcome bytes are stored as given");
  lash_record_free(&r);
  tu_check(s, "check folds it without unpacking");
}

/* Owner liveness (issue 8 item 3): a live lease of an owner whose hold is
 * gone counts as lapsed. On LMDB and PostgreSQL (a session advisory lock,
 * issue 12) the holder is a child OS process killed with SIGKILL; on the
 * mem backend a second handle that closes. */
static void test_owner_gone(tu_env *e) {
  lash_store *s = e->s, *s2 = NULL;
  lash_lease a, b;
  pid_t pid = -1;
  int rc, alive;
  const int forked = !TU_MEM || TU_PG;

  is_rc(s, tu_reg(s, "og-1", "k", LASH_RERUNNABLE, 0), 0, "register og-1");
  is(lash_owner_alive(s, "OA", "oa1"), -1, "never-held owner: unknown");
  rc = lash_owner_hold(s, "", "x");
  is_rc(s, rc, LASH_EINVAL, "hold with an empty owner -> EINVAL");
  if (!forked) {
    char err[256];
    lash_store_opts o = e->opts;
    ok(tu_store_open(e->dir, &o, &s2, err, sizeof err) == 0, "second handle");
    is(lash_owner_hold(s2, "OA", "oa1"), 0, "hold OA on the second handle");
  } else {
    int p[2];
    char c;
    ok(pipe(p) == 0, "pipe");
    if ((pid = fork()) == 0) {
      lash_store *cs = NULL;
      char err[256];
      close(p[0]);
      /* the same target (PostgreSQL: the URI of this test's schema) */
      if (lash_store_open(lash_store_path(s), &e->opts, &cs, err, sizeof err) !=
              0 ||
          lash_owner_hold(cs, "OA", "oa1") != 0)
        _exit(2);
      if (write(p[1], "h", 1) != 1) _exit(3);
      for (;;)
        pause();
    }
    close(p[1]);
    ok(read(p[0], &c, 1) == 1, "the child holds OA");
    close(p[0]);
  }
  is(lash_owner_alive(s, "OA", "oa1"), 1, "held owner: alive");
  rc = claim(s, "og-1", "OA", "oa1", TTL, &a);
  is_rc(s, rc, 0, "OA claims og-1");
  ok(!a.owner_gone, "a fresh claim took nothing over");
  rc = claim(s, "og-1", "OB", "ob1", TTL, &b);
  is_rc(s, rc, LASH_EBUSY, "live owner: another claim is busy");
  msg_has(s, "alive", "... and the message says the owner is alive");
  rc = lash_owner_hold(s, "OA", "oa1");
  is_rc(s, rc, LASH_EBUSY, "a pair held elsewhere cannot be held again");
  if (!forked) {
    lash_store_close(s2);
  } else {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  alive = lash_owner_alive(s, "OA", "oa1");
  if (TU_PG) {
    /* The server ends the dead session (and its lock) once it reads the
     * closed socket: a moment after the kill. */
    int i;
    for (i = 0; i < 1000 && alive == 1; i++) {
      usleep(10000);
      alive = lash_owner_alive(s, "OA", "oa1");
    }
  }
  is(alive, 0, "after the holder died: gone");
  is(lash_owner_alive(s, "OA", "oa1"), 0,
     "... and still gone when asked again");
  rc = claim(s, "og-1", "OB", "ob1", TTL, &b);
  is_rc(s, rc, 0, "a gone owner's live lease is taken over at once");
  ok(b.owner_gone, "... owner_gone says so");
  is(b.fence, a.fence + 1, "... fenced: fence + 1");
  ok(b.token != a.token, "... with a fresh token");
  rc = lash_lease_renew(s, NULL, &a, TTL);
  is_rc(s, rc, LASH_ESUPERSEDED, "the dead owner's lease is superseded");
  is(lash_owner_hold(s, "OB", "ob1"), 0, "hold OB on this handle");
  is(lash_owner_alive(s, "OB", "ob1"), 1, "own hold: alive");
  lash_owner_release(s);
  ok(lash_owner_alive(s, "OB", "ob1") != 1, "released: no longer alive");
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_opaque_outcome(&e);
  test_claim(&e);
  test_fenced_completion(&e);
  test_fence_growth(&e);
  test_owner_gone(&e);
  tu_close(&e);
  return done_testing();
}
