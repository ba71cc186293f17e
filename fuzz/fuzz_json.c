/* fuzz/fuzz_json.c - the CLI's JSON (bindings/l_json.c, jansson): text ->
 * Lua -> text, as `lash start K --json` and `--input` read it.
 *
 * Properties: decoding any text returns true, value or nil, msg, "EINVAL"
 * (never raises, crashes or leaks); a decoded value encodes; encoding is
 * stable after one round (encode(decode(t1)) == t1 for t1 = encode(v)). */
#include "fuzz.h"

#include "lua_state.h"

static const char src[] =
    "local s = ...\n"
    "local ok, r, v, code = pcall(core.json_decode, s)\n"
    "if not ok then error('json_decode raised: ' .. tostring(r)) end\n"
    "if r == nil then\n"
    "  assert(code == 'EINVAL' and type(v) == 'string', 'code ' .. "
    "tostring(code))\n"
    "  return\n"
    "end\n"
    "local ok1, t1 = pcall(core.json_encode, v)\n"
    "assert(ok1, 'a decoded value does not encode: ' .. tostring(t1))\n"
    "local r2, v2 = core.json_decode(t1)\n"
    "assert(r2, 'its encoding does not decode: ' .. tostring(v2))\n"
    "local t2 = core.json_encode(v2)\n"
    "assert(t1 == t2, 'not stable: ' .. t1 .. ' ~= ' .. t2)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_run("fuzz_json", src, data, size);
  return 0;
}
