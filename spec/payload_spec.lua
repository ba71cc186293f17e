-- spec/payload_spec.lua - payload round trips (DESIGN §2 "Payloads"):
-- start input -> body -> return value -> await, and through emit/events and
-- signals. Integers stay integers, floats stay floats (math.type), strings
-- are bytes, array-like tables are arrays, other tables maps, lash.null
-- stands for a nil inside a table.
local lash = require "lash"
local h = require "spec.helpers"

-- A canonical description of a value: type, subtype and exact contents, with
-- floats in hex (so -0.0 and 0.0 differ) and table keys sorted.
local function sig(v, depth)
  depth = depth or 0
  assert(depth < 100, "too deep")
  if v == lash.null then return "null" end
  local t = type(v)
  if t == "nil" then return "nil" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return "int:" .. string.format("%d", v) end
    return "float:" .. string.format("%a", v)
  end
  if t == "string" then
    if #v <= 300 then return "str:" .. string.format("%q", v) end
    local sum = 0
    for i = 1, #v do sum = (sum * 31 + v:byte(i)) % 4294967311 end
    return string.format("str#%d:%d", #v, sum)
  end
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    local descs = {}
    for i, k in ipairs(keys) do descs[i] = { sig(k, depth + 1), k } end
    table.sort(descs, function(a, b) return a[1] < b[1] end)
    local parts = {}
    for i, d in ipairs(descs) do
      parts[i] = d[1] .. "=" .. sig(v[d[2]], depth + 1)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return t
end

local function nest(n)
  local root = {}
  local cur = root
  for _ = 2, n do
    local nxt = {}
    cur[1] = nxt
    cur = nxt
  end
  return root
end

local function bytes(n)
  local t = {}
  local x = 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  return table.concat(t)
end

local all_bytes = {}
for i = 0, 255 do all_bytes[#all_bytes + 1] = string.char(i) end
all_bytes = table.concat(all_bytes)

local CASES = {
  { "nil", nil },
  { "true", true },
  { "false", false },
  { "zero", 0 },
  { "one", 1 },
  { "minus one", -1 },
  { "127", 127 }, { "128", 128 }, { "255", 255 }, { "256", 256 },
  { "-32", -32 }, { "-33", -33 }, { "-129", -129 },
  { "65535", 65535 }, { "65536", 65536 },
  { "2^31-1", 2147483647 }, { "-2^31", -2147483648 }, { "2^32", 4294967296 },
  { "maxinteger", math.maxinteger },
  { "mininteger", math.mininteger },
  { "-maxinteger", -math.maxinteger },
  { "0.0", 0.0 },
  { "-0.0", -0.0 },
  { "1.0", 1.0 },
  { "1.5", 1.5 },
  { "0.1", 0.1 },
  { "-2.5", -2.5 },
  { "2^53", 2 ^ 53 },
  { "1e308", 1e308 },
  { "denormal", 5e-324 },
  { "huge", math.huge },
  { "-huge", -math.huge },
  { "pi", math.pi },
  { "empty string", "" },
  { "string", "hello, world" },
  { "NUL bytes", "a\0b\0\0c" },
  { "only NUL", "\0" },
  { "all bytes", all_bytes },
  { "utf-8", "h\u{e9}llo \u{1F600}" },
  { "long string", bytes(200000) },
  { "empty table", {} },
  { "array", { 1, 2, 3 } },
  { "array of mixed", { 1, 2.5, "three", true, false } },
  { "map", { a = 1, b = "two", c = 3.0 } },
  { "map with false", { flag = false } },
  { "nested", { list = { { id = 1, tags = { "x", "y" } }, { id = 2, tags = {} } },
    meta = { n = 2, ratio = 0.5, deep = { deeper = { deepest = "yes" } } } } },
  { "null in array", { 1, lash.null, 3 } },
  { "null at array end", { 1, 2, lash.null } },
  { "null in map", { a = lash.null, b = 1 } },
  { "mixed keys", { 1, 2, x = "y" } },
  { "sparse", { [1] = "a", [3] = "c" } },
  { "integer keys", { [10] = "ten", [-1] = "minus", [0] = "zero" } },
  { "float key", { [1.5] = "x" } },
  { "string key with NUL", { ["k\0ey"] = 1 } },
  { "big integers in tables", { math.maxinteger, math.mininteger, 2 ^ 53, -0.0 } },
  { "depth 60", nest(60) },
}

local function case(name)
  for _, c in ipairs(CASES) do
    if c[1] == name then return c end
  end
  error("no case " .. name)
end

describe("payload round trips", function()
  after_each(h.cleanup)

  it("start input -> body -> return value -> await keeps value and subtype", function()
    local eng = h.open()
    eng:define("echo", function(ctx, input)
      return { v = input, sig = sig(input), ctx_sig = sig(ctx.input) }
    end)
    local ids = {}
    for i, c in ipairs(CASES) do
      ids[i] = assert(eng:start("echo", c[2], { id = string.format("echo-%03d", i) }))
    end
    eng:run { until_idle = true }
    for i, c in ipairs(CASES) do
      local want = sig(c[2])
      local o = eng:await(ids[i], { timeout_ms = 5000 })
      assert.is_table(o, c[1])
      assert.are.equal("completed", o.status, c[1])
      assert.are.equal(want, o.value.sig, c[1] .. ": value seen by the body")
      assert.are.equal(want, o.value.ctx_sig, c[1] .. ": ctx.input")
      assert.are.equal(want, sig(o.value.v), c[1] .. ": value returned through await")
      local r = eng:get(ids[i])
      assert.are.equal(want, sig(r.input), c[1] .. ": record input")
      assert.are.equal(want, sig(r.outcome.value.v), c[1] .. ": record outcome")
    end
  end)

  it("keeps integer and float subtypes apart", function()
    local eng = h.open()
    eng:define("types", function(_, input)
      local out = {}
      for i, v in ipairs(input) do out[i] = math.type(v) end
      return { types = out, values = input }
    end)
    local input = { 1, 1.0, 0, 0.0, -0.0, 2 ^ 53, math.maxinteger, 3, 3.0, -7, -7.0 }
    local id = assert(eng:start("types", input))
    local o = eng:await(id, { timeout_ms = 5000 })
    local want = {}
    for i, v in ipairs(input) do want[i] = math.type(v) end
    assert.are.same(want, o.value.types)
    for i, v in ipairs(input) do
      assert.are.equal(math.type(v), math.type(o.value.values[i]), "element " .. i)
      assert.are.equal(v, o.value.values[i], "element " .. i)
    end
    assert.are.equal(-math.huge, 1 / o.value.values[5], "-0.0 keeps its sign")
  end)

  it("returning nothing completes with a nil value", function()
    local eng = h.open()
    eng:define("nothing", function() end)
    local id = assert(eng:start("nothing", nil))
    local o = eng:await(id, { timeout_ms = 5000 })
    assert.are.equal("completed", o.status)
    assert.is_nil(o.value)
  end)

  it("lash.null decodes to lash.null inside tables", function()
    local eng = h.open()
    eng:define("echo", function(_, input) return input end)
    local id = assert(eng:start("echo", { a = lash.null, list = { lash.null, 2 } }))
    local o = eng:await(id, { timeout_ms = 5000 })
    assert.are.equal(lash.null, o.value.a)
    assert.are.equal(lash.null, o.value.list[1])
    assert.are.equal(2, o.value.list[2])
    assert.is_not_nil(lash.null)
  end)

  it("round trips through ctx:emit and eng:events", function()
    local eng = h.open()
    local picks = { "true", "false", "one", "minus one", "maxinteger", "mininteger", "-0.0",
      "1.0", "0.1", "2^53", "NUL bytes", "all bytes", "long string", "map with false",
      "nested", "null in array", "null in map", "sparse", "float key", "depth 60" }
    eng:define("emitter", function(ctx)
      for i, name in ipairs(picks) do
        assert(ctx:emit("p" .. i, case(name)[2]))
      end
      return true
    end)
    local id = assert(eng:start("emitter", nil))
    assert.are.equal("completed", eng:await(id, { timeout_ms = 5000 }).status)
    for i, name in ipairs(picks) do
      local evs = h.events_of(eng, id, "p" .. i)
      assert.are.equal(1, #evs, name)
      assert.are.equal(sig(case(name)[2]), sig(evs[1].payload), name)
    end
  end)

  it("round trips through eng:signal and ctx:await_signal", function()
    local eng = h.open()
    local picks = { "true", "false", "one", "maxinteger", "0.0", "-0.0", "0.1", "NUL bytes",
      "long string", "nested", "null in array", "mixed keys", "sparse", "float key" }
    eng:define("listener", function(ctx)
      local got = {}
      for k in ipairs(picks) do
        got[k] = sig((ctx:await_signal("s" .. k, { timeout_ms = 5000 })))
      end
      return got
    end)
    local id = assert(eng:start("listener", nil))
    for k, name in ipairs(picks) do
      assert(eng:signal(id, "s" .. k, case(name)[2]))
    end
    local o = eng:await(id, { timeout_ms = 5000 })
    assert.are.equal("completed", o.status)
    for k, name in ipairs(picks) do
      assert.are.equal(sig(case(name)[2]), o.value[k], name)
      local ev = h.events_of(eng, id, "signal.s" .. k)[1]
      assert.are.equal(sig(case(name)[2]), sig(ev.payload), name)
    end
  end)

  it("keeps stored payloads across reopen", function()
    local dir = h.store_path()
    local eng = assert(lash.open(dir, { durability = "full" }))
    local v = { 1, 2.0, "x\0y", { k = lash.null }, math.mininteger, -0.0 }
    local id = assert(eng:start("later", v))
    eng:close()
    local eng2 = h.open(dir)
    assert.are.equal(sig(v), sig(eng2:get(id).input))
  end)

  it("rejects nesting deeper than 64 with EINVAL", function()
    local eng = h.open()
    local r, msg, code = eng:start("echo", nest(70))
    assert.is_nil(r)
    assert.is_string(msg)
    assert.are.equal("EINVAL", code)
    assert.is_truthy(eng:start("echo", nest(60)))
  end)

  it("refuses to decode a map keyed by a map or an array (lash.encode refuses them)", function()
    -- found by fuzz/fuzz_payload.c (fuzz/corpus/payload/regress-map-key)
    local keyed = { "\x81\x81\xc0\xc0\x01", "\x81\x91\x01\x02", "\x81\x80\x01" }
    for _, raw in ipairs(keyed) do
      local v, msg, code = lash.decode(raw)
      assert.is_nil(v)
      assert.is_string(msg)
      assert.are.equal("EINVAL", code)
    end
    assert.are.same({ [true] = 1, [2] = "x" }, lash.decode("\x82\xc3\x01\x02\xa1x"))
  end)
end)
