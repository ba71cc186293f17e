/* kvcount.h - for the C tests that look into the side table: the number
 * of entries of namespace ns whose keys start with prefix (plen bytes; 0:
 * all), or an error. */
#ifndef LASH_TEST_KVCOUNT_H
#define LASH_TEST_KVCOUNT_H

#include "registry/registry-int.h"

static inline int tu_kv_count_cb_(void *ud, const char *key, size_t keylen,
                                  lash_bytes v) {
  (void)key;
  (void)keylen;
  (void)v;
  (*(int *)ud)++;
  return 0;
}

static inline int tu_kv_count(lash_store *s, int ns, const char *prefix,
                              size_t plen) {
  int n = 0, rc = lash__kv_scan(s, NULL, ns, plen > 0 ? prefix : NULL, plen,
                                NULL, 0, tu_kv_count_cb_, &n);
  return rc < 0 ? rc : n;
}

#endif
