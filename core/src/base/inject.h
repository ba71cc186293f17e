/* base/inject.h - named error-injection points (private).
 *
 * LASH_INJECT("point.name") is an int expression placed where a failure can
 * happen for real (a commit, a write, a rename):
 *
 *   if ((rc = LASH_INJECT("lmdb.commit")) < 0) goto out;
 *
 * In a normal build it is 0 and compiles away. In a build with
 * -DLASH_TEST_HOOKS=ON it calls lash__inject(point), which
 *   (a) returns the code a test armed for that point with lash__inject_arm
 *       (0 when the point is not armed), and
 *   (b) ends the process right there when the environment variable
 *       LASH_INJECT_DIE names the point, for crash tests with real OS
 *       processes. Its value is NAME[@N][:kill]: at the Nth hit of NAME in
 *       this process (default the first) the process writes one line to
 *       stderr and calls _exit(99), or with ":kill" raises SIGKILL (no
 *       handler, no atexit, no flush: as if killed from outside).
 *
 * Names are short dotted strings ("lmdb.commit", "writer.flush"); a point
 * name is part of the test contract, so keep it stable once a test uses it.
 * The commit points of the crash matrix (spec/crash_spec.lua):
 *   engine.after_claim, engine.after_start     admit.c, in the admission txn
 *   writer.between_writes, writer.before_commit, writer.after_commit
 *   txn.before_commit, txn.after_commit        registry/txn.c, the backend
 *                                              commit (after: hook not run)
 *   engine.before_complete, engine.after_complete   runs.c, in the txn
 *   engine.after_finish                        runs.c, after the commit
 *   engine.renew, engine.before_release        renew.c / runs.c
 * Points whose armed code changes behaviour
 * (core/test/test_engine_reconnect.c): writer.commit    writer.c: armed rc < 0,
 * the writer aborts the turn's transaction instead of committing it and takes
 * rc as the commit's result (a commit lost with its connection) store.reopens
 * registry/store.c: armed rc > 0, lash_store_reopens says 1 (any store behaves
 * as one that reconnects) pg.commit_lost   pg/txn.c: armed rc < 0, a write's
 * connection is closed right after the server committed it (core.store.pg)
 */
#ifndef LASH_BASE_INJECT_H
#define LASH_BASE_INJECT_H

#ifdef LASH_TEST_HOOKS

/* What LASH_INJECT calls. @return 0 or the armed code. Thread-safe. */
int lash__inject(const char *point);

/* Arms @p point: after @p skip more hits pass (returning 0), the next
 * @p count hits return @p rc (count 0: every later hit), then it passes
 * again. rc 0 only counts hits. Re-arming a point replaces its schedule and
 * zeroes its hit count. At most 64 points are armed at once.
 * @return 0, or LASH_EINVAL (-1): NULL or over-long name, table full. */
int lash__inject_arm(const char *point, int rc, unsigned long skip,
                     unsigned long count);

/* Hits of an armed @p point since it was armed (0 if not armed). */
unsigned long lash__inject_hits(const char *point);

/* Disarms every point. */
void lash__inject_reset(void);

#define LASH_INJECT(point) lash__inject(point)

#else

/* A function, not the bare constant 0, so that LASH_INJECT("x"); as a
 * statement draws no -Wunused-value warning. */
static inline int lash__inject_none(const char *point) {
  (void)point;
  return 0;
}
#define LASH_INJECT(point) lash__inject_none(point)

#endif /* LASH_TEST_HOOKS */

#endif /* LASH_BASE_INJECT_H */
