/* children.c - the children index (LASH_KV_CHILD, issue 14): which
 * processes a process started, written by lash_register in the
 * registration's transaction when def.parent is set, read by
 * lash_children (eng:children, eng:tree, `lash tree`, `lash show`).
 *
 * Key: parent "\0" child -> "" (the common case: ascending by child id
 * under its parent's prefix). A pair too long for a side-table key
 * (LASH_KV_KEY_MAX) goes under "#" hex8(fnv(parent)) "\0" hex8(fnv(child))
 * -> the child ids of that bucket, each NUL-terminated. Every child is
 * checked against its record's parent when read, so a hash collision, or
 * an entry of a pruned child, is only skipped, never believed. */
#include "registry-int.h"

#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASHED_KEY 18 /* "#" 8 hex "\0" 8 hex */

static size_t hashed_prefix(char *buf, const char *parent, size_t pl) {
  char hex[9];
  snprintf(hex, sizeof hex, "%08x", (unsigned)lash__hash_n(parent, pl));
  buf[0] = '#';
  memcpy(buf + 1, hex, 8);
  buf[9] = '\0';
  return 10;
}

/* The key of (parent, child) in key[]: its length, and *hashed = 1 for a
 * bucket key (its value lists the bucket's child ids). */
static size_t child_key(char *key, const char *parent, size_t pl,
                        const char *child, size_t cl, int *hashed) {
  size_t n;
  if (pl + 1 + cl <= LASH_KV_KEY_MAX) {
    memcpy(key, parent, pl);
    key[pl] = '\0';
    memcpy(key + pl + 1, child, cl);
    *hashed = 0;
    return pl + 1 + cl;
  }
  n = hashed_prefix(key, parent, pl);
  snprintf(key + n, 9, "%08x", (unsigned)lash__hash_n(child, cl));
  *hashed = 1;
  return n + 8;
}

/* Where @p child sits in a bucket's value (-1: not there). */
static long bucket_find(lash_bytes v, const char *child, size_t cl) {
  const char *p = v.data, *end = p + v.len;
  while (p < end) {
    size_t l = strnlen(p, (size_t)(end - p));
    if (l == cl && memcmp(p, child, cl) == 0)
      return (long)(p - (const char *)v.data);
    p += l + 1;
  }
  return -1;
}

/* Writes (add 1) or takes out (add 0) @p child of the bucket at key. */
static int bucket_edit(lash_store *s, lash_txn *t, const char *key, size_t n,
                       const char *child, size_t cl, int add) {
  lash_bytes old;
  char *val;
  size_t len;
  long at;
  int rc = lash__kv_get(s, t, LASH_KV_CHILD, key, n, &old);
  if (rc == LASH_ENOENT) {
    old.data = NULL;
    old.len = 0;
  } else if (rc < 0) {
    return rc;
  }
  at = old.len > 0 ? bucket_find(old, child, cl) : -1;
  if (add ? at >= 0 : at < 0) return 0; /* already so */
  if ((val = malloc(old.len + cl + 1)) == NULL)
    return lash__fail(s, LASH_ENOMEM, "out of memory indexing child %.*s",
                      (int)cl, child);
  if (add) {
    if (old.len > 0) memcpy(val, old.data, old.len);
    memcpy(val + old.len, child, cl);
    val[old.len + cl] = '\0';
    len = old.len + cl + 1;
  } else {
    memcpy(val, old.data, (size_t)at);
    memcpy(val + at, (const char *)old.data + at + cl + 1,
           old.len - (size_t)at - cl - 1);
    len = old.len - cl - 1;
  }
  rc = lash__kv_put(s, t, LASH_KV_CHILD, key, n, len > 0 ? val : NULL, len);
  free(val);
  return rc;
}

int lash__child_note(lash_store *s, lash_txn *t, const char *parent,
                     const char *child, size_t cl) {
  char key[LASH_KV_KEY_MAX + 1];
  int hashed;
  size_t n = child_key(key, parent, strlen(parent), child, cl, &hashed);
  if (!hashed) return lash__kv_put(s, t, LASH_KV_CHILD, key, n, "", 0);
  return bucket_edit(s, t, key, n, child, cl, 1);
}

int lash__child_forget(lash_store *s, lash_txn *t, const char *parent,
                       size_t pl, const char *child, size_t cl) {
  char key[LASH_KV_KEY_MAX + 1];
  int hashed;
  size_t n = child_key(key, parent, pl, child, cl, &hashed);
  if (!hashed) return lash__kv_put(s, t, LASH_KV_CHILD, key, n, NULL, 0);
  return bucket_edit(s, t, key, n, child, cl, 0);
}

/* ------------------------------------------------------------- reading */

typedef struct child_ids {
  char **v;
  size_t n, cap;
  size_t plen; /* the direct prefix's length (parent "\0") */
  int rc;
} child_ids;

static int ids_add(child_ids *a, const char *id, size_t len) {
  char *c;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    char **v = realloc(a->v, cap * sizeof *v);
    if (v == NULL) return LASH_ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  if ((c = malloc(len + 1)) == NULL) return LASH_ENOMEM;
  memcpy(c, id, len);
  c[len] = '\0';
  a->v[a->n++] = c;
  return 0;
}

static int direct_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  child_ids *a = ud;
  (void)val;
  if (keylen <= a->plen) return 0;
  return ids_add(a, key + a->plen, keylen - a->plen);
}

static int hashed_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  child_ids *a = ud;
  const char *p = val.data, *end = p + val.len;
  int rc;
  (void)key;
  if (keylen != HASHED_KEY) return 0;
  while (p < end) {
    size_t l = strnlen(p, (size_t)(end - p));
    if (l > 0 && (rc = ids_add(a, p, l)) < 0) return rc;
    p += l + 1;
  }
  return 0;
}

static int by_id(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

int lash_children(lash_store *s, lash_txn *txn, const char *parent,
                  lash_record_fn fn, void *ud) {
  char key[LASH_KV_KEY_MAX + 1];
  size_t pl, i, n;
  child_ids a;
  int rc = 0;
  txn = lash__read_txn(s, txn);
  if (s == NULL || parent == NULL || fn == NULL)
    return s != NULL ? lash__fail(s, LASH_EINVAL,
                                  "lash_children: no parent "
                                  "or callback given")
                     : LASH_EINVAL;
  pl = strlen(parent);
  if (pl == 0 || pl > LASH_ID_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "lash_children: a process id is 1..%d bytes (got %zu)",
                      LASH_ID_MAX, pl);
  memset(&a, 0, sizeof a);
  if (pl + 1 < LASH_KV_KEY_MAX) {
    memcpy(key, parent, pl);
    key[pl] = '\0';
    a.plen = pl + 1;
    rc = lash__kv_scan(s, txn, LASH_KV_CHILD, key, pl + 1, NULL, 0, direct_cb,
                       &a);
  }
  if (rc >= 0) {
    n = hashed_prefix(key, parent, pl);
    rc = lash__kv_scan(s, txn, LASH_KV_CHILD, key, n, NULL, 0, hashed_cb, &a);
  }
  if (rc == LASH_ENOMEM)
    rc = lash__fail(s, rc, "out of memory listing the children of %s", parent);
  if (rc >= 0) {
    if (a.n > 1) qsort(a.v, a.n, sizeof *a.v, by_id);
    for (i = 0; i < a.n && rc >= 0; i++) {
      lash_record r;
      lash__rec rec;
      lash_btxn *bt = NULL;
      int g;
      if (i > 0 && strcmp(a.v[i], a.v[i - 1]) == 0) continue;
      memset(&r, 0, sizeof r);
      if ((g = lash__rbegin(s, txn, &bt)) < 0) {
        rc = g;
        break;
      }
      g = lash__rec_load(s, txn, bt, a.v[i], strlen(a.v[i]), &rec, NULL);
      if (g == 0 && (g = lash__rec_export(&rec, &r, NULL)) < 0)
        g = lash__fail(s, g, "out of memory copying process %s", a.v[i]);
      lash__rend(s, txn, bt);
      if (g == LASH_ENOENT || g == LASH_EPRUNED) continue; /* pruned */
      if (g < 0) {
        rc = g;
        break;
      }
      if (r.parent != NULL && strcmp(r.parent, parent) == 0) rc = fn(ud, &r);
      lash_record_free(&r);
      if (rc > 0) rc = 0; /* stop */
      if (rc != 0) break;
    }
  }
  for (i = 0; i < a.n; i++)
    free(a.v[i]);
  free(a.v);
  return rc < 0 ? rc : 0;
}
