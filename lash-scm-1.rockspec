-- LuaRocks rockspec: builds the lash.core C module (and liblash, the lash
-- executable) with CMake and installs the Lua modules into the rock tree.
rockspec_format = "3.0"
package = "lash"
version = "scm-1"
-- Built from a checkout with `luarocks make lash-scm-1.rockspec` (the
-- source is the current directory; nothing is fetched).
source = {
  url = "git+file://.",
}
description = {
  summary = "Durable processes for Lua 5.4: a C core over LMDB and libuv",
  detailed = [[
lash runs durable processes: rows with a kind, an input, an ordered event log
and one terminal outcome, stored in LMDB and driven by any number of workers
under fenced leases. Process bodies are Lua functions; waits are coroutine
yields. Includes the `lash` executable (REPL and operator commands).]],
  labels = { "job-queue", "workflow", "lmdb", "libuv" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LMDB = { header = "lmdb.h" },
  LIBUV = { header = "uv.h" },
  MSGPACK = { header = "msgpack.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LASH_BUILD_TESTS = "OFF",
    -- Lua modules where LuaRocks looks for them in this tree.
    LASH_LUA_LDIR = "$(LUADIR)",
    LASH_LUA_CDIR = "$(LIBDIR)",
  },
}
test = {
  type = "command",
  command = "lua5.4 /usr/bin/busted spec",
}
