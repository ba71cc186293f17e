/* base/testhooks.c - the replaceable allocator (base/alloc.h) and the
 * error-injection points (base/inject.h) of a LASH_TEST_HOOKS build.
 *
 * Compiled in every build; without LASH_TEST_HOOKS it holds nothing, and
 * the headers' inline wrappers are all there is. */
#ifdef LASH_TEST_HOOKS

#define _GNU_SOURCE 1
#include "base/alloc.h"
#include "base/inject.h"

#include "lash.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ allocator */

/* The default allocator: libc, with counters and a failure schedule. The
 * counters are atomic so that a later helper thread (heartbeat) can
 * allocate without a data race; the schedule is meant to be set while one
 * thread runs. */
static atomic_uint_fast64_t alloc_calls, alloc_failed;
static atomic_int_fast64_t alloc_live;
static atomic_long fail_skip = -1; /* < 0: no failures scheduled */
static atomic_long fail_left;      /* failures still to give; 0: all */

/* 1 if this allocation is to fail. */
static int alloc_should_fail(void) {
  long skip;
  atomic_fetch_add(&alloc_calls, 1);
  skip = atomic_load(&fail_skip);
  if (skip < 0) return 0;
  if (skip > 0) {
    atomic_fetch_sub(&fail_skip, 1);
    return 0;
  }
  /* skip == 0: in the failing window. */
  if (atomic_load(&fail_left) > 0 && atomic_fetch_sub(&fail_left, 1) == 1)
    atomic_store(&fail_skip, -1); /* that was the last one */
  atomic_fetch_add(&alloc_failed, 1);
  return 1;
}

static void *def_malloc(void *ud, size_t size) {
  void *p;
  (void)ud;
  if (alloc_should_fail()) return NULL;
  if ((p = malloc(size)) != NULL) atomic_fetch_add(&alloc_live, 1);
  return p;
}

static void *def_calloc(void *ud, size_t count, size_t size) {
  void *p;
  (void)ud;
  if (alloc_should_fail()) return NULL;
  if ((p = calloc(count, size)) != NULL) atomic_fetch_add(&alloc_live, 1);
  return p;
}

static void *def_realloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (alloc_should_fail()) return NULL;
  return realloc(ptr, size); /* the block stays one live allocation */
}

static void def_free(void *ud, void *ptr) {
  (void)ud;
  atomic_fetch_sub(&alloc_live, 1);
  free(ptr);
}

static const lash__allocator default_allocator = {NULL, def_malloc, def_calloc,
                                                  def_realloc, def_free};
static lash__allocator allocator = {NULL, def_malloc, def_calloc, def_realloc,
                                    def_free};

int lash__set_allocator(const lash__allocator *a) {
  if (a == NULL) {
    allocator = default_allocator;
    return 0;
  }
  if (a->malloc_fn == NULL || a->calloc_fn == NULL || a->realloc_fn == NULL ||
      a->free_fn == NULL)
    return LASH_EINVAL;
  allocator = *a;
  return 0;
}

void lash__alloc_fail(long skip, long count) {
  atomic_store(&fail_skip, -1);
  atomic_store(&fail_left, count < 0 ? 0 : count);
  atomic_store(&fail_skip, skip);
}

void lash__alloc_get_stats(lash__alloc_stats *out) {
  out->calls = atomic_load(&alloc_calls);
  out->failed = atomic_load(&alloc_failed);
  out->live = atomic_load(&alloc_live);
}

void *lash__malloc(size_t size) {
  return allocator.malloc_fn(allocator.ud, size);
}

void *lash__calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  return allocator.calloc_fn(allocator.ud, count, size);
}

void *lash__realloc(void *ptr, size_t size) {
  if (ptr == NULL) return lash__malloc(size);
  if (size == 0) {
    lash__free(ptr);
    return NULL;
  }
  return allocator.realloc_fn(allocator.ud, ptr, size);
}

void lash__free(void *ptr) {
  if (ptr != NULL) allocator.free_fn(allocator.ud, ptr);
}

char *lash__strdup(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  if ((p = lash__malloc(n)) != NULL) memcpy(p, s, n);
  return p;
}

/* ------------------------------------------------------ injection points */

#define INJECT_MAX 64
#define INJECT_NAME_MAX 63

typedef struct inject_point {
  char name[INJECT_NAME_MAX + 1]; /* "" = free slot */
  int rc;
  unsigned long skip, count, hits;
} inject_point;

static pthread_mutex_t inject_mu = PTHREAD_MUTEX_INITIALIZER;
static inject_point points[INJECT_MAX];
static unsigned long die_hits; /* hits of the LASH_INJECT_DIE point */

static inject_point *inject_find(const char *point) {
  int i;
  for (i = 0; i < INJECT_MAX; i++)
    if (points[i].name[0] != '\0' && strcmp(points[i].name, point) == 0)
      return &points[i];
  return NULL;
}

/* Parses LASH_INJECT_DIE (NAME[@N][:kill]) and ends the process when
 * @p point is NAME and this is its Nth hit. Called under inject_mu. */
static void inject_maybe_die(const char *point) {
  const char *v = getenv("LASH_INJECT_DIE"), *end, *at, *colon;
  unsigned long nth = 1;
  size_t len;
  int kill_it = 0;
  char msg[160];
  ssize_t w;
  if (v == NULL || *v == '\0') return;
  colon = strchr(v, ':');
  at = strchr(v, '@');
  end = at != NULL ? at : colon != NULL ? colon : v + strlen(v);
  len = (size_t)(end - v);
  if (len != strlen(point) || strncmp(v, point, len) != 0) return;
  if (at != NULL) nth = strtoul(at + 1, NULL, 10);
  if (colon != NULL) kill_it = strcmp(colon + 1, "kill") == 0;
  if (++die_hits < nth) return;
  len = (size_t)snprintf(msg, sizeof msg,
                         "lash: LASH_INJECT_DIE: dying at %s (hit %lu)\n",
                         point, die_hits);
  if (len >= sizeof msg) len = sizeof msg - 1;
  w = write(STDERR_FILENO, msg, len); /* best effort: we die either way */
  (void)w;
  if (kill_it) raise(SIGKILL);
  _exit(99);
}

int lash__inject(const char *point) {
  inject_point *p;
  int rc = 0;
  if (point == NULL) return 0;
  pthread_mutex_lock(&inject_mu);
  inject_maybe_die(point);
  if ((p = inject_find(point)) != NULL) {
    p->hits++;
    if (p->skip > 0) {
      p->skip--;
    } else if (p->rc != 0) {
      rc = p->rc;
      if (p->count > 0 && --p->count == 0) p->rc = 0; /* window done */
    }
  }
  pthread_mutex_unlock(&inject_mu);
  return rc;
}

int lash__inject_arm(const char *point, int rc, unsigned long skip,
                     unsigned long count) {
  inject_point *p;
  int i;
  if (point == NULL || *point == '\0' || strlen(point) > INJECT_NAME_MAX)
    return LASH_EINVAL;
  pthread_mutex_lock(&inject_mu);
  if ((p = inject_find(point)) == NULL)
    for (i = 0; i < INJECT_MAX && p == NULL; i++)
      if (points[i].name[0] == '\0') p = &points[i];
  if (p == NULL) {
    pthread_mutex_unlock(&inject_mu);
    return LASH_EINVAL;
  }
  snprintf(p->name, sizeof p->name, "%s", point);
  p->rc = rc;
  p->skip = skip;
  p->count = count;
  p->hits = 0;
  pthread_mutex_unlock(&inject_mu);
  return 0;
}

unsigned long lash__inject_hits(const char *point) {
  inject_point *p;
  unsigned long n = 0;
  if (point == NULL) return 0;
  pthread_mutex_lock(&inject_mu);
  if ((p = inject_find(point)) != NULL) n = p->hits;
  pthread_mutex_unlock(&inject_mu);
  return n;
}

void lash__inject_reset(void) {
  pthread_mutex_lock(&inject_mu);
  memset(points, 0, sizeof points);
  die_hits = 0;
  pthread_mutex_unlock(&inject_mu);
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int lash__testhooks_unused;

#endif /* LASH_TEST_HOOKS */
