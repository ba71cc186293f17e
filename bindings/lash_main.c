/* lash_main.c - the `lash` executable: a Lua 5.4 host in the style of lua.c.
 *
 * main() runs everything in pmain under lua_pcall, as lua.c does. The host
 * embeds the Lua layer (the files of lua/lash, compiled in as byte arrays by
 * bindings/cli.cmake) and the lash.core C module, registers them in
 * package.preload, and hands the command line to lash.cli.
 *
 * It also provides the module `lash.host`, the few things the operator
 * commands and the REPL need that a stock Lua cannot do:
 * - signals: SIGINT/SIGTERM set a flag through a self-pipe polled on the
 *   engine's loop, so a worker's eng:run() returns at once; while the REPL
 *   evaluates a chunk, SIGINT also sets a Lua hook (lua.c's laction/lstop);
 * - line input through libedit's callback interface, fed by a uv_poll_t on
 *   stdin on the engine's loop: the REPL waits for a line inside eng:run(),
 *   so process bodies keep running while the prompt waits;
 * - history and tab completion.
 * While a REPL chunk waits in the loop (eng:await), SIGINT interrupts the
 * engine (lash_engine_interrupt) and the wait raises "interrupted!".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sigaction, pthread types in uv.h */
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lualib.h>
#include <uv.h>

#include "llash.h"

/* The Lua sources of lua/lash, generated into lash_embed.c. */
struct lash_embedded {
  const char *name;
  const char *file;
  const char *src;
  size_t len;
};
extern const struct lash_embedded lash_embedded[];
/* The web UI's files of ui/ (lash ui), generated beside them. */
extern const struct lash_embedded lash_assets[];

/* lash_core.c */
LASH_API int luaopen_lash_core(lua_State *L);

static const char *progname = "lash";
static lua_State *globalL = NULL;

/* ------------------------------------------------------------ signals */

static int sig_fds[2] = {-1, -1};
static volatile sig_atomic_t eval_on = 0; /* the REPL runs a user chunk */
static unsigned trapped = 0;              /* bit per trapped signal */

/* lua.c's lstop: raise at the next instruction of the interrupted chunk. A
 * count hook only fires on Lua instructions of the main thread, so loop
 * callbacks made from C (bodies run in their own coroutines) are left
 * alone. */
static void l_stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* host.emergency(grace_ms): a trapped signal also arms the engine's
 * emergency stop (the core acts only if the loop cannot answer). */
static volatile sig_atomic_t emerg_on = 0, emerg_sigs = 0;
static long emerg_grace = 0;
static lash_engine *volatile emerg_e = NULL;

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (sig == SIGINT && eval_on && globalL != NULL)
    lua_sethook(globalL, l_stop_hook, LUA_MASKCOUNT, 1);
  if (emerg_on && emerg_e != NULL)
    lash_engine_emergency(emerg_e, emerg_sigs++ > 0 ? 0 : emerg_grace);
  if (sig_fds[1] >= 0 && write(sig_fds[1], &b, 1) < 0) {
    /* pipe full: a byte is already pending, which is all we need */
  }
  errno = saved;
}

static const struct {
  const char *name;
  int sig;
} signames[] = {{"INT", SIGINT}, {"TERM", SIGTERM}, {"HUP", SIGHUP}};
#define NSIGNAMES (sizeof signames / sizeof signames[0])

static int sig_pipe_open(void) {
  int i;
  if (sig_fds[0] >= 0) return 0;
  if (pipe(sig_fds) < 0) return -errno;
  for (i = 0; i < 2; i++) {
    fcntl(sig_fds[i], F_SETFL, fcntl(sig_fds[i], F_GETFL) | O_NONBLOCK);
    fcntl(sig_fds[i], F_SETFD, FD_CLOEXEC);
  }
  return 0;
}

/* ------------------------------------------------------ the watch state */

/* One watched engine per process: the executable opens one store. Lives in
 * static memory because the poll handles are closed asynchronously. */
static struct {
  llash_engine *le;
  int ref; /* registry ref keeping the engine userdata alive */
  uv_poll_t sigpoll, inpoll;
  int sigpoll_open, inpoll_open, inpoll_on;
  int pending[NSIGNAMES];
  int stop_on_signal;
  char *line;     /* a complete input line, until host.line() takes it */
  int line_state; /* 0 nothing, 1 line, 2 end of input */
  int handler_on; /* the readline callback handler is installed */
  int completer_ref;
} W = {NULL, LUA_NOREF, {0}, {0}, 0, 0, 0, {0}, 0, NULL, 0, 0, LUA_NOREF};

/* Background messages while the prompt shows: erase the prompt line, print
 * the message there, and draw the prompt and what was typed again below
 * it, as readline programs do, so a message never lands inside the line
 * being edited. */
static void print_above_prompt(const char *text) {
  if (!W.handler_on) {
    fputs(text, stderr);
    fflush(stderr);
    return;
  }
  fputs("\r\033[K", stdout);
  fflush(stdout);
  fputs(text, stderr);
  fflush(stderr);
  rl_forced_update_display();
}

static void stop_engine(void) {
  if (W.le != NULL && W.le->e != NULL) lash_engine_stop(W.le->e);
}

/* Reads every pending signal byte; returns how many were read. */
static int sig_drain(int record) {
  unsigned char buf[64];
  ssize_t n, i;
  int total = 0;
  size_t k;
  if (sig_fds[0] < 0) return 0;
  while ((n = read(sig_fds[0], buf, sizeof buf)) > 0) {
    total += (int)n;
    if (!record) continue;
    for (i = 0; i < n; i++)
      for (k = 0; k < NSIGNAMES; k++)
        if (signames[k].sig == buf[i]) W.pending[k]++;
  }
  return total;
}

static void sigpoll_cb(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  if (sig_drain(1) == 0) return;
  if (eval_on && globalL != NULL && lua_gethook(globalL) == l_stop_hook) {
    /* The chunk is inside a C call that runs the loop (eng:await): the
     * hook would fire in whatever Lua code the loop calls next, and
     * coroutines created meanwhile would inherit it. Drop it; the
     * interruption is reported as the pending signal instead. */
    lua_sethook(globalL, NULL, 0, 0);
  }
  /* A chunk waiting in the loop (eng:await, eng:run) raises "interrupted!"
   * when its wait returns. */
  if (eval_on && W.le != NULL && W.le->e != NULL)
    lash_engine_interrupt(W.le->e);
  if (W.stop_on_signal) stop_engine();
}

/* ------------------------------------------------------- line input */

static void line_handler(char *line) {
  free(W.line);
  W.line = line; /* malloc'd by libedit; NULL at end of input */
  W.line_state = line != NULL ? 1 : 2;
  if (W.inpoll_on) {
    uv_poll_stop(&W.inpoll);
    W.inpoll_on = 0;
  }
  stop_engine();
}

static void inpoll_cb(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {
    line_handler(NULL);
    return;
  }
  rl_callback_read_char();
}

/* -------------------------------------------------------- completion */

static char **comp_list = NULL;
static size_t comp_n = 0, comp_i = 0;

static void comp_clear(void) {
  size_t i;
  for (i = 0; i < comp_n; i++)
    free(comp_list[i]);
  free(comp_list);
  comp_list = NULL;
  comp_n = comp_i = 0;
}

static char *comp_next(const char *text, int state) {
  (void)text;
  if (state == 0) comp_i = 0;
  if (comp_i < comp_n) return strdup(comp_list[comp_i++]);
  return NULL;
}

/* Asks the Lua completer (host.completer) for the candidates of @p text. */
static char **comp_attempt(const char *text, int start, int end) {
  lua_State *L = globalL;
  int top, i, n;
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file name fallback */
  comp_clear();
  if (L == NULL || W.completer_ref == LUA_NOREF) return NULL;
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, W.completer_ref);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    n = (int)lua_rawlen(L, -1);
    comp_list = calloc((size_t)n + 1, sizeof *comp_list);
    for (i = 1; comp_list != NULL && i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
        char *s = strdup(lua_tostring(L, -1));
        if (s != NULL) comp_list[comp_n++] = s;
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  if (comp_n == 0) return NULL;
  return rl_completion_matches(text, comp_next);
}

/* ------------------------------------------------------ lash.host */

static llash_engine *check_engine(lua_State *L, int idx) {
  return llash_checkengine(L, idx);
}

/* host.watch(eng): polls the signal pipe (and later stdin) on eng's loop.
 * eng:run() then returns when a trapped signal arrives or a line is read. */
static int h_watch(lua_State *L) {
  llash_engine *le = check_engine(L, 1);
  uv_loop_t *loop = lash_engine_loop(le->e);
  int rc;
  if (W.le == le) return 0;
  if (W.le != NULL) return luaL_error(L, "another engine is already watched");
  if ((rc = sig_pipe_open()) < 0)
    return luaL_error(L, "cannot create the signal pipe: %s", strerror(-rc));
  if ((rc = uv_poll_init(loop, &W.sigpoll, sig_fds[0])) < 0)
    return luaL_error(L, "cannot poll the signal pipe: %s", uv_strerror(rc));
  W.sigpoll_open = 1;
  uv_poll_start(&W.sigpoll, UV_READABLE, sigpoll_cb);
  W.le = le;
  W.stop_on_signal = 1;
  lua_pushvalue(L, 1);
  W.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void close_poll(uv_poll_t *h, int *open) {
  if (*open) {
    uv_close((uv_handle_t *)h, NULL);
    *open = 0;
  }
}

/* Closes the handles (their close callbacks run when the engine's loop
 * next turns, at the latest in eng:close()). */
static void unwatch(lua_State *L) {
  if (W.handler_on) {
    rl_callback_handler_remove();
    W.handler_on = 0;
  }
  W.inpoll_on = 0;
  close_poll(&W.inpoll, &W.inpoll_open);
  close_poll(&W.sigpoll, &W.sigpoll_open);
  if (W.ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, W.ref);
  W.ref = LUA_NOREF;
  W.le = NULL;
  free(W.line);
  W.line = NULL;
  W.line_state = 0;
}

/* host.unwatch() */
static int h_unwatch(lua_State *L) {
  unwatch(L);
  return 0;
}

/* host.watching(eng) -> boolean */
static int h_watching(lua_State *L) {
  llash_engine **u = luaL_checkudata(L, 1, LLASH_ENGINE);
  lua_pushboolean(L, W.le != NULL && *u == W.le);
  return 1;
}

/* host.trap("INT", "TERM", ...): route these signals to the watch. */
static int h_trap(lua_State *L) {
  int i, n = lua_gettop(L), rc;
  struct sigaction sa;
  if ((rc = sig_pipe_open()) < 0)
    return luaL_error(L, "cannot create the signal pipe: %s", strerror(-rc));
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (i = 1; i <= n; i++) {
    const char *name = luaL_checkstring(L, i);
    size_t k;
    for (k = 0; k < NSIGNAMES; k++)
      if (strcmp(signames[k].name, name) == 0) break;
    if (k == NSIGNAMES) return luaL_argerror(L, i, "unknown signal name");
    sigaction(signames[k].sig, &sa, NULL);
    trapped |= 1u << k;
  }
  return 0;
}

/* host.emergency(grace_ms): from now on a trapped signal arms
 * lash_engine_emergency on the watched engine (the second one with grace
 * 0); host.emergency(false) disarms. */
static int h_emergency(lua_State *L) {
  if (lua_toboolean(L, 1) == 0) {
    emerg_on = 0;
    emerg_e = NULL;
    return 0;
  }
  if (W.le == NULL || W.le->e == NULL)
    return luaL_error(L, "host.emergency: no engine is watched");
  emerg_grace = (long)luaL_checkinteger(L, 1);
  emerg_e = W.le->e;
  emerg_sigs = 0;
  emerg_on = 1;
  return 0;
}

/* host.signal() -> "INT" | "TERM" | ... | nil: takes one pending signal. */
static int h_signal(lua_State *L) {
  size_t k;
  sig_drain(1);
  for (k = 0; k < NSIGNAMES; k++) {
    if (W.pending[k] > 0) {
      W.pending[k]--;
      lua_pushstring(L, signames[k].name);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* host.eval(on): a REPL chunk starts (SIGINT interrupts it) or ends (any
 * interruption left over is forgotten). */
static int h_eval(lua_State *L) {
  if (lua_toboolean(L, 1)) {
    eval_on = 1;
    return 0;
  }
  eval_on = 0;
  lua_sethook(L, NULL, 0, 0);
  sig_drain(0);
  memset(W.pending, 0, sizeof W.pending);
  return 0;
}

/* host.prompt(prompt): shows the prompt and reads stdin from the engine's
 * loop; the line arrives through host.line() after eng:run() returns. */
static int h_prompt(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  int rc;
  if (W.le == NULL) return luaL_error(L, "host.prompt needs host.watch first");
  if (!W.inpoll_open) {
    rc = uv_poll_init(lash_engine_loop(W.le->e), &W.inpoll, 0);
    if (rc < 0) return luaL_error(L, "cannot poll stdin: %s", uv_strerror(rc));
    W.inpoll_open = 1;
  }
  if (W.handler_on) rl_callback_handler_remove();
  rl_callback_handler_install(prompt, line_handler);
  W.handler_on = 1;
  llash_set_printer(print_above_prompt);
  if (!W.inpoll_on) {
    uv_poll_start(&W.inpoll, UV_READABLE, inpoll_cb);
    W.inpoll_on = 1;
  }
  return 0;
}

/* host.line() -> line | false (end of input) | nil (nothing yet). */
static int h_line(lua_State *L) {
  if (W.line_state == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (W.line_state == 2) {
    lua_pushboolean(L, 0);
  } else {
    lua_pushstring(L, W.line);
    free(W.line);
    W.line = NULL;
  }
  W.line_state = 0;
  if (W.handler_on) {
    rl_callback_handler_remove();
    W.handler_on = 0;
  }
  return 1;
}

/* host.cancel_line(): drops what was typed (Ctrl-C at the prompt). */
static int h_cancel_line(lua_State *L) {
  (void)L;
  rl_replace_line("", 0);
  if (W.handler_on) {
    rl_callback_handler_remove();
    W.handler_on = 0;
  }
  if (W.inpoll_on) {
    uv_poll_stop(&W.inpoll);
    W.inpoll_on = 0;
  }
  return 0;
}

static int h_history_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  using_history();
  stifle_history((int)luaL_optinteger(L, 2, 1000));
  lua_pushboolean(L, read_history(path) == 0);
  return 1;
}

static int h_history_add(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

static int h_history_save(lua_State *L) {
  lua_pushboolean(L, write_history(luaL_checkstring(L, 1)) == 0);
  return 1;
}

/* host.completer(fn): fn(text) -> array of candidates for tab. */
static int h_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (W.completer_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, W.completer_ref);
  lua_pushvalue(L, 1);
  W.completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rl_attempted_completion_function = comp_attempt;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^#~[]}";
  rl_completion_append_character = '\0';
  return 0;
}

static int h_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int luaopen_lash_host(lua_State *L) {
  static const luaL_Reg fns[] = {{"watch", h_watch},
                                 {"unwatch", h_unwatch},
                                 {"watching", h_watching},
                                 {"trap", h_trap},
                                 {"signal", h_signal},
                                 {"emergency", h_emergency},
                                 {"eval", h_eval},
                                 {"prompt", h_prompt},
                                 {"line", h_line},
                                 {"cancel_line", h_cancel_line},
                                 {"history_load", h_history_load},
                                 {"history_add", h_history_add},
                                 {"history_save", h_history_save},
                                 {"completer", h_completer},
                                 {"isatty", h_isatty},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushstring(L, progname);
  lua_setfield(L, -2, "progname");
  return 1;
}

/* ------------------------------------------------------------- loading */

static int l_embedded_loader(lua_State *L) {
  const struct lash_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushfstring(L, "@%s", m->file);
  if (luaL_loadbufferx(L, m->src, m->len, lua_tostring(L, -1), "t") != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1);
  lua_pushliteral(L, ":embedded:");
  lua_call(L, 2, 1);
  return 1;
}

/* require "lash.assets" -> {["app.js"] = "...", ...}: the UI's files. */
static int l_assets(lua_State *L) {
  const struct lash_embedded *m;
  lua_newtable(L);
  for (m = lash_assets; m->name != NULL; m++) {
    lua_pushlstring(L, m->src, m->len);
    lua_setfield(L, -2, m->name);
  }
  return 1;
}

static void preload(lua_State *L) {
  const struct lash_embedded *m;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lash_core);
  lua_setfield(L, -2, "lash.core");
  lua_pushcfunction(L, luaopen_lash_host);
  lua_setfield(L, -2, "lash.host");
  lua_pushcfunction(L, l_assets);
  lua_setfield(L, -2, "lash.assets");
  for (m = lash_embedded; m->name != NULL; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, l_embedded_loader, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

/* lua.c's msghandler: a traceback for errors that escape lash.cli. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs require("lash.cli").main(args) and leaves its exit code. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i;
  luaL_openlibs(L);
  preload(L);
  lua_createtable(L, argc, 1); /* arg, as lua.c builds it */
  lua_pushstring(L, argv[0]);
  lua_rawseti(L, -2, 0);
  for (i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lash.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_getglobal(L, "arg");
  lua_call(L, 1, 1);
  lua_pushinteger(L, lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int status, code;
  if (argv[0] != NULL && argv[0][0] != '\0') progname = argv[0];
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create the Lua state: not enough memory\n",
            progname);
    return 1;
  }
  globalL = L;
  rl_catch_signals = 0; /* our handlers stay in place while libedit reads */
  rl_readline_name = "lash";
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg != NULL ? msg : "(no message)");
    code = 1;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  /* The engine's close (from __gc) runs its loop until every handle on it
   * closed, ours included. */
  unwatch(L);
  lua_close(L);
  globalL = NULL;
  comp_clear();
  free(W.line);
  fflush(stdout);
  return code;
}
