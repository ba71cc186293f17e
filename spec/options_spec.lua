-- spec/options_spec.lua - what a user types wrong or reads back: a misspelt
-- option raises naming it and the options that exist (and writes nothing),
-- a timeout names what was awaited, an error raised as a table reads back
-- with its fields.
local h = require "spec.helpers"

describe("unknown options", function()
  after_each(h.cleanup)

  local function raises_unknown(fn, word, names)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    err = tostring(err)
    assert.truthy(err:find('unknown option "' .. word .. '"', 1, true), err)
    assert.truthy(err:find(names, 1, true), err)
    -- the message points at the caller, not at lash's own files
    assert.truthy(err:find("options_spec.lua", 1, true), err)
  end

  it("are refused by every call that takes an option table, naming the known ones", function()
    local eng = h.open()
    local cs = eng:stats().change_seq
    raises_unknown(function() eng:define("k", function() end, { retyr = 3 }) end,
      "retyr", "disposition, max_attempts, timeout_ms")
    raises_unknown(function() eng:start("k", {}, { delya_ms = 5 }) end,
      "delya_ms", "id, disposition, max_attempts, timeout_ms")
    raises_unknown(function() eng:register("k", {}, { delya_ms = 5 }) end,
      "delya_ms", "id, disposition, max_attempts, timeout_ms")
    raises_unknown(function() eng:await("x", { timeout = 5 }) end, "timeout", "timeout_ms")
    raises_unknown(function() eng:await_event("x", "t", 0, { timout_ms = 5 }) end,
      "timout_ms", "timeout_ms")
    raises_unknown(function() eng:list { stats = "failed" } end, "stats", "status, kind")
    raises_unknown(function() eng:prune { before_ms = 1, stauts = "failed" } end,
      "stauts", "before_ms, status")
    raises_unknown(function() eng:run { until_idel = true } end, "until_idel", "until_idle")
    raises_unknown(function()
      eng:complete("x", { status = "completed" }, { authorty = "external" })
    end, "authorty", "authority")
    assert.are.equal(cs, eng:stats().change_seq)
    assert.is_nil(eng:get("k"))
  end)

  it("inside a body too (ctx waits and ctx:start)", function()
    local eng = h.open()
    eng:define("p", function(ctx)
      local ok, err = pcall(ctx.await_signal, ctx, "go", { timeot_ms = 5 })
      local ok2, err2 = pcall(ctx.start, ctx, "child", nil, { idd = "c" })
      return { ok, tostring(err), ok2, tostring(err2) }
    end)
    local out = eng:await(eng:start("p"))
    assert.are.equal("completed", out.status, tostring(out.error and out.error.message))
    assert.is_false(out.value[1])
    assert.truthy(out.value[2]:find('unknown option "timeot_ms"', 1, true))
    assert.is_false(out.value[3])
    assert.truthy(out.value[4]:find('unknown option "idd"', 1, true))
  end)

  it("in a kinds file loaded by eng:load is an error naming the kind", function()
    local eng = h.open()
    local f = h.tmpdir() .. "/kinds.lua"
    h.write_file(f, "return { k = { function() end, { max_attempt = 2 } } }")
    local ok, msg, code = eng:load(f)
    assert.is_nil(ok)
    assert.are.equal("EINVAL", code)
    assert.truthy(msg:find("kind k", 1, true), msg)
    assert.truthy(msg:find('unknown option "max_attempt"', 1, true), msg)
  end)
end)

describe("a timeout", function()
  after_each(h.cleanup)

  it("names what was awaited, not only the id", function()
    local eng = h.open()
    local id = eng:start("nobody", nil, { id = "o-2" })
    local _, msg, code = eng:await(id, { timeout_ms = 10 })
    assert.are.equal("ETIMEDOUT", code)
    assert.are.equal("timed out waiting for the outcome of o-2", msg)
    _, msg = eng:await_event(id, "signal.shipped", 0, { timeout_ms = 10 })
    assert.are.equal("timed out waiting for signal shipped on o-2", msg)
    _, msg = eng:await_event(id, "progress", 0, { timeout_ms = 10 })
    assert.are.equal("timed out waiting for event progress of o-2", msg)
    eng:define("k", function(ctx)
      return { ctx:await_signal("shipped", { timeout_ms = 20 }) }
    end)
    local out = eng:await(eng:start("k", nil, { id = "o-3" }))
    assert.are.equal("timed out waiting for signal shipped on o-3", out.value[2])
  end)
end)

describe("an error raised as a table", function()
  after_each(h.cleanup)

  it("keeps its fields, and its message says what it held", function()
    local eng = h.open()
    eng:define("charge", function()
      error({ code = "card_declined", retry = false, detail = { amount = 5 } })
    end)
    local out = eng:await(eng:start("charge"))
    assert.are.equal("failed", out.status)
    assert.are.equal("card_declined", out.error.code)
    assert.is_false(out.error.retry)
    assert.are.equal(5, out.error.detail.amount)
    assert.are.equal("error", out.error.class)
    assert.truthy(out.error.message:find("code = card_declined", 1, true), out.error.message)
    assert.is_nil(out.error.message:find("table: 0x", 1, true))
  end)

  it("with message and class keeps them as they were", function()
    local eng = h.open()
    eng:define("m", function() error({ message = "boom", class = "payment", id = 7 }) end)
    local out = eng:await(eng:start("m"))
    assert.are.equal("boom", out.error.message)
    assert.are.equal("payment", out.error.class)
    assert.are.equal(7, out.error.id)
  end)
end)
