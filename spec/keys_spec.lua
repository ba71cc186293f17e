-- spec/keys_spec.lua - replay keys on the host side (SEMANTICS 1.4, issue 9
-- item 1): eng:signal / eng:append with opts.key return seq, replayed; an
-- equal repeat writes nothing, another payload is ECONFLICT; eng:events
-- items carry their key; lash signal --key and lash events show them. Runs
-- on LMDB and, with LASH_TEST_TARGET, on PostgreSQL.
local h = require "spec.helpers"
local lash = require "lash"

-- A row that waits for signal "go" (its body never runs: no loop turn).
local function row(eng, id)
  eng:define("k", function(ctx) return ctx:await_signal("go") end)
  return assert(eng:start("k", {}, { id = id }))
end

local function count(eng, id)
  return #assert(eng:events(id))
end

-- Two tables equal as maps whose MessagePack bytes differ (Lua's order of
-- a table's keys depends on how it was built).
local function same_map_other_order()
  for n = 8, 64, 8 do
    local a, b = {}, {}
    for i = 1, n do a["k" .. i] = i end
    for i = n, 1, -1 do b["k" .. i] = i end
    if lash.encode(a) ~= lash.encode(b) then return a, b end
  end
end

describe("replay keys", function()
  after_each(h.cleanup)

  it("a repeated signal with its key returns the first seq and writes nothing", function()
    local eng = h.open()
    local id = row(eng, "s-1")
    local seq, replayed = eng:signal(id, "go", { n = 1 }, { key = "delivery-1" })
    assert.are.equal("integer", math.type(seq))
    assert.is_false(replayed)
    local n, cs = count(eng, id), eng:get(id).change_seq
    local again, replayed2 = eng:signal(id, "go", { n = 1 }, { key = "delivery-1" })
    assert.are.equal(seq, again)
    assert.is_true(replayed2)
    assert.are.equal(n, count(eng, id))
    assert.are.equal(cs, eng:get(id).change_seq)
    -- without a key nothing is deduplicated
    local s1 = eng:signal(id, "go", { n = 1 })
    local s2 = eng:signal(id, "go", { n = 1 })
    assert.are.equal(s1 + 1, s2)
  end)

  it("compares payloads canonically: key order, 1 and 1.0", function()
    local eng = h.open()
    local id = row(eng, "s-2")
    local a, b = same_map_other_order()
    assert.truthy(a, "found no two tables whose encodings differ")
    local seq = assert(eng:signal(id, "go", a, { key = "m" }))
    local again, replayed = eng:signal(id, "go", b, { key = "m" })
    assert.are.equal(seq, again)
    assert.is_true(replayed)
    seq = assert(eng:append(id, "note", { v = 1 }, { key = "n" }))
    again, replayed = eng:append(id, "note", { v = 1.0 }, { key = "n" })
    assert.are.equal(seq, again)
    assert.is_true(replayed)
  end)

  it("the same key with another payload or type is ECONFLICT, writing nothing", function()
    local eng = h.open()
    local id = row(eng, "s-3")
    local seq = assert(eng:signal(id, "go", { n = 1 }, { key = "k1" }))
    local n = count(eng, id)
    h.fails("ECONFLICT", "k1", eng:signal(id, "go", { n = 2 }, { key = "k1" }))
    h.fails("ECONFLICT", "event " .. seq, eng:append(id, "note", { n = 1 }, { key = "k1" }))
    assert.are.equal(n, count(eng, id))
  end)

  it("replays on an ended row; a new key there is ETERMINAL", function()
    local eng = h.open()
    eng:define("k", function(ctx) return ctx:await_signal("go") end)
    local id = assert(eng:start("k", {}, { id = "s-4" }))
    local seq = assert(eng:signal(id, "go", "yes", { key = "once" }))
    assert.are.same({ status = "completed", value = "yes" },
      eng:await(id, { timeout_ms = 5000 }))
    local again, replayed = eng:signal(id, "go", "yes", { key = "once" })
    assert.are.equal(seq, again)
    assert.is_true(replayed)
    h.fails("ETERMINAL", nil, eng:signal(id, "go", "yes", { key = "twice" }))
  end)

  it("refuses reserved and bad keys; misuse raises", function()
    local eng = h.open()
    local id = row(eng, "s-5")
    h.fails("EINVAL", "reserved", eng:signal(id, "go", nil, { key = "process:x" }))
    h.fails("EINVAL", "replay key", eng:signal(id, "go", nil, { key = "" }))
    h.fails("EINVAL", "replay key", eng:append(id, "note", nil, { key = ("k"):rep(200) }))
    h.fails("EINVAL", "journal type", eng:append(id, "process.step", {}, { key = "cmd:1" }))
    h.raises_naming(function() eng:signal(id, "go", nil, { kye = "x" }) end, "kye")
    h.raises_naming(function() eng:signal(id, "go", nil, { key = 7 }) end, "key")
    h.raises_naming(function() eng:append(id, "note", nil, "k") end, "opts")
    assert.are.equal(1, count(eng, id)) -- process.started only
  end)

  it("events carry their keys: stored, derived for lifecycle events, else none", function()
    local eng = h.open()
    local id = row(eng, "s-6")
    eng:signal(id, "go", 1, { key = "sig-1" })
    eng:append(id, "note", 2)
    local by = {}
    for _, ev in ipairs(assert(eng:events(id))) do by[ev.type] = ev end
    assert.are.equal("process:s-6:first-started:attempt:1", by["process.started"].key)
    assert.are.equal("sig-1", by["signal.go"].key)
    assert.is_nil(by["note"].key)
    assert.are.same({ status = "completed", value = 1 }, eng:await(id, { timeout_ms = 5000 }))
    by = {}
    for _, ev in ipairs(assert(eng:events(id))) do by[ev.type] = ev end
    assert.are.equal("process:s-6:terminal:process.completed", by["process.completed"].key)
    assert.are.same({}, eng:check())
  end)

  it("lash signal --key replays; lash events shows the keys", function()
    local eng = h.open()
    local id = row(eng, "s-7")
    local db = eng:path()
    local code, out = h.cli(db, "signal", id, "go", '{"a":1}', "--key", "cli-1")
    assert.are.equal(0, code)
    assert.matches("s%-7: signal.go is event %d+\n", out)
    assert.is_nil(out:find("replayed", 1, true))
    code, out = h.cli(db, "signal", id, "go", '{"a":1}', "--key", "cli-1")
    assert.are.equal(0, code)
    assert.truthy(out:find("(replayed", 1, true), out)
    code, out = h.cli(db, "signal", id, "go", '{"a":1}', "--key", "cli-1", "--json")
    assert.are.equal(0, code)
    assert.truthy(out:find('"replayed":true', 1, true), out)
    local err
    code, out, err = h.cli(db, "signal", id, "go", '{"a":2}', "--key", "cli-1")
    assert.are.equal(1, code)
    assert.truthy((out .. err):find("ECONFLICT", 1, true) or (out .. err):find("cli-1", 1, true))
    code, out = h.cli(db, "events", id)
    assert.are.equal(0, code)
    assert.matches("SEQ%s+TYPE%s+AT%s+PAYLOAD%s+KEY\n", out)
    assert.matches("signal.go[^\n]*cli%-1", out)
    code, out = h.cli(db, "events", id, "--json")
    assert.are.equal(0, code)
    assert.truthy(out:find('"key":"cli-1"', 1, true), out)
    assert.truthy(out:find('"key":"process:s-7:first-started:attempt:1"', 1, true), out)
  end)
end)
