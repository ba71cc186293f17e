/* engine/hub.h - the in-process change hub (DESIGN 4, SEMANTICS 4):
 * process id -> its subscribers.
 *
 * A publish only marks: it moves the id's subscribers to the ready list
 * and kicks the pump; whoever owns the subscribers (the awaiter) takes the
 * ready list from a loop callback, in bounded batches, so a waiter never
 * runs inside the writer's stack. Entries exist only while they have
 * subscribers.
 *
 * Part: hub (floor 2). May call: base/map, base/queue, pump. */
#ifndef LASH_ENGINE_HUB_H
#define LASH_ENGINE_HUB_H

#include "base/map.h"
#include "base/queue.h"
#include "engine/pump.h"

#include <stddef.h>

typedef struct lash__hub_entry lash__hub_entry;

/* A subscription, embedded in the subscriber. */
typedef struct lash__hub_sub {
  lash__q link;       /* the entry's subscribers */
  lash__q ready_link; /* the hub's ready list, or a taken batch */
  lash__hub_entry *entry;
  int ready;
} lash__hub_sub;

typedef struct lash__hub {
  lash__map map; /* id -> lash__hub_entry */
  lash__q ready; /* subscriptions published, not yet taken */
  lash__pump *pump;
} lash__hub;

static inline void lash__hub_sub_init(lash__hub_sub *s) {
  lash__q_init(&s->link);
  lash__q_init(&s->ready_link);
  s->entry = NULL;
  s->ready = 0;
}

void lash__hub_init(lash__hub *h, lash__pump *pump);
void lash__hub_free(lash__hub *h);
/* Subscribes @p s to @p id (idempotent). 0 or LASH_ENOMEM. */
int lash__hub_subscribe(lash__hub *h, lash__hub_sub *s, const char *id);
/* Unsubscribes @p s and takes it off the ready list. Idempotent. */
void lash__hub_unsubscribe(lash__hub *h, lash__hub_sub *s);
/* Marks @p id's subscribers ready. */
void lash__hub_publish(lash__hub *h, const char *id);
/* How many subscribe to @p id (0: it has no entry). */
size_t lash__hub_subscribers(const lash__hub *h, const char *id);
static inline int lash__hub_has_ready(const lash__hub *h) {
  return !lash__q_empty(&h->ready);
}
/* Moves the ready list into @p batch (an unlinked head): publishes made
 * while the caller works on it land in a later batch. */
void lash__hub_take(lash__hub *h, lash__q *batch);
/* Puts what is left of @p batch back in front of the ready list. */
void lash__hub_untake(lash__hub *h, lash__q *batch);
/* Takes the next subscription off a taken batch (NULL when empty). */
lash__hub_sub *lash__hub_next(lash__q *batch);

#endif /* LASH_ENGINE_HUB_H */
