/* l_ctx.c - the "lash.Ctx" object a body gets: ctx:cancelled, the fields
 * (id, kind, input, attempt, fence, engine), and the raw parts of the
 * commands init.lua builds (the journal, ctx:emit, ctx:start, the waits).
 *
 * A ctx wait shows the row as waiting only when it has to park: it begins
 * the wait (one read: an answer already there returns at once), then
 * init.lua records process.waiting, parks, and records process.resumed.
 *
 * The journal (init.lua keeps the ordinals): each command's event has the
 * replay key "cmd:<n>" (a wait's timeout "cmd:<n>.timeout"), written in the
 * commit of the command's effect; core.ctx_journal reads them back for a
 * re-run.
 */
#include <stdlib.h>
#include <string.h>

#include "llash.h"

static llash_co *checkctx(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  if (c->type != LLASH_CO_BODY) luaL_argerror(L, 1, "not a process context");
  if (c->run == NULL)
    luaL_error(L, "process %s: its run has ended; ctx is no longer usable",
               c->id != NULL ? c->id : "?");
  if (c->nondet_ref != LUA_NOREF) { /* it fails: no command runs any more */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->nondet_ref);
    lua_error(L);
  }
  return c;
}

/* ctx methods that write or wait must run in the body's own coroutine. */
static llash_co *checkown(lua_State *L) {
  llash_co *c = checkctx(L);
  if (llash_current(L, c->le) != c)
    luaL_error(L, "ctx of %s used outside its body's coroutine", c->id);
  return c;
}

/* A fenced write of the body's run; @p s2 is its type or wait. */
static llash_op *fenced_op(llash_co *c, int type, const char *s2) {
  llash_op *op = llash_op_new(c->le, type, NULL, s2, NULL);
  if (op != NULL) op->lease = *lash_run_lease(c->run);
  return op;
}

/* core.ctx_emit(ctx, type, payload [, n]) -> seq: the event, with the key
 * cmd:<n> when the ordinal is given. */
static int l_ctx_emit(lua_State *L) {
  llash_co *c = checkown(L);
  const char *type;
  lua_Integer ord = luaL_optinteger(L, 4, 0);
  llash_op *op;
  int n;
  if ((n = llash_argid(L, 2, "event type", LASH_RULE_NAME, 0, &type)) != 0)
    return n;
  if ((op = fenced_op(c, LLASH_OP_APPEND_FENCED, type)) == NULL)
    return llash_op_nomem(L, op);
  if ((n = llash_op_payload(L, op, 3, "payload")) != 0) return n;
  if (ord > 0 && (n = llash_op_journal(L, op, ord, NULL, NULL, 0)) != 0)
    return n;
  return llash_write(L, c->le, c, op);
}

/* core.ctx_record(ctx, n, type, payload [, nowait [, suffix]]) -> seq |
 * true: the journal entry of command n alone (a step's value, ctx:now's
 * time), key "cmd:<n><suffix>". With nowait the body goes on before the
 * commit (a later write of the run is not durable before this one). */
static int l_ctx_record(lua_State *L) {
  llash_co *c = checkown(L);
  lua_Integer ord = llash_checkint(L, 2, "n");
  const char *type = llash_checkstr(L, 3, "type");
  int nowait = lua_toboolean(L, 5), n;
  const char *suffix = luaL_optstring(L, 6, NULL);
  llash_op *op;
  if ((op = fenced_op(c, LLASH_OP_JOURNAL, type)) == NULL)
    return llash_op_nomem(L, op);
  if ((n = llash_op_payload(L, op, 4, "journal entry")) != 0 ||
      (n = llash_op_journal(L, op, ord, suffix, NULL, 0)) != 0)
    return n;
  return nowait ? llash_write_nowait(L, c->le, op)
                : llash_write(L, c->le, c, op);
}

/* core.ctx_child(ctx, n, kind, input, id, disposition, max_attempts,
 * timeout_ms) -> true: registers the child (its parent: this process) and
 * journals process.child {id, kind} as command n, in one commit. */
static int l_ctx_child(lua_State *L) {
  llash_co *c = checkown(L);
  lua_Integer ord = llash_checkint(L, 2, "n");
  int n;
  llash_op *op = llash_register_op(L, c->le, LLASH_OP_CHILD, 3, &n);
  if (op == NULL) return n;
  op->lease = *lash_run_lease(c->run);
  lua_settop(L, 8);
  lua_createtable(L, 0, 2);
  llash_setstr(L, "id", op->s1);
  llash_setstr(L, "kind", op->s2);
  if ((n = llash_op_journal(L, op, ord, NULL, "process.child", 9)) != 0)
    return n;
  return llash_write(L, c->le, c, op);
}

/* core.ctx_wait_set(ctx, what [, n, type, entry]) -> true: the row shows
 * the wait; with n, command n's journal entry (process.wait {wait,
 * deadline}, process.sleep {wake_at}) goes in the same commit. */
static int l_ctx_wait_set(lua_State *L) {
  llash_co *c = checkown(L);
  const char *what = llash_checkstr(L, 2, "what");
  lua_Integer ord = luaL_optinteger(L, 3, 0);
  llash_op *op = fenced_op(c, LLASH_OP_WAIT_SET, what);
  int n;
  if (op == NULL) return llash_op_nomem(L, op);
  if (ord > 0 && (n = llash_op_journal(L, op, ord, NULL,
                                       llash_checkstr(L, 4, "type"), 5)) != 0)
    return n;
  return llash_write(L, c->le, c, op);
}

/* core.ctx_wait_clear(ctx [, n]) -> true: the row runs again; with n, the
 * wait of command n timed out: process.timeout, key cmd:<n>.timeout, in
 * the same commit. (Not waiting for it halves signal -> resume, but on
 * PostgreSQL an on_event handler then missed an event of the commit it
 * shared with the body's next write: docs/architecture.md, known gaps.) */
static int l_ctx_wait_clear(lua_State *L) {
  llash_co *c = checkown(L);
  lua_Integer ord = luaL_optinteger(L, 2, 0);
  llash_op *op = fenced_op(c, LLASH_OP_WAIT_CLEAR, NULL);
  int n;
  if (op == NULL) return llash_op_nomem(L, op);
  lua_settop(L, 2);
  lua_createtable(L, 0, 0);
  if (ord > 0 &&
      (n = llash_op_journal(L, op, ord, ".timeout", "process.timeout", 3)) != 0)
    return n;
  return llash_write(L, c->le, c, op);
}

typedef struct journal_read {
  lua_State *L;
  int t;
} journal_read;

static int journal_event(void *ud, const lash_event *ev) {
  journal_read *jr = ud;
  lua_State *L = jr->L;
  const char *k = ev->key, *rest;
  long long n;
  char *end;
  if (k == NULL || strncmp(k, "cmd:", 4) != 0) return 0;
  n = strtoll(k + 4, &end, 10);
  if (end == k + 4 || n <= 0) return 0;
  rest = end;
  if (strcmp(rest, ".timeout") == 0) {
    if (lua_rawgeti(L, jr->t, (lua_Integer)n) == LUA_TTABLE) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "timed_out");
    }
    lua_pop(L, 1);
    return 0;
  }
  if (*rest != '\0') return 0;
  llash_pushevent(L, ev);
  lua_rawseti(L, jr->t, (lua_Integer)n);
  return 0;
}

/* core.ctx_journal(ctx) -> {[n] = event} | nil: the journal of the runs
 * before this one (nil: a first run, nothing before it). A timed-out
 * wait's entry has timed_out = true. */
static int l_ctx_journal(lua_State *L) {
  llash_co *c = checkown(L);
  const lash_record *r = lash_run_record(c->run);
  journal_read jr;
  int rc;
  if (r->last_seq <= 1) return 0; /* only its own start is in the log */
  lua_newtable(L);
  jr.L = L;
  jr.t = lua_gettop(L);
  rc = lash_events_after(lash_engine_store(c->le->e), NULL, c->id, 0, 0,
                         journal_event, &jr);
  if (rc < 0) return llash_fail_store(L, c->le, rc);
  return 1;
}

/* core.ctx_nondeterminism(ctx, message): the body asked for another
 * command than its journal holds. Raises the failure; the process ends
 * failed with it whatever the body does next. */
static int l_ctx_nondeterminism(lua_State *L) {
  llash_co *c = checkown(L);
  const char *msg = llash_checkstr(L, 2, "message");
  lua_createtable(L, 0, 3);
  llash_setstr(L, "class", "nondeterminism");
  llash_setstr(L, "code", "ENONDETERMINISM");
  llash_setstr(L, "message", msg);
  lua_pushvalue(L, -1);
  c->nondet_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return lua_error(L);
}

/* core.ctx_await(ctx, id [, timeout_ms]) -> outcome | false (pending) |
 * nil, msg, code */
static int l_ctx_await(lua_State *L) {
  llash_co *c = checkown(L);
  const char *id;
  int64_t timeout = llash_opttimeout(L, 3);
  llash_waiter *w;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_TERMINAL, id, NULL);
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_TERMINAL, label);
  rc = lash_await_terminal(c->le->e, c->run, id, timeout, llash_wait_cb, w,
                           &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_await_event(ctx, type, after [, timeout_ms [, id]]) -> event |
 * false | nil, msg, code: the first event of exactly @p type after seq
 * @p after, of this process or of process @p id. */
static int l_ctx_await_event(lua_State *L) {
  llash_co *c = checkown(L);
  const char *type, *id = c->id;
  lua_Integer after = llash_optcount(L, 3, "after", 0);
  int64_t timeout = llash_opttimeout(L, 4);
  llash_waiter *w;
  int rc;
  if ((rc = llash_argid(L, 2, "event type", 0, 0, &type)) != 0) return rc;
  if (!lua_isnoneornil(L, 5) &&
      (rc = llash_argid(L, 5, "id", LASH_RULE_ID, 0, &id)) != 0)
    return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_EVENT, id, type);
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_EVENT, label);
  rc = lash_await_event(c->le->e, c->run, id, type, (uint64_t)after, timeout,
                        llash_wait_cb, w, &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_sleep(ctx, ms) -> false (a timer is pending) | nil, msg, code */
static int l_ctx_sleep(lua_State *L) {
  llash_co *c = checkown(L);
  lua_Integer ms = llash_checkint(L, 2, "ms");
  llash_waiter *w;
  int rc;
  luaL_argcheck(L, ms >= 0, 2, "ms must be >= 0");
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_SLEEP, c->id);
  rc = lash_await_sleep(c->le->e, c->run, (int64_t)ms, llash_wait_cb, w,
                        &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_park(ctx [, label]) -> the result of the wait begun last. With
 * a label, the body may be suspended at it (its journal replays it here):
 * lash_wait_suspendable, which keeps in memory what does not qualify. */
static int l_ctx_park(lua_State *L) {
  llash_co *c = checkown(L);
  const char *label = luaL_optstring(L, 2, NULL);
  if (label != NULL && c->w.wait != NULL && !c->w.done)
    lash_wait_suspendable(c->w.wait, label);
  return llash_wait_park(L, c);
}

/* core.ctx_forget(ctx): drops the wait begun last. */
static int l_ctx_forget(lua_State *L) {
  llash_waiter_clear(&checkown(L)->w);
  return 0;
}

/* ctx:cancelled() -> boolean */
static int l_ctx_cancelled(lua_State *L) {
  llash_co *c = checkctx(L);
  lua_pushboolean(L, lash_run_cancelled(c->run));
  return 1;
}

/* Builds a body's ctx fields table at the first read of a field: {id,
 * kind, input, attempt, fence, engine} (p_start left the input in user
 * value 2 and the engine in 3). */
static void ctx_fields(lua_State *L, llash_co *c) {
  lua_createtable(L, 0, 6);
  llash_setstr(L, "id", c->id);
  llash_setstr(L, "kind", c->kind);
  lua_getiuservalue(L, 1, 2);
  lua_setfield(L, -2, "input");
  llash_setint(L, "attempt", c->attempt);
  llash_setint(L, "fence", c->fence);
  lua_getiuservalue(L, 1, 3);
  lua_setfield(L, -2, "engine");
  lua_setiuservalue(L, 1, 2);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 3);
  c->ctx_lazy = 0;
}

/* ctx.field: methods first, then the fields table. */
static int l_ctx_index(lua_State *L) {
  llash_co *c = lua_touserdata(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  if (c != NULL && c->ctx_lazy) ctx_fields(L, c);
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int l_ctx_tostring(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  lua_pushfstring(L, "lash.Ctx (%s)", c->id != NULL ? c->id : "coroutine");
  return 1;
}

static int l_ctx_gc(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  free(c->id);
  c->id = NULL;
  return 0;
}

void llash_ctx_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"cancelled", l_ctx_cancelled},
                                     {NULL, NULL}};
  static const luaL_Reg raw[] = {{"ctx_emit", l_ctx_emit},
                                 {"ctx_record", l_ctx_record},
                                 {"ctx_child", l_ctx_child},
                                 {"ctx_journal", l_ctx_journal},
                                 {"ctx_nondeterminism", l_ctx_nondeterminism},
                                 {"ctx_wait_set", l_ctx_wait_set},
                                 {"ctx_wait_clear", l_ctx_wait_clear},
                                 {"ctx_await", l_ctx_await},
                                 {"ctx_await_event", l_ctx_await_event},
                                 {"ctx_sleep", l_ctx_sleep},
                                 {"ctx_park", l_ctx_park},
                                 {"ctx_forget", l_ctx_forget},
                                 {NULL, NULL}};
  /* module table at -1 */
  llash_add_functions(L, raw);
  luaL_newmetatable(L, LLASH_CTX);
  lua_pushcfunction(L, l_ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_ctx_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Ctx"); /* core.Ctx: the method table */
  lua_pushcclosure(L, l_ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
