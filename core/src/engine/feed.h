/* engine/feed.h - the cross-process change feed: notices commits made by
 * other OS processes (which the store's commit hook of this process never
 * reports) by polling the store-wide change seq on a backoff (poll_min
 * doubling to poll_max), woken early by the backend's wake source (a file
 * to watch, or a file descriptor). It reads lash_changes_since and tells
 * this engine's own writes (noted by the changes router) from foreign
 * ones, which it hands to its owner through a hook.
 *
 * Part: feed (floor 2). May call: the registry (lash.h), base/map, base/queue,
 * pump (handles), libuv. */
#ifndef LASH_ENGINE_FEED_H
#define LASH_ENGINE_FEED_H

#include "base/map.h"
#include "engine/pump.h"

#include <stdint.h>

/* One changed row as the feed read it (copied out of the read txn). */
typedef struct lash__feed_row {
  char id[LASH_ID_MAX + 1];
  char kind[LASH_NAME_MAX + 1]; /* "" when deleted */
  uint64_t last_seq;
  int status;
  int deleted;
  int cancel_requested;
} lash__feed_row;

typedef struct lash__feed_hooks {
  void *ud;
  /* Before a read: let the owner handle its own pending changes first, so
   * the feed can tell them from foreign ones. */
  void (*flush)(void *ud);
  /* A foreign change; @p from is the last event seq the feed knew for the
   * row (0: none), so events after it are new. */
  void (*foreign)(void *ud, const lash__feed_row *row, uint64_t from);
  /* Whether the feed is needed (waits parked, kinds declared, a worker
   * runs); asked on every lash__feed_update, with wanted_ud. */
  int (*wanted)(void *wanted_ud);
  void *wanted_ud;
} lash__feed_hooks;

typedef struct lash__fnode lash__fnode;

typedef struct lash__feed {
  lash_store *s;
  uv_loop_t *loop;
  lash__feed_hooks hooks;
  uv_timer_t timer;
  uv_fs_event_t fs_wake; /* LASH_WAKE_FILE */
  uv_poll_t fd_wake;     /* LASH_WAKE_FD */
  int fs_retry;          /* quick re-polls left after a wake */
  uint64_t polled_at;    /* loop ms of the last poll */
  int on;
  int closed;
  uint64_t min, max, interval;
  uint64_t seen;   /* store change seq at the last poll */
  uint64_t cursor; /* lash_changes_since cursor */
  lash__map map;   /* id -> lash__fnode: the last seq/status known here */
  lash__fnode *ffree;
  lash__feed_row *rows; /* one page, per engine */
  uint64_t changes;     /* foreign changes seen (stats.feed_changes) */
} lash__feed;

/* Sets up the timer and (unless no_wake) the store's wake source. 0 or
 * LASH_ENOMEM. */
int lash__feed_init(lash__feed *f, lash_store *s, uv_loop_t *loop,
                    lash__handles *hs, uint64_t poll_min, uint64_t poll_max,
                    int no_wake, const lash__feed_hooks *hooks);
/* Starts or stops polling as hooks.wanted says (and never once closed). */
void lash__feed_update(lash__feed *f);
/* Remembers this engine's own write of @p id (while polling), so the feed
 * does not report it as foreign. */
/* This engine's own commit moved the store from change_seq @p from to
 * @p to: skip reading those entries back when nothing came between. */
void lash__feed_own(lash__feed *f, uint64_t from, uint64_t to);
void lash__feed_note(lash__feed *f, const char *id, uint64_t last_seq,
                     int status);
/* Stops polling for good and closes the handles. */
void lash__feed_close(lash__feed *f);
void lash__feed_free(lash__feed *f);

#endif /* LASH_ENGINE_FEED_H */
