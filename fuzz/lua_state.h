/* fuzz/lua_state.h - a Lua state with the lash.core module, for the
 * targets of the bindings (one per process, reused across inputs). */
#ifndef LASH_FUZZ_LUA_STATE_H
#define LASH_FUZZ_LUA_STATE_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_lash_core(lua_State *L);

/* The state, with lash.core at global "core". */
static lua_State *fuzz_lua(void) {
  static lua_State *L;
  if (L != NULL) return L;
  if ((L = luaL_newstate()) == NULL) abort();
  luaL_openlibs(L);
  luaL_requiref(L, "lash.core", luaopen_lash_core, 0);
  lua_setglobal(L, "core");
  return L;
}

/* Runs @p src (a chunk taking the input string as ...) on @p data. A Lua
 * error is a finding: the chunk itself checks what must hold. */
static void fuzz_run(const char *name, const char *src, const uint8_t *data,
                     size_t size) {
  lua_State *L = fuzz_lua();
  int top = lua_gettop(L);
  if (luaL_loadbuffer(L, src, strlen(src), name) != LUA_OK) abort();
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT);
}

#endif
