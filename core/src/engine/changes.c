/* engine/changes.c - the router (see changes.h).
 *
 * Part: changes. May call: the registry (lash.h), hub, feed, runs, admit,
 * pump; the host through runner->event. */
#include "engine/changes.h"

#include <stdlib.h>
#include <string.h>

static void commit_hook(void *ud, const lash_change *changes, size_t n) {
  lash__changes *c = ud;
  uint64_t from, to;
  size_t i;
  lash_store_commit_range(c->s, &from, &to);
  lash__feed_own(c->feed, from, to);
  if (c->head > 0 && c->head == c->n) c->head = c->n = 0;
  if (c->n + n > c->cap) {
    size_t cap = c->cap ? c->cap : 64;
    lash__chg_copy *nv;
    while (cap < c->n + n)
      cap *= 2;
    nv = realloc(c->v, cap * sizeof *nv);
    if (nv == NULL)
      return; /* durable anyway; waiters fall back to their backoff */
    c->v = nv;
    c->cap = cap;
  }
  for (i = 0; i < n; i++) {
    lash__chg_copy *d = &c->v[c->n++];
    size_t len = strlen(changes[i].id);
    if (len > LASH_ID_MAX) len = LASH_ID_MAX;
    memcpy(d->id, changes[i].id, len);
    d->id[len] = '\0';
    d->first_seq = changes[i].first_seq;
    d->last_seq = changes[i].last_seq;
    d->status = changes[i].status;
    d->registered = changes[i].registered;
    d->cancel_requested = changes[i].cancel_requested;
    d->woken = changes[i].woken;
    d->wake_at = changes[i].wake_at;
  }
  lash__pump_kick(c->pump);
}

/* ------------------------------------------------------ the event sink */

typedef struct sink_ctx {
  const lash_runner *runner;
  uint64_t last;
} sink_ctx;

static int sink_cb(void *ud, const lash_event *ev) {
  sink_ctx *k = ud;
  if (ev->seq > k->last) return 1;
  k->runner->event(k->runner->ud, ev);
  return 0;
}

/* Feeds the events of @p id with after < seq <= last (at most @p limit
 * read, 0: no limit) to runner->event, if there is one. The one
 * forwarder, for this engine's commits and for foreign ones. */
static void sink(lash__changes *c, const char *id, uint64_t after,
                 uint64_t last, size_t limit) {
  sink_ctx k;
  if (c->runs->runner.event == NULL || last <= after) return;
  k.runner = &c->runs->runner;
  k.last = last;
  lash_events_after(c->s, NULL, id, after, limit, sink_cb, &k);
}

/* ------------------------------------------------------------- routing */

void lash__changes_process(lash__changes *c) {
  while (c->head < c->n) {
    /* Copy: the sink may commit, which appends to (and moves) c->v. */
    lash__chg_copy d = c->v[c->head++];
    lash_run *run = lash__run_find(c->runs, d.id);
    lash__hub_publish(c->hub, d.id);
    /* Also for a run admitted by this very commit: a cancel request written
     * later in the same transaction is in d.cancel_requested only. */
    if (run != NULL && !run->cancelled && d.cancel_requested)
      lash__run_cancel(run);
    if (d.first_seq > 0)
      sink(c, d.id, d.first_seq - 1, d.last_seq,
           (size_t)(d.last_seq - d.first_seq + 1));
    /* A registration this engine already admitted (lash_engine_admit in the
     * same commit) needs no drive; a suspended row woken by this commit
     * (a signal, a child's end, a timer) is claimable again: drive. */
    if ((d.registered || d.woken) && run == NULL) lash__admit_request(c->admit);
    /* issue 13: a row re-queued by lash_retry is claimable again; one put
     * on the timer index (a retry wait, a delay) is the timer part's. */
    if (!d.registered && !d.woken && run == NULL && d.status == LASH_PENDING &&
        d.wake_at == 0)
      lash__admit_request(c->admit);
    if (d.wake_at > 0 && c->on_timer != NULL)
      c->on_timer(c->timer_ud, d.wake_at);
    lash__feed_note(c->feed, d.id, d.last_seq, d.status);
  }
  if (c->head == c->n) c->head = c->n = 0;
}

void lash__changes_flush(void *ud) {
  lash__changes_process(ud);
}

void lash__changes_foreign(void *ud, const lash__feed_row *row, uint64_t from) {
  lash__changes *c = ud;
  lash_run *run;
  lash__hub_publish(c->hub, row->id);
  if (row->deleted) return;
  run = lash__run_find(c->runs, row->id);
  /* A change to a row this engine runs (a signal to a parked body) is no
   * new work to claim: no claim page (and its commit) before the body
   * resumes. */
  if (run == NULL && !LASH_IS_TERMINAL(row->status) &&
      lash__admit_declared(c->admit, row->kind))
    lash__admit_request(c->admit);
  if (run != NULL && row->cancel_requested && !run->cancelled)
    lash__run_cancel(run);
  sink(c, row->id, from, row->last_seq, 0);
}

void lash__changes_init(lash__changes *c, lash_store *s, lash__pump *pump,
                        lash__hub *hub, lash__feed *feed, lash__runs *runs,
                        lash__admit *admit) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->pump = pump;
  c->hub = hub;
  c->feed = feed;
  c->runs = runs;
  c->admit = admit;
  lash_store_on_commit(s, commit_hook, c);
}

void lash__changes_free(lash__changes *c) {
  lash_store_on_commit(c->s, NULL, NULL);
  free(c->v);
  c->v = NULL;
}
