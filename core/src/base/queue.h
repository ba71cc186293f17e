/* base/queue.h - the intrusive queue: a circular doubly-linked list whose
 * nodes live inside the structs they link (libuv's queue.h shape).
 *
 * Part: base (generic containers). May call: nothing. Header only. */
#ifndef LASH_BASE_QUEUE_H
#define LASH_BASE_QUEUE_H

#include <stddef.h>

#define LASH__CONTAINER_OF(ptr, type, field)                                   \
  ((type *)((char *)(ptr)-offsetof(type, field)))

/* A node, or a list head; an unlinked node points at itself. */
typedef struct lash__q {
  struct lash__q *next;
  struct lash__q *prev;
} lash__q;

static inline void lash__q_init(lash__q *q) {
  q->next = q;
  q->prev = q;
}
static inline int lash__q_empty(const lash__q *q) {
  return q->next == q;
}
static inline void lash__q_push(lash__q *head, lash__q *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}
static inline void lash__q_remove(lash__q *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  lash__q_init(n);
}
static inline lash__q *lash__q_pop(lash__q *head) {
  lash__q *n = head->next;
  if (n == head) return NULL;
  lash__q_remove(n);
  return n;
}
/* Moves every node of @p from to @p to (which must be empty); @p from is
 * left empty. */
static inline void lash__q_move(lash__q *from, lash__q *to) {
  if (lash__q_empty(from)) {
    lash__q_init(to);
    return;
  }
  *to = *from;
  to->next->prev = to;
  to->prev->next = to;
  lash__q_init(from);
}
/* Puts every node of @p q in front of @p head; @p q is left empty. */
static inline void lash__q_prepend(lash__q *head, lash__q *q) {
  lash__q *first, *last;
  if (lash__q_empty(q)) return;
  first = q->next;
  last = q->prev;
  last->next = head->next;
  head->next->prev = last;
  head->next = first;
  first->prev = head;
  lash__q_init(q);
}

#endif /* LASH_BASE_QUEUE_H */
