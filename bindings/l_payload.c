/* l_payload.c - Lua values <-> MessagePack.
 *
 * Encoding uses msgpack-c's packer into an sbuffer owned by a userdata, so a
 * memory error raised mid-way leaves nothing for C to free. Decoding is our
 * own small reader: msgpack-c's unpacker stops at 32 levels of nesting, and
 * payloads may nest 64 deep.
 */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "llash.h"

char llash_null_tag;

/* ------------------------------------------------------------- buffers */

static msgpack_sbuffer *l_newbuf(lua_State *L) {
  msgpack_sbuffer *sb = lua_newuserdatauv(L, sizeof *sb, 0);
  msgpack_sbuffer_init(sb);
  luaL_setmetatable(L, LLASH_BUF);
  return sb;
}

static int l_buf_gc(lua_State *L) {
  msgpack_sbuffer *sb = luaL_checkudata(L, 1, LLASH_BUF);
  msgpack_sbuffer_destroy(sb);
  msgpack_sbuffer_init(sb);
  return 0;
}

/* ------------------------------------------------------------- encoding */

typedef struct l_enc {
  lua_State *L;
  msgpack_packer pk;
  const void *anc[LLASH_MAX_DEPTH + 1]; /* tables on the current path */
  char keys[LLASH_MAX_DEPTH + 1][40];   /* the path to the current value */
  int depth;
  char err[80];
} l_enc;

static void l_setkey(l_enc *x, int idx) {
  char *k = x->keys[x->depth];
  size_t cap = sizeof x->keys[0];
  lua_State *L = x->L;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len, i;
    const char *s = lua_tolstring(L, idx, &len);
    int ident = len > 0 && len < cap - 2 && !(s[0] >= '0' && s[0] <= '9');
    for (i = 0; ident && i < len; i++)
      ident = (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
               (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'));
    if (ident)
      snprintf(k, cap, ".%s", s);
    else
      snprintf(k, cap, "[\"%.*s%s\"]", len > 24 ? 24 : (int)len, s,
               len > 24 ? "..." : "");
  } else if (lua_isinteger(L, idx)) {
    snprintf(k, cap, "[%lld]", (long long)lua_tointeger(L, idx));
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    snprintf(k, cap, "[%.14g]", lua_tonumber(L, idx));
  } else {
    snprintf(k, cap, "[%s]", luaL_typename(L, idx));
  }
}

static int l_fail(l_enc *x, const char *fmt, const char *arg) {
  snprintf(x->err, sizeof x->err, fmt, arg);
  return -1;
}

static int l_enc_value(l_enc *x, int idx);

int llash_table_shape(lua_State *L, int idx, lua_Integer *len,
                      lua_Integer *count) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), k = 0;
  int array = n > 0, marked = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    k++;
    if (array && (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
                  lua_tointeger(L, -1) > n))
      array = 0;
  }
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, LLASH_ARRAY);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  *len = n;
  if (count != NULL) *count = k;
  /* A table marked as an array is one even when empty (or with holes, which
   * become nil up to its length). */
  return marked || (array && k == n);
}

static int l_enc_table(l_enc *x, int idx) {
  lua_State *L = x->L;
  const void *p = lua_topointer(L, idx);
  lua_Integer n, count, i;
  int array, d;
  for (d = 0; d < x->depth; d++)
    if (x->anc[d] == p) return l_fail(x, "cannot encode a %s", "cycle");
  if (x->depth >= LLASH_MAX_DEPTH)
    return l_fail(x, "cannot encode nesting deeper than %s", "64 levels");
  if (!lua_checkstack(L, 4))
    return l_fail(x, "cannot encode: %s", "out of stack space");
  x->anc[x->depth] = p;
  array = llash_table_shape(L, idx, &n, &count);
  x->depth++;
  if (array) {
    if (msgpack_pack_array(&x->pk, (size_t)n) != 0) goto nomem;
    for (i = 1; i <= n; i++) {
      snprintf(x->keys[x->depth], sizeof x->keys[0], "[%lld]", (long long)i);
      lua_rawgeti(L, idx, i);
      if (l_enc_value(x, lua_gettop(L)) < 0) return -1;
      lua_pop(L, 1);
    }
  } else {
    if (msgpack_pack_map(&x->pk, (size_t)count) != 0) goto nomem;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      int kt = lua_type(L, -2);
      l_setkey(x, lua_gettop(L) - 1);
      if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
        return l_fail(x, "cannot encode a %s key", luaL_typename(L, -2));
      if (l_enc_value(x, lua_gettop(L) - 1) < 0 ||
          l_enc_value(x, lua_gettop(L)) < 0)
        return -1;
      lua_pop(L, 1);
    }
  }
  x->depth--;
  return 0;
nomem:
  return l_fail(x, "cannot encode: %s", "out of memory");
}

static int l_enc_value(l_enc *x, int idx) {
  lua_State *L = x->L;
  int rc = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    rc = msgpack_pack_nil(&x->pk);
    break;
  case LUA_TBOOLEAN:
    rc = lua_toboolean(L, idx) ? msgpack_pack_true(&x->pk)
                               : msgpack_pack_false(&x->pk);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      rc = msgpack_pack_int64(&x->pk, (int64_t)lua_tointeger(L, idx));
    else
      rc = msgpack_pack_double(&x->pk, (double)lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    rc = msgpack_pack_str(&x->pk, len);
    if (rc == 0) rc = msgpack_pack_str_body(&x->pk, s, len);
    break;
  }
  case LUA_TTABLE:
    return l_enc_table(x, idx);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == &llash_null_tag) {
      rc = msgpack_pack_nil(&x->pk);
      break;
    }
    return l_fail(x, "cannot encode a %s", "light userdata");
  default:
    return l_fail(x, "cannot encode a %s", luaL_typename(L, idx));
  }
  if (rc != 0) return l_fail(x, "cannot encode: %s", "out of memory");
  return 0;
}

int llash_encode(lua_State *L, int idx, const char *what, lash_bytes *out) {
  l_enc state, *x = &state;
  msgpack_sbuffer *sb;
  int top, d;
  idx = lua_absindex(L, idx);
  /* The state is on the C stack (3 KiB a row of garbage otherwise) and
   * the buffer a userdata: nothing here needs freeing if a memory error
   * unwinds the stack. The nil holds the slot the result goes to. */
  lua_pushnil(L);
  top = lua_gettop(L);
  sb = l_newbuf(L);
  x->L = L;
  x->depth = 0;
  x->err[0] = '\0';
  msgpack_packer_init(&x->pk, sb, msgpack_sbuffer_write);
  if (l_enc_value(x, idx) == 0) {
    lua_settop(L, top + 1);
    lua_remove(L, top); /* the state: leave the buffer */
    out->data = sb->data;
    out->len = sb->size;
    return 0;
  }
  {
    luaL_Buffer b;
    lua_settop(L, top + 1);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, x->err);
    luaL_addstring(&b, " at ");
    luaL_addstring(&b, what);
    for (d = 1; d <= x->depth; d++)
      luaL_addstring(&b, x->keys[d]);
    luaL_pushresult(&b);
  }
  lua_replace(L, top);
  lua_settop(L, top);
  out->data = NULL;
  out->len = 0;
  return -1;
}

/* ------------------------------------------------------------- decoding */

typedef struct l_dec {
  lua_State *L;
  const unsigned char *p, *end;
  int depth;
} l_dec;

static int l_need(l_dec *d, size_t n) {
  return (size_t)(d->end - d->p) >= n;
}

static uint64_t l_be(const unsigned char *p, int n) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

static int l_dec_value(l_dec *d, int in_container);

static int l_dec_str(l_dec *d, size_t len) {
  if (!l_need(d, len)) return -1;
  lua_pushlstring(d->L, (const char *)d->p, len);
  d->p += len;
  return 0;
}

static int l_dec_array(l_dec *d, size_t n) {
  lua_State *L = d->L;
  size_t i;
  if (++d->depth > LLASH_MAX_DEPTH || !lua_checkstack(L, 4)) return -1;
  if (n > (size_t)(d->end - d->p)) return -1; /* each element is >= 1 byte */
  lua_createtable(L, n > 1024 ? 1024 : (int)n, 0);
  for (i = 1; i <= n; i++) {
    if (l_dec_value(d, 1) < 0) return -1;
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  luaL_setmetatable(L, LLASH_ARRAY);
  d->depth--;
  return 0;
}

static int l_dec_map(l_dec *d, size_t n) {
  lua_State *L = d->L;
  size_t i;
  if (++d->depth > LLASH_MAX_DEPTH || !lua_checkstack(L, 4)) return -1;
  if (n > (size_t)(d->end - d->p) / 2) return -1;
  lua_createtable(L, 0, n > 1024 ? 1024 : (int)n);
  for (i = 0; i < n; i++) {
    if (l_dec_value(d, 0) < 0 || l_dec_value(d, 1) < 0) return -1;
    /* A map or array key is no payload: lash.encode refuses table keys. */
    if (lua_type(L, -2) == LUA_TTABLE) return -1;
    if (lua_type(L, -2) == LUA_TNIL ||
        (lua_type(L, -2) == LUA_TNUMBER &&
         lua_tonumber(L, -2) != lua_tonumber(L, -2))) {
      lua_pop(L, 2); /* nil or NaN keys cannot index a table */
      continue;
    }
    lua_rawset(L, -3);
  }
  d->depth--;
  return 0;
}

/* Takes the next @p n bytes as a big-endian number. */
static int l_take(l_dec *d, int n, uint64_t *u) {
  if (!l_need(d, (size_t)n)) return -1;
  *u = l_be(d->p, n);
  d->p += n;
  return 0;
}

static int l_dec_value(l_dec *d, int in_container) {
  lua_State *L = d->L;
  unsigned char c;
  uint64_t u;
  if (!l_need(d, 1)) return -1;
  c = *d->p++;
  if (c <= 0x7f) {
    lua_pushinteger(L, c);
    return 0;
  }
  if (c >= 0xe0) {
    lua_pushinteger(L, (int8_t)c);
    return 0;
  }
  if ((c & 0xe0) == 0xa0) return l_dec_str(d, c & 0x1f);
  if ((c & 0xf0) == 0x90) return l_dec_array(d, c & 0x0f);
  if ((c & 0xf0) == 0x80) return l_dec_map(d, c & 0x0f);
  switch (c) {
  case 0xc0:
    if (in_container)
      llash_pushnull(L);
    else
      lua_pushnil(L);
    return 0;
  case 0xc2:
  case 0xc3:
    lua_pushboolean(L, c == 0xc3);
    return 0;
  case 0xc4: /* bin 8/16/32: strings too */
  case 0xc5:
  case 0xc6:
    if (l_take(d, 1 << (c - 0xc4), &u) < 0) return -1;
    return l_dec_str(d, (size_t)u);
  case 0xd9: /* str 8/16/32 */
  case 0xda:
  case 0xdb:
    if (l_take(d, 1 << (c - 0xd9), &u) < 0) return -1;
    return l_dec_str(d, (size_t)u);
  case 0xca: {
    uint32_t u32;
    float f;
    if (l_take(d, 4, &u) < 0) return -1;
    u32 = (uint32_t)u;
    memcpy(&f, &u32, sizeof f);
    lua_pushnumber(L, (lua_Number)f);
    return 0;
  }
  case 0xcb: {
    double f;
    if (l_take(d, 8, &u) < 0) return -1;
    memcpy(&f, &u, sizeof f);
    lua_pushnumber(L, (lua_Number)f);
    return 0;
  }
  case 0xcc: /* uint 8/16/32/64 */
  case 0xcd:
  case 0xce:
  case 0xcf:
    if (l_take(d, 1 << (c - 0xcc), &u) < 0) return -1;
    if (u > (uint64_t)INT64_MAX)
      lua_pushnumber(L, (lua_Number)u);
    else
      lua_pushinteger(L, (lua_Integer)u);
    return 0;
  case 0xd0: /* int 8/16/32/64 */
  case 0xd1:
  case 0xd2:
  case 0xd3: {
    int n = 1 << (c - 0xd0);
    int64_t v;
    if (l_take(d, n, &u) < 0) return -1;
    if (n < 8 && (u >> (n * 8 - 1)) & 1) u |= ~(uint64_t)0 << (n * 8);
    memcpy(&v, &u, sizeof v);
    lua_pushinteger(L, (lua_Integer)v);
    return 0;
  }
  case 0xdc: /* array 16/32 */
  case 0xdd:
    if (l_take(d, c == 0xdc ? 2 : 4, &u) < 0) return -1;
    return l_dec_array(d, (size_t)u);
  case 0xde: /* map 16/32 */
  case 0xdf:
    if (l_take(d, c == 0xde ? 2 : 4, &u) < 0) return -1;
    return l_dec_map(d, (size_t)u);
  default: /* ext types and the unused 0xc1 */
    return -1;
  }
}

int llash_decode(lua_State *L, const void *data, size_t len) {
  l_dec d;
  int top = lua_gettop(L);
  if (len == 0 || data == NULL) {
    lua_pushnil(L);
    return 0;
  }
  d.L = L;
  d.p = data;
  d.end = d.p + len;
  d.depth = 0;
  if (l_dec_value(&d, 0) == 0 && d.p == d.end) return 0;
  lua_settop(L, top);
  lua_pushstring(L, "cannot decode payload: malformed MessagePack");
  return -1;
}

void llash_pushpayload(lua_State *L, lash_bytes b) {
  if (llash_decode(L, b.data, b.len) < 0) lua_error(L);
}

/* core.encode(value [, what]) -> string | nil, msg, "EINVAL" */
static int l_encode(lua_State *L) {
  lash_bytes b;
  const char *what = luaL_optstring(L, 2, "value");
  luaL_checkany(L, 1);
  if (llash_encode(L, 1, what, &b) < 0)
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  lua_pushlstring(L, b.data, b.len);
  return 1;
}

/* core.decode(string) -> value | nil, msg, "EINVAL" */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (llash_decode(L, s, len) < 0)
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  return 1;
}

void llash_payload_open(lua_State *L) {
  if (luaL_newmetatable(L, LLASH_BUF)) {
    lua_pushcfunction(L, l_buf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_buf_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_encode);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, l_decode);
  lua_setfield(L, -2, "decode");
  llash_pushnull(L);
  lua_setfield(L, -2, "null");
}
