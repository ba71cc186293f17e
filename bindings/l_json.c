/* l_json.c - Lua values <-> JSON text, for the CLI and the REPL.
 *
 * Parsing is jansson's (Debian libjansson-dev): integers stay exact up to
 * int64, reals are doubles, errors carry line, column and byte position.
 * Printing walks the Lua value here so that numbers keep their kind (an
 * integer prints as one, a float always with a '.' or an exponent, in the
 * shortest form that reads back to the same double) and keys come out
 * sorted; strings are escaped by jansson (no escaped slashes). Arrays and
 * maps: a table marked with the lash.array metatable (what decoding an
 * array gives, from JSON or MessagePack) is an array even when empty; an
 * unmarked table is an array when its keys are exactly 1..n, n > 0.
 *
 * core.json_decode(text) -> true, value | nil, msg, "EINVAL"
 *   (null at the top is nil, null inside a table lash.null)
 * core.json_encode(value) -> text
 *   (lash.null and nil are null; NaN and infinities, functions and other
 *   values JSON cannot hold print as strings; a cycle prints "<cycle>")
 */
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llash.h"

/* -------------------------------------------------------------- decode */

static int l_push_json(lua_State *L, json_t *v, int depth, int top);

static int l_push_json(lua_State *L, json_t *v, int depth, int top) {
  if (depth > LLASH_MAX_DEPTH || !lua_checkstack(L, 4)) return -1;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *x;
    lua_createtable(L, 0, (int)json_object_size(v));
    json_object_foreach(v, k, x) {
      if (l_push_json(L, x, depth + 1, 0) < 0) return -1;
      lua_setfield(L, -2, k);
    }
    return 0;
  }
  case JSON_ARRAY: {
    size_t i, n = json_array_size(v);
    lua_createtable(L, n > 1024 ? 1024 : (int)n, 0);
    for (i = 0; i < n; i++) {
      if (l_push_json(L, json_array_get(v, i), depth + 1, 0) < 0) return -1;
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    luaL_setmetatable(L, LLASH_ARRAY);
    return 0;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    return 0;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    return 0;
  case JSON_REAL:
    lua_pushnumber(L, (lua_Number)json_real_value(v));
    return 0;
  case JSON_TRUE:
  case JSON_FALSE:
    lua_pushboolean(L, json_is_true(v));
    return 0;
  case JSON_NULL:
  default:
    if (top)
      lua_pushnil(L);
    else
      llash_pushnull(L);
    return 0;
  }
}

static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  json_error_t err;
  json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  int rc;
  if (v == NULL) {
    lua_pushnil(L);
    if (err.line > 0)
      lua_pushfstring(L, "%s at line %d, column %d (byte %d)", err.text,
                      err.line, err.column, err.position);
    else
      lua_pushstring(L, err.text);
    lua_pushliteral(L, "EINVAL");
    return 3;
  }
  lua_pushboolean(L, 1);
  rc = l_push_json(L, v, 0, 1);
  json_decref(v);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "JSON nests deeper than %d levels", LLASH_MAX_DEPTH);
    lua_pushliteral(L, "EINVAL");
    return 3;
  }
  return 2;
}

/* -------------------------------------------------------------- encode */

/* The text is built in a msgpack sbuffer held by a userdata (LLASH_BUF,
 * freed by its __gc), so a Lua error raised mid-way (a __tostring that
 * fails) leaks nothing, and the Lua stack stays free for the walk. */
typedef struct l_jenc {
  lua_State *L;
  msgpack_sbuffer *b;
  const void *anc[LLASH_MAX_DEPTH + 1];
  int depth;
} l_jenc;

static void l_addlstr(l_jenc *x, const char *s, size_t n) {
  if (msgpack_sbuffer_write(x->b, s, n) != 0)
    luaL_error(x->L, "lash: out of memory printing JSON");
}
static void l_addstr(l_jenc *x, const char *s) {
  l_addlstr(x, s, strlen(s));
}
static void l_addchar(l_jenc *x, char c) {
  l_addlstr(x, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t l_utf8_len(const unsigned char *s, size_t n) {
  size_t len, i;
  unsigned cp;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4, cp = s[0] & 0x07;
  else
    return 0;
  if (len > n) return 0;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

/* Adds s as a JSON string; every byte of an invalid UTF-8 sequence becomes
 * U+FFFD, so the text is always valid. */
static void l_add_string(l_jenc *x, const char *s, size_t n) {
  lua_State *L = x->L;
  luaL_Buffer clean;
  size_t i = 0, k;
  json_t *js;
  char *text;
  luaL_buffinit(L, &clean);
  while (i < n) {
    k = l_utf8_len((const unsigned char *)s + i, n - i);
    if (k == 0) {
      luaL_addstring(&clean, "\xef\xbf\xbd");
      i++;
    } else {
      luaL_addlstring(&clean, s + i, k);
      i += k;
    }
  }
  luaL_pushresult(&clean);
  s = lua_tolstring(L, -1, &n);
  js = json_stringn(s, n);
  text = js != NULL ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
  json_decref(js);
  lua_pop(L, 1);
  if (text == NULL) luaL_error(L, "lash: out of memory printing JSON");
  l_addstr(x, text);
  free(text);
}

/* The shortest %g form of d that reads back as d, always marked as a float
 * ('.' or an exponent), so it reads back as a float too. */
static void l_add_real(l_jenc *x, double d) {
  char buf[40];
  int p;
  if (isnan(d) || isinf(d)) {
    const char *t = isnan(d) ? "nan" : d > 0 ? "inf" : "-inf";
    l_add_string(x, t, strlen(t));
    return;
  }
  for (p = 1; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*g", p, d);
    if (strtod(buf, NULL) == d) break;
  }
  if (strpbrk(buf, ".eE") == NULL) strcat(buf, ".0");
  l_addstr(x, buf);
}

static void l_add_value(l_jenc *x, int idx);

/* Registry key of the key-order comparison: by type name, then by value
 * for numbers and strings, then by tostring. */
static char l_key_order;
static const char l_key_order_src[] =
    "local a, b = ...\n"
    "local ta, tb = type(a), type(b)\n"
    "if ta ~= tb then return ta < tb end\n"
    "if ta == 'number' or ta == 'string' then return a < b end\n"
    "return tostring(a) < tostring(b)";

/* Keys of the table at idx, as strings, sorted, pushed as one array. */
static void l_sorted_keys(lua_State *L, int idx) {
  lua_Integer n = 0;
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ++n);
  }
  /* table.sort(keys, the comparison made by llash_json_open) */
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_remove(L, -2);
  lua_pushvalue(L, -2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &l_key_order);
  lua_call(L, 2, 0);
}

static void l_add_table(l_jenc *x, int idx) {
  lua_State *L = x->L;
  const void *p = lua_topointer(L, idx);
  lua_Integer n, i;
  int d;
  for (d = 0; d < x->depth; d++)
    if (x->anc[d] == p) {
      l_add_string(x, "<cycle>", 7);
      return;
    }
  if (x->depth >= LLASH_MAX_DEPTH) {
    l_add_string(x, "<too deep>", 10);
    return;
  }
  luaL_checkstack(L, 8, "printing JSON");
  x->anc[x->depth++] = p;
  if (llash_table_shape(L, idx, &n, NULL)) {
    l_addchar(x, '[');
    for (i = 1; i <= n; i++) {
      if (i > 1) l_addchar(x, ',');
      lua_rawgeti(L, idx, i);
      l_add_value(x, lua_gettop(L));
      lua_pop(L, 1);
    }
    l_addchar(x, ']');
  } else {
    int keys;
    l_sorted_keys(L, idx);
    keys = lua_gettop(L);
    l_addchar(x, '{');
    n = (lua_Integer)lua_rawlen(L, keys);
    for (i = 1; i <= n; i++) {
      size_t kl;
      const char *k;
      if (i > 1) l_addchar(x, ',');
      lua_rawgeti(L, keys, i);
      if (lua_type(L, -1) == LUA_TSTRING) {
        k = lua_tolstring(L, -1, &kl);
        lua_pushvalue(L, -1);
      } else {
        lua_pushvalue(L, -1);
        k = luaL_tolstring(L, -1, &kl);
        lua_remove(L, -2);
      }
      l_add_string(x, k, kl);
      lua_pop(L, 1);
      l_addchar(x, ':');
      lua_rawget(L, idx);
      l_add_value(x, lua_gettop(L));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    l_addchar(x, '}');
  }
  x->depth--;
}

static void l_add_value(l_jenc *x, int idx) {
  lua_State *L = x->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    l_addstr(x, "null");
    break;
  case LUA_TBOOLEAN:
    l_addstr(x, lua_toboolean(L, idx) ? "true" : "false");
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      char buf[24];
      snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
      l_addstr(x, buf);
    } else {
      l_add_real(x, (double)lua_tonumber(L, idx));
    }
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    l_add_string(x, s, n);
    break;
  }
  case LUA_TTABLE:
    l_add_table(x, idx);
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == &llash_null_tag) {
      l_addstr(x, "null");
      break;
    }
    /* fall through */
  default: {
    size_t n;
    const char *s = luaL_tolstring(L, idx, &n);
    l_add_string(x, s, n);
    lua_pop(L, 1);
    break;
  }
  }
}

static int l_json_encode(lua_State *L) {
  l_jenc x;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  memset(&x, 0, sizeof x);
  x.L = L;
  x.b = lua_newuserdatauv(L, sizeof *x.b, 0);
  msgpack_sbuffer_init(x.b);
  luaL_setmetatable(L, LLASH_BUF);
  l_add_value(&x, 1);
  lua_pushlstring(L, x.b->data != NULL ? x.b->data : "", x.b->size);
  return 1;
}

/* lash.array(t) -> t, marked as an array (an empty one stays []). */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, LLASH_ARRAY);
  return 1;
}

void llash_json_open(lua_State *L) {
  static const luaL_Reg raw[] = {{"array", l_array},
                                 {"json_encode", l_json_encode},
                                 {"json_decode", l_json_decode},
                                 {NULL, NULL}};
  if (luaL_loadstring(L, l_key_order_src) != LUA_OK) lua_error(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &l_key_order);
  luaL_newmetatable(L, LLASH_ARRAY);
  lua_pushliteral(L, "lash.array");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "array_mt");
  llash_add_functions(L, raw);
}
