/* fuzz/fuzz_payload.c - MessagePack -> Lua (bindings/l_payload.c), as the
 * bindings decode every stored input, event payload and outcome.
 *
 * Properties: decoding any bytes returns a value or nil, msg, "EINVAL"
 * (never raises, crashes or leaks); a decoded value encodes again, and
 * that encoding decodes to a value that encodes to the same length. */
#include "fuzz.h"

#include "lua_state.h"

static const char src[] =
    "local s = ...\n"
    "local ok, v, msg, code = pcall(core.decode, s)\n"
    "if not ok then error('decode raised: ' .. tostring(v)) end\n"
    "if v == nil and msg ~= nil then\n"
    "  assert(code == 'EINVAL', 'code ' .. tostring(code))\n"
    "  return\n"
    "end\n"
    "local b1, m1 = core.encode(v)\n"
    "assert(b1, 'a decoded value does not encode: ' .. tostring(m1))\n"
    "local v2, m2 = core.decode(b1)\n"
    "assert(v2 ~= nil or m2 == nil, 'its encoding does not decode: ' .. "
    "tostring(m2))\n"
    "local b2 = assert(core.encode(v2))\n"
    "assert(#b1 == #b2, 'round trip changed the length')\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_run("fuzz_payload", src, data, size);
  return 0;
}
