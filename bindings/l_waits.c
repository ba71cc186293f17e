/* l_waits.c - waits: eng:await, eng:await_event, eng:sleep, and the parts
 * the ctx waits share.
 *
 * A wait is one lash_await_* call. Resolved at once, its result is pushed
 * before the call returns. Otherwise an engine coroutine parks (lua_yieldk;
 * llash_wait_cb resumes it from the loop) and plain code runs the loop
 * until it resolves (lash_engine_run_until).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llash.h"

int llash_raise_cancelled(lua_State *L, llash_engine *le, const char *id) {
  llash_guard *g = llash_guard_new(L, NULL, NULL);
  int gi = lua_gettop(L);
  lua_createtable(L, 0, 3);
  llash_setstr(L, "class", "cancelled");
  if (lash_get(lash_engine_store(le->e), NULL, id, &g->rec, NULL) == 0) {
    g->free = llash_free_record;
    g->p = &g->rec;
    llash_setstr(L, "reason", g->rec.cancel_reason);
  }
  lua_getfield(L, -1, "reason");
  lua_pushfstring(L, "process %s was cancelled%s%s", id,
                  lua_isstring(L, -1) ? ": " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_setfield(L, -3, "message");
  lua_pop(L, 1);
  llash_guard_done(L, gi);
  luaL_setmetatable(L, LLASH_CANCELLED);
  return lua_error(L);
}

/* Pushes the results of a resolved wait and frees it. */
static int push_result(lua_State *L, llash_engine *le, llash_waiter *w) {
  int rc = w->rc, what = w->what, gi;
  lash_wait *res = w->res;
  char label[LLASH_WAIT_LABEL_MAX];
  snprintf(label, sizeof label, "%s", w->label != NULL ? w->label : "");
  free(w->label);
  w->label = NULL;
  w->res = NULL;
  w->done = 0;
  if (w->ext_push != NULL) {
    int (*push)(lua_State *, llash_waiter *) = w->ext_push;
    lash_wait_free(res);
    w->ext_push = NULL;
    return push(L, w);
  }
  llash_guard_new(L, llash_free_wait, res);
  gi = lua_gettop(L);
  if (rc == LASH_ECANCELED && w->co != NULL && w->co->id != NULL) {
    llash_guard_done(L, gi);
    return llash_raise_cancelled(L, le, w->co->id);
  }
  if (rc < 0) {
    llash_guard_done(L, gi);
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
  llash_guard_done(L, gi);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext k) {
  llash_co *c = (llash_co *)k;
  (void)status;
  c->parked = 0;
  return push_result(L, c->le, &c->w);
}

void llash_wait_cb(void *ud, lash_wait *w, int rc) {
  llash_waiter *wt = ud;
  wt->wait = NULL;
  wt->res = w;
  wt->rc = rc;
  wt->done = 1;
  /* The continuation frees the result, or llash_co_release does if the
   * coroutine goes first. A coroutine parked on something else (the write
   * of its waiting status) finds the result when it parks. */
  if (wt->co != NULL) llash_co_wake(wt->co, LLASH_PARK_WAIT);
}

/* The first part of every wait: at once, failed or pending (returns -1). */
static int settle(lua_State *L, llash_engine *le, llash_co *c, llash_waiter *wt,
                  int rc) {
  if (rc < 0) {
    wt->wait = NULL; /* a failed await made none */
    llash_waiter_clear(wt);
    if (rc == LASH_ECANCELED && c != NULL && c->id != NULL)
      return llash_raise_cancelled(L, le, c->id);
    return llash_fail_store(L, le, rc);
  }
  if (rc > 0) { /* resolved at once */
    wt->res = wt->wait;
    wt->wait = NULL;
    wt->rc = 0;
    return push_result(L, le, wt);
  }
  return -1;
}

int llash_wait_park(lua_State *L, llash_co *c) {
  if (c->w.done) return push_result(L, c->le, &c->w);
  if (c->w.wait == NULL) return luaL_error(L, "lash: no wait is pending");
  llash_check_yieldable(L);
  c->parked = LLASH_PARK_WAIT;
  return lua_yieldk(L, 0, (lua_KContext)c, wait_k);
}

int llash_wait_begin(lua_State *L, llash_co *c, int rc) {
  int n = settle(L, c->le, c, &c->w, rc);
  if (n >= 0) return n;
  /* Pending: a cancelled run gives up before it records a waiting status. */
  if (c->run != NULL && c->id != NULL && lash_run_cancelled(c->run)) {
    llash_waiter_clear(&c->w);
    return llash_raise_cancelled(L, c->le, c->id);
  }
  lua_pushboolean(L, 0);
  return 1;
}

int llash_wait(lua_State *L, llash_engine *le, llash_co *c, llash_waiter *wt,
               int rc) {
  int n = settle(L, le, c, wt, rc);
  if (n >= 0) return n;
  if (c != NULL) return llash_wait_park(L, c);
  {
    lua_State *prev = le->L;
    le->L = L;
    le->in_loop++;
    rc = lash_engine_run_until(le->e, &wt->done);
    le->in_loop--;
    le->L = prev;
  }
  if (!wt->done) {
    llash_waiter_clear(wt);
    if (rc == LASH_ECANCELED) return luaL_error(L, "interrupted!");
    return llash_fail(L, rc < 0 ? rc : LASH_ECLOSED,
                      "the loop stopped before the wait resolved");
  }
  return push_result(L, le, wt);
}

void llash_wait_describe(char *buf, size_t cap, int what, const char *id,
                         const char *type) {
  if (what == LLASH_W_TERMINAL)
    snprintf(buf, cap, "the outcome of %s", id);
  else if (what == LLASH_W_EVENT && strcmp(type, "*") == 0)
    snprintf(buf, cap, "an event of %s", id);
  else if (what == LLASH_W_EVENT && strncmp(type, "signal.", 7) == 0)
    snprintf(buf, cap, "signal %s on %s", type + 7, id);
  else if (what == LLASH_W_EVENT)
    snprintf(buf, cap, "event %s of %s", type, id);
  else
    snprintf(buf, cap, "a sleep of %s", id);
}

llash_waiter *llash_wait_prepare(lua_State *L, llash_engine *le, llash_co **pc,
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
  if (c != NULL) llash_waiter_clear(w); /* a wait begun, never parked on */
  memset(w, 0, sizeof *w);
  w->co = c;
  w->what = what;
  *pc = c;
  if (c != NULL && c->run != NULL && c->id != NULL &&
      lash_run_cancelled(c->run))
    llash_raise_cancelled(L, le, c->id);
  w->label = llash_strdup(label);
  return w;
}

/* The run of a body coroutine, for the core's slot accounting. */
static lash_run *run_of(llash_co *c) {
  return c != NULL && c->type == LLASH_CO_BODY ? c->run : NULL;
}

/* core.await(eng, id [, timeout_ms]) -> outcome | nil, msg, code */
static int l_await(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  int64_t timeout = llash_opttimeout(L, 3);
  llash_waiter local, *w;
  llash_co *c;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_TERMINAL, id, NULL);
  w = llash_wait_prepare(L, le, &c, &local, LLASH_W_TERMINAL, label);
  rc = lash_await_terminal(le->e, run_of(c), id, timeout, llash_wait_cb, w,
                           &w->wait);
  return llash_wait(L, le, c, w, rc);
}

/* core.await_event(eng, id, type, after [, timeout_ms]) -> event | fail */
static int l_await_event(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id, *type;
  lua_Integer after = llash_optcount(L, 4, "after", 0);
  int64_t timeout = llash_opttimeout(L, 5);
  llash_waiter local, *w;
  llash_co *c;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0 ||
      (rc = llash_argid(L, 3, "event type", 0, 0, &type)) != 0)
    return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_EVENT, id, type);
  w = llash_wait_prepare(L, le, &c, &local, LLASH_W_EVENT, label);
  rc = lash_await_event(le->e, run_of(c), id, type, (uint64_t)after, timeout,
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
  luaL_argcheck(L, ms >= 0, 2, "ms must be >= 0");
  w = llash_wait_prepare(L, le, &c, &local, LLASH_W_SLEEP, "sleep");
  rc = lash_await_sleep(le->e, run_of(c), (int64_t)ms, llash_wait_cb, w,
                        &w->wait);
  return llash_wait(L, le, c, w, rc);
}

void llash_waits_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"sleep", l_sleep}, {NULL, NULL}};
  static const luaL_Reg raw[] = {
      {"await", l_await}, {"await_event", l_await_event}, {NULL, NULL}};
  llash_add_methods(L, methods);
  llash_add_functions(L, raw);
}
