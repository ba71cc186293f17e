/* lease.c - the fenced single-owner lease of a process (SEMANTICS 3.2-3.3).
 *
 * One row per process: {owner, incarnation, token, fence, expires_at}. The
 * token is minted at acquire and only compared; the fence starts at 1, only
 * grows and survives release. Lease operations write no event and bump no
 * change sequence; they are not reported to the commit hook.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include <string.h>

static int64_t add_ttl(int64_t now, int64_t ttl) {
  if (ttl > INT64_MAX - now) return INT64_MAX;
  return now + ttl;
}

int lash__lease_put(lash_txn *t, const char *id, size_t idlen,
                    const lash_lease *ls) {
  lash__chg *c = lash__chg_get(t, id, idlen);
  if (c == NULL) {
    t->rc = lash__fail(t->s, LASH_ENOMEM,
                       "out of memory writing the lease of %s", id);
    return t->rc;
  }
  c->lease = *ls;
  memcpy(c->lease.process_id, id, idlen);
  c->lease.process_id[idlen] = '\0';
  c->lease_state = 3; /* saved at flush */
  t->wrote = 1;
  return lash__chg_dirty(t, c);
}

void lash__lease_released(lash_lease *row) {
  row->owner[0] = '\0';
  row->incarnation[0] = '\0';
  row->token = 0;
  row->expires_at = 0;
}

/* Reads the lease row of id into *row: 0, 1 (none), or an error. */
int lash__lease_read(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                     size_t idlen, lash_lease *row) {
  lash__chg *c = t != NULL ? lash__chg_find(t, id, idlen) : NULL;
  lash_brow br;
  int rc;
  memset(row, 0, sizeof *row);
  if (c != NULL && c->lease_state == 1) return 1;
  /* A row created by this transaction has no lease row yet (prune deletes
   * a pruned row's lease; lash_check verifies no lease is orphaned). */
  if (c != NULL && c->lease_state == 0 && c->rec_state != 0 && !c->orig_exists)
    return 1;
  if (c != NULL && c->lease_state >= 2) {
    *row = c->lease;
    return 0;
  }
  if ((rc = s->b->m->load(s->b, bt, id, idlen, LASH_ROW_LEASE, &br)) < 0)
    return rc;
  rc = br.lease.data != NULL ? 0 : 1;
  if (rc == 0) {
    if (lash__lease_decode(br.lease.data, br.lease.len, row, &s->zone) < 0)
      return lash__fail(s, LASH_ECORRUPT,
                        "lease of process %s cannot be decoded (run check)",
                        id);
    memcpy(row->process_id, id, idlen);
    row->process_id[idlen] = '\0';
  }
  /* Remember it for the rest of a write transaction (best effort). */
  if (t != NULL && (c = lash__chg_get(t, id, idlen)) != NULL) {
    c->lease_state = rc == 1 ? 1 : 2;
    c->lease = *row;
  }
  return rc;
}

int lash__fence(lash_txn *t, const lash_lease *ls, int64_t now,
                lash_lease *row) {
  lash_store *s = t->s;
  const char *id = ls->process_id;
  const char *why;
  int rc = lash__lease_read(s, t, t->bt, id, strlen(id), row);
  if (rc < 0) return rc;
  if (rc == 1)
    why = "the process has no lease row";
  else if (row->token == 0)
    why = "the lease was released";
  else if (row->token != ls->token || strcmp(row->owner, ls->owner) != 0 ||
           strcmp(row->incarnation, ls->incarnation) != 0)
    why = "another owner holds it now";
  else if (row->fence != ls->fence)
    why = "its fence moved on";
  else if (row->expires_at <= now)
    why = "it expired";
  else
    return 0;
  return lash__fail(s, LASH_ESUPERSEDED,
                    "lease on process %s is no longer held by owner %s "
                    "(incarnation %s, fence %llu): %s; stop working on it",
                    id, ls->owner, ls->incarnation,
                    (unsigned long long)ls->fence, why);
}

int lash_lease_claim(lash_store *s, lash_txn *txn, const char *id,
                     const char *owner, const char *incarnation, int64_t ttl_ms,
                     lash_lease *out) {
  lash_txn *t = NULL;
  lash_lease row;
  lash__rec r;
  int rc, idn, exists, alive, gone = 0;
  int64_t now;

  lash__clear(s);
  if (out != NULL) memset(out, 0, sizeof *out);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__check_name(s, "lease owner", owner)) < 0 ||
      (rc = lash__check_name(s, "lease incarnation", incarnation)) < 0)
    return rc;
  if (ttl_ms <= 0)
    return lash__fail(s, LASH_EINVAL,
                      "lease ttl %lld ms for process %s must be positive",
                      (long long)ttl_ms, id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  /* The row must exist: no lease row for unknown or pruned ids. */
  rc = lash__rec_lookup(s, t, t->bt, id, (size_t)idn, NULL);
  if (rc == 1) rc = lash__rec_load(s, t, t->bt, id, (size_t)idn, &r, NULL);
  if (rc < 0) goto out;
  if ((rc = lash__lease_read(s, t, t->bt, id, (size_t)idn, &row)) < 0) goto out;
  exists = rc == 0;
  rc = 0;
  now = lash__now(s);
  if (exists && row.token != 0 && row.expires_at > now &&
      (strcmp(row.owner, owner) != 0 ||
       strcmp(row.incarnation, incarnation) != 0)) {
    /* A live foreign lease: busy, unless its owner is known to be gone
     * (then it counts as lapsed: taken over below, fenced). */
    alive = lash_owner_alive(s, row.owner, row.incarnation);
    if (alive != 0) {
      if (out != NULL) *out = row;
      rc = lash__fail(s, LASH_EBUSY,
                      "process %s is leased by owner %s (incarnation %s, %s) "
                      "until %lld",
                      id, row.owner, row.incarnation,
                      alive > 0 ? "alive on this host" : "liveness unknown",
                      (long long)row.expires_at);
      goto out;
    }
    gone = 1;
  }
  if (!gone && exists && row.token != 0 && row.expires_at > now) {
    row.expires_at = add_ttl(now, ttl_ms); /* same incarnation: extend */
  } else {
    if (exists && row.fence == UINT64_MAX) {
      rc = lash__fail(s, LASH_EINVAL, "the fence of process %s is exhausted",
                      id);
      goto out;
    }
    row.fence = exists ? row.fence + 1 : 1;
    row.token = lash__token(s);
    memcpy(row.owner, owner, strlen(owner) + 1);
    memcpy(row.incarnation, incarnation, strlen(incarnation) + 1);
    row.expires_at = add_ttl(now, ttl_ms);
    memcpy(row.process_id, id, (size_t)idn + 1);
  }
  row.owner_gone = 0;
  if ((rc = lash__lease_put(t, id, (size_t)idn, &row)) < 0) goto out;
  if (out != NULL) {
    *out = row;
    out->owner_gone = gone;
  }
out:
  return lash__wend(s, t, rc);
}

int lash_lease_renew(lash_store *s, lash_txn *txn, lash_lease *ls,
                     int64_t ttl_ms) {
  lash_txn *t = NULL;
  lash_lease row;
  int rc;

  lash__clear(s);
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  if (ttl_ms <= 0)
    return lash__fail(s, LASH_EINVAL,
                      "lease ttl %lld ms for process %s must be positive",
                      (long long)ttl_ms, ls->process_id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  {
    int64_t now = lash__now(s);
    if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
    row.expires_at = add_ttl(now, ttl_ms);
  }
  if ((rc = lash__lease_put(t, ls->process_id, strlen(ls->process_id), &row)) <
      0)
    goto out;
  rc = lash__wend(s, t, 0);
  if (rc == 0) ls->expires_at = row.expires_at;
  return rc;
out:
  return lash__wend(s, t, rc);
}

int lash_lease_release(lash_store *s, lash_txn *txn, const lash_lease *ls) {
  lash_txn *t = NULL;
  lash_lease row;
  int rc;

  lash__clear(s);
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  rc = lash__lease_read(s, t, t->bt, ls->process_id, strlen(ls->process_id),
                        &row);
  if (rc < 0) goto out;
  if (rc == 1 || row.token == 0 || row.token != ls->token) {
    rc = 0; /* stale or repeated release: a silent no-op */
    goto out;
  }
  lash__lease_released(&row);
  rc = lash__lease_put(t, ls->process_id, strlen(ls->process_id), &row);
out:
  return lash__wend(s, t, rc);
}

int lash_lease_get(lash_store *s, lash_txn *txn, const char *id,
                   lash_lease *out) {
  lash_btxn *bt = NULL;
  lash_lease row;
  int rc, idn;
  txn = lash__read_txn(s, txn);

  lash__clear(s);
  if (out != NULL) memset(out, 0, sizeof *out);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  rc = lash__lease_read(s, txn, bt, id, (size_t)idn, &row);
  if (rc == 1)
    rc = lash__fail(s, LASH_ENOENT, "process %s has no lease row", id);
  else if (rc == 0 && out != NULL)
    *out = row;
  lash__rend(s, txn, bt);
  return rc;
}

/* ------------------------------------------------------- owner liveness */

static const lash_backend_methods *owner_methods(const lash_store *s) {
  const lash_backend_methods *m = s->b->m;
  return m->version >= 2 ? m : NULL;
}

int lash_owner_hold(lash_store *s, const char *owner, const char *incarnation) {
  const lash_backend_methods *m;
  int rc;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if ((rc = lash__check_name(s, "owner", owner)) < 0 ||
      (rc = lash__check_name(s, "owner incarnation", incarnation)) < 0)
    return rc;
  m = owner_methods(s);
  if (m == NULL || m->owner_hold == NULL || m->owner_alive == NULL) return 1;
  if (m->owner_release != NULL) m->owner_release(s->b);
  return m->owner_hold(s->b, owner, incarnation);
}

void lash_owner_release(lash_store *s) {
  const lash_backend_methods *m = s != NULL ? owner_methods(s) : NULL;
  if (m != NULL && m->owner_release != NULL) m->owner_release(s->b);
}

int lash_owner_alive(lash_store *s, const char *owner,
                     const char *incarnation) {
  const lash_backend_methods *m = s != NULL ? owner_methods(s) : NULL;
  size_t i, on, in;
  int alive, cache;
  if (m == NULL || m->owner_alive == NULL || owner == NULL ||
      incarnation == NULL || owner[0] == '\0' || incarnation[0] == '\0')
    return -1;
  on = strlen(owner);
  in = strlen(incarnation);
  lash__lock(s);
  /* Inside a write transaction the answer holds for its rest: its claims
   * see one moment of the owners (a later one probes again). */
  cache = (s->own.active || s->batch.active) && on <= LASH_NAME_MAX &&
          in <= LASH_NAME_MAX;
  for (i = 0; cache && i < s->nalive; i++)
    if (strcmp(s->alive[i].owner, owner) == 0 &&
        strcmp(s->alive[i].incarnation, incarnation) == 0) {
      alive = s->alive[i].alive;
      lash__unlock(s);
      return alive;
    }
  alive = m->owner_alive(s->b, owner, incarnation);
  if (cache) {
    size_t n = sizeof s->alive / sizeof s->alive[0];
    if (s->nalive < n)
      i = s->nalive++;
    else
      i = s->alive_next++ % n;
    memcpy(s->alive[i].owner, owner, on + 1);
    memcpy(s->alive[i].incarnation, incarnation, in + 1);
    s->alive[i].alive = alive;
  }
  lash__unlock(s);
  return alive;
}
