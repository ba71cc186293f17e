-- spec/names_spec.lua - the rules for ids and names (issue 8 item 6, issue
-- 11): an embedded NUL or a control character is refused with EINVAL naming
-- the byte and its position, never cut ("a\0one" and "a\0two" once aliased
-- the row "a"); kinds and event types are [A-Za-z0-9_.:-]+; ids are UTF-8
-- without control characters; lash ps / show print ids escaped.
local h = require "spec.helpers"
local format = require "lash.format"

-- nil, msg, "EINVAL" with msg naming every word of `words`.
local function einval(words, r1, r2, r3)
  h.fails("EINVAL", nil, r1, r2, r3)
  for _, w in ipairs(words) do
    assert(r2:find(w, 1, true), "expected the message to name '" .. w .. "', got: " .. r2)
  end
end

describe("ids and names", function()
  after_each(h.cleanup)

  it("refuses ids with an embedded NUL instead of aliasing the prefix", function()
    local eng = h.open()
    einval({ "NUL", "0x00", "byte 2" }, eng:start("k", 1, { id = "a\0one" }))
    einval({ "NUL", "byte 2" }, eng:start("k", 2, { id = "a\0two" }))
    h.fails("ENOENT", nil, eng:get("a"))
    assert.are.equal(0, #eng:list())
    assert(eng:start("k", 3, { id = "a" }))
    einval({ "NUL" }, eng:get("a\0one"))
    einval({ "NUL" }, eng:events("a\0one"))
    einval({ "NUL" }, eng:cancel("a\0x"))
    einval({ "NUL" }, eng:complete("a\0x", { status = "completed", value = 1 }))
    einval({ "NUL" }, eng:await("a\0x", { timeout_ms = 10 }))
    einval({ "NUL" }, eng:await_event("a\0x", "t", 0, { timeout_ms = 10 }))
    einval({ "NUL", "after" }, eng:list({ after = "a\0" }))
    assert.are.equal(1, #eng:list())
  end)

  it("refuses signal names and event types with a NUL (no signal.go stored)", function()
    local eng = h.open()
    local id = assert(eng:start("k", 1, { id = "s1" }))
    einval({ "NUL", "byte 3" }, eng:signal(id, "go\0evil"))
    einval({ "NUL", "byte 2" }, eng:append(id, "t\0x"))
    einval({ "NUL" }, eng:await_event(id, "signal.go\0x", 0, { timeout_ms = 10 }))
    for _, ev in ipairs(eng:events(id)) do
      assert.is_nil(ev.type:find("^signal%."), "stored " .. ev.type)
    end
  end)

  it("refuses control characters and bytes that are not UTF-8 in ids", function()
    local eng = h.open()
    einval({ "control character", "0x09", "byte 2" }, eng:start("k", 1, { id = "a\tb" }))
    einval({ "0x7f", "byte 1" }, eng:start("k", 1, { id = "\127x" }))
    einval({ "0x1b" }, eng:start("k", 1, { id = "red\27[31m" }))
    einval({ "not UTF-8", "0xff", "byte 3" }, eng:start("k", 1, { id = "ab\255" }))
    einval({ "control character", "0xc2" }, eng:start("k", 1, { id = "x\194\133" })) -- U+0085
    assert.are.equal(0, #eng:list())
    -- the stated rule: any other printable UTF-8 is an id
    for _, id in ipairs({ "has#hash", "order 42", "caf\195\169", "a/b:c", "\226\156\147" }) do
      assert.are.equal(id, assert(eng:start("k", 1, { id = id })))
      assert.are.equal(id, eng:get(id).id)
    end
  end)

  it("holds kinds and event types to [A-Za-z0-9_.:-]+", function()
    local eng = h.open()
    einval({ "kind", "0x20", "byte 4", "[A-Za-z0-9_.:-]" }, eng:start("bad kind!", 1))
    einval({ "kind", "0x00" }, eng:start("k\0x", 1))
    einval({ "kind", "0x21" }, eng:define("bad!", function() end))
    einval({ "kind" }, eng:list({ kind = "a b" }))
    local id = assert(eng:start("billing.invoice:v2-x_1", 1))
    einval({ "event type", "0x20" }, eng:append(id, "step done"))
    einval({ "0x0a" }, eng:signal(id, "go\n"))
    assert(eng:append(id, "step.done:1"))
    assert(eng:signal(id, "go-now_1"))
  end)

  it("refuses a body's event type with a NUL", function()
    local eng = h.open()
    eng:define("emitter", function(ctx)
      local seq, msg, code = ctx:emit("t\0x", 1)
      return { seq = seq, msg = msg, code = code }
    end)
    local id = assert(eng:start("emitter", nil))
    local o = assert(eng:await(id, { timeout_ms = 5000 }))
    assert.are.equal("completed", o.status)
    assert.is_nil(o.value.seq)
    assert.are.equal("EINVAL", o.value.code)
    assert.is_truthy(o.value.msg:find("NUL", 1, true))
  end)

  it("refuses owners and incarnations with a NUL or a control character", function()
    h.raises_naming(function() h.open(nil, { owner = "w\0x" }) end, "NUL")
    h.raises_naming(function() h.open(nil, { owner = "w\tx" }) end, "0x09")
    h.raises_naming(function() h.open(nil, { incarnation = "i\0" }) end, "incarnation")
  end)

  it("prints ids escaped: control and non-UTF-8 bytes as \\xNN", function()
    assert.are.equal("a\\x00one", format.text("a\0one"))
    assert.are.equal("t\\x09z\\x1b", format.text("t\tz\27"))
    assert.are.equal("\\xff\\xfeok", format.text("\255\254ok"))
    assert.are.equal("x\\xc2\\x85", format.text("x\194\133"))
    assert.are.equal("caf\195\169 #1", format.text("caf\195\169 #1"))
    local rec = { id = "a\0b\255", kind = "k", status = "pending", disposition = "rerunnable",
      created_at = 0, updated_at = 0 }
    local ps = format.records({ rec }, 0)
    assert.is_truthy(ps:find("a\\x00b\\xff", 1, true), ps)
    assert.is_nil(ps:find("\0", 1, true))
    local show = format.record(rec, 0)
    assert.is_truthy(show:find("a\\x00b\\xff", 1, true), show)
  end)

  it("lash ps and show print a UTF-8 id as it is", function()
    local dir = h.store_path()
    local eng = h.open(dir)
    assert(eng:start("k", 1, { id = "caf\195\169#1" }))
    eng:close()
    local p = io.popen(h.q(os.getenv("LASH_BIN")) .. " --db " .. h.q(dir) .. " ps 2>&1")
    local out = p:read("a")
    p:close()
    assert.is_truthy(out:find("caf\195\169#1", 1, true), out)
  end)
end)
