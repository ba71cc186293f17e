/* l_engine.c - the "lash.Engine" userdata: open/close, reads, writes and
 * waits.
 *
 * Writes and waits work in two places. Inside a coroutine the engine runs (a
 * body, eng:spawn, an on_event handler) a write is queued for the shared
 * transaction and a wait parks: both yield with lua_yieldk and a loop
 * callback resumes the coroutine. From plain code a write commits before it
 * returns (lash_engine_write_sync) and a wait runs the loop until it
 * resolves (lash_engine_run_until).
 *
 * No Lua error may cross core frames: every callback the core makes does its
 * Lua work through llash_protect, and listings push through lua_pcall.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LASH_HAVE_LUV
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* luv.h's own */
#include <luv/luv.h>
#pragma GCC diagnostic pop
#endif
#include "llash.h"

/* ---------------------------------------------------------------- utils */

char *llash_strdup(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

int llash_fail(lua_State *L, int rc, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg != NULL && msg[0] != '\0' ? msg : lash_strerror(rc));
  lua_pushstring(L, lash_err_name(rc));
  return 3;
}

int llash_fail_store(lua_State *L, llash_engine *le, int rc) {
  return llash_fail(L, rc, lash_errmsg(lash_engine_store(le->e)));
}

/* 1 while the engine runs on luv's loop and luv is running it (uv.run):
 * libuv loops are not re-entrant, so plain-code waits must not run it. */
int llash_luv_running(const llash_engine *le) {
#ifdef LASH_HAVE_LUV
  return le->luv != NULL && ((const luv_ctx_t *)le->luv)->mode != -1;
#else
  (void)le;
  return 0;
#endif
}

llash_engine *llash_checkengine(lua_State *L, int idx) {
  llash_engine **u = luaL_checkudata(L, idx, LLASH_ENGINE);
  if (*u == NULL) luaL_error(L, "attempt to use a closed lash engine");
  return *u;
}

static int l_typeerr(lua_State *L, int idx, const char *name,
                     const char *want) {
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "%s: %s expected, got %s", name, want,
                                       luaL_typename(L, idx)));
}

const char *llash_checkstr(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TSTRING) l_typeerr(L, idx, name, "string");
  return lua_tostring(L, idx);
}

const char *llash_optstr(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return llash_checkstr(L, idx, name);
}

lua_Integer llash_checkint(lua_State *L, int idx, const char *name) {
  if (!lua_isinteger(L, idx)) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      luaL_argerror(
          L, idx, lua_pushfstring(L, "%s: number has no integer value", name));
    l_typeerr(L, idx, name, "integer");
  }
  return lua_tointeger(L, idx);
}

lua_Integer llash_optint(lua_State *L, int idx, const char *name,
                         lua_Integer def) {
  if (lua_isnoneornil(L, idx)) return def;
  return llash_checkint(L, idx, name);
}

void llash_checkfn(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TFUNCTION) l_typeerr(L, idx, name, "function");
}

static void l_checknonneg(lua_State *L, lua_Integer v, int idx,
                          const char *name) {
  if (v < 0) luaL_argerror(L, idx, lua_pushfstring(L, "%s must be >= 0", name));
}

/* Guards: a userdata that frees a C resource when collected, so a memory
 * error raised while the resource is held leaks nothing. */
typedef struct l_guard {
  void (*free)(void *p);
  void *p;
  lash_record rec; /* room for a record read into the guard */
} l_guard;

static int l_guard_gc(lua_State *L) {
  l_guard *g = lua_touserdata(L, 1);
  if (g != NULL && g->free != NULL) {
    g->free(g->p);
    g->free = NULL;
  }
  return 0;
}

static l_guard *l_guard_new(lua_State *L, void (*fn)(void *), void *p) {
  l_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  if (luaL_newmetatable(L, "lash.Guard")) {
    lua_pushcfunction(L, l_guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  g->free = fn;
  g->p = p;
  return g;
}

/* Frees the guarded resource now; pops the guard at @p idx (absolute). */
static void l_guard_done(lua_State *L, int idx) {
  l_guard *g = lua_touserdata(L, idx);
  if (g->free != NULL) {
    g->free(g->p);
    g->free = NULL;
  }
  lua_remove(L, idx);
}

static void l_free_record(void *p) {
  lash_record_free(p);
}

static void l_free_wait(void *p) {
  lash_wait_free(p);
}

/* ------------------------------------------------------- pushing results */

static void l_setstr(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void l_setint(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void llash_pushoutcome(lua_State *L, int status, lash_bytes b) {
  lua_createtable(L, 0, 3);
  l_setstr(L, "status", lash_status_name(status));
  llash_pushpayload(L, b);
  switch (status) {
  case LASH_COMPLETED:
    lua_setfield(L, -2, "value");
    break;
  case LASH_FAILED:
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_createtable(L, 0, 2);
      l_setstr(L, "class", "error");
      lua_rotate(L, -2, 1);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushstring(L, "failed");
      }
      lua_setfield(L, -2, "message");
    }
    lua_setfield(L, -2, "error");
    break;
  case LASH_CANCELLED:
    if (lua_type(L, -1) == LUA_TTABLE)
      lua_getfield(L, -1, "reason");
    else
      lua_pushvalue(L, -1);
    if (lua_type(L, -1) == LUA_TSTRING)
      lua_setfield(L, -3, "reason");
    else
      lua_pop(L, 1);
    lua_pop(L, 1);
    break;
  default: /* abandoned: {writer=, owner=} */
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        /* Absent fields stay absent: no lash.null in an outcome. */
        if (lua_type(L, -2) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -2), "status") != 0 &&
            lua_touserdata(L, -1) != &llash_null_tag) {
          lua_pushvalue(L, -2);
          lua_insert(L, -2);
          lua_rawset(L, -5);
        } else {
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
    break;
  }
}

void llash_pushtombstone_outcome(lua_State *L, const lash_tombstone *t) {
  lua_createtable(L, 0, 3);
  l_setstr(L, "status", "no_longer_retained");
  l_setstr(L, "terminal", lash_status_name(t->status));
  l_setint(L, "pruned_at", (lua_Integer)t->pruned_at);
}

void llash_pushrecord(lua_State *L, const lash_record *r) {
  lua_createtable(L, 0, 18);
  l_setstr(L, "id", r->id);
  l_setstr(L, "kind", r->kind);
  llash_pushpayload(L, r->input);
  lua_setfield(L, -2, "input");
  l_setstr(L, "disposition", lash_disposition_name(r->disposition));
  if (r->max_attempts > 0) l_setint(L, "max_attempts", r->max_attempts);
  l_setstr(L, "status", lash_status_name(r->status));
  if (r->has_attempt) {
    lua_createtable(L, 0, 5);
    l_setstr(L, "owner", r->attempt.owner);
    l_setstr(L, "incarnation", r->attempt.incarnation);
    l_setint(L, "fence", (lua_Integer)r->attempt.fence);
    l_setint(L, "number", (lua_Integer)r->attempt.number);
    l_setint(L, "started_at", (lua_Integer)r->attempt.started_at);
    lua_setfield(L, -2, "attempt");
  }
  if (LASH_IS_TERMINAL(r->status)) {
    llash_pushoutcome(L, r->status, r->outcome);
    lua_setfield(L, -2, "outcome");
  }
  l_setstr(L, "wait", r->wait);
  if (r->wait != NULL) l_setint(L, "wait_since", (lua_Integer)r->wait_since);
  lua_pushboolean(L, r->cancel_requested);
  lua_setfield(L, -2, "cancel_requested");
  l_setstr(L, "cancel_reason", r->cancel_reason);
  if (r->abandon_requested) {
    lua_createtable(L, 0, 2);
    l_setstr(L, "by", r->abandon_by);
    l_setstr(L, "reason", r->abandon_reason);
    lua_setfield(L, -2, "abandon_request");
  }
  l_setint(L, "created_at", (lua_Integer)r->created_at);
  l_setint(L, "updated_at", (lua_Integer)r->updated_at);
  l_setint(L, "last_seq", (lua_Integer)r->last_seq);
}

void llash_pushevent(lua_State *L, const lash_event *ev) {
  lua_createtable(L, 0, 5);
  l_setstr(L, "process_id", ev->process_id);
  l_setint(L, "seq", (lua_Integer)ev->seq);
  l_setstr(L, "type", ev->type);
  llash_pushpayload(L, ev->payload);
  lua_setfield(L, -2, "payload");
  l_setint(L, "at", (lua_Integer)ev->at);
}

/* ---------------------------------------------------------- protection */

int llash_protect(llash_engine *le, lua_CFunction f, void *a, void *b) {
  lua_State *L = le->L;
  int st;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, a);
  lua_pushlightuserdata(L, b);
  st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    fprintf(stderr, "lash: error in a loop callback: %s\n",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                           : "(not a string)");
    lua_pop(L, 1);
  }
  return st;
}

/* --------------------------------------------------------- coroutines */

static char l_cos_key;

llash_co *llash_current(lua_State *L, llash_engine *le) {
  llash_co *c;
  if (le->depth == 0) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &l_cos_key);
  lua_pushthread(L);
  lua_rawget(L, -2);
  c = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (c == NULL || c->le != le)
    luaL_error(L, "lash: waits and writes inside a lash coroutine must run "
                  "in that coroutine, not in one nested inside it");
  return c;
}

/* ------------------------------------------------------------- writes */

llash_op *llash_op_new(llash_engine *le, int type) {
  llash_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->type = type;
  op->le = le;
  return op;
}

void llash_op_free(llash_op *op) {
  if (op == NULL) return;
  free(op->s1);
  free(op->s2);
  free(op->s3);
  free(op->payload);
  free(op);
}

static void l_op_unlink(llash_op *op) {
  llash_engine *le = op->le;
  if (op->prev != NULL)
    op->prev->next = op->next;
  else if (le->ops == op)
    le->ops = op->next;
  if (op->next != NULL) op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

static int l_op_fn(lash_store *s, lash_txn *txn, void *ud) {
  llash_op *op = ud;
  lash_bytes b;
  int rc = LASH_EINVAL;
  b.data = op->payload;
  b.len = op->len;
  switch (op->type) {
  case LLASH_OP_REGISTER: {
    lash_def def;
    def.id = op->s1;
    def.kind = op->s2;
    def.input = b;
    def.disposition = op->i1;
    def.max_attempts = op->u1;
    if (op->le->e != NULL)
      rc = lash_engine_register(op->le->e, txn, &def, &op->i2, NULL, NULL);
    else
      rc = lash_register(s, txn, &def, &op->i2, NULL);
    break;
  }
  case LLASH_OP_APPEND:
    rc = lash_append(s, txn, op->s1, op->s2, b, &op->seq);
    break;
  case LLASH_OP_APPEND_FENCED:
    rc = lash_append_fenced(s, txn, &op->lease, op->s2, b, &op->seq);
    break;
  case LLASH_OP_CANCEL:
    rc = lash_request_cancel(s, txn, op->s1, op->s2, &op->seq);
    break;
  case LLASH_OP_ABANDON:
    rc = lash_request_abandon(s, txn, op->s1, op->s2, op->s3, &op->seq);
    break;
  case LLASH_OP_WAIT_SET:
    rc = lash_wait_set(s, txn, &op->lease, op->s2, &op->seq);
    break;
  case LLASH_OP_WAIT_CLEAR:
    rc = lash_wait_clear(s, txn, &op->lease, &op->seq);
    break;
  case LLASH_OP_COMPLETE:
    rc = lash_complete_unleased(s, txn, op->s1, op->i1, b, op->i2);
    break;
  case LLASH_OP_PRUNE:
    rc = lash_prune(s, txn, op->n1, op->i1, &op->prune);
    break;
  default:
    break;
  }
  if (rc < 0) snprintf(op->msg, sizeof op->msg, "%s", lash_errmsg(s));
  return rc;
}

/* Pushes the results of a finished write and frees it. */
static int l_op_result(lua_State *L, llash_op *op) {
  int type = op->type, rc = op->rc;
  uint64_t seq = op->seq;
  lash_prune_report pr = op->prune;
  char msg[sizeof op->msg];
  memcpy(msg, op->msg, sizeof msg);
  llash_op_free(op);
  if (rc < 0) return llash_fail(L, rc, msg);
  switch (type) {
  case LLASH_OP_APPEND:
  case LLASH_OP_APPEND_FENCED:
  case LLASH_OP_CANCEL:
  case LLASH_OP_ABANDON:
    lua_pushinteger(L, (lua_Integer)seq);
    return 1;
  case LLASH_OP_COMPLETE:
    if (rc == LASH_SUPERSEDED_OUTCOME) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "a different outcome was recorded first");
      return 2;
    }
    lua_pushboolean(L, 1);
    if (rc == LASH_APPLIED) {
      lua_pushliteral(L, "the same outcome was already recorded");
      return 2;
    }
    return 1;
  case LLASH_OP_PRUNE:
    lua_createtable(L, 0, 2);
    l_setint(L, "processes", (lua_Integer)pr.processes);
    l_setint(L, "events", (lua_Integer)pr.events);
    return 1;
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

static int p_resume_co(lua_State *L) {
  llash_co *c = lua_touserdata(L, 1);
  if (c->ref != LUA_NOREF && c->parked) llash_co_resume(c, 0);
  return 0;
}

static void l_op_done(void *ud, int rc) {
  llash_op *op = ud;
  llash_waiter *w = op->w;
  llash_engine *le = op->le;
  l_op_unlink(op);
  op->rc = rc;
  if (rc < 0 && op->msg[0] == '\0')
    snprintf(op->msg, sizeof op->msg, "%s", lash_strerror(rc));
  if (w == NULL) { /* nobody waits any more */
    llash_op_free(op);
    return;
  }
  /* Handed over: w->op owns it now, freed by the continuation, or by
   * llash_co_release if the coroutine goes first. Neither w nor op may be
   * touched after the resume. */
  op->w = NULL;
  w->rc = rc;
  w->done = 1;
  if (w->co != NULL) llash_protect(le, p_resume_co, w->co, NULL);
}

static int l_wait_k(lua_State *L, int status, lua_KContext k);

int llash_write(lua_State *L, llash_engine *le, llash_co *c, llash_op *op) {
  int rc;
  /* A coroutine that cannot yield here (inside a C function) commits its
   * write before the call returns, like plain code. */
  if (c != NULL && !le->batch && lua_isyieldable(L)) {
    llash_waiter *w = &c->w;
    w->co = c;
    w->what = LLASH_W_WRITE;
    w->op = op;
    w->done = 0;
    op->w = w;
    rc = lash_engine_write(le->e, l_op_fn, op, l_op_done);
    if (rc < 0) {
      w->op = NULL;
      op->rc = rc;
      snprintf(op->msg, sizeof op->msg, "%s", lash_strerror(rc));
      return l_op_result(L, op);
    }
    op->next = le->ops;
    if (le->ops != NULL) le->ops->prev = op;
    le->ops = op;
    c->parked = 1;
    return lua_yieldk(L, 0, (lua_KContext)c, l_wait_k);
  }
  op->rc = lash_engine_write_sync(le->e, l_op_fn, op);
  if (op->rc < 0 && op->msg[0] == '\0')
    snprintf(op->msg, sizeof op->msg, "%s", lash_strerror(op->rc));
  return l_op_result(L, op);
}

/* -------------------------------------------------------------- waits */

int llash_raise_cancelled(lua_State *L, llash_engine *le, const char *id) {
  l_guard *g = l_guard_new(L, NULL, NULL);
  int gi = lua_gettop(L);
  lua_createtable(L, 0, 3);
  l_setstr(L, "class", "cancelled");
  if (lash_get(lash_engine_store(le->e), NULL, id, &g->rec, NULL) == 0) {
    g->free = l_free_record;
    g->p = &g->rec;
    l_setstr(L, "reason", g->rec.cancel_reason);
  }
  lua_getfield(L, -1, "reason");
  lua_pushfstring(L, "process %s was cancelled%s%s", id,
                  lua_isstring(L, -1) ? ": " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_setfield(L, -3, "message");
  lua_pop(L, 1);
  l_guard_done(L, gi);
  luaL_setmetatable(L, LLASH_CANCELLED);
  return lua_error(L);
}

/* Pushes the results of a resolved wait and frees it. */
static int l_wait_result(lua_State *L, llash_engine *le, llash_waiter *w) {
  int rc = w->rc, what = w->what, gi, n = 1;
  lash_wait *res = w->res;
  char label[LASH_ID_MAX + 1];
  snprintf(label, sizeof label, "%s", w->label != NULL ? w->label : "");
  free(w->label);
  w->label = NULL;
  w->res = NULL;
  if (what == LLASH_W_WRITE) {
    llash_op *op = w->op;
    w->op = NULL;
    return l_op_result(L, op);
  }
  l_guard_new(L, l_free_wait, res);
  gi = lua_gettop(L);
  if (rc == LASH_ECANCELED && w->co != NULL && w->co->id != NULL) {
    l_guard_done(L, gi);
    return llash_raise_cancelled(L, le, w->co->id);
  }
  if (rc < 0) {
    l_guard_done(L, gi);
    if (rc == LASH_ETIMEDOUT)
      lua_pushfstring(L, "timed out waiting for %s", label);
    else
      lua_pushfstring(L, "%s: %s", lash_strerror(rc), label);
    return llash_fail(L, rc, lua_tostring(L, -1));
  }
  switch (what) {
  case LLASH_W_TERMINAL: {
    const lash_record *r = lash_wait_record(res);
    const lash_tombstone *t = lash_wait_tombstone(res);
    if (r != NULL)
      llash_pushoutcome(L, r->status, r->outcome);
    else if (t != NULL)
      llash_pushtombstone_outcome(L, t);
    else
      lua_pushnil(L);
    break;
  }
  case LLASH_W_EVENT: {
    const lash_event *ev = lash_wait_event(res);
    if (ev != NULL)
      llash_pushevent(L, ev);
    else
      lua_pushnil(L);
    break;
  }
  default:
    lua_pushboolean(L, 1);
    break;
  }
  l_guard_done(L, gi);
  return n;
}

static int l_wait_k(lua_State *L, int status, lua_KContext k) {
  llash_co *c = (llash_co *)k;
  (void)status;
  c->parked = 0;
  return l_wait_result(L, c->le, &c->w);
}

void llash_wait_cb(void *ud, lash_wait *w, int rc) {
  llash_waiter *wt = ud;
  wt->wait = NULL;
  wt->res = w;
  wt->rc = rc;
  wt->done = 1;
  /* The continuation frees the result, or llash_co_release does if the
   * coroutine goes first. */
  if (wt->co != NULL) llash_protect(wt->co->le, p_resume_co, wt->co, NULL);
}

int llash_wait(lua_State *L, llash_engine *le, llash_co *c, llash_waiter *wt,
               int rc) {
  if (rc < 0) {
    free(wt->label);
    wt->label = NULL;
    wt->wait = NULL;
    if (rc == LASH_ECANCELED && c != NULL && c->id != NULL)
      return llash_raise_cancelled(L, le, c->id);
    return llash_fail_store(L, le, rc);
  }
  if (rc > 0) { /* resolved at once */
    wt->res = wt->wait;
    wt->wait = NULL;
    wt->rc = 0;
    return l_wait_result(L, le, wt);
  }
  if (c != NULL) {
    c->parked = 1;
    return lua_yieldk(L, 0, (lua_KContext)c, l_wait_k);
  }
  {
    lua_State *prev = le->L;
    le->L = L;
    le->in_loop++;
    rc = lash_engine_run_until(le->e, &wt->done);
    le->in_loop--;
    le->L = prev;
  }
  if (!wt->done) {
    lash_wait_free(wt->wait);
    wt->wait = NULL;
    free(wt->label);
    wt->label = NULL;
    if (rc == LASH_ECANCELED) return luaL_error(L, "interrupted!");
    return llash_fail(L, rc < 0 ? rc : LASH_ECLOSED,
                      "the loop stopped before the wait resolved");
  }
  return l_wait_result(L, le, wt);
}

void llash_check_yieldable(lua_State *L) {
  /* Checked before anything is registered: a failed yield would leave a
   * wait behind that resumes the coroutine later, at the wrong point. */
  if (!lua_isyieldable(L))
    luaL_error(L, "lash: cannot wait here: a C function (a table.sort "
                  "comparator, a metamethod, ...) stands between this call "
                  "and the lash coroutine");
}

/* Checks that a wait may start here; returns the waiter to use. */
static llash_waiter *l_waiter(lua_State *L, llash_engine *le, llash_co **pc,
                              llash_waiter *local, int what,
                              const char *label) {
  llash_co *c = llash_current(L, le);
  llash_waiter *w = c != NULL ? &c->w : local;
  if (c != NULL) llash_check_yieldable(L);
  if (le->batch) luaL_error(L, "cannot wait inside eng:batch");
  if (c == NULL && le->in_loop > 0 && le->depth > 0)
    luaL_error(L, "cannot wait here: the lash loop is already running");
  if (c == NULL && llash_luv_running(le))
    luaL_error(L, "cannot wait from plain code while the luv loop runs: "
                  "wait inside eng:spawn(fn) instead");
  memset(w, 0, sizeof *w);
  w->co = c;
  w->what = what;
  w->label = llash_strdup(label);
  *pc = c;
  if (c != NULL && c->run != NULL && c->id != NULL &&
      lash_run_cancelled(c->run)) {
    free(w->label);
    w->label = NULL;
    llash_raise_cancelled(L, le, c->id);
  }
  return w;
}

static lash_run *l_run_of(llash_co *c) {
  return c != NULL && c->type == LLASH_CO_BODY ? c->run : NULL;
}

static int64_t l_opttimeout(lua_State *L, int idx) {
  lua_Integer t;
  if (lua_isnoneornil(L, idx)) return -1;
  t = llash_checkint(L, idx, "timeout_ms");
  l_checknonneg(L, t, idx, "timeout_ms");
  return (int64_t)t;
}

/* core.await(eng, id [, timeout_ms]) -> outcome | nil, msg, code */
static int l_await(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  int64_t timeout = l_opttimeout(L, 3);
  llash_waiter local, *w;
  llash_co *c;
  int rc;
  w = l_waiter(L, le, &c, &local, LLASH_W_TERMINAL, id);
  rc = lash_await_terminal(le->e, l_run_of(c), id, timeout, llash_wait_cb, w,
                           &w->wait);
  return llash_wait(L, le, c, w, rc);
}

/* core.await_event(eng, id, type, after [, timeout_ms]) -> event | fail */
static int l_await_event(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  const char *type = llash_checkstr(L, 3, "type");
  lua_Integer after = llash_optint(L, 4, "after", 0);
  int64_t timeout = l_opttimeout(L, 5);
  llash_waiter local, *w;
  llash_co *c;
  int rc;
  l_checknonneg(L, after, 4, "after");
  w = l_waiter(L, le, &c, &local, LLASH_W_EVENT, id);
  rc = lash_await_event(le->e, l_run_of(c), id, type, (uint64_t)after, timeout,
                        llash_wait_cb, w, &w->wait);
  return llash_wait(L, le, c, w, rc);
}

/* eng:sleep(ms) -> true */
static int l_sleep(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_Integer ms = llash_checkint(L, 2, "ms");
  llash_waiter local, *w;
  llash_co *c;
  int rc;
  l_checknonneg(L, ms, 2, "ms");
  w = l_waiter(L, le, &c, &local, LLASH_W_SLEEP, "sleep");
  rc = lash_await_sleep(le->e, l_run_of(c), (int64_t)ms, llash_wait_cb, w,
                        &w->wait);
  return llash_wait(L, le, c, w, rc);
}

/* ------------------------------------------------------- open, close */

static int l_getint(lua_State *L, int t, const char *k, lua_Integer def) {
  lua_Integer v = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_error(L, "option %s must be a non-negative integer", k);
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return (int)(v > 0x7fffffff ? 0x7fffffff : v);
}

static int64_t l_getint64(lua_State *L, int t, const char *k) {
  lua_Integer v = 0;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_error(L, "option %s must be a non-negative integer", k);
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return (int64_t)v;
}

static const char *l_getstr(lua_State *L, int t, const char *k) {
  const char *s = NULL;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "option %s must be a string", k);
    s = lua_tostring(L, -1);
  }
  /* Leave it on the stack: the pointer must live until the open returns. */
  return s;
}

/* core.open(dir [, opts]) -> engine | nil, msg, code */
static int l_open(lua_State *L) {
  const char *dir = llash_checkstr(L, 1, "dir");
  llash_engine **u, *le;
  lash_engine_opts o;
  const char *dur;
  void *luv_ctx = NULL;
  char err[512];
  int rc;
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lash_engine_opts_init(&o);
  dur = l_getstr(L, 2, "durability");
  if (dur == NULL || strcmp(dur, "full") == 0)
    o.store.durability = LASH_DURABILITY_FULL;
  else if (strcmp(dur, "nometa") == 0)
    o.store.durability = LASH_DURABILITY_NOMETA;
  else if (strcmp(dur, "none") == 0)
    o.store.durability = LASH_DURABILITY_NONE;
  else
    return luaL_error(L,
                      "option durability must be \"full\", \"nometa\" "
                      "or \"none\", got \"%s\"",
                      dur);
  o.store.max_bytes = (size_t)l_getint64(L, 2, "max_bytes");
  o.store.max_payload = (size_t)l_getint64(L, 2, "max_payload");
  o.store.max_readers = (unsigned)l_getint(L, 2, "max_readers", 0);
  lua_getfield(L, 2, "read_only");
  o.store.read_only = lua_toboolean(L, -1);
  lua_pop(L, 1);
  {
    const char *loop = l_getstr(L, 2, "loop");
    if (loop != NULL && strcmp(loop, "luv") == 0) {
#ifdef LASH_HAVE_LUV
      /* luv keeps its context (loop first) in the registry. */
      lua_getfield(L, LUA_REGISTRYINDEX, "luv_context");
      luv_ctx = lua_touserdata(L, -1);
      lua_pop(L, 1);
      if (luv_ctx == NULL)
        return luaL_error(L, "option loop \"luv\": require \"luv\" first");
      o.loop = ((luv_ctx_t *)luv_ctx)->loop;
#else
      return luaL_error(L, "option loop \"luv\": this lash was built "
                           "without luv (install lua-luv-dev and rebuild)");
#endif
    } else if (loop != NULL && strcmp(loop, "own") != 0) {
      return luaL_error(L,
                        "option loop must be \"luv\" or \"own\", got "
                        "\"%s\"",
                        loop);
    }
  }
  o.owner = l_getstr(L, 2, "owner");
  o.incarnation = l_getstr(L, 2, "incarnation");
  o.concurrency = (unsigned)l_getint(L, 2, "concurrency", 0);
  o.lease_ttl_ms = l_getint64(L, 2, "lease_ttl_ms");
  o.renew_ms = l_getint64(L, 2, "renew_ms");
  o.poll_min_ms = l_getint64(L, 2, "poll_min_ms");
  o.poll_max_ms = l_getint64(L, 2, "poll_max_ms");
  lua_getfield(L, 2, "fs_wake");
  o.no_fs_wake = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 1);

  /* Created closed, then opened: a memory error in between leaves a valid
   * object for __gc. */
  u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, LLASH_ENGINE);
  lua_newtable(L); /* state: {kinds = {}, handlers = {}} */
  lua_newtable(L);
  lua_setfield(L, -2, "kinds");
  lua_newtable(L);
  lua_setfield(L, -2, "handlers");
  le = calloc(1, sizeof *le);
  if (le == NULL) return llash_fail(L, LASH_ENOMEM, NULL);
  le->state_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Loop callbacks outside eng:run/await (a luv host's uv.run) run on the
   * main thread, which outlives any coroutine that opened the engine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  le->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  le->luv = luv_ctx;
  lua_getfield(L, 2, "eager_start");
  o.no_eager_start = !(lua_isnil(L, -1) || lua_toboolean(L, -1));
  lua_pop(L, 1);
  err[0] = '\0';
  rc = lash_engine_open(dir, &o, &le->e, err, sizeof err);
  if (rc < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, le->state_ref);
    free(le);
    return llash_fail(L, rc, err);
  }
  *u = le;
  /* A weak reference to the userdata, for ctx.engine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_createtable(L, 0, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "self");
  lua_setfield(L, -2, "weak");
  lua_pop(L, 1);
  llash_runner_init(le);
  return 1;
}

static int l_close(lua_State *L) {
  llash_engine **u = luaL_checkudata(L, 1, LLASH_ENGINE);
  llash_engine *le = *u;
  llash_op *op, *next;
  if (le == NULL) return 0;
  if (le->in_loop > 0 || le->depth > 0)
    return luaL_error(L, "cannot close a lash engine while its loop runs");
  le->L = L;
  if (le->batch) {
    lash_engine_batch_end(le->e, 0);
    le->batch = 0;
  }
  llash_engine_release_all(le);
  for (op = le->ops; op != NULL; op = op->next)
    op->w = NULL;
  lash_engine_close(le->e);
  le->e = NULL;
  for (op = le->ops; op != NULL; op = next) {
    next = op->next;
    llash_op_free(op);
  }
  le->ops = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, le->state_ref);
  *u = NULL;
  free(le);
  return 0;
}

static int l_tostring(lua_State *L) {
  llash_engine **u = luaL_checkudata(L, 1, LLASH_ENGINE);
  if (*u == NULL)
    lua_pushliteral(L, "lash.Engine (closed)");
  else
    lua_pushfstring(L, "lash.Engine (%s)",
                    lash_store_path(lash_engine_store((*u)->e)));
  return 1;
}

/* ------------------------------------------------------------- writes */

static int l_nomem(lua_State *L, llash_op *op) {
  llash_op_free(op);
  return llash_fail(L, LASH_ENOMEM, NULL);
}

/* Encodes the value at idx into op->payload (malloc'd). Returns 0, or
 * pushes nil, msg, "EINVAL" and returns 3. */
static int l_op_payload(lua_State *L, llash_op *op, int idx, const char *what) {
  lash_bytes b;
  if (llash_encode(L, idx, what, &b) < 0) {
    llash_op_free(op);
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  }
  op->payload = malloc(b.len > 0 ? b.len : 1);
  if (op->payload == NULL) {
    lua_pop(L, 1);
    return l_nomem(L, op);
  }
  memcpy(op->payload, b.data, b.len);
  op->len = b.len;
  lua_pop(L, 1);
  return 0;
}

llash_co *llash_writer(lua_State *L, llash_engine *le) {
  /* Writes from a coroutine nested in a body commit synchronously. */
  llash_co *c = NULL;
  if (le->depth > 0) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &l_cos_key);
    lua_pushthread(L);
    lua_rawget(L, -2);
    c = lua_touserdata(L, -1);
    lua_pop(L, 2);
    if (c != NULL && c->le != le) c = NULL;
  }
  return c;
}

/* core.start(eng, kind, input, id, disposition, max_attempts) -> true */
static int l_start(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *kind = llash_checkstr(L, 2, "kind");
  const char *id = llash_checkstr(L, 4, "id");
  const char *disp = llash_checkstr(L, 5, "disposition");
  lua_Integer max = llash_optint(L, 6, "max_attempts", 0);
  int d = lash_disposition_parse(disp), n;
  llash_op *op;
  if (d == 0)
    return llash_fail(L, LASH_EINVAL,
                      lua_pushfstring(L, "unknown disposition \"%s\"", disp));
  if (max < 0 || max > 0xffffffff)
    return llash_fail(L, LASH_EINVAL, "max_attempts is out of range");
  if ((op = llash_op_new(le, LLASH_OP_REGISTER)) == NULL) return l_nomem(L, op);
  op->s1 = llash_strdup(id);
  op->s2 = llash_strdup(kind);
  op->i1 = d;
  op->u1 = (uint32_t)max;
  if (op->s1 == NULL || op->s2 == NULL) return l_nomem(L, op);
  if ((n = l_op_payload(L, op, 3, "input")) != 0) return n;
  return llash_write(L, le, llash_writer(L, le), op);
}

/* An unfenced host append of @p type to @p id, payload at index 4. */
static int l_host_append(lua_State *L, llash_engine *le, const char *id,
                         const char *type) {
  llash_op *op;
  int n;
  if ((op = llash_op_new(le, LLASH_OP_APPEND)) == NULL) return l_nomem(L, op);
  op->s1 = llash_strdup(id);
  op->s2 = llash_strdup(type);
  if (op->s1 == NULL || op->s2 == NULL) return l_nomem(L, op);
  if ((n = l_op_payload(L, op, 4, "payload")) != 0) return n;
  return llash_write(L, le, llash_writer(L, le), op);
}

/* eng:signal(id, name [, payload]) -> seq */
static int l_signal(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  const char *name = llash_checkstr(L, 3, "name");
  lua_settop(L, 4);
  /* index 5 keeps the type string alive until the op copied it */
  return l_host_append(L, le, id, lua_pushfstring(L, "signal.%s", name));
}

/* eng:append(id, type [, payload]) -> seq (an unfenced host event) */
static int l_append(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  const char *type = llash_checkstr(L, 3, "type");
  lua_settop(L, 4);
  return l_host_append(L, le, id, type);
}

/* eng:cancel(id [, reason]) -> seq */
static int l_cancel(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  const char *reason = llash_optstr(L, 3, "reason");
  llash_op *op;
  if ((op = llash_op_new(le, LLASH_OP_CANCEL)) == NULL) return l_nomem(L, op);
  op->s1 = llash_strdup(id);
  op->s2 = llash_strdup(reason);
  if (op->s1 == NULL || (reason != NULL && op->s2 == NULL))
    return l_nomem(L, op);
  return llash_write(L, le, llash_writer(L, le), op);
}

/* eng:abandon(id [, why]) -> seq */
static int l_abandon(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  const char *why = llash_optstr(L, 3, "why");
  llash_op *op;
  if ((op = llash_op_new(le, LLASH_OP_ABANDON)) == NULL) return l_nomem(L, op);
  op->s1 = llash_strdup(id);
  op->s2 = llash_strdup(lash_engine_owner(le->e));
  op->s3 = llash_strdup(why);
  if (op->s1 == NULL || op->s2 == NULL || (why != NULL && op->s3 == NULL))
    return l_nomem(L, op);
  return llash_write(L, le, llash_writer(L, le), op);
}

/* core.complete(eng, id, status, payload, authority) -> true | false, msg */
static int l_complete(lua_State *L) {
  static const char *const auths[] = {"external", "workflow",
                                      "reconciled_abandon", NULL};
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  int status = lash_status_parse(llash_checkstr(L, 3, "status"));
  int auth = luaL_checkoption(L, 5, NULL, auths) + 1;
  llash_op *op;
  int n;
  luaL_argcheck(L, status != 0 && LASH_IS_TERMINAL(status), 3,
                "not a terminal status");
  if ((op = llash_op_new(le, LLASH_OP_COMPLETE)) == NULL) return l_nomem(L, op);
  op->s1 = llash_strdup(id);
  op->i1 = status;
  op->i2 = auth;
  if (op->s1 == NULL) return l_nomem(L, op);
  if (status == LASH_ABANDONED) {
    char buf[512];
    int len = lash_abandon_payload(LASH_WRITER_RECONCILED_REQUEST,
                                   lash_engine_owner(le->e), buf, sizeof buf);
    if (len < 0) {
      llash_op_free(op);
      return llash_fail(L, len, NULL);
    }
    if ((op->payload = malloc((size_t)len + 1)) == NULL) return l_nomem(L, op);
    memcpy(op->payload, buf, (size_t)len);
    op->len = (size_t)len;
  } else {
    lua_settop(L, 5);
    if ((n = l_op_payload(L, op, 4, "outcome")) != 0) return n;
  }
  return llash_write(L, le, llash_writer(L, le), op);
}

/* core.prune(eng, before_ms [, status]) -> {processes=, events=} */
static int l_prune(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_Integer before = llash_checkint(L, 2, "before_ms");
  const char *st = llash_optstr(L, 3, "status");
  int status = st != NULL ? lash_status_parse(st) : 0;
  llash_op *op;
  if (st != NULL && status == 0)
    return llash_fail(L, LASH_EINVAL,
                      lua_pushfstring(L, "unknown status \"%s\"", st));
  if ((op = llash_op_new(le, LLASH_OP_PRUNE)) == NULL) return l_nomem(L, op);
  op->n1 = (int64_t)before;
  op->i1 = status;
  return llash_write(L, le, llash_writer(L, le), op);
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

/* -------------------------------------------------------------- reads */

/* eng:get(id) -> record | nil, msg, code */
static int l_get(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  l_guard *g = l_guard_new(L, NULL, NULL);
  int gi = lua_gettop(L);
  int rc = lash_get(lash_engine_store(le->e), NULL, id, &g->rec, NULL);
  if (rc < 0) return llash_fail_store(L, le, rc);
  g->free = l_free_record;
  g->p = &g->rec;
  llash_pushrecord(L, &g->rec);
  l_guard_done(L, gi);
  return 1;
}

typedef struct l_collect {
  lua_State *L;
  int tidx;
  lua_Integer n;
  int failed;
} l_collect;

/* Pushes the result array and points @p k at it. */
static void l_collect_begin(lua_State *L, l_collect *k) {
  lua_newtable(L);
  k->L = L;
  k->tidx = lua_gettop(L);
  k->n = 0;
  k->failed = 0;
}

/* Returns the array, or raises/fails for a callback or store error. */
static int l_collect_end(lua_State *L, llash_engine *le, l_collect *k, int rc) {
  if (k->failed) return lua_error(L);
  if (rc < 0) return llash_fail_store(L, le, rc);
  lua_settop(L, k->tidx);
  return 1;
}

static int p_push_record(lua_State *L) {
  llash_pushrecord(L, lua_touserdata(L, 2));
  lua_rawseti(L, 1, lua_tointeger(L, 3));
  return 0;
}

static int p_push_event(lua_State *L) {
  llash_pushevent(L, lua_touserdata(L, 2));
  lua_rawseti(L, 1, lua_tointeger(L, 3));
  return 0;
}

static int l_collect_one(l_collect *k, lua_CFunction f, const void *p) {
  lua_State *L = k->L;
  lua_pushcfunction(L, f);
  lua_pushvalue(L, k->tidx);
  lua_pushlightuserdata(L, (void *)p);
  lua_pushinteger(L, k->n + 1);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    k->failed = 1;
    return 1; /* stop; the error stays on the stack */
  }
  k->n++;
  return 0;
}

static int l_record_cb(void *ud, const lash_record *rec) {
  return l_collect_one(ud, p_push_record, rec);
}

static int l_event_cb(void *ud, const lash_event *ev) {
  return l_collect_one(ud, p_push_event, ev);
}

/* eng:events(id [, after [, limit]]) -> array of events | nil, msg, code */
static int l_events(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  lua_Integer after = llash_optint(L, 3, "after", 0);
  lua_Integer limit = llash_optint(L, 4, "limit", 0);
  l_collect k;
  int rc;
  l_checknonneg(L, after, 3, "after");
  l_checknonneg(L, limit, 4, "limit");
  lua_settop(L, 4);
  l_collect_begin(L, &k);
  rc = lash_events_after(lash_engine_store(le->e), NULL, id, (uint64_t)after,
                         (size_t)limit, l_event_cb, &k);
  return l_collect_end(L, le, &k, rc);
}

/* core.list(eng, status, kind, limit, after) -> array of records */
static int l_list(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *st = llash_optstr(L, 2, "status");
  lash_list_filter f;
  l_collect k;
  lua_Integer limit = llash_optint(L, 4, "limit", 0);
  int rc;
  memset(&f, 0, sizeof f);
  if (st != NULL && strcmp(st, "live") == 0)
    f.live_only = 1;
  else if (st != NULL && (f.status = lash_status_parse(st)) == 0)
    return llash_fail(L, LASH_EINVAL,
                      lua_pushfstring(L, "unknown status \"%s\"", st));
  f.kind = llash_optstr(L, 3, "kind");
  l_checknonneg(L, limit, 4, "limit");
  f.limit = (size_t)limit;
  f.after = llash_optstr(L, 5, "after");
  lua_settop(L, 5);
  l_collect_begin(L, &k);
  rc = lash_list(lash_engine_store(le->e), NULL, &f, l_record_cb, &k);
  return l_collect_end(L, le, &k, rc);
}

/* eng:stats() -> table */
static int l_stats(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_stats s;
  lash_engine_stats es;
  int rc, st;
  if ((rc = lash_store_stats(lash_engine_store(le->e), NULL, &s)) < 0)
    return llash_fail_store(L, le, rc);
  lash_engine_get_stats(le->e, &es);
  lua_createtable(L, 0, 20);
  for (st = LASH_PENDING; st <= LASH_ABANDONED; st++)
    l_setint(L, lash_status_name(st), (lua_Integer)s.count[st]);
  l_setint(L, "live", (lua_Integer)s.live);
  l_setint(L, "total", (lua_Integer)s.total);
  l_setint(L, "tombstones", (lua_Integer)s.tombstones);
  l_setint(L, "change_seq", (lua_Integer)s.change_seq);
  l_setint(L, "bytes_used", (lua_Integer)s.bytes_used);
  l_setint(L, "bytes_available", (lua_Integer)s.bytes_available);
  l_setint(L, "backoff_reads", (lua_Integer)es.backoff_reads);
  l_setint(L, "hub_wakes", (lua_Integer)es.hub_wakes);
  l_setint(L, "feed_changes", (lua_Integer)es.feed_changes);
  l_setint(L, "commits", (lua_Integer)es.commits);
  l_setint(L, "drives", (lua_Integer)es.drives);
  l_setint(L, "feed_changes", (lua_Integer)es.feed_changes);
  l_setint(L, "waits", (lua_Integer)es.waits);
  l_setint(L, "bodies_running", (lua_Integer)es.running);
  l_setint(L, "bodies_parked", (lua_Integer)es.parked);
  return 1;
}

/* eng:now() -> ms (the store's clock) */
static int l_now(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushinteger(L, (lua_Integer)lash_store_now(lash_engine_store(le->e)));
  return 1;
}

/* eng:owner() -> owner, incarnation */
static int l_owner(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushstring(L, lash_engine_owner(le->e));
  lua_pushstring(L, lash_engine_incarnation(le->e));
  return 2;
}

/* eng:path() -> store directory */
static int l_path(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushstring(L, lash_store_path(lash_engine_store(le->e)));
  return 1;
}

/* ------------------------------------------------------------ driving */

/* core.define(eng, kind, fn) */
static int l_define(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *kind = llash_checkstr(L, 2, "kind");
  int rc;
  llash_checkfn(L, 3, "fn");
  if ((rc = lash_engine_define(le->e, kind)) < 0)
    return llash_fail_store(L, le, rc);
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, "kinds");
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, kind);
  lua_pushboolean(L, 1);
  return 1;
}

/* eng:drive() -> {admitted=, deferred=} */
static int l_drive(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_drive_report rep;
  int rc;
  memset(&rep, 0, sizeof rep);
  if ((rc = lash_engine_drive(le->e, &rep)) < 0)
    return llash_fail_store(L, le, rc);
  lua_createtable(L, 0, 2);
  l_setint(L, "admitted", rep.admitted);
  l_setint(L, "deferred", rep.deferred);
  return 1;
}

/* core.run(eng, mode) -> true | nil, msg, code */
static int l_run(lua_State *L) {
  static const char *const modes[] = {"default", "once", "nowait", "until_idle",
                                      NULL};
  static const int values[] = {LASH_RUN_DEFAULT, LASH_RUN_ONCE, LASH_RUN_NOWAIT,
                               LASH_RUN_UNTIL_IDLE};
  llash_engine *le = llash_checkengine(L, 1);
  int mode = values[luaL_checkoption(L, 2, "default", modes)], rc;
  lua_State *prev = le->L;
  if (le->depth > 0 || le->in_loop > 0 || llash_luv_running(le))
    return luaL_error(L, "cannot run the lash loop from inside it");
  if (le->batch) return luaL_error(L, "cannot run the loop inside eng:batch");
  le->L = L;
  le->in_loop++;
  rc = lash_engine_run(le->e, mode);
  le->in_loop--;
  le->L = prev;
  if (rc == LASH_ECANCELED) return luaL_error(L, "interrupted!");
  if (rc < 0) return llash_fail_store(L, le, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* eng:stop() */
static int l_stop(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_engine_stop(le->e);
  return 0;
}

/* eng:idle() -> boolean */
static int l_idle(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushboolean(L, lash_engine_idle(le->e));
  return 1;
}

/* eng:drain() -> number of rows abandoned */
static int l_drain(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  unsigned n = 0;
  int rc;
  if ((rc = lash_engine_drain(le->e, &n)) < 0)
    return llash_fail_store(L, le, rc);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* eng:pause([on]) -> admission stops (on, the default) or resumes; running
 * and parked bodies go on. */
static int l_pause(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_engine_pause(le->e, lua_isnone(L, 2) || lua_toboolean(L, 2));
  return 0;
}

/* eng:interrupt(): the wait or run in progress from plain code returns
 * early (a REPL's Ctrl-C). */
static int l_interrupt(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_engine_interrupt(le->e);
  return 0;
}

typedef struct check_ud {
  lua_State *L;
  int t;
} check_ud;

static void check_problem(void *ud, const char *problem) {
  check_ud *c = ud;
  lua_pushstring(c->L, problem);
  lua_rawseti(c->L, c->t, (lua_Integer)lua_rawlen(c->L, c->t) + 1);
}

/* eng:check() -> problems (an array of lines; empty when clean) */
static int l_check(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  check_ud c;
  int rc;
  lua_newtable(L);
  c.L = L;
  c.t = lua_gettop(L);
  rc = lash_check(lash_engine_store(le->e), check_problem, &c);
  if (rc < 0) return llash_fail_store(L, le, rc);
  return 1;
}

/* eng:on_event(fn) */
static int l_on_event(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  llash_checkfn(L, 2, "fn");
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, "handlers");
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  le->nhandlers++;
  return 0;
}

/* ---------------------------------------------------------- metatables */

static int l_cancelled_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) lua_pushliteral(L, "cancelled");
  return 1;
}

void llash_engine_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", l_close},
                                     {"get", l_get},
                                     {"events", l_events},
                                     {"signal", l_signal},
                                     {"append", l_append},
                                     {"cancel", l_cancel},
                                     {"abandon", l_abandon},
                                     {"drive", l_drive},
                                     {"stop", l_stop},
                                     {"idle", l_idle},
                                     {"drain", l_drain},
                                     {"pause", l_pause},
                                     {"interrupt", l_interrupt},
                                     {"check", l_check},
                                     {"on_event", l_on_event},
                                     {"spawn", llash_spawn},
                                     {"stats", l_stats},
                                     {"sleep", l_sleep},
                                     {"now", l_now},
                                     {"owner", l_owner},
                                     {"path", l_path},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_close},
                                  {"__close", l_close},
                                  {"__tostring", l_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg raw[] = {{"open", l_open},
                                 {"define", l_define},
                                 {"start", l_start},
                                 {"list", l_list},
                                 {"await", l_await},
                                 {"await_event", l_await_event},
                                 {"run", l_run},
                                 {"complete", l_complete},
                                 {"prune", l_prune},
                                 {"batch_begin", l_batch_begin},
                                 {"batch_end", l_batch_end},
                                 {NULL, NULL}};
  /* module table at -1 */
  luaL_setfuncs(L, raw, 0);
  luaL_newmetatable(L, LLASH_ENGINE);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, -3, "Engine"); /* core.Engine: the method table */
  lua_pop(L, 1);

  luaL_newmetatable(L, LLASH_CANCELLED);
  lua_pushcfunction(L, l_cancelled_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setfield(L, -2, "Cancelled");

  /* thread -> coroutine userdata, weak keys */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &l_cos_key);
}

void *llash_cos_key(void) {
  return &l_cos_key;
}
