# scripts/core_no_lua.cmake - fails when a file under core/ includes a Lua
# header: liblash is usable from C without Lua (the lint.core_no_lua test).
#
#   cmake -DROOT=. -P scripts/core_no_lua.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=DIR -P core_no_lua.cmake")
endif()
get_filename_component(ROOT ${ROOT} ABSOLUTE)
file(GLOB_RECURSE files ${ROOT}/core/*.c ${ROOT}/core/*.h)
set(bad 0)
foreach(f ${files})
  file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](lua|lauxlib|lualib|luaconf)\\.h[>\"]")
  if(hits)
    file(RELATIVE_PATH rel ${ROOT} ${f})
    message(SEND_ERROR "${rel} includes a Lua header: ${hits}")
    math(EXPR bad "${bad} + 1")
  endif()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} file(s) under core/ include Lua headers")
endif()
list(LENGTH files n)
message(STATUS "${n} files under core/: none includes a Lua header")
