/* keys.c - the key layouts of the LMDB backend's databases (see enum
 * lmdb__db): big-endian sequences, so that LMDB's bytewise order is the
 * numeric order, and NUL separators, which ids and kinds never hold. */
#include "lmdb-int.h"

#include <string.h>

void lmdb__be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

uint64_t lmdb__get_be64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

size_t lmdb__evkey(unsigned char *k, const char *id, size_t idlen,
                   uint64_t seq) {
  memcpy(k, id, idlen);
  k[idlen] = 0;
  lmdb__be64(k + idlen + 1, seq);
  return idlen + 9;
}

size_t lmdb__livekey(unsigned char *k, lash_bytes kind, const char *id,
                     size_t idlen) {
  memcpy(k, kind.data, kind.len);
  k[kind.len] = 0;
  memcpy(k + kind.len + 1, id, idlen);
  return kind.len + 1 + idlen;
}

size_t lmdb__keykey(unsigned char *k, const char *id, size_t idlen,
                    const void *key, size_t keylen) {
  memcpy(k, id, idlen);
  k[idlen] = 0;
  memcpy(k + idlen + 1, key, keylen);
  return idlen + 1 + keylen;
}

size_t lmdb__statkey(unsigned char *k, int status, const char *id,
                     size_t idlen) {
  k[0] = (unsigned char)status;
  memcpy(k + 1, id, idlen);
  return idlen + 1;
}

size_t lmdb__timerkey(unsigned char *k, int64_t wake_at, const char *id,
                      size_t idlen) {
  lmdb__be64(k, (uint64_t)wake_at);
  memcpy(k + 8, id, idlen);
  return 8 + idlen;
}

/* ---- issue 13 (claim): the live order ---- */

static uint64_t prio_bits(int64_t prio) {
  return ~((uint64_t)prio ^ ((uint64_t)1 << 63)); /* descending */
}

size_t lmdb__liveposkey(unsigned char *k, lash_bytes kind, int64_t prio,
                        uint64_t order, const char *id, size_t idlen) {
  memcpy(k, kind.data, kind.len);
  k[kind.len] = 0;
  lmdb__be64(k + kind.len + 1, prio_bits(prio));
  lmdb__be64(k + kind.len + 9, order);
  memcpy(k + kind.len + 17, id, idlen);
  return kind.len + 17 + idlen;
}

void lmdb__livepos(const unsigned char *p, int64_t *prio, uint64_t *order) {
  *prio = (int64_t)(~lmdb__get_be64(p) ^ ((uint64_t)1 << 63));
  *order = lmdb__get_be64(p + 8);
}
