/* l_observe.c - the observer hook (core.set_observer: worker logs) and the
 * terminal of `lash top` (core.term_*).
 *
 * `lash top` draws with plain ANSI escapes over termios rather than
 * ncurses: one frame is a handful of lines redrawn in place (cursor home,
 * each line cleared to its end, no full clear: no flicker), which every
 * terminal and ssh session understands, and it needs no terminfo lookup
 * nor a library beside libc. The glue here is only raw mode on and off,
 * a key read with a timeout (poll) and the window size.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "llash.h"

/* ------------------------------------------------------------ observer */

static const char *obs_type_name(int t) {
  switch (t) {
  case LASH_OBS_FINISHED:
    return "finished";
  case LASH_OBS_LEASE_LOST:
    return "lease_lost";
  case LASH_OBS_TAKEN_OVER:
    return "taken_over";
  case LASH_OBS_SUSPENDED:
    return "suspended";
  case LASH_OBS_SUMMARY:
    return "summary";
  default:
    return "unknown";
  }
}

static int p_observe(lua_State *L) {
  llash_engine *le = lua_touserdata(L, 1);
  const lash_observation *ob = lua_touserdata(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  if (lua_getfield(L, -1, "observer") != LUA_TFUNCTION) return 0;
  lua_createtable(L, 0, 8);
  llash_setstr(L, "type", obs_type_name(ob->type));
  if (ob->id != NULL) llash_setstr(L, "id", ob->id);
  if (ob->kind != NULL) llash_setstr(L, "kind", ob->kind);
  if (ob->attempt > 0) llash_setint(L, "attempt", (lua_Integer)ob->attempt);
  if (ob->owner != NULL) llash_setstr(L, "owner", ob->owner);
  if (ob->type == LASH_OBS_TAKEN_OVER) {
    lua_pushboolean(L, ob->owner_gone);
    lua_setfield(L, -2, "owner_gone");
  }
  if (ob->type == LASH_OBS_FINISHED) {
    llash_setstr(L, "status", lash_status_name(ob->status));
    llash_pushoutcome(L, ob->status, ob->payload);
    lua_setfield(L, -2, "outcome");
    if (ob->retry_at > 0)
      llash_setint(L, "retry_at", (lua_Integer)ob->retry_at);
  }
  if (ob->type == LASH_OBS_SUMMARY) {
    llash_setint(L, "suspended", (lua_Integer)ob->count);
    llash_setint(L, "period_ms", (lua_Integer)ob->period_ms);
  }
  lua_call(L, 1, 0);
  return 0;
}

static void observe_cb(void *ud, const lash_observation *ob) {
  llash_engine *le = ud;
  llash_protect(le, p_observe, le, (void *)ob);
}

/* core.set_observer(eng, fn | nil, summary_ms) */
static int l_set_observer(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_Integer every = luaL_optinteger(L, 3, 0);
  int on = !lua_isnoneornil(L, 2);
  if (on) llash_checkfn(L, 2, "fn");
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "observer");
  lua_pop(L, 1);
  lash_engine_set_observer(le->e, on ? observe_cb : NULL, le, every);
  return 0;
}

/* eng:lease(id) -> {owner=, incarnation=, fence=, expires_at=, alive=} |
 * nil (no lease row, or released): alive is true/false when the backend
 * knows (the owner lock), else absent. For `lash show`. */
static int l_lease(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  lash_store *s = lash_engine_store(le->e);
  lash_lease ls;
  int rc, alive;
  memset(&ls, 0, sizeof ls);
  rc = lash_lease_get(s, NULL, id, &ls);
  if (rc == LASH_ENOENT || (rc == 0 && ls.token == 0)) {
    lua_pushnil(L);
    return 1;
  }
  if (rc < 0) return llash_fail_store(L, le, rc);
  lua_createtable(L, 0, 5);
  llash_setstr(L, "owner", ls.owner);
  llash_setstr(L, "incarnation", ls.incarnation);
  llash_setint(L, "fence", (lua_Integer)ls.fence);
  llash_setint(L, "expires_at", (lua_Integer)ls.expires_at);
  alive = lash_owner_alive(s, ls.owner, ls.incarnation);
  if (alive >= 0) {
    lua_pushboolean(L, alive == 1);
    lua_setfield(L, -2, "alive");
  }
  return 1;
}

/* core.children(eng, id) -> array of records (the children index) */
static int l_children(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  llash_collect k;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  lua_settop(L, 2);
  llash_collect_begin(L, &k);
  rc = lash_children(lash_engine_store(le->e), NULL, id, llash_collect_record,
                     &k);
  return llash_collect_end(L, le, &k, rc);
}

/* ------------------------------------------------------------ terminal */

static struct termios saved;
static int raw_on;

/* core.term_raw() -> true | nil, msg: no echo, no line buffering, keys
 * read one by one (stdin must be a terminal). */
static int l_term_raw(lua_State *L) {
  struct termios t;
  if (!isatty(0) || tcgetattr(0, &saved) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, "stdin is not a terminal");
    return 2;
  }
  t = saved;
  /* no ISIG: Ctrl-C arrives as a key, so the view ends by its own path */
  t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSANOW, &t) != 0)
    return luaL_error(L, "tcsetattr: %s", strerror(errno));
  raw_on = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/* core.term_restore(): the settings term_raw found. */
static int l_term_restore(lua_State *L) {
  (void)L;
  if (raw_on) tcsetattr(0, TCSANOW, &saved);
  raw_on = 0;
  return 0;
}

/* core.term_key(timeout_ms) -> the bytes of one read, or nil (timeout). */
static int l_term_key(lua_State *L) {
  struct pollfd p;
  char buf[16];
  ssize_t n;
  int ms = (int)luaL_checkinteger(L, 1);
  p.fd = 0;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, ms) <= 0) return 0;
  n = read(0, buf, sizeof buf);
  if (n <= 0) return 0;
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* core.term_size() -> rows, cols (24, 80 when unknown) */
static int l_term_size(lua_State *L) {
  struct winsize w;
  if (ioctl(1, TIOCGWINSZ, &w) == 0 && w.ws_row > 0 && w.ws_col > 0) {
    lua_pushinteger(L, w.ws_row);
    lua_pushinteger(L, w.ws_col);
  } else {
    lua_pushinteger(L, 24);
    lua_pushinteger(L, 80);
  }
  return 2;
}

void llash_observe_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"lease", l_lease}, {NULL, NULL}};
  static const luaL_Reg raw[] = {{"set_observer", l_set_observer},
                                 {"children", l_children},
                                 {"term_raw", l_term_raw},
                                 {"term_restore", l_term_restore},
                                 {"term_key", l_term_key},
                                 {"term_size", l_term_size},
                                 {NULL, NULL}};
  llash_add_methods(L, methods);
  llash_add_functions(L, raw);
}
