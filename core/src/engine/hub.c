/* engine/hub.c - the change hub (see hub.h).
 *
 * A publish (after a commit, from the changes router) marks the id's
 * subscribers ready; it never calls one. The ready list is taken in
 * batches; a publish made during a batch lands behind it and waits for the
 * next one (ae's "id > maxId" rule).
 *
 * Part: hub. May call: base/map, base/queue, pump. */
#include "engine/hub.h"

#include <stdlib.h>
#include <string.h>

struct lash__hub_entry {
  lash__mnode node;
  lash__q subs;
  size_t nsubs;
  char id[];
};

void lash__hub_init(lash__hub *h, lash__pump *pump) {
  memset(&h->map, 0, sizeof h->map);
  lash__q_init(&h->ready);
  h->pump = pump;
}

static void entry_free(lash__mnode *n, void *ud) {
  (void)ud;
  free(LASH__CONTAINER_OF(n, lash__hub_entry, node));
}

void lash__hub_free(lash__hub *h) {
  lash__map_clear(&h->map, entry_free, NULL);
  lash__map_free(&h->map);
}

int lash__hub_subscribe(lash__hub *h, lash__hub_sub *s, const char *id) {
  uint32_t hash = lash__hash(id);
  lash__mnode *n = lash__map_get(&h->map, id, hash);
  lash__hub_entry *en;
  size_t len;
  if (s->entry != NULL) return 0;
  if (n != NULL) {
    en = LASH__CONTAINER_OF(n, lash__hub_entry, node);
  } else {
    len = strlen(id);
    en = malloc(sizeof *en + len + 1);
    if (en == NULL) return LASH_ENOMEM;
    memcpy(en->id, id, len + 1);
    en->node.key = en->id;
    en->node.hash = hash;
    en->node.next = NULL;
    en->nsubs = 0;
    lash__q_init(&en->subs);
    if (lash__map_put(&h->map, &en->node) < 0) {
      free(en);
      return LASH_ENOMEM;
    }
  }
  lash__q_push(&en->subs, &s->link);
  en->nsubs++;
  s->entry = en;
  return 0;
}

void lash__hub_unsubscribe(lash__hub *h, lash__hub_sub *s) {
  lash__hub_entry *en = s->entry;
  if (s->ready) {
    lash__q_remove(&s->ready_link);
    s->ready = 0;
  }
  if (en == NULL) return;
  lash__q_remove(&s->link);
  s->entry = NULL;
  if (--en->nsubs == 0) {
    /* No receivers left: drop the entry (SEMANTICS 4). */
    lash__map_del(&h->map, &en->node);
    free(en);
  }
}

void lash__hub_publish(lash__hub *h, const char *id) {
  lash__mnode *n = lash__map_get(&h->map, id, lash__hash(id));
  lash__hub_entry *en;
  lash__q *q;
  if (n == NULL) return;
  en = LASH__CONTAINER_OF(n, lash__hub_entry, node);
  for (q = en->subs.next; q != &en->subs; q = q->next) {
    lash__hub_sub *s = LASH__CONTAINER_OF(q, lash__hub_sub, link);
    if (!s->ready) {
      s->ready = 1;
      lash__q_push(&h->ready, &s->ready_link);
    }
  }
  lash__pump_kick(h->pump);
}

size_t lash__hub_subscribers(const lash__hub *h, const char *id) {
  lash__mnode *n = lash__map_get(&h->map, id, lash__hash(id));
  return n ? LASH__CONTAINER_OF(n, lash__hub_entry, node)->nsubs : 0;
}

void lash__hub_take(lash__hub *h, lash__q *batch) {
  lash__q_move(&h->ready, batch);
}

void lash__hub_untake(lash__hub *h, lash__q *batch) {
  lash__q_prepend(&h->ready, batch);
}

lash__hub_sub *lash__hub_next(lash__q *batch) {
  lash__q *q = lash__q_pop(batch);
  lash__hub_sub *s;
  if (q == NULL) return NULL;
  s = LASH__CONTAINER_OF(q, lash__hub_sub, ready_link);
  s->ready = 0;
  return s;
}
