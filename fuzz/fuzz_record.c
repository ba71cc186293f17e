/* fuzz/fuzz_record.c - the stored-record codec and the fold
 * (core/src/registry/record.c), as lash reads them from a store that may
 * be damaged.
 *
 * Input: chunks of [2-byte little-endian length][bytes]. The first chunk
 * is decoded as a record (and as a lease and a tombstone); each later
 * chunk as an event, folded in order onto the record's registration base.
 * Properties: nothing crashes or leaks; a decoded record exports
 * (lash__rec_export) and re-encodes, and its encoding decodes again. */
#include "fuzz.h"

#include "registry/registry-int.h"

#include <stdlib.h>
#include <string.h>

/* The next chunk of [data, end) into *p, *n; 0 when none is left. */
static int chunk(const uint8_t **data, const uint8_t *end, const uint8_t **p,
                 size_t *n) {
  size_t len;
  if (end - *data < 2) return 0;
  len = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
  *data += 2;
  if (len > (size_t)(end - *data)) len = (size_t)(end - *data);
  *p = *data;
  *n = len;
  *data += len;
  return 1;
}

static void export_and_reencode(const lash__rec *r, msgpack_zone *z) {
  lash_record out;
  lash__buf b = {NULL, 0, 0};
  lash__rec again;
  memset(&out, 0, sizeof out);
  if (lash__rec_export(r, &out, NULL) == 0) lash_record_free(&out);
  if (lash__rec_encode(r, &b) == 0 &&
      lash__rec_decode(b.p, b.len, &again, z) != 0)
    abort(); /* what lash wrote it cannot read */
  lash__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *end = data + size, *p;
  size_t n;
  msgpack_zone z;
  lash__rec r;
  lash_lease ls;
  lash_tombstone t;
  uint64_t seq = 0;

  if (!chunk(&data, end, &p, &n)) return 0;
  if (!msgpack_zone_init(&z, 2048)) return 0;
  memset(&ls, 0, sizeof ls);
  memset(&t, 0, sizeof t);
  (void)lash__lease_decode(p, n, &ls, &z);
  (void)lash__tomb_decode(p, n, &t, &z);
  memset(&r, 0, sizeof r);
  if (lash__rec_decode(p, n, &r, &z) == 0) {
    const uint8_t *ep;
    size_t en;
    /* Fold the log onto the registration base, as a re-fold does. */
    lash__rec_reset_projection(&r);
    while (chunk(&data, end, &ep, &en)) {
      lash__ev ev;
      memset(&ev, 0, sizeof ev);
      if (lash__ev_decode(ep, en, &ev, &z) != 0) continue;
      ev.seq = ++seq;
      if (lash__fold(&r, &ev, &z) != 0) break;
      r.last_seq = ev.seq;
    }
    export_and_reencode(&r, &z);
  }
  msgpack_zone_destroy(&z);
  return 0;
}
