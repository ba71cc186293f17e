/* test_base.c - the generic containers of core/src/base: the timer heap
 * pops in due order and removes/re-positions any node, the string map
 * finds, deletes, grows past its first bucket array and clears, the queue
 * moves and prepends whole lists, and lash__hash is FNV-1a (and equals
 * lash__hash_n over the same bytes). */
#include "tap.h"

#include "base/crc32c.h"
#include "base/hash.h"
#include "base/heap.h"
#include "base/map.h"
#include "base/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

static void test_heap(void) {
  static lash__hnode nodes[N];
  lash__heap h;
  uint64_t last = 0;
  int i, ordered = 1, n = 0;
  memset(&h, 0, sizeof h);
  ok(lash__heap_top(&h) == NULL, "an empty heap has no top");
  for (i = 0; i < N; i++) {
    nodes[i].due = (uint64_t)((i * 7919) % N);
    nodes[i].idx = LASH__HEAP_NONE;
    if (lash__heap_push(&h, &nodes[i]) != 0) ordered = 0;
  }
  ok(ordered, "%d pushes", N);
  /* take every odd node out, push one node far back */
  for (i = 1; i < N; i += 2)
    lash__heap_remove(&h, &nodes[i]);
  lash__heap_remove(&h, &nodes[1]); /* not on the heap: a no-op */
  nodes[0].due = 5000;
  lash__heap_fix(&h, &nodes[0]);
  is(h.n, N / 2, "half removed");
  while (lash__heap_top(&h) != NULL) {
    lash__hnode *t = lash__heap_top(&h);
    if (t->due < last) ordered = 0;
    last = t->due;
    lash__heap_remove(&h, t);
    if (t->idx != LASH__HEAP_NONE) ordered = 0;
    n++;
  }
  ok(ordered, "popped in due order, each marked off the heap");
  is(n, N / 2, "every node popped once");
  is(last, 5000, "the re-positioned node came last");
  lash__heap_free(&h);
}

typedef struct item {
  lash__mnode node;
  int freed;
  char key[16];
} item;

static void count_clear(lash__mnode *n, void *ud) {
  LASH__CONTAINER_OF(n, item, node)->freed++;
  (*(int *)ud)++;
}

static void test_map(void) {
  static item items[N];
  lash__map m;
  int i, found = 1, cleared = 0, once = 1;
  memset(&m, 0, sizeof m);
  ok(lash__map_find(&m, "x") == NULL, "an empty map finds nothing");
  for (i = 0; i < N; i++) {
    snprintf(items[i].key, sizeof items[i].key, "k-%d", i);
    lash__mnode_key(&items[i].node, items[i].key);
    items[i].freed = 0;
    if (lash__map_put(&m, &items[i].node) != 0) found = 0;
  }
  ok(found && m.n == N, "%d puts", N);
  ok(m.nb > 64, "the buckets grew (%zu)", m.nb);
  for (i = 0; i < N; i++)
    if (lash__map_find(&m, items[i].key) != &items[i].node) found = 0;
  ok(found, "every key found");
  for (i = 0; i < N; i += 2)
    lash__map_del(&m, &items[i].node);
  is(m.n, N / 2, "half deleted");
  ok(lash__map_find(&m, "k-0") == NULL && lash__map_find(&m, "k-1") != NULL,
     "deleted keys are gone, the others stay");
  lash__map_clear(&m, count_clear, &cleared);
  is(cleared, N / 2, "clear hands every node over");
  for (i = 1; i < N; i += 2)
    if (items[i].freed != 1) once = 0;
  ok(once, "each exactly once");
  is(m.n, 0, "the map is empty");
  ok(lash__map_find(&m, "k-1") == NULL, "and finds nothing");
  lash__map_free(&m);
  is(m.nb, 0, "free drops the buckets");
}

typedef struct qi {
  lash__q link;
  int v;
} qi;

static void test_queue(void) {
  qi a[6];
  lash__q q1, q2, batch, *n;
  int i, v[6], k = 0;
  lash__q_init(&q1);
  lash__q_init(&q2);
  for (i = 0; i < 3; i++) {
    a[i].v = i;
    lash__q_push(&q1, &a[i].link);
  }
  for (i = 3; i < 6; i++) {
    a[i].v = i;
    lash__q_push(&q2, &a[i].link);
  }
  lash__q_move(&q1, &batch);
  ok(lash__q_empty(&q1) && !lash__q_empty(&batch), "move empties the source");
  /* batch (0 1 2) goes in front of q2 (3 4 5) */
  lash__q_prepend(&q2, &batch);
  ok(lash__q_empty(&batch), "prepend empties the batch");
  while ((n = lash__q_pop(&q2)) != NULL && k < 6)
    v[k++] = LASH__CONTAINER_OF(n, qi, link)->v;
  is(k, 6, "six nodes");
  ok(v[0] == 0 && v[1] == 1 && v[2] == 2 && v[3] == 3 && v[5] == 5,
     "in order: the prepended list first");
  lash__q_move(&q1, &batch);
  ok(lash__q_empty(&batch), "moving an empty list leaves an empty head");
}

static void test_hash(void) {
  is(lash__hash(""), 2166136261u, "FNV-1a offset basis for the empty string");
  is(lash__hash("a"), 0xe40c292cu, "FNV-1a of \"a\"");
  is(lash__hash("process-42"), lash__hash_n("process-42", 10),
     "lash__hash equals lash__hash_n over the same bytes");
}

/* Bit at a time: the definition the fast paths must match. */
static uint32_t crc_ref(const unsigned char *p, size_t n) {
  uint32_t c = ~0u;
  size_t i;
  int j;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (j = 0; j < 8; j++)
      c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

static void test_crc32c(void) {
  unsigned char buf[300], zero[32];
  size_t n, bad = 0;
  memset(zero, 0, sizeof zero);
  is(lash__crc32c("123456789", 9), 0xe3069283u, "CRC-32C check value");
  is(lash__crc32c(zero, 32), 0x8a9136aau, "CRC-32C of 32 zero bytes");
  is(lash__crc32c("", 0), 0u, "CRC-32C of nothing");
  for (n = 0; n < sizeof buf; n++)
    buf[n] = (unsigned char)(n * 131 + 7);
  for (n = 0; n <= sizeof buf; n++)
    if (lash__crc32c(buf, n) != crc_ref(buf, n)) bad++;
  is(bad, 0, "CRC-32C equals the bitwise reference for 0..300 bytes");
  is(lash__crc32c(buf + 3, 77), crc_ref(buf + 3, 77), "... unaligned too");
}

int main(void) {
  test_crc32c();
  test_heap();
  test_map();
  test_queue();
  test_hash();
  return done_testing();
}
