# scripts/lmdb_only_in_backend.cmake - fails when LMDB is named outside its
# backend: lmdb.h, data.mdb or an MDB_ name in core/, bindings/ or lua/ other
# than core/src/lmdb/ (and core/test/, whose LMDB damage tests write the file
# directly). The lint.lmdb_only_in_backend test.
#
#   cmake -DROOT=. -P scripts/lmdb_only_in_backend.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=DIR -P lmdb_only_in_backend.cmake")
endif()
get_filename_component(ROOT ${ROOT} ABSOLUTE)
file(GLOB_RECURSE files ${ROOT}/core/*.c ${ROOT}/core/*.h ${ROOT}/bindings/*.c
     ${ROOT}/bindings/*.h ${ROOT}/lua/*.lua)
set(bad 0)
set(n 0)
foreach(f ${files})
  file(RELATIVE_PATH rel ${ROOT} ${f})
  if(rel MATCHES "^core/src/lmdb/" OR rel MATCHES "^core/test/")
    continue()
  endif()
  math(EXPR n "${n} + 1")
  file(STRINGS ${f} hits REGEX "lmdb\\.h|data\\.mdb|MDB_[A-Z]")
  if(hits)
    message(SEND_ERROR "${rel} names LMDB outside core/src/lmdb/: ${hits}")
    math(EXPR bad "${bad} + 1")
  endif()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} file(s) name LMDB outside its backend")
endif()
message(STATUS "${n} files outside core/src/lmdb/: none names LMDB")
