/* l_exec.c - ctx:exec: runs a command without blocking the loop.
 *
 * core.ctx_exec(ctx, argv, opts) spawns the command with uv_spawn on the
 * engine's loop (stdin /dev/null, stdout and stderr into pipes, captured
 * up to max_output bytes each) in a process group of its own, and begins
 * a ctx wait like the others: a timer wait of the core (lash_await_sleep
 * for timeout_ms, or practically forever) stands for it, so the run gives
 * its slot back while the command runs and a cancellation request reaches
 * it. init.lua then records the row waiting on "exec:<argv[1]>" and parks.
 * The timer firing or a cancellation kills the group (SIGKILL); the wait is
 * delivered when the child has exited and both pipes reached their end.
 * The waiter's ext hooks (llash.h) push the result and let go of a command
 * whose coroutine went away (killed, its handles closed).
 *
 * Journal-free: nothing about the command is stored; a re-run after a
 * crash runs it again. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* environ */
#endif
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "llash.h"

extern char **environ;

#define EXEC_FOREVER_MS ((int64_t)1 << 50) /* ~35,000 years */
#define EXEC_MAX_OUTPUT_DEFAULT ((size_t)1 << 20)

typedef struct exec_buf {
  char *p;
  size_t n, cap;
  int truncated;
} exec_buf;

typedef struct exec_pipe {
  uv_pipe_t pipe;
  exec_buf buf;
  struct lash_exec *ex;
} exec_pipe;

typedef struct lash_exec {
  uv_process_t proc;
  exec_pipe out, err;
  int handles; /* handles not yet closed (the struct is freed at 0) */
  int pipes;   /* pipes still open for reading */
  int exited;  /* the exit callback ran */
  int64_t status;
  int term_signal;
  int timed_out, cancelled;
  int64_t timeout_ms;
  size_t max;
  llash_waiter *w; /* NULL once the coroutine let go */
  char *prog;
} lash_exec;

static void buf_add(exec_buf *b, const char *p, size_t n, size_t max) {
  if (b->n + n > max) {
    b->truncated = 1;
    n = max > b->n ? max - b->n : 0;
  }
  if (n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *np;
    while (cap < b->n + n)
      cap *= 2;
    if ((np = realloc(b->p, cap)) == NULL) {
      b->truncated = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void exec_free_mem(lash_exec *ex) {
  free(ex->out.buf.p);
  free(ex->err.buf.p);
  free(ex->prog);
  free(ex);
}

static void close_cb(uv_handle_t *h) {
  lash_exec *ex = h->data;
  if (--ex->handles == 0 && ex->w == NULL) exec_free_mem(ex);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, close_cb);
}

static void kill_group(lash_exec *ex) {
  if (!ex->exited && ex->proc.pid > 0) {
    kill(-ex->proc.pid, SIGKILL);
    kill(ex->proc.pid, SIGKILL);
  }
}

/* The child exited and its pipes ended: hand the result to the waiter. */
static void maybe_deliver(lash_exec *ex) {
  llash_waiter *w = ex->w;
  if (!ex->exited || ex->pipes > 0 || w == NULL) return;
  lash_wait_free(w->wait); /* the timer wait, if still pending */
  w->wait = NULL;
  w->rc = ex->timed_out ? LASH_ETIMEDOUT : ex->cancelled ? LASH_ECANCELED : 0;
  w->done = 1;
  if (w->co != NULL) llash_co_wake(w->co, LLASH_PARK_WAIT);
}

static void exit_cb(uv_process_t *p, int64_t status, int term_signal) {
  lash_exec *ex = p->data;
  ex->exited = 1;
  ex->status = status;
  ex->term_signal = term_signal;
  close_handle((uv_handle_t *)p);
  maybe_deliver(ex);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char scratch[65536]; /* the loop's thread only */
  (void)h;
  (void)hint;
  b->base = scratch;
  b->len = sizeof scratch;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  exec_pipe *ep = (exec_pipe *)s;
  lash_exec *ex = ep->ex;
  if (n > 0) {
    buf_add(&ep->buf, b->base, (size_t)n, ex->max);
    return;
  }
  if (n == 0) return; /* EAGAIN */
  uv_read_stop(s);    /* EOF or an error: this pipe is done */
  close_handle((uv_handle_t *)s);
  ex->pipes--;
  maybe_deliver(ex);
}

/* The timer wait: timeout_ms passed, or the run's row got a cancellation
 * request (or the engine closes): kill the command, deliver on its exit. */
static void sleep_cb(void *ud, lash_wait *wt, int rc) {
  lash_exec *ex = ud;
  lash_wait_free(wt);
  if (ex->w != NULL) ex->w->wait = NULL;
  if (rc == 0)
    ex->timed_out = 1;
  else
    ex->cancelled = 1;
  kill_group(ex);
}

/* ext_free: the coroutine let go (released, or a new wait began). */
static void exec_detach(void *p) {
  lash_exec *ex = p;
  ex->w = NULL;
  kill_group(ex);
  close_handle((uv_handle_t *)&ex->proc);
  close_handle((uv_handle_t *)&ex->out.pipe);
  close_handle((uv_handle_t *)&ex->err.pipe);
  if (ex->handles == 0) exec_free_mem(ex);
}

static void push_buf(lua_State *L, const char *k, const exec_buf *b) {
  lua_pushlstring(L, b->p != NULL ? b->p : "", b->n);
  lua_setfield(L, -2, k);
}

/* ext_push: the result of the resolved wait. */
static int exec_push(lua_State *L, llash_waiter *w) {
  lash_exec *ex = w->ext;
  llash_engine *le = w->co != NULL ? w->co->le : NULL;
  int gi, rc = w->rc;
  w->ext = NULL;
  w->ext_free = NULL;
  /* From here the guard lets go of it, also when a push raises. */
  llash_guard_new(L, exec_detach, ex);
  gi = lua_gettop(L);
  if (rc == LASH_ECANCELED && le != NULL && w->co->id != NULL) {
    llash_guard_done(L, gi);
    return llash_raise_cancelled(L, le, w->co->id);
  }
  if (rc == LASH_ETIMEDOUT) {
    lua_pushnil(L);
    lua_pushfstring(L, "ctx:exec: %s timed out after %d ms (killed)", ex->prog,
                    (int)ex->timeout_ms);
    lua_pushliteral(L, "ETIMEDOUT");
    llash_guard_done(L, gi);
    return 3;
  }
  lua_createtable(L, 0, 5);
  if (ex->term_signal != 0) {
    lua_pushinteger(L, ex->term_signal);
    lua_setfield(L, -2, "signal");
  } else {
    lua_pushinteger(L, (lua_Integer)ex->status);
    lua_setfield(L, -2, "status");
  }
  push_buf(L, "stdout", &ex->out.buf);
  push_buf(L, "stderr", &ex->err.buf);
  if (ex->out.buf.truncated || ex->err.buf.truncated) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "truncated");
  }
  llash_guard_done(L, gi);
  return 1;
}

/* The strings of the array at @p idx into a NULL-terminated vector whose
 * strings stay anchored on the stack by the table. */
static char **argv_of(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), i;
  char **v;
  luaL_argcheck(L, n >= 1, idx, "argv: a non-empty array of strings expected");
  v = lua_newuserdatauv(L, sizeof *v * (size_t)(n + 1), 0);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "ctx:exec: argv[%d] is a %s, want a string", (int)i,
                 luaL_typename(L, -1));
    v[i - 1] = (char *)lua_tostring(L, -1);
    if (strlen(v[i - 1]) != lua_rawlen(L, -1))
      luaL_error(L, "ctx:exec: argv[%d] contains a NUL byte", (int)i);
    lua_pop(L, 1); /* still referenced by the table */
  }
  v[n] = NULL;
  return v;
}

/* The environment: the worker's, with the table at @p idx (name = value,
 * or false to remove) laid over it; NULL (inherit) when @p idx is nil. The
 * vector and the strings it points to stay on the stack. */
static char **env_of(lua_State *L, int idx) {
  size_t n = 0, i, k = 0;
  int anchor;
  char **v;
  if (lua_isnil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  while (environ[n] != NULL)
    n++;
  lua_newtable(L);
  anchor = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        (lua_type(L, -1) != LUA_TSTRING &&
         !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))))
      luaL_error(L, "ctx:exec: env must map names to strings (or false)");
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
      lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
    }
    lua_pop(L, 1);
  }
  v = lua_newuserdatauv(L, sizeof *v * (n + lua_rawlen(L, anchor) + 1), 0);
  for (i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int t;
    lua_pushlstring(L, environ[i], len);
    t = lua_rawget(L, idx);
    lua_pop(L, 1);
    if (t == LUA_TNIL) v[k++] = environ[i]; /* not laid over */
  }
  for (i = 1; i <= lua_rawlen(L, anchor); i++) {
    lua_rawgeti(L, anchor, (lua_Integer)i);
    v[k++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the anchor table */
  }
  v[k] = NULL;
  return v;
}

/* core.ctx_exec(ctx, argv, timeout_ms, max_output, env, cwd) -> false
 * (running: park on it) | nil, msg, code. init.lua checked the options. */
static int l_ctx_exec(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX), *cc;
  lua_Integer timeout = luaL_optinteger(L, 3, -1);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)EXEC_MAX_OUTPUT_DEFAULT);
  const char *cwd = luaL_optstring(L, 6, NULL);
  char label[LASH_NAME_MAX + 1];
  uv_process_options_t po;
  uv_stdio_container_t io[3];
  uv_loop_t *loop;
  lash_exec *ex;
  llash_waiter *w;
  char **argv, **env;
  int rc;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (c->type != LLASH_CO_BODY || c->run == NULL)
    return luaL_error(L, "ctx:exec: not inside a running body");
  if (llash_current(L, c->le) != c)
    return luaL_error(L, "ctx of %s used outside its body's coroutine", c->id);
  argv = argv_of(L, 2);
  env = env_of(L, 5);
  snprintf(label, sizeof label, "exec:%s", argv[0]);
  /* May raise (a cancelled run): before anything is allocated. */
  w = llash_wait_prepare(L, c->le, &cc, NULL, LLASH_W_SLEEP, label);
  loop = lash_engine_loop(c->le->e);
  if ((ex = calloc(1, sizeof *ex)) == NULL ||
      (ex->prog = llash_strdup(argv[0])) == NULL) {
    free(ex);
    llash_waiter_clear(w);
    return luaL_error(L, "ctx:exec: out of memory");
  }
  ex->max = (size_t)max;
  ex->timeout_ms = timeout;
  ex->out.ex = ex->err.ex = ex;
  uv_pipe_init(loop, &ex->out.pipe, 0);
  uv_pipe_init(loop, &ex->err.pipe, 0);
  ex->out.pipe.data = ex->err.pipe.data = ex->proc.data = ex;
  ex->handles = 3; /* both pipes and the process (closed also on failure) */
  memset(&po, 0, sizeof po);
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[1].data.stream = (uv_stream_t *)&ex->out.pipe;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&ex->err.pipe;
  po.file = argv[0];
  po.args = argv;
  po.env = env;
  po.cwd = cwd;
  po.stdio = io;
  po.stdio_count = 3;
  po.exit_cb = exit_cb;
  po.flags = UV_PROCESS_DETACHED; /* a group of its own, killed as one */
  if ((rc = uv_spawn(loop, &ex->proc, &po)) != 0) {
    /* Never started (no such program, not executable, bad cwd). */
    llash_waiter_clear(w);
    ex->exited = 1;
    exec_detach(ex);
    lua_pushnil(L);
    if (cwd != NULL && rc == UV_ENOENT && access(cwd, F_OK) != 0)
      lua_pushfstring(L, "ctx:exec: cannot run %s: its cwd %s does not exist",
                      argv[0], cwd);
    else
      lua_pushfstring(L,
                      "ctx:exec: cannot run %s: %s (is it installed and on "
                      "PATH?)",
                      argv[0], uv_strerror(rc));
    lua_pushstring(L, uv_err_name(rc));
    return 3;
  }
  ex->pipes = 2;
  uv_read_start((uv_stream_t *)&ex->out.pipe, alloc_cb, read_cb);
  uv_read_start((uv_stream_t *)&ex->err.pipe, alloc_cb, read_cb);
  /* From here the waiter owns the command. */
  w->ext = ex;
  w->ext_push = exec_push;
  w->ext_free = exec_detach;
  ex->w = w;
  rc = lash_await_sleep(c->le->e, c->run,
                        timeout >= 0 ? timeout : EXEC_FOREVER_MS, sleep_cb, ex,
                        &w->wait);
  if (rc < 0) {
    llash_waiter_clear(w); /* kills and lets go of the command */
    return llash_fail_store(L, c->le, rc);
  }
  lua_pushboolean(L, 0);
  return 1;
}

void llash_exec_open(lua_State *L) {
  static const luaL_Reg raw[] = {{"ctx_exec", l_ctx_exec}, {NULL, NULL}};
  llash_add_functions(L, raw);
}
