/* test_testhooks.c - the allocator hook (base/alloc.h) and the
 * error-injection points (base/inject.h).
 *
 * In a normal build it checks that the wrappers behave like libc and that
 * LASH_INJECT is 0 even with LASH_INJECT_DIE set. In a LASH_TEST_HOOKS
 * build (scripts/test's ASan and TSan builds) it also proves the hooks:
 * the Nth allocation fails, an operation retried with a rising budget fails
 * cleanly until it succeeds, a replaced allocator sees every call, an armed
 * point returns its code on schedule, and real child processes (fork alone,
 * and fork + exec of this test) die at the point LASH_INJECT_DIE names. */
#define _GNU_SOURCE 1
#include "base/alloc.h"
#include "base/inject.h"

#include "lash.h"
#include "tap.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a child runs: hits "test.other" once, then "test.die" three times,
 * then exits 0 (it only gets there if LASH_INJECT_DIE did not end it). */
static int child_main(void) {
  int i;
  LASH_INJECT("test.other");
  for (i = 0; i < 3; i++)
    LASH_INJECT("test.die");
  return 0;
}

/* Forks a child that sets LASH_INJECT_DIE to @p die (NULL: unset) and runs
 * child_main, through exec of this program when @p exec_self. Returns the
 * wait status, or -1. */
static int run_child(const char *die, int exec_self) {
  int st = 0;
  pid_t pid;
  fflush(stdout);
  if ((pid = fork()) < 0) return -1;
  if (pid == 0) {
    if (die != NULL)
      setenv("LASH_INJECT_DIE", die, 1);
    else
      unsetenv("LASH_INJECT_DIE");
    if (exec_self) {
      execl("/proc/self/exe", "test_testhooks", "--child", (char *)NULL);
      _exit(127);
    }
    _exit(child_main());
  }
  if (waitpid(pid, &st, 0) != pid) return -1;
  return st;
}

static void test_wrappers(void) {
  char *s = lash__strdup("hello");
  int *v = lash__calloc(4, sizeof *v);
  char *p = lash__malloc(8);
  iss(s, "hello", "lash__strdup copies");
  ok(v != NULL && v[0] == 0 && v[3] == 0, "lash__calloc zeroes");
  ok(p != NULL, "lash__malloc");
  p = lash__realloc(p, 64);
  ok(p != NULL, "lash__realloc grows");
  ok(lash__realloc(p, 0) == NULL, "lash__realloc(p, 0) frees and is NULL");
  ok(lash__strdup(NULL) == NULL, "lash__strdup(NULL) is NULL");
  lash__free(NULL);
  lash__free(s);
  lash__free(v);
}

#ifdef LASH_TEST_HOOKS

/* An operation with three allocations that cleans up on failure: the
 * shape OOM tests loop over. */
static int make_three(char **out) {
  char *a = NULL, *b = NULL, *c = NULL;
  if ((a = lash__strdup("one")) == NULL) goto fail;
  if ((b = lash__malloc(16)) == NULL) goto fail;
  if ((c = lash__realloc(b, 32)) == NULL) goto fail;
  b = NULL;
  lash__free(a);
  *out = c;
  return 0;
fail:
  lash__free(a);
  lash__free(b);
  return LASH_ENOMEM;
}

static int64_t live(void) {
  lash__alloc_stats st;
  lash__alloc_get_stats(&st);
  return st.live;
}

static void test_fail_nth(void) {
  lash__alloc_stats a, b;
  void *p1, *p2, *p3, *p4;
  int64_t base = live();
  int n, rc = -1;
  char *r = NULL;

  ok(lash__calloc(SIZE_MAX / 2, 4) == NULL, "lash__calloc overflow is NULL");
  lash__alloc_get_stats(&a);
  lash__alloc_fail(2, 1); /* the 3rd allocation fails, then all succeed */
  p1 = lash__malloc(1);
  p2 = lash__calloc(1, 1);
  p3 = lash__malloc(1);
  p4 = lash__strdup("x");
  lash__alloc_get_stats(&b);
  ok(p1 != NULL && p2 != NULL, "allocations 1 and 2 succeed");
  ok(p3 == NULL, "allocation 3 fails");
  ok(p4 != NULL, "allocation 4 succeeds again (count 1)");
  is(b.calls - a.calls, 4, "4 calls counted");
  is(b.failed - a.failed, 1, "1 failure counted");
  is(b.live - base, 3, "3 allocations live");
  lash__free(p1);
  lash__free(p2);
  lash__free(p4);
  is(live(), base, "all freed");

  lash__alloc_fail(0, 0); /* every allocation fails until turned off */
  p1 = lash__malloc(1);
  p2 = lash__strdup("y");
  lash__alloc_fail(-1, 0);
  p3 = lash__malloc(1);
  ok(p1 == NULL && p2 == NULL, "count 0: every later allocation fails");
  ok(p3 != NULL, "skip -1 turns failures off");
  lash__free(p3);

  /* libuv's test-loop-oom shape: raise the budget until it succeeds. */
  for (n = 0; n < 10; n++) {
    lash__alloc_fail(n, 1);
    rc = make_three(&r);
    lash__alloc_fail(-1, 0);
    if (rc == 0) break;
    is(rc, LASH_ENOMEM, "make_three fails cleanly at allocation %d", n + 1);
    is(live(), base, "nothing leaked after failing at allocation %d", n + 1);
  }
  is(rc, 0, "make_three succeeds once 3 allocations are allowed");
  is(n, 3, "it needed exactly 3 allocations");
  lash__free(r);
  is(live(), base, "make_three's result freed: nothing live");
}

typedef struct counting {
  int mallocs, callocs, reallocs, frees;
} counting;

static void *c_malloc(void *ud, size_t n) {
  ((counting *)ud)->mallocs++;
  return malloc(n);
}
static void *c_calloc(void *ud, size_t k, size_t n) {
  ((counting *)ud)->callocs++;
  return calloc(k, n);
}
static void *c_realloc(void *ud, void *p, size_t n) {
  ((counting *)ud)->reallocs++;
  return realloc(p, n);
}
static void c_free(void *ud, void *p) {
  ((counting *)ud)->frees++;
  free(p);
}

static void test_replace(void) {
  counting c = {0, 0, 0, 0};
  lash__allocator a = {&c, c_malloc, c_calloc, c_realloc, c_free};
  lash__allocator bad = {&c, c_malloc, NULL, c_realloc, c_free};
  char *s;
  void *p;
  is(lash__set_allocator(&bad), LASH_EINVAL, "an allocator without calloc");
  is(lash__set_allocator(&a), 0, "install a counting allocator");
  s = lash__strdup("abc");
  p = lash__calloc(2, 8);
  s = lash__realloc(s, 100);
  lash__free(s);
  lash__free(p);
  lash__free(NULL);
  is(lash__set_allocator(NULL), 0, "restore the default");
  is(c.mallocs, 1, "strdup went through malloc_fn");
  is(c.callocs, 1, "calloc_fn");
  is(c.reallocs, 1, "realloc_fn");
  is(c.frees, 2, "free_fn, not for NULL");
}

static void test_armed(void) {
  int got[5], i;
  lash__inject_reset();
  is(LASH_INJECT("test.point"), 0, "an unarmed point passes");
  isu(lash__inject_hits("test.point"), 0, "an unarmed point counts no hits");
  is(lash__inject_arm("test.point", LASH_EIO, 1, 2), 0, "arm test.point");
  for (i = 0; i < 5; i++)
    got[i] = LASH_INJECT("test.point");
  ok(got[0] == 0 && got[1] == LASH_EIO && got[2] == LASH_EIO && got[3] == 0 &&
         got[4] == 0,
     "skip 1, then EIO twice, then passes (%d %d %d %d %d)", got[0], got[1],
     got[2], got[3], got[4]);
  isu(lash__inject_hits("test.point"), 5, "5 hits counted");
  is(LASH_INJECT("test.elsewhere"), 0, "another point is not affected");

  is(lash__inject_arm("test.point", LASH_EFULL, 0, 0), 0, "re-arm: every hit");
  ok(LASH_INJECT("test.point") == LASH_EFULL &&
         LASH_INJECT("test.point") == LASH_EFULL,
     "count 0: every hit fails");
  isu(lash__inject_hits("test.point"), 2, "re-arming zeroed the hits");
  is(lash__inject_arm("test.count", 0, 0, 0), 0, "rc 0 only counts");
  LASH_INJECT("test.count");
  LASH_INJECT("test.count");
  isu(lash__inject_hits("test.count"), 2, "2 hits counted, none failed");
  is(lash__inject_arm("", LASH_EIO, 0, 0), LASH_EINVAL, "an empty name");
  is(lash__inject_arm(NULL, LASH_EIO, 0, 0), LASH_EINVAL, "a NULL name");
  lash__inject_reset();
  is(LASH_INJECT("test.point"), 0, "reset disarms");
}

static void test_die(void) {
  int st;
  st = run_child(NULL, 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no LASH_INJECT_DIE: exits 0");
  st = run_child("test.die", 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 99,
     "fork: test.die ends the child with _exit(99) (status %#x)", st);
  st = run_child("test.die@3:kill", 0);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
     "fork: test.die@3:kill: SIGKILL at the 3rd hit (status %#x)", st);
  st = run_child("test.die@4", 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "fork: test.die@4 is never reached (3 hits)");
  st = run_child("test.di", 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a prefix of a name is not it");
  st = run_child("test.die@2", 1);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 99,
     "fork + exec: test.die@2 ends the new process with 99 (status %#x)", st);
  st = run_child("test.die:kill", 1);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
     "fork + exec: test.die:kill raises SIGKILL (status %#x)", st);
}

#else /* !LASH_TEST_HOOKS */

static void test_off(void) {
  int st;
  setenv("LASH_INJECT_DIE", "test.die", 1);
  is(LASH_INJECT("test.die"), 0, "LASH_INJECT is 0 without LASH_TEST_HOOKS");
  unsetenv("LASH_INJECT_DIE");
  st = run_child("test.die:kill", 1);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "a child with LASH_INJECT_DIE set runs to the end (status %#x)", st);
  diag("built without LASH_TEST_HOOKS: the hooks themselves are not tested");
}

#endif

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main();
  test_wrappers();
#ifdef LASH_TEST_HOOKS
  test_fail_nth();
  test_replace();
  test_armed();
  test_die();
#else
  test_off();
#endif
  return done_testing();
}
