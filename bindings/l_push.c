/* l_push.c - core results as Lua tables: records, events, outcomes, stats,
 * and listings of them.
 *
 * Outcomes are built here only: llash_pushoutcome reads a stored one, and
 * llash_push_outcome_payload makes the payload that a body's end or
 * eng:complete stores, so a failure is {class=, message= [, traceback=]}
 * whoever writes it.
 */
#include <string.h>

#include "llash.h"

void llash_setstr(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

void llash_setint(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* ------------------------------------------------------------- outcomes */

static int p_tostring(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Pushes tostring(value at @p idx); a __tostring that fails is caught. */
static void push_tostring(lua_State *L, int idx) {
  lua_pushcfunction(L, p_tostring);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
}

/* Pushes a short message for a raised table without a message: its scalar
 * string-keyed fields, {code = card_declined, retry = false}, or "failed"
 * when it has none. */
static void push_fields_summary(lua_State *L, int idx) {
  char buf[240];
  const size_t room = sizeof buf - 5; /* kept for "...}" */
  size_t n = 0;
  int any = 0, cut = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) == LUA_TSTRING &&
        (vt == LUA_TSTRING || vt == LUA_TNUMBER || vt == LUA_TBOOLEAN)) {
      const char *v = vt == LUA_TBOOLEAN
                          ? (lua_toboolean(L, -1) ? "true" : "false")
                          : lua_tostring(L, -1); /* the stack copy */
      int w = snprintf(buf + n, room - n, "%s%s = %s", any ? ", " : "{",
                       lua_tostring(L, -2), v);
      if (w < 0 || (size_t)w >= room - n) {
        cut = 1;
        n = room - 1;
        lua_pop(L, 2); /* value and key: stop */
        break;
      }
      n += (size_t)w;
      any = 1;
    }
    lua_pop(L, 1);
  }
  if (!any && !cut) {
    lua_pushliteral(L, "failed");
    return;
  }
  if (cut) {
    memcpy(buf + n, "...", 3);
    n += 3;
  }
  buf[n++] = '}';
  lua_pushlstring(L, buf, n);
}

/* Pushes the message of the error value at @p idx (absolute). */
static void push_message(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL:
    lua_pushliteral(L, "failed");
    return;
  case LUA_TSTRING:
    lua_pushvalue(L, idx);
    return;
  case LUA_TTABLE:
    if (lua_getfield(L, idx, "message") == LUA_TSTRING) return;
    if (!lua_isnil(L, -1)) {
      push_tostring(L, lua_gettop(L));
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
    if (luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) {
      push_fields_summary(L, idx);
      return;
    }
    lua_pop(L, 1);
    push_tostring(L, idx);
    return;
  default:
    push_tostring(L, idx);
    return;
  }
}

/* An error raised as a table keeps its other fields beside class, message
 * and traceback ({code = "card_declined"} reads back as error.code): every
 * string key whose value is data (not a function, userdata or thread). */
static void copy_fields(lua_State *L, int from, int to) {
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) == LUA_TSTRING &&
        (vt == LUA_TSTRING || vt == LUA_TNUMBER || vt == LUA_TBOOLEAN ||
         vt == LUA_TTABLE || lua_touserdata(L, -1) == &llash_null_tag)) {
      lua_pushvalue(L, -2);
      if (lua_rawget(L, to) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, to);
        continue;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

static void push_error(lua_State *L, int idx, const char *traceback) {
  int istable = idx != 0 && lua_type(L, idx) == LUA_TTABLE;
  lua_createtable(L, 0, 3);
  if (istable && lua_getfield(L, idx, "class") == LUA_TSTRING) {
    lua_setfield(L, -2, "class");
  } else {
    if (istable) lua_pop(L, 1);
    llash_setstr(L, "class", "error");
  }
  if (idx != 0)
    push_message(L, idx);
  else
    lua_pushliteral(L, "failed");
  lua_setfield(L, -2, "message");
  if (traceback != NULL) {
    llash_setstr(L, "traceback", traceback);
  } else if (istable) {
    if (lua_getfield(L, idx, "traceback") == LUA_TSTRING)
      lua_setfield(L, -2, "traceback");
    else
      lua_pop(L, 1);
  }
  if (istable) copy_fields(L, idx, lua_gettop(L));
}

void llash_push_outcome_payload(lua_State *L, int status, int idx,
                                const char *traceback) {
  if (idx != 0) idx = lua_absindex(L, idx);
  switch (status) {
  case LASH_FAILED:
    push_error(L, idx, traceback);
    break;
  case LASH_CANCELLED:
    lua_createtable(L, 0, 1);
    if (idx != 0 && lua_type(L, idx) == LUA_TTABLE) {
      lua_getfield(L, idx, "reason");
      lua_setfield(L, -2, "reason");
    }
    break;
  default:
    if (idx != 0)
      lua_pushvalue(L, idx);
    else
      lua_pushnil(L);
    break;
  }
}

void llash_pushoutcome(lua_State *L, int status, lash_bytes b) {
  lua_createtable(L, 0, 3);
  llash_setstr(L, "status", lash_status_name(status));
  llash_pushpayload(L, b);
  switch (status) {
  case LASH_COMPLETED:
    lua_setfield(L, -2, "value");
    break;
  case LASH_FAILED:
    /* Written by another host: make it the table every failure is. */
    if (lua_type(L, -1) != LUA_TTABLE) {
      llash_push_outcome_payload(L, LASH_FAILED,
                                 lua_type(L, -1) == LUA_TSTRING ? -1 : 0, NULL);
      lua_remove(L, -2);
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
  llash_setstr(L, "status", "no_longer_retained");
  llash_setstr(L, "terminal", lash_status_name(t->status));
  llash_setint(L, "pruned_at", (lua_Integer)t->pruned_at);
}

/* ------------------------------------------------------ records, events */

/* ---- issue 13 (retry): retry policy, failures, next attempt, delay,
 * unique key ---- */
static void push_issue13(lua_State *L, const lash_record *r) {
  if (r->retry.max_attempts > 0) {
    lua_createtable(L, 0, 5);
    llash_setint(L, "max_attempts", (lua_Integer)r->retry.max_attempts);
    llash_setint(L, "initial_ms", (lua_Integer)r->retry.initial_ms);
    lua_pushnumber(L, r->retry.factor > 0 ? r->retry.factor : 2);
    lua_setfield(L, -2, "factor");
    llash_setint(L, "max_ms", (lua_Integer)r->retry.max_ms);
    lua_pushnumber(L, r->retry.jitter);
    lua_setfield(L, -2, "jitter");
    lua_setfield(L, -2, "retry");
  }
  if (r->failures > 0) llash_setint(L, "failures", (lua_Integer)r->failures);
  if (r->suspended && r->retry_due && r->wake_at > 0)
    llash_setint(L, "retry_at", (lua_Integer)r->wake_at);
  if (r->run_at > 0) llash_setint(L, "run_at", (lua_Integer)r->run_at);
  llash_setstr(L, "unique_key", r->unique_key);
  if (r->unique_for_ms > 0)
    llash_setint(L, "unique_for_ms", (lua_Integer)r->unique_for_ms);
}

void llash_pushrecord(lua_State *L, const lash_record *r) {
  lua_createtable(L, 0, 18);
  llash_setstr(L, "id", r->id);
  llash_setstr(L, "kind", r->kind);
  llash_pushpayload(L, r->input);
  lua_setfield(L, -2, "input");
  llash_setstr(L, "disposition", lash_disposition_name(r->disposition));
  if (r->max_attempts > 0) llash_setint(L, "max_attempts", r->max_attempts);
  if (r->timeout_ms > 0)
    llash_setint(L, "timeout_ms", (lua_Integer)r->timeout_ms);
  llash_setstr(L, "parent", r->parent); /* replay keys (A): NULL: none */
  /* issue 13 (claim): priority, the concurrency key and its state */
  if (r->priority != 0) llash_setint(L, "priority", (lua_Integer)r->priority);
  if (r->concurrency_key != NULL) {
    llash_setstr(L, "concurrency_key", r->concurrency_key);
    llash_setint(L, "concurrency_limit", (lua_Integer)r->concurrency_limit);
    llash_setstr(L, "concurrency",
                 r->conc_state == LASH_CONC_HOLDS   ? "holds a slot"
                 : r->conc_state == LASH_CONC_WAITS ? "waits for a slot"
                                                    : NULL);
  }
  llash_setstr(L, "status", lash_status_name(r->status));
  if (r->has_attempt) {
    lua_createtable(L, 0, 5);
    llash_setstr(L, "owner", r->attempt.owner);
    llash_setstr(L, "incarnation", r->attempt.incarnation);
    llash_setint(L, "fence", (lua_Integer)r->attempt.fence);
    llash_setint(L, "number", (lua_Integer)r->attempt.number);
    llash_setint(L, "started_at", (lua_Integer)r->attempt.started_at);
    lua_setfield(L, -2, "attempt");
  }
  if (LASH_IS_TERMINAL(r->status)) {
    llash_pushoutcome(L, r->status, r->outcome);
    lua_setfield(L, -2, "outcome");
  }
  llash_setstr(L, "wait", r->wait);
  if (r->wait != NULL)
    llash_setint(L, "wait_since", (lua_Integer)r->wait_since);
  lua_pushboolean(L, r->cancel_requested);
  lua_setfield(L, -2, "cancel_requested");
  llash_setstr(L, "cancel_reason", r->cancel_reason);
  if (r->abandon_requested) {
    lua_createtable(L, 0, 2);
    llash_setstr(L, "by", r->abandon_by);
    llash_setstr(L, "reason", r->abandon_reason);
    lua_setfield(L, -2, "abandon_request");
  }
  llash_setint(L, "created_at", (lua_Integer)r->created_at);
  llash_setint(L, "updated_at", (lua_Integer)r->updated_at);
  llash_setint(L, "last_seq", (lua_Integer)r->last_seq);
  /* suspension (issue 9): what wakes a suspended row */
  lua_pushboolean(L, r->suspended);
  lua_setfield(L, -2, "suspended");
  if (r->suspended) {
    lua_createtable(L, 0, 3);
    llash_setstr(L, "event", r->wake_event);
    llash_setstr(L, "process", r->wake_process);
    if (r->wake_at > 0) llash_setint(L, "at", (lua_Integer)r->wake_at);
    lua_setfield(L, -2, "wake");
  }
  push_issue13(L, r);
}

void llash_pushevent(lua_State *L, const lash_event *ev) {
  lua_createtable(L, 0, 6);
  llash_setstr(L, "process_id", ev->process_id);
  llash_setint(L, "seq", (lua_Integer)ev->seq);
  llash_setstr(L, "type", ev->type);
  llash_pushpayload(L, ev->payload);
  lua_setfield(L, -2, "payload");
  llash_setint(L, "at", (lua_Integer)ev->at);
  llash_setstr(L, "key", ev->key); /* replay keys (A): NULL: none */
}

void llash_pushstats(lua_State *L, const lash_stats *s,
                     const lash_engine_stats *es) {
  int st;
  lua_createtable(L, 0, 20);
  for (st = LASH_PENDING; st <= LASH_ABANDONED; st++)
    llash_setint(L, lash_status_name(st), (lua_Integer)s->count[st]);
  llash_setint(L, "live", (lua_Integer)s->live);
  llash_setint(L, "total", (lua_Integer)s->total);
  llash_setint(L, "tombstones", (lua_Integer)s->tombstones);
  llash_setint(L, "change_seq", (lua_Integer)s->change_seq);
  llash_setint(L, "bytes_used", (lua_Integer)s->bytes_used);
  llash_setint(L, "bytes_available", (lua_Integer)s->bytes_available);
  llash_setint(L, "bytes_data", (lua_Integer)s->bytes_data);
  if (s->no_lock) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "no_lock");
  }
  llash_setint(L, "longest_write_us", (lua_Integer)s->longest_write_us);
  llash_setint(L, "suspended", (lua_Integer)s->suspended);
  llash_setint(L, "backoff_reads", (lua_Integer)es->backoff_reads);
  llash_setint(L, "hub_wakes", (lua_Integer)es->hub_wakes);
  llash_setint(L, "feed_changes", (lua_Integer)es->feed_changes);
  llash_setint(L, "commits", (lua_Integer)es->commits);
  llash_setint(L, "drives", (lua_Integer)es->drives);
  llash_setint(L, "taken_over", (lua_Integer)es->taken_over);
  llash_setint(L, "owners_gone", (lua_Integer)es->owners_gone);
  llash_setint(L, "suspended_here", (lua_Integer)es->suspended);
  llash_setint(L, "timers_fired", (lua_Integer)es->timers_fired);
  lua_pushboolean(L, es->owner_held);
  lua_setfield(L, -2, "owner_held");
  llash_setint(L, "waits", (lua_Integer)es->waits);
  llash_setint(L, "bodies_running", (lua_Integer)es->running);
  llash_setint(L, "bodies_parked", (lua_Integer)es->parked);
}

/* ------------------------------------------------------------- listings */

void llash_collect_begin(lua_State *L, llash_collect *k) {
  lua_newtable(L);
  k->L = L;
  k->tidx = lua_gettop(L);
  k->n = 0;
  k->failed = 0;
}

int llash_collect_end(lua_State *L, llash_engine *le, llash_collect *k,
                      int rc) {
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

static int collect_one(llash_collect *k, lua_CFunction f, const void *p) {
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

int llash_collect_record(void *ud, const lash_record *rec) {
  return collect_one(ud, p_push_record, rec);
}

int llash_collect_event(void *ud, const lash_event *ev) {
  return collect_one(ud, p_push_event, ev);
}
