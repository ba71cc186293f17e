/* fuzz/fuzz.h - what every fuzz target defines: libFuzzer's entry point.
 * Built two ways (fuzz/CMakeLists.txt): with clang -fsanitize=fuzzer
 * (scripts/fuzz), or with fuzz/replay.c's main, which runs each file of a
 * corpus through it once (the ctest entries fuzz.<target>). A target
 * returns 0 and calls abort() when a property it checks breaks. */
#ifndef LASH_FUZZ_H
#define LASH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
