/* hub.c - the change hub (DESIGN 4, SEMANTICS 4) and the string map the
 * engine files share.
 *
 * The hub maps a process id to a version and its parked waits. A publish
 * (after a commit, from the pump) bumps the version and moves the waits to
 * the ready list; it never calls a waiter. The pump drains the ready list
 * in bounded batches; a publish made during a drain lands behind the batch
 * and waits for the next one (ae's "id > maxId" rule). */
#include "engine-int.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ string map */

uint32_t lash__hash(const char *s) {
  uint32_t h = 2166136261u;
  while (*s != '\0')
    h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

lash__mnode *lash__map_get(const lash__map *m, const char *key, uint32_t h) {
  lash__mnode *n;
  if (m->nb == 0) return NULL;
  for (n = m->b[h & (m->nb - 1)]; n != NULL; n = n->next)
    if (n->hash == h && strcmp(n->key, key) == 0) return n;
  return NULL;
}

static int map_grow(lash__map *m) {
  size_t nb = m->nb ? m->nb * 2 : 64, i;
  lash__mnode **b = calloc(nb, sizeof *b);
  if (b == NULL) return LASH_ENOMEM;
  for (i = 0; i < m->nb; i++) {
    lash__mnode *n = m->b[i], *next;
    for (; n != NULL; n = next) {
      next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
    }
  }
  free(m->b);
  m->b = b;
  m->nb = nb;
  return 0;
}

int lash__map_put(lash__map *m, lash__mnode *n) {
  size_t i;
  if (m->n + 1 > m->nb - m->nb / 4 || m->nb == 0) {
    if (map_grow(m) < 0 && m->nb == 0) return LASH_ENOMEM;
  }
  i = n->hash & (m->nb - 1);
  n->next = m->b[i];
  m->b[i] = n;
  m->n++;
  return 0;
}

void lash__map_del(lash__map *m, lash__mnode *n) {
  lash__mnode **pp;
  if (m->nb == 0) return;
  for (pp = &m->b[n->hash & (m->nb - 1)]; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == n) {
      *pp = n->next;
      n->next = NULL;
      m->n--;
      return;
    }
  }
}

void lash__map_free(lash__map *m) {
  free(m->b);
  m->b = NULL;
  m->nb = 0;
  m->n = 0;
}

/* ------------------------------------------------------------------ hub */

struct lash__hub_entry {
  lash__mnode node;
  uint64_t version;
  lash__q subs;
  size_t nsubs;
  char id[];
};

int lash__hub_subscribe(lash_engine *e, lash_wait *w) {
  uint32_t h = lash__hash(w->id);
  lash__mnode *n = lash__map_get(&e->hub, w->id, h);
  lash__hub_entry *en;
  size_t len;
  if (w->entry != NULL) return 0;
  if (n != NULL) {
    en = LASH__CONTAINER_OF(n, lash__hub_entry, node);
  } else {
    len = strlen(w->id);
    en = malloc(sizeof *en + len + 1);
    if (en == NULL) return LASH_ENOMEM;
    memcpy(en->id, w->id, len + 1);
    en->node.key = en->id;
    en->node.hash = h;
    en->node.next = NULL;
    en->version = 0;
    en->nsubs = 0;
    lash__q_init(&en->subs);
    if (lash__map_put(&e->hub, &en->node) < 0) {
      free(en);
      return LASH_ENOMEM;
    }
  }
  lash__q_push(&en->subs, &w->hub_link);
  en->nsubs++;
  w->entry = en;
  return 0;
}

void lash__hub_unsubscribe(lash_engine *e, lash_wait *w) {
  lash__hub_entry *en = w->entry;
  if (w->ready) {
    lash__q_remove(&w->link);
    w->ready = 0;
  }
  if (en == NULL) return;
  lash__q_remove(&w->hub_link);
  w->entry = NULL;
  if (--en->nsubs == 0) {
    /* No receivers left: drop the entry (SEMANTICS 4). */
    lash__map_del(&e->hub, &en->node);
    free(en);
  }
}

void lash__hub_publish(lash_engine *e, const char *id) {
  lash__mnode *n = lash__map_get(&e->hub, id, lash__hash(id));
  lash__hub_entry *en;
  lash__q *q;
  if (n == NULL) return;
  en = LASH__CONTAINER_OF(n, lash__hub_entry, node);
  en->version++;
  for (q = en->subs.next; q != &en->subs; q = q->next) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, hub_link);
    if (!w->ready && w->state == LASH__WS_PARKED) {
      w->ready = 1;
      lash__q_push(&e->ready, &w->link);
    }
  }
  lash__pump_kick(e);
}

uint64_t lash__hub_version(lash_engine *e, const char *id) {
  lash__mnode *n = lash__map_get(&e->hub, id, lash__hash(id));
  return n ? LASH__CONTAINER_OF(n, lash__hub_entry, node)->version : 0;
}

size_t lash__hub_drain(lash_engine *e, size_t max) {
  lash__q batch, *q;
  size_t done = 0;
  int rc;
  if (lash__q_empty(&e->ready)) return 0;
  /* Take what is queued now; publishes made while we re-read (there are
   * none from this code, but settle may kick others) go to the next batch. */
  batch = e->ready;
  batch.next->prev = &batch;
  batch.prev->next = &batch;
  lash__q_init(&e->ready);
  while (done < max && (q = lash__q_pop(&batch)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, link);
    w->ready = 0;
    done++;
    e->stats.hub_wakes++;
    rc = lash__wait_check(e, w);
    if (rc != 0)
      lash__wait_settle(w, rc > 0 ? 0 : rc);
    else
      lash__heap_reset_backoff(e, w);
  }
  if (!lash__q_empty(&batch)) {
    /* Put the rest back in front of anything published meanwhile. */
    lash__q *first = batch.next, *last = batch.prev;
    last->next = e->ready.next;
    e->ready.next->prev = last;
    e->ready.next = first;
    first->prev = &e->ready;
  }
  return done;
}

void lash__hub_free(lash_engine *e) {
  size_t i;
  for (i = 0; i < e->hub.nb; i++) {
    lash__mnode *n = e->hub.b[i], *next;
    for (; n != NULL; n = next) {
      next = n->next;
      free(LASH__CONTAINER_OF(n, lash__hub_entry, node));
    }
  }
  lash__map_free(&e->hub);
}
