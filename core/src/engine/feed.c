/* engine/feed.c - the cross-process change feed (see feed.h).
 *
 * Part: feed. May call: the registry (lash.h), base/map, base/queue, pump
 * (handles), libuv; its owner only through lash__feed_hooks. */
#include "engine/feed.h"

#include "base/queue.h"

#include <stdlib.h>
#include <string.h>

#define FEED_PAGE 256

/* Ids up to this long live in nodes of one size that are reused; longer
 * ones get a node of their own size (a worker that wrote a million
 * suspended rows holds a node for each). */
#define SMALL_ID 40

/* The last seq/status this engine knows for an id. */
struct lash__fnode {
  lash__mnode node;
  uint64_t last_seq;
  int status;
  int small; /* of the reused size (its id fits SMALL_ID) */
  struct lash__fnode *free_next;
  char id[];
};

#define FNODE(n) LASH__CONTAINER_OF(n, lash__fnode, node)

static lash__fnode *fget(lash__feed *f, const char *id) {
  lash__mnode *n = lash__map_find(&f->map, id);
  return n ? FNODE(n) : NULL;
}

static void to_freelist(lash__mnode *n, void *ud) {
  lash__feed *f = ud;
  if (!FNODE(n)->small) {
    free(FNODE(n));
    return;
  }
  FNODE(n)->free_next = f->ffree;
  f->ffree = FNODE(n);
}

static void fdel(lash__feed *f, lash__fnode *fn) {
  lash__map_del(&f->map, &fn->node);
  to_freelist(&fn->node, f);
}

void lash__feed_note(lash__feed *f, const char *id, uint64_t last_seq,
                     int status) {
  lash__fnode *fn;
  size_t len;
  if (!f->on) return;
  if ((fn = fget(f, id)) == NULL) {
    len = strlen(id);
    if (len < SMALL_ID && f->ffree != NULL) {
      fn = f->ffree;
      f->ffree = fn->free_next;
    } else if ((fn = malloc(sizeof *fn +
                            (len < SMALL_ID ? SMALL_ID : len + 1))) == NULL) {
      return;
    } else {
      fn->small = len < SMALL_ID;
    }
    memcpy(fn->id, id, len + 1);
    lash__mnode_key(&fn->node, fn->id);
    if (lash__map_put(&f->map, &fn->node) < 0) {
      free(fn);
      return;
    }
  }
  fn->last_seq = last_seq;
  fn->status = status;
}

void lash__feed_own(lash__feed *f, uint64_t from, uint64_t to) {
  if (!f->on || to <= from) return;
  /* Everything up to `from` was read and (from, to] is this engine's own
   * commit, already routed through the hook: nothing to read for it. */
  if (f->cursor == from) f->cursor = to;
  if (f->seen == from) f->seen = to;
}

/* ------------------------------------------------------------- reading */

typedef struct collect_ctx {
  lash__feed_row *rows;
  size_t n;
} collect_ctx;

static void copy_str(char *dst, size_t cap, const char *s) {
  size_t len = s != NULL ? strlen(s) : 0;
  if (len >= cap) len = cap - 1;
  if (len > 0) memcpy(dst, s, len);
  dst[len] = '\0';
}

static int collect(void *ud, const lash_change_entry *c) {
  collect_ctx *cc = ud;
  lash__feed_row *r;
  size_t len = strlen(c->id);
  if (cc->n >= FEED_PAGE || len > LASH_ID_MAX) return 0;
  r = &cc->rows[cc->n++];
  memcpy(r->id, c->id, len + 1);
  r->deleted = c->deleted;
  r->kind[0] = '\0';
  r->last_seq = 0;
  r->status = 0;
  r->cancel_requested = 0;
  if (!c->deleted && c->rec != NULL) {
    copy_str(r->kind, sizeof r->kind, c->rec->kind);
    r->last_seq = c->rec->last_seq;
    r->status = c->rec->status;
    r->cancel_requested = c->rec->cancel_requested;
  } else if (c->tomb != NULL) {
    r->status = c->tomb->status;
  }
  return 0;
}

static void row_do(lash__feed *f, const lash__feed_row *row) {
  lash__fnode *fn = fget(f, row->id);
  uint64_t from;
  if (!row->deleted && fn != NULL && fn->last_seq == row->last_seq &&
      fn->status == row->status) {
    /* This engine's own write, already handled through the hook. */
    if (LASH_IS_TERMINAL(row->status)) fdel(f, fn);
    return;
  }
  f->changes++;
  from = fn != NULL && fn->last_seq < row->last_seq ? fn->last_seq : 0;
  f->hooks.foreign(f->hooks.ud, row, from);
  fn = fget(f, row->id); /* the owner's callbacks may have changed the map */
  if (row->deleted || LASH_IS_TERMINAL(row->status)) {
    if (fn != NULL) fdel(f, fn);
  } else {
    lash__feed_note(f, row->id, row->last_seq, row->status);
  }
}

static void feed_read(lash__feed *f) {
  collect_ctx cc;
  size_t i;
  int n;
  do {
    uint64_t next = f->cursor;
    cc.rows = f->rows;
    cc.n = 0;
    n = lash_changes_since(f->s, NULL, f->cursor, FEED_PAGE, collect, &cc,
                           &next);
    if (n < 0) return;
    f->cursor = next;
    for (i = 0; i < cc.n && f->on; i++)
      row_do(f, &cc.rows[i]);
  } while (n == FEED_PAGE && f->on);
}

/* ------------------------------------------------------------- polling */

static void poll_cb(uv_timer_t *t) {
  lash__feed *f = LASH__CONTAINER_OF(t, lash__feed, timer);
  uint64_t cs;
  if (!f->on) return;
  f->polled_at = uv_now(f->loop);
  f->hooks.flush(f->hooks.ud);
  cs = lash_change_seq(f->s);
  if (cs != 0 && cs != f->seen) {
    f->seen = cs;
    feed_read(f);
    f->interval = f->min;
    f->fs_retry = 0;
  } else if (f->fs_retry > 0) {
    f->fs_retry--;
    if (f->on) uv_timer_start(&f->timer, poll_cb, 1, 0);
    return;
  } else {
    f->interval *= 2;
    if (f->interval > f->max) f->interval = f->max;
  }
  if (f->on) uv_timer_start(&f->timer, poll_cb, f->interval, 0);
}

/* Another process committed (or may have): poll now, or 1 ms after the
 * last poll (a store that commits many times a millisecond is read once a
 * millisecond), not at the next backoff step: the waiting row of another
 * worker, a row to claim, wait for no poll interval. */
static void woken(lash__feed *f) {
  uint64_t now, since;
  if (!f->on || f->closed) return;
  now = uv_now(f->loop);
  since = now - f->polled_at;
  f->interval = f->min;
  /* The wake can come before the commit is readable (LMDB writes the
   * data pages, syncs, then the meta page): re-poll quickly a few times
   * rather than wait a whole backoff step. */
  f->fs_retry = 4;
  uv_timer_start(&f->timer, poll_cb, since >= 1 ? 0 : 1, 0);
}

static void fs_wake_cb(uv_fs_event_t *h, const char *name, int events,
                       int status) {
  (void)name;
  (void)events;
  if (status < 0) return;
  woken(LASH__CONTAINER_OF(h, lash__feed, fs_wake));
}

static void fd_wake_cb(uv_poll_t *h, int status, int events) {
  lash__feed *f = LASH__CONTAINER_OF(h, lash__feed, fd_wake);
  (void)events;
  if (status < 0) return;
  if (lash_store_wake_consume(f->s) > 0) woken(f);
}

/* A faster cross-process wake than the poll backoff: the backend's wake
 * source. The backoff stays the fallback; the watch does not keep the loop
 * alive. */
static void wake_start(lash__feed *f, lash__handles *hs) {
  lash_wake_source ws;
  if (lash_store_wake_source(f->s, &ws) < 0) return;
  if (ws.kind == LASH_WAKE_FILE) {
    uv_fs_event_init(f->loop, &f->fs_wake);
    lash__handle_opened(hs, (uv_handle_t *)&f->fs_wake);
    if (uv_fs_event_start(&f->fs_wake, fs_wake_cb, ws.path, 0) == 0)
      uv_unref((uv_handle_t *)&f->fs_wake);
  } else if (ws.kind == LASH_WAKE_FD && ws.fd >= 0) {
    if (uv_poll_init(f->loop, &f->fd_wake, ws.fd) != 0) return;
    lash__handle_opened(hs, (uv_handle_t *)&f->fd_wake);
    if (uv_poll_start(&f->fd_wake, UV_READABLE, fd_wake_cb) == 0)
      uv_unref((uv_handle_t *)&f->fd_wake);
  }
}

int lash__feed_init(lash__feed *f, lash_store *s, uv_loop_t *loop,
                    lash__handles *hs, uint64_t poll_min, uint64_t poll_max,
                    int no_wake, const lash__feed_hooks *hooks) {
  memset(f, 0, sizeof *f);
  f->s = s;
  f->loop = loop;
  f->hooks = *hooks;
  f->min = poll_min;
  f->max = poll_max;
  if ((f->rows = malloc(FEED_PAGE * sizeof *f->rows)) == NULL)
    return LASH_ENOMEM;
  uv_timer_init(loop, &f->timer);
  lash__handle_opened(hs, (uv_handle_t *)&f->timer);
  if (!no_wake) wake_start(f, hs);
  return 0;
}

void lash__feed_update(lash__feed *f) {
  int want = !f->closed && f->hooks.wanted(f->hooks.wanted_ud);
  if (want && !f->on) {
    f->on = 1;
    f->seen = lash_change_seq(f->s);
    f->cursor = f->seen;
    f->interval = f->min;
    uv_timer_start(&f->timer, poll_cb, f->interval, 0);
  } else if (!want && f->on) {
    f->on = 0;
    uv_timer_stop(&f->timer);
    lash__map_clear(&f->map, to_freelist, f);
  }
}

void lash__feed_close(lash__feed *f) {
  f->closed = 1;
  f->on = 0;
  lash__handle_close((uv_handle_t *)&f->timer);
  lash__handle_close((uv_handle_t *)&f->fs_wake);
  lash__handle_close((uv_handle_t *)&f->fd_wake);
}

static void fnode_free(lash__mnode *n, void *ud) {
  (void)ud;
  free(FNODE(n));
}

void lash__feed_free(lash__feed *f) {
  lash__fnode *fn;
  lash__map_clear(&f->map, fnode_free, NULL);
  lash__map_free(&f->map);
  while ((fn = f->ffree) != NULL) {
    f->ffree = fn->free_next;
    free(fn);
  }
  free(f->rows);
  f->rows = NULL;
}
