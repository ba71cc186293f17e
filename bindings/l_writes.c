/* l_writes.c - writes: eng:start, signal, append, cancel, abandon,
 * complete, prune and batches, and the machinery they share.
 *
 * A write is an llash_op performed inside the engine's shared transaction.
 * Inside a coroutine the engine runs (a body, eng:spawn, an on_event
 * handler) it is queued for the next group commit and the coroutine yields
 * until the commit; from plain code (or inside eng:batch) it commits before
 * the call returns (lash_engine_write_sync). Its result is copied out of
 * the op when it commits, so an op is freed by whoever finishes it and a
 * coroutine never owns one. A queued write lost with a PostgreSQL
 * connection is queued again (lash_engine_write_again): a coroutine waits
 * through the outage, and a body's journal stays in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llash.h"

/* ------------------------------------------------------------- the ops */

llash_op *llash_op_new(llash_engine *le, int type, const char *s1,
                       const char *s2, const char *s3) {
  llash_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->res.type = type;
  op->le = le;
  llash_list_init(&op->link);
  op->s1 = llash_strdup(s1);
  op->s2 = llash_strdup(s2);
  op->s3 = llash_strdup(s3);
  if ((s1 != NULL && op->s1 == NULL) || (s2 != NULL && op->s2 == NULL) ||
      (s3 != NULL && op->s3 == NULL)) {
    llash_op_free(op);
    return NULL;
  }
  return op;
}

void llash_op_free(llash_op *op) {
  if (op == NULL) return;
  llash_list_remove(&op->link);
  free(op->s1);
  free(op->s2);
  free(op->s3);
  free(op->payload);
  free(op->key);
  free(op->jtype);
  free(op->jpayload);
  free(op->unique_key);
  free(op);
}

int llash_op_nomem(lua_State *L, llash_op *op) {
  llash_op_free(op);
  return llash_fail(L, LASH_ENOMEM, NULL);
}

/* Encodes the value at @p idx into a fresh buffer *out, *len. 0, or the
 * number of values pushed (nil, msg, code) after freeing @p op. */
static int copy_payload(lua_State *L, llash_op *op, int idx, const char *what,
                        void **out, size_t *len) {
  lash_bytes b;
  if (llash_encode(L, idx, what, &b) < 0) {
    llash_op_free(op);
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  }
  *out = malloc(b.len > 0 ? b.len : 1);
  if (*out == NULL) {
    lua_pop(L, 1);
    return llash_op_nomem(L, op);
  }
  memcpy(*out, b.data, b.len);
  *len = b.len;
  lua_pop(L, 1);
  return 0;
}

int llash_op_payload(lua_State *L, llash_op *op, int idx, const char *what) {
  return copy_payload(L, op, idx, what, &op->payload, &op->len);
}

int llash_op_journal(lua_State *L, llash_op *op, lua_Integer n,
                     const char *suffix, const char *jtype, int idx) {
  char key[64];
  snprintf(key, sizeof key, "cmd:%lld%s", (long long)n,
           suffix != NULL ? suffix : "");
  if ((op->key = llash_strdup(key)) == NULL) return llash_op_nomem(L, op);
  if (jtype == NULL) return 0; /* the write's own append takes the key */
  if ((op->jtype = llash_strdup(jtype)) == NULL) return llash_op_nomem(L, op);
  return copy_payload(L, op, idx, "journal entry", &op->jpayload, &op->jlen);
}

/* The write itself, inside the shared transaction. */
static int op_fn(lash_store *s, lash_txn *txn, void *ud) {
  llash_op *op = ud;
  lash_bytes b;
  int rc = LASH_EINVAL;
  b.data = op->payload;
  b.len = op->len;
  switch (op->res.type) {
  case LLASH_OP_REGISTER:
  case LLASH_OP_CHILD: {
    lash_def def;
    memset(&def, 0, sizeof def);
    def.id = op->s1;
    def.kind = op->s2;
    def.input = b;
    def.disposition = op->i1;
    def.max_attempts = op->u1;
    def.timeout_ms = op->n1;
    if (op->res.type == LLASH_OP_CHILD) def.parent = op->lease.process_id;
    def.retry = op->retry; /* issue 13 */
    def.run_at = op->run_at >= 0 ? op->run_at : lash_store_now(s) - op->run_at;
    def.unique_key = op->unique_key;
    def.unique_for_ms = op->unique_for_ms;
    /* issue 13 (claim) */
    def.priority = op->prio;
    def.concurrency_key = op->s3;
    def.concurrency_limit = op->climit;
    /* Registers and, as the core decides, admits in the same commit. */
    if (def.unique_key != NULL) { /* issue 13: the row holding the key */
      lash_record held;
      rc = lash_engine_register(op->le->e, txn, &def, &op->i2, &held, NULL);
      if (rc == LASH_APPLIED && held.id != NULL)
        snprintf(op->res.uid, sizeof op->res.uid, "%s", held.id);
      lash_record_free(&held);
    } else {
      rc = lash_engine_register(op->le->e, txn, &def, &op->i2, NULL, NULL);
    }
    op->res.created = rc >= 0 && op->i2;
    break;
  }
  case LLASH_OP_JOURNAL:
    rc = lash_append_keyed(s, txn, op->lease.process_id, &op->lease, op->s2, b,
                           op->key, &op->res.seq);
    break;
  case LLASH_OP_APPEND: /* s3: the replay key, or NULL */
    rc = lash_append_keyed(s, txn, op->s1, NULL, op->s2, b, op->s3,
                           &op->res.seq);
    break;
  case LLASH_OP_APPEND_FENCED:
    if (op->key != NULL)
      rc = lash_append_keyed(s, txn, op->lease.process_id, &op->lease, op->s2,
                             b, op->key, &op->res.seq);
    else
      rc = lash_append_fenced(s, txn, &op->lease, op->s2, b, &op->res.seq);
    break;
  case LLASH_OP_CANCEL:
    rc = lash_request_cancel(s, txn, op->s1, op->s2, &op->res.seq);
    break;
  case LLASH_OP_RETRY: /* issue 13 */
    rc = lash_retry(s, txn, op->s1, &op->res.seq);
    break;
  case LLASH_OP_ABANDON:
    rc = lash_request_abandon(s, txn, op->s1, op->s2, op->s3, &op->res.seq);
    break;
  case LLASH_OP_WAIT_SET:
    rc = lash_wait_set(s, txn, &op->lease, op->s2, &op->res.seq);
    break;
  case LLASH_OP_WAIT_CLEAR:
    rc = lash_wait_clear(s, txn, &op->lease, &op->res.seq);
    break;
  case LLASH_OP_COMPLETE:
    rc = lash_complete_unleased(s, txn, op->s1, op->i1, b, op->i2);
    break;
  case LLASH_OP_PRUNE:
    rc = lash_prune(s, txn, op->n1, op->i1, &op->res.prune);
    break;
  default:
    break;
  }
  if (rc >= 0 && op->jtype != NULL) { /* the journal entry it carries */
    uint64_t seq;
    lash_bytes jb;
    int jrc;
    jb.data = op->jpayload;
    jb.len = op->jlen;
    jrc = lash_append_keyed(s, txn, op->lease.process_id, &op->lease, op->jtype,
                            jb, op->key, &seq);
    if (jrc < 0) rc = jrc;
  }
  if (rc < 0) snprintf(op->res.msg, sizeof op->res.msg, "%s", lash_errmsg(s));
  return rc;
}

/* Records the final code of @p op. */
static void op_settle(llash_op *op, int rc) {
  op->res.rc = rc;
  if (rc < 0 && op->res.msg[0] == '\0')
    snprintf(op->res.msg, sizeof op->res.msg, "%s", lash_strerror(rc));
}

/* The same for a write that committed (or failed) just now, in this call:
 * a failure before the op ran (the transaction did not begin: a read-only
 * store) left the store's message, which nothing has overwritten yet
 * (every transaction begins by clearing it; only a closed writer refuses
 * before it reaches the store). */
static void op_settle_now(llash_op *op, int rc) {
  const char *m = lash_errmsg(lash_engine_store(op->le->e));
  if (rc < 0 && rc != LASH_ECLOSED && op->res.msg[0] == '\0' && m != NULL &&
      m[0] != '\0')
    snprintf(op->res.msg, sizeof op->res.msg, "%s", m);
  op_settle(op, rc);
}

/* Pushes the results of a finished write as the Lua call returns them. */
static int push_result(lua_State *L, const llash_result *r) {
  if (r->rc < 0) return llash_fail(L, r->rc, r->msg);
  switch (r->type) {
  case LLASH_OP_APPEND: /* seq, replayed */
    lua_pushinteger(L, (lua_Integer)r->seq);
    lua_pushboolean(L, r->rc == LASH_APPLIED);
    return 2;
  case LLASH_OP_APPEND_FENCED:
  case LLASH_OP_JOURNAL:
  case LLASH_OP_CANCEL:
  case LLASH_OP_ABANDON:
  case LLASH_OP_RETRY:
    lua_pushinteger(L, (lua_Integer)r->seq);
    return 1;
  case LLASH_OP_COMPLETE:
    if (r->rc == LASH_SUPERSEDED_OUTCOME) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "a different outcome was recorded first");
      return 2;
    }
    lua_pushboolean(L, 1);
    if (r->rc == LASH_APPLIED) {
      lua_pushliteral(L, "the same outcome was already recorded");
      return 2;
    }
    return 1;
  case LLASH_OP_PRUNE:
    lua_createtable(L, 0, 2);
    llash_setint(L, "processes", (lua_Integer)r->prune.processes);
    llash_setint(L, "events", (lua_Integer)r->prune.events);
    return 1;
  case LLASH_OP_REGISTER: /* true, the row holding its key or nil, created */
    lua_pushboolean(L, 1);
    if (r->uid[0] == '\0')
      lua_pushnil(L);
    else
      lua_pushstring(L, r->uid);
    lua_pushboolean(L, r->created);
    return 3;
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

/* The body's slot is back after its write committed: it goes on. */
static void slot_back(void *ud, lash_wait *w, int rc) {
  llash_co *c = ud;
  (void)rc; /* the write's own result is in c->res */
  lash_wait_free(w);
  c->wwait = NULL;
  llash_co_wake(c, LLASH_PARK_WRITE);
}

/* After the commit of a queued write (from a loop callback). */
static void op_done(void *ud, int rc) {
  llash_op *op = ud;
  llash_co *c = op->co;
  op_settle(op, rc);
  if (c != NULL) {
    c->res = op->res;
    c->op = NULL;
  }
  llash_op_free(op);
  if (c == NULL) return;
  if (c->wwait != NULL)
    lash_wait_resolve(c->wwait, 0); /* slot_back follows, with a slot */
  else
    llash_co_wake(c, LLASH_PARK_WRITE);
}

static int write_k(lua_State *L, int status, lua_KContext k) {
  llash_co *c = (llash_co *)k;
  (void)status;
  c->parked = 0;
  return push_result(L, &c->res);
}

int llash_write(lua_State *L, llash_engine *le, llash_co *c, llash_op *op) {
  llash_result res;
  int rc;
  /* A coroutine that cannot yield here (inside a C function) commits its
   * write before the call returns, like plain code. */
  if (c != NULL && !le->batch && lua_isyieldable(L)) {
    rc = lash_engine_write_again(le->e, op_fn, op, op_done);
    if (rc < 0) {
      op_settle(op, rc);
      res = op->res;
      llash_op_free(op);
      return push_result(L, &res);
    }
    op->co = c;
    c->op = op;
    llash_list_push(&le->ops, &op->link);
    c->parked = LLASH_PARK_WRITE;
    /* A body gives its slot back until the commit (none free for it:
     * it keeps the slot, as plain coroutines do). */
    if (c->type == LLASH_CO_BODY && c->run != NULL &&
        lash_await_manual(le->e, c->run, slot_back, c, &c->wwait) < 0)
      c->wwait = NULL;
    return lua_yieldk(L, 0, (lua_KContext)c, write_k);
  }
  op_settle_now(op, lash_engine_write_sync(le->e, op_fn, op));
  res = op->res;
  llash_op_free(op);
  return push_result(L, &res);
}

int llash_write_nowait(lua_State *L, llash_engine *le, llash_op *op) {
  int rc;
  if (le->batch || le->depth == 0) return llash_write(L, le, NULL, op);
  /* Queued for this turn's commit; nobody waits for it. A later write of
   * the same run commits in the same transaction or a later one, so
   * whatever the body does after it that is durable finds it durable. */
  if ((rc = lash_engine_write_again(le->e, op_fn, op, op_done)) < 0) {
    llash_result res;
    op_settle(op, rc);
    res = op->res;
    llash_op_free(op);
    return push_result(L, &res);
  }
  llash_list_push(&le->ops, &op->link);
  lua_pushboolean(L, 1);
  return 1;
}

void llash_ops_orphan(llash_engine *le) {
  llash_link *l;
  for (l = le->ops.next; l != &le->ops; l = l->next)
    llash_container_of(l, llash_op, link)->co = NULL;
}

void llash_ops_free(llash_engine *le) {
  while (!llash_list_empty(&le->ops))
    llash_op_free(llash_container_of(le->ops.next, llash_op, link));
}

/* ------------------------------------------------------ the write calls */

static int write(lua_State *L, llash_engine *le, llash_op *op) {
  return llash_write(L, le, llash_writer(L, le), op);
}

/* ---- issue 13 (retry) ---- */

/* The table at @p idx: {retry = {max_attempts, initial_ms, factor, max_ms,
 * jitter}, run_at, unique_key, unique_for_ms} (lua/lash checked them). */
static int issue13_opts(lua_State *L, llash_op *op, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, "retry");
  op->retry = llash_policy(L, -1);
  lua_pop(L, 1);
  op->run_at = (int64_t)llash_numfield(L, idx, "run_at");
  /* a delay counts from the registration (the store's clock, in op_fn) */
  if (llash_numfield(L, idx, "delay_ms") > 0)
    op->run_at = -(int64_t)llash_numfield(L, idx, "delay_ms");
  op->unique_for_ms = (int64_t)llash_numfield(L, idx, "unique_for_ms");
  if (lua_getfield(L, idx, "unique_key") == LUA_TSTRING &&
      (op->unique_key = llash_strdup(lua_tostring(L, -1))) == NULL) {
    lua_pop(L, 1);
    return llash_op_nomem(L, op);
  }
  lua_pop(L, 1);
  return 0;
}

/* issue 13 (claim): the table at @p idx (nil: none) {priority,
 * concurrency_key, concurrency_limit}, checked by lua/lash; the core checks
 * the values (EINVAL naming the field). */
static int claim_opts(lua_State *L, llash_op *op, int idx) {
  const char *key;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "priority");
  op->prio = (int64_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "concurrency_limit");
  op->climit = (int32_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, idx, "concurrency_key");
  key = luaL_optstring(L, -1, NULL);
  if (key != NULL && (op->s3 = llash_strdup(key)) == NULL)
    return llash_op_nomem(L, op);
  lua_pop(L, 3);
  return 0;
}

llash_op *llash_register_op(lua_State *L, llash_engine *le, int type, int at,
                            int *nret) {
  const char *kind, *id;
  int d = lash_disposition_parse(llash_checkstr(L, at + 3, "disposition"));
  lua_Integer max = llash_optcount(L, at + 4, "max_attempts", 0);
  lua_Integer budget = llash_optcount(L, at + 5, "timeout_ms", 0);
  llash_op *op;
  if ((*nret = llash_argid(L, at, "kind", LASH_RULE_NAME, 0, &kind)) != 0 ||
      (*nret = llash_argid(L, at + 2, "id", LASH_RULE_ID, 0, &id)) != 0)
    return NULL;
  luaL_argcheck(L, d != 0, at + 3, "unknown disposition");
  luaL_argcheck(L, max <= 0xffffffff, at + 4, "max_attempts is out of range");
  if ((op = llash_op_new(le, type, id, kind, NULL)) == NULL) {
    *nret = llash_op_nomem(L, op);
    return NULL;
  }
  op->i1 = d;
  op->u1 = (uint32_t)max;
  op->n1 = (int64_t)budget;
  if ((*nret = llash_op_payload(L, op, at + 1, "input")) != 0) return NULL;
  /* the start's options table: retry's and claim's fields (issue 13) */
  if (lua_istable(L, at + 6) && ((*nret = issue13_opts(L, op, at + 6)) != 0 ||
                                 (*nret = claim_opts(L, op, at + 6)) != 0))
    return NULL;
  return op;
}

/* core.start(eng, kind, input, id, disposition, max_attempts, timeout_ms
 * [, {priority, concurrency_key, concurrency_limit}]) -> true, the row
 * holding its unique key (nil: none), created */
static int l_start(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int n;
  llash_op *op = llash_register_op(L, le, LLASH_OP_REGISTER, 2, &n);
  return op != NULL ? write(L, le, op) : n;
}

/* An unfenced host append of @p type to @p id, payload at index 4, the
 * replay key (a string or nil) at index 5. */
static int host_append(lua_State *L, llash_engine *le, const char *id,
                       const char *type) {
  const char *key = llash_optstr(L, 5, "key");
  llash_op *op;
  int n;
  if ((op = llash_op_new(le, LLASH_OP_APPEND, id, type, key)) == NULL)
    return llash_op_nomem(L, op);
  if ((n = llash_op_payload(L, op, 4, "payload")) != 0) return n;
  return write(L, le, op);
}

/* eng:signal(id, name [, payload [, key]]) -> seq, replayed (lua/lash
 * takes the key as opts.key) */
static int l_signal(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id, *name;
  int n;
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0 ||
      (n = llash_argid(L, 3, "signal name", LASH_RULE_NAME, 0, &name)) != 0)
    return n;
  lua_settop(L, 5);
  /* index 6 keeps the type string alive until the op copied it */
  return host_append(L, le, id, lua_pushfstring(L, "signal.%s", name));
}

/* eng:append(id, type [, payload [, key]]) -> seq, replayed (an unfenced
 * host event) */
static int l_append(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id, *type;
  int n;
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0 ||
      (n = llash_argid(L, 3, "event type", LASH_RULE_NAME, 0, &type)) != 0)
    return n;
  lua_settop(L, 5);
  return host_append(L, le, id, type);
}

/* eng:cancel(id [, reason]) -> seq */
static int l_cancel(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id, *reason = llash_optstr(L, 3, "reason");
  llash_op *op;
  int n;
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return n;
  op = llash_op_new(le, LLASH_OP_CANCEL, id, reason, NULL);
  return op != NULL ? write(L, le, op) : llash_op_nomem(L, op);
}

/* eng:retry(id) -> seq (issue 13): a failed row runs again as a new
 * attempt */
static int l_retry(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  llash_op *op;
  int n;
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return n;
  op = llash_op_new(le, LLASH_OP_RETRY, id, NULL, NULL);
  return op != NULL ? write(L, le, op) : llash_op_nomem(L, op);
}

/* eng:abandon(id [, why]) -> seq */
static int l_abandon(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id, *why = llash_optstr(L, 3, "why");
  llash_op *op;
  int n;
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return n;
  op = llash_op_new(le, LLASH_OP_ABANDON, id, lash_engine_owner(le->e), why);
  return op != NULL ? write(L, le, op) : llash_op_nomem(L, op);
}

/* core.complete(eng, id, outcome, authority) -> true | false, msg: outcome
 * is {status=, value= | error= | reason=}, as init.lua checked it. */
static int l_complete(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  int status, auth = llash_checkenum(L, 4, "authority", lash_authority_name), n;
  llash_op *op;
  luaL_checktype(L, 3, LUA_TTABLE);
  if ((n = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return n;
  lua_settop(L, 4);
  status = lash_status_parse(llash_field_str(L, 3, "status"));
  luaL_argcheck(L, status != 0 && LASH_IS_TERMINAL(status), 3,
                "not a terminal status");
  if ((op = llash_op_new(le, LLASH_OP_COMPLETE, id, NULL, NULL)) == NULL)
    return llash_op_nomem(L, op);
  op->i1 = status;
  op->i2 = auth;
  if (status == LASH_ABANDONED) {
    char buf[512];
    int len = lash_abandon_payload(LASH_WRITER_RECONCILED_REQUEST,
                                   lash_engine_owner(le->e), buf, sizeof buf);
    if (len < 0) {
      llash_op_free(op);
      return llash_fail(L, len, NULL);
    }
    if ((op->payload = malloc((size_t)len + 1)) == NULL)
      return llash_op_nomem(L, op);
    memcpy(op->payload, buf, (size_t)len);
    op->len = (size_t)len;
  } else {
    if (status == LASH_COMPLETED)
      lua_getfield(L, 3, "value");
    else if (status == LASH_FAILED)
      lua_getfield(L, 3, "error");
    else
      lua_pushvalue(L, 3); /* cancelled: its reason */
    llash_push_outcome_payload(L, status, -1, NULL);
    if ((n = llash_op_payload(L, op, -1, "outcome")) != 0) return n;
  }
  return write(L, le, op);
}

/* core.prune(eng, before_ms [, status]) -> {processes=, events=} */
static int l_prune(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_Integer before = llash_checkint(L, 2, "before_ms");
  const char *st = llash_optstr(L, 3, "status");
  int status = st != NULL ? lash_status_parse(st) : 0;
  llash_op *op;
  luaL_argcheck(L, st == NULL || status != 0, 3, "unknown status");
  if ((op = llash_op_new(le, LLASH_OP_PRUNE, NULL, NULL, NULL)) == NULL)
    return llash_op_nomem(L, op);
  op->n1 = (int64_t)before;
  op->i1 = status;
  return write(L, le, op);
}

/* core.batch_begin(eng) */
static int l_batch_begin(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int rc;
  if (le->batch) return luaL_error(L, "eng:batch cannot nest");
  if ((rc = lash_engine_batch_begin(le->e)) < 0)
    return llash_fail_store(L, le, rc);
  le->batch = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/* core.batch_end(eng, commit) -> true | nil, msg, code */
static int l_batch_end(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int commit = lua_toboolean(L, 2), rc;
  if (!le->batch) return luaL_error(L, "no eng:batch is open");
  le->batch = 0;
  if ((rc = lash_engine_batch_end(le->e, commit)) < 0)
    return llash_fail(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

void llash_writes_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"signal", l_signal},   {"append", l_append}, {"cancel", l_cancel},
      {"abandon", l_abandon}, {"retry", l_retry},   {NULL, NULL}};
  static const luaL_Reg raw[] = {
      {"start", l_start},         {"complete", l_complete},
      {"prune", l_prune},         {"batch_begin", l_batch_begin},
      {"batch_end", l_batch_end}, {NULL, NULL}};
  llash_add_methods(L, methods);
  llash_add_functions(L, raw);
}
