/* kv.c - the side table (lash_backend.h version 4): small keyed values
 * beside the rows, in the same transactions as the rows. A put with a
 * transaction waits in that transaction (lash_txn.kv) and reaches the
 * backend with its commit (txn.c's lash__kv_flush, from its final flush), so
 * an abort leaves nothing and a full store can replay it after growing;
 * a get looks at the transaction's own puts first. Values are opaque here:
 * the registry file owning a namespace encodes them. */
#include "registry-int.h"

#include <string.h>

static int check_args(lash_store *s, const char *what, int ns, const char *key,
                      size_t keylen) {
  if (ns < 1 || ns > 255)
    return lash__fail(s, LASH_EINVAL,
                      "%s: side table namespace %d is out of range (1..255)",
                      what, ns);
  if (key == NULL || keylen == 0 || keylen > LASH_KV_KEY_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "%s: a side table key is 1..%d bytes (got %zu)", what,
                      LASH_KV_KEY_MAX, key == NULL ? (size_t)0 : keylen);
  return 0;
}

static int pending_add(lash_store *s, lash_txn *t, int ns, const char *key,
                       size_t keylen, const void *val, size_t vallen) {
  lash__kvent h;
  size_t n = sizeof h + keylen + (val != NULL ? vallen : 0);
  if (lash__buf_reserve(&t->kv, n) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory writing the side table");
  h.ns = (unsigned char)ns;
  h.del = val == NULL;
  h.keylen = (uint16_t)keylen;
  h.vallen = val != NULL ? (uint32_t)vallen : 0;
  memcpy(t->kv.p + t->kv.len, &h, sizeof h);
  memcpy(t->kv.p + t->kv.len + sizeof h, key, keylen);
  if (val != NULL && vallen > 0)
    memcpy(t->kv.p + t->kv.len + sizeof h + keylen, val, vallen);
  t->kv.len += n;
  t->nkv++;
  t->wrote = 1;
  return 0;
}

/* The newest pending put of (ns, key) in t: 1 found (*del, *val), 0 not. */
static int pending_find(const lash_txn *t, int ns, const char *key,
                        size_t keylen, int *del, lash_bytes *val) {
  size_t off = 0;
  int found = 0;
  while (off < t->kv.len) {
    lash__kvent h;
    const char *k;
    memcpy(&h, t->kv.p + off, sizeof h);
    k = t->kv.p + off + sizeof h;
    if (h.ns == ns && h.keylen == keylen && memcmp(k, key, keylen) == 0) {
      found = 1;
      *del = h.del;
      val->data = k + keylen;
      val->len = h.vallen;
    }
    off += sizeof h + h.keylen + h.vallen;
  }
  return found;
}

int lash__kv_get(lash_store *s, lash_txn *txn, int ns, const char *key,
                 size_t keylen, lash_bytes *val) {
  lash_btxn *bt = NULL;
  lash_bytes v;
  int rc, del;
  if (val == NULL)
    return lash__fail(s, LASH_EINVAL, "reading the side table: no output");
  val->data = NULL;
  val->len = 0;
  if ((rc = check_args(s, "reading the side table", ns, key, keylen)) < 0)
    return rc;
  if (txn != NULL) {
    if ((rc = lash__txn_usable(s, txn)) < 0) return rc;
    if (pending_find(txn, ns, key, keylen, &del, &v)) {
      if (del) return LASH_ENOENT;
      *val = v;
      return 0;
    }
    return s->b->m->kv_get(s->b, txn->bt, ns, key, keylen, val);
  }
  if ((rc = lash__rbegin(s, NULL, &bt)) < 0) return rc;
  rc = s->b->m->kv_get(s->b, bt, ns, key, keylen, &v);
  if (rc == 0) {
    if (lash__buf_reserve(&s->kvbuf, v.len + 1) < 0) {
      rc = lash__fail(s, LASH_ENOMEM, "out of memory reading the side table");
    } else {
      s->kvbuf.len = v.len;
      if (v.len > 0) memcpy(s->kvbuf.p, v.data, v.len);
      val->data = s->kvbuf.p;
      val->len = v.len;
    }
  }
  lash__rend(s, NULL, bt);
  return rc;
}

int lash__kv_put(lash_store *s, lash_txn *txn, int ns, const char *key,
                 size_t keylen, const void *val, size_t vallen) {
  lash_txn *t = NULL;
  int rc;
  if ((rc = check_args(s, "writing the side table", ns, key, keylen)) < 0)
    return rc;
  if (val != NULL && vallen > s->opts.max_payload)
    return lash__fail(s, LASH_EINVAL,
                      "writing the side table: a value of %zu bytes is over "
                      "max_payload (%zu)",
                      vallen, s->opts.max_payload);
  if (txn != NULL) {
    if ((rc = lash__txn_usable(s, txn)) < 0) return rc;
    return pending_add(s, txn, ns, key, keylen, val, vallen);
  }
  if ((rc = lash__wbegin(s, NULL, &t)) < 0) return rc;
  rc = pending_add(s, t, ns, key, keylen, val, vallen);
  return lash__wend(s, t, rc);
}

typedef struct scan_ud {
  lash__kv_fn fn;
  void *ud;
} scan_ud;

static int scan_cb(void *ud, const lash_bitem *it) {
  scan_ud *u = ud;
  return u->fn(u->ud, it->id, it->idlen, it->rec);
}

int lash__kv_scan(lash_store *s, lash_txn *txn, int ns, const char *prefix,
                  size_t plen, const char *after, size_t alen, lash__kv_fn fn,
                  void *ud) {
  lash_btxn *bt = NULL;
  lash_bscan q;
  scan_ud u;
  int rc;
  if (ns < 1 || ns > 255)
    return lash__fail(s, LASH_EINVAL,
                      "scanning the side table: namespace %d is out of range "
                      "(1..255)",
                      ns);
  if (fn == NULL || plen > LASH_KV_KEY_MAX || alen > LASH_KV_KEY_MAX ||
      (plen > 0 && prefix == NULL) || (alen > 0 && after == NULL))
    return lash__fail(s, LASH_EINVAL,
                      "scanning the side table: a prefix or start of at most "
                      "%d bytes and a callback are needed",
                      LASH_KV_KEY_MAX);
  if (txn != NULL) {
    if ((rc = lash__txn_usable(s, txn)) < 0) return rc;
    if ((rc = lash__kv_flush(txn, 0)) < 0) return rc;
    bt = txn->bt;
  } else if ((rc = lash__rbegin(s, NULL, &bt)) < 0) {
    return rc;
  }
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_KV;
  q.ns = ns;
  q.id = plen > 0 ? prefix : NULL;
  q.idlen = plen;
  q.after = alen > 0 ? after : NULL;
  q.afterlen = alen;
  u.fn = fn;
  u.ud = ud;
  rc = s->b->m->scan(s->b, bt, &q, scan_cb, &u);
  if (txn == NULL) lash__rend(s, NULL, bt);
  return rc;
}
