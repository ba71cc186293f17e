/* tap.h - a minimal TAP producer for the C tests (Tarantool's unit.h shape).
 *
 * plan(n) is optional: done_testing() prints the plan at the end. Each ok()
 * prints "ok N - name" or "not ok N - name" with the failing expression and
 * location as a diagnostic; is() (signed), isu() (unsigned: seqs, counts
 * past INT64_MAX) and iss() (strings, NULL-safe) print both sides. The exit
 * status of done_testing() is non-zero if any test failed. */
#ifndef LASH_TAP_H
#define LASH_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n_ = 0, tap_failed_ = 0;

static int tap_ok_(int cond, const char *expr, const char *file, int line,
                   const char *fmt, ...) {
  va_list ap;
  tap_n_++;
  printf("%s %d - ", cond ? "ok" : "not ok", tap_n_);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!cond) {
    tap_failed_++;
    printf("#   failed: %s\n#   at %s:%d\n", expr, file, line);
  }
  fflush(stdout);
  return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), #cond, __FILE__, __LINE__, __VA_ARGS__)
#define is(got, want, ...)                                                     \
  do {                                                                         \
    long long g_ = (long long)(got), w_ = (long long)(want);                   \
    if (!tap_ok_(g_ == w_, #got " == " #want, __FILE__, __LINE__,              \
                 __VA_ARGS__))                                                 \
      printf("#   got: %lld\n#   expected: %lld\n", g_, w_);                   \
  } while (0)
#define isu(got, want, ...)                                                    \
  do {                                                                         \
    unsigned long long g_ = (unsigned long long)(got),                         \
                       w_ = (unsigned long long)(want);                        \
    if (!tap_ok_(g_ == w_, #got " == " #want, __FILE__, __LINE__,              \
                 __VA_ARGS__))                                                 \
      printf("#   got: %llu\n#   expected: %llu\n", g_, w_);                   \
  } while (0)
#define iss(got, want, ...)                                                    \
  do {                                                                         \
    const char *g_ = (got), *w_ = (want);                                      \
    int c_ = (g_ == NULL && w_ == NULL) ||                                     \
             (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);                \
    if (!tap_ok_(c_, #got " eq " #want, __FILE__, __LINE__, __VA_ARGS__))      \
      printf("#   got: '%s'\n#   expected: '%s'\n", g_ ? g_ : "(null)",        \
             w_ ? w_ : "(null)");                                              \
  } while (0)
#define diag(...)                                                              \
  do {                                                                         \
    printf("# ");                                                              \
    printf(__VA_ARGS__);                                                       \
    printf("\n");                                                              \
  } while (0)

static inline int done_testing(void) {
  printf("1..%d\n", tap_n_);
  if (tap_failed_) printf("# %d of %d failed\n", tap_failed_, tap_n_);
  return tap_failed_ ? 1 : 0;
}

#endif
