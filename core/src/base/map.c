/* base/map.c - the string map (see map.h).
 *
 * Part: base (generic containers). May call: base/hash.h, libc. */
#include "base/map.h"

#include "lash.h"

#include <stdlib.h>
#include <string.h>

lash__mnode *lash__map_get(const lash__map *m, const char *key, uint32_t h) {
  lash__mnode *n;
  if (m->nb == 0) return NULL;
  for (n = m->b[h & (m->nb - 1)]; n != NULL; n = n->next)
    if (n->hash == h && strcmp(n->key, key) == 0) return n;
  return NULL;
}

lash__mnode *lash__map_find(const lash__map *m, const char *key) {
  if (m->n == 0) return NULL;
  return lash__map_get(m, key, lash__hash(key));
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

void lash__map_clear(lash__map *m, void (*fn)(lash__mnode *n, void *ud),
                     void *ud) {
  size_t i;
  for (i = 0; i < m->nb; i++) {
    lash__mnode *n = m->b[i], *next;
    m->b[i] = NULL;
    for (; n != NULL; n = next) {
      next = n->next;
      n->next = NULL;
      fn(n, ud);
    }
  }
  m->n = 0;
}

void lash__map_free(lash__map *m) {
  free(m->b);
  m->b = NULL;
  m->nb = 0;
  m->n = 0;
}
