/* lash_core.c - luaopen_lash_core: the lash.core Lua module.
 *
 * The module holds the raw, positional functions (open, define, start, list,
 * await, ...) that lua/lash/init.lua wraps with option tables and defaults,
 * the method tables of engines (core.Engine) and process contexts
 * (core.Ctx), which init.lua extends, the payload codec (encode, decode,
 * null) and the version.
 */
#include "llash.h"

/* core.strerror(code) -> text, name */
static int l_strerror(lua_State *L) {
  int rc = (int)luaL_checkinteger(L, 1);
  lua_pushstring(L, lash_strerror(rc));
  lua_pushstring(L, lash_err_name(rc));
  return 2;
}

LASH_API int luaopen_lash_core(lua_State *L);

LASH_API int luaopen_lash_core(lua_State *L) {
  luaL_checkversion(L);
  lua_newtable(L);
  llash_payload_open(L);
  llash_json_open(L);
  llash_engine_open(L);
  llash_ctx_open(L);
  lua_pushcfunction(L, l_strerror);
  lua_setfield(L, -2, "strerror");
  lua_pushstring(L, lash_version());
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, LLASH_MAX_DEPTH);
  lua_setfield(L, -2, "max_depth");
  return 1;
}
