-- spec/body_spec.lua - what a process body can do (DESIGN §3, §5, issue 3):
-- return, raise, emit, await signals/events/children, sleep, cancellation,
-- and the event sink.
local h = require "spec.helpers"

local function await(eng, id, ms)
  return eng:await(id, { timeout_ms = ms or 5000 })
end

describe("process bodies", function()
  after_each(h.cleanup)

  it("see ctx.id, ctx.kind, ctx.input, ctx.attempt, ctx.fence", function()
    local eng = h.open()
    local seen
    eng:define("k", function(ctx, input)
      seen = { id = ctx.id, kind = ctx.kind, input = ctx.input, arg = input,
        attempt = ctx.attempt, fence = ctx.fence, cancelled = ctx:cancelled() }
      return true
    end)
    local id = assert(eng:start("k", { a = 1 }, { id = "ctx-1" }))
    assert.are.equal("completed", await(eng, id).status)
    assert.are.equal("ctx-1", seen.id)
    assert.are.equal("k", seen.kind)
    assert.are.same({ a = 1 }, seen.input)
    assert.are.same({ a = 1 }, seen.arg)
    assert.are.equal(1, seen.attempt)
    assert.are.equal("integer", math.type(seen.fence))
    assert.are.equal(eng:get(id).attempt.fence, seen.fence)
    assert.is_false(seen.cancelled)
  end)

  it("of a kind that ends at once complete in the commit that claims them", function()
    local eng = h.open()
    eng:define("quick", function(_, input) return input end)
    -- the first body of a kind runs after its claim commits: it shows how fast it ends
    assert.are.equal("completed", await(eng, assert(eng:start("quick", 1))).status)
    local c0 = eng:stats().commits
    local id = assert(eng:start("quick", 2))
    assert.are.same({ status = "completed", value = 2 }, await(eng, id))
    assert.are.equal(c0 + 1, eng:stats().commits)
    assert.are.equal(1, #h.events_of(eng, id, "process.started"))
    assert.are.equal(1, #h.events_of(eng, id, "process.completed"))
    -- an owner_bound body runs only once its start is durable: two commits
    eng:define("bound", function() return 1 end, { disposition = "owner_bound" })
    assert.are.equal("completed", await(eng, assert(eng:start("bound"))).status)
    c0 = eng:stats().commits
    assert.are.equal("completed", await(eng, assert(eng:start("bound"))).status)
    assert.is_true(eng:stats().commits >= c0 + 2)
  end)

  it("complete the row with their return value", function()
    local eng = h.open()
    eng:define("k", function(_, input) return { sum = input.a + input.b } end)
    local id = assert(eng:start("k", { a = 2, b = 3 }))
    assert.are.same({ status = "completed", value = { sum = 5 } }, await(eng, id))
    local evs = h.events_of(eng, id, "process.completed")
    assert.are.equal(1, #evs)
  end)

  it("fail the row when they raise: message, class, traceback", function()
    local eng = h.open()
    eng:define("k", function(_, input)
      if input == "boom" then error("it went boom") end
      return 1
    end)
    local id = assert(eng:start("k", "boom"))
    local o = await(eng, id)
    assert.are.equal("failed", o.status)
    assert.is_table(o.error)
    assert.is_string(o.error.message)
    assert.is_truthy(o.error.message:find("it went boom", 1, true), o.error.message)
    assert.is_string(o.error.class)
    assert.is_true(#o.error.class > 0)
    assert.is_string(o.error.traceback)
    assert.is_true(#o.error.traceback > 0)
    local r = eng:get(id)
    assert.are.equal("failed", r.status)
    assert.are.same(o, r.outcome)
    assert.are.equal(1, #h.events_of(eng, id, "process.failed"))
  end)

  it("fail the row when they raise a non-string error", function()
    local eng = h.open()
    eng:define("k", function() error({ code = 42 }) end)
    local id = assert(eng:start("k", nil))
    local o = await(eng, id)
    assert.are.equal("failed", o.status)
    assert.is_string(o.error.message)
  end)

  it("emit returns increasing seqs visible in eng:events", function()
    local eng = h.open()
    local seqs = {}
    eng:define("k", function(ctx)
      for i = 1, 5 do seqs[i] = ctx:emit("step", { i = i }) end
      return true
    end)
    local id = assert(eng:start("k", nil))
    await(eng, id)
    local evs = h.events_of(eng, id, "step")
    assert.are.equal(5, #evs)
    for i = 1, 5 do
      assert.are.equal("integer", math.type(seqs[i]))
      if i > 1 then assert.is_true(seqs[i] > seqs[i - 1]) end
      assert.are.equal(seqs[i], evs[i].seq)
      assert.are.same({ i = i }, evs[i].payload)
    end
  end)

  it("emit refuses reserved, non-encodable and oversized payloads, writing nothing", function()
    local eng = h.open(nil, { max_payload = 1024 })
    local res = {}
    eng:define("k", function(ctx)
      local function try(...)
        local ok, a, b, c = pcall(...)
        if not ok then return { raised = tostring(a) } end
        return { r = a, msg = b, code = c }
      end
      res.reserved = try(ctx.emit, ctx, "process.completed", { fake = true })
      res.func = try(ctx.emit, ctx, "bad", print)
      res.big = try(ctx.emit, ctx, "big", string.rep("x", 2000))
      return true
    end)
    local id = assert(eng:start("k", nil))
    assert.are.equal("completed", await(eng, id).status)
    assert.is_nil(res.reserved.r)
    assert.are.equal("EINVAL", res.func.code)
    assert.is_nil(res.func.r)
    assert.are.equal("ETOOBIG", res.big.code)
    assert.is_nil(res.big.r)
    assert.are.equal(1, #h.events_of(eng, id, "process.completed"))
    assert.are.equal(0, #h.events_of(eng, id, "bad"))
    assert.are.equal(0, #h.events_of(eng, id, "big"))
  end)

  it("await_signal gets a signal sent before the body ran", function()
    local eng = h.open()
    eng:define("k", function(ctx) return ctx:await_signal("go", { timeout_ms = 5000 }) end)
    local id = assert(eng:start("k", nil))
    assert(eng:signal(id, "go", "early"))
    assert.are.same({ status = "completed", value = "early" }, await(eng, id))
  end)

  it("await_signal parks the body (status waiting) until the signal arrives", function()
    local eng = h.open()
    eng:define("k", function(ctx) return ctx:await_signal("go", { timeout_ms = 10000 }) end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.park(eng, id))
    local r = eng:get(id)
    assert.are.equal("waiting", r.status)
    assert.is_not_nil(r.wait)
    assert.are.equal(1, #h.events_of(eng, id, "process.waiting"))
    assert(eng:signal(id, "go", { late = true }))
    assert.are.same({ status = "completed", value = { late = true } }, await(eng, id))
    assert.is_nil(eng:get(id).wait)
    assert.is_true(#h.events_of(eng, id, "process.resumed") >= 1)
  end)

  it("await_signal consumes signals one by one, by name", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      local a = ctx:await_signal("n", { timeout_ms = 5000 })
      local b = ctx:await_signal("n", { timeout_ms = 5000 })
      local o = ctx:await_signal("other", { timeout_ms = 5000 })
      local c = ctx:await_signal("n", { timeout_ms = 5000 })
      return { a, b, o, c }
    end)
    local id = assert(eng:start("k", nil))
    assert(eng:signal(id, "n", 1))
    assert(eng:signal(id, "other", "o"))
    assert(eng:signal(id, "n", 2))
    assert.is_truthy(h.park(eng, id))
    assert.are.equal("waiting", eng:get(id).status)
    assert(eng:signal(id, "n", 3))
    assert.are.same({ status = "completed", value = { 1, 2, "o", 3 } }, await(eng, id))
  end)

  it("await_signal times out with nil, msg, ETIMEDOUT", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      local v, msg, code = ctx:await_signal("never", { timeout_ms = 100 })
      return { v = v, msg = msg, code = code }
    end)
    local id = assert(eng:start("k", nil))
    local o = await(eng, id)
    assert.are.equal("completed", o.status)
    assert.is_nil(o.value.v)
    assert.is_string(o.value.msg)
    assert.are.equal("ETIMEDOUT", o.value.code)
  end)

  it("ctx:await_event returns an event of the process itself", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      local ev = ctx:await_event("signal.ping", 0, { timeout_ms = 5000 })
      return { type = ev.type, payload = ev.payload, seq = ev.seq }
    end)
    local id = assert(eng:start("k", nil))
    local seq = assert(eng:signal(id, "ping", "pong"))
    local o = await(eng, id)
    assert.are.same({ type = "signal.ping", payload = "pong", seq = seq }, o.value)
  end)

  it("ctx:sleep parks the body for about that long", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      ctx:sleep(150)
      return "woke"
    end)
    local id = assert(eng:start("k", nil))
    local t0 = h.mono_ms()
    eng:drive()
    assert.is_truthy(h.wait_until(eng, function()
      return eng:get(id).status == "waiting"
    end, 3000))
    assert.are.same({ status = "completed", value = "woke" }, await(eng, id))
    local dt = h.mono_ms() - t0
    assert.is_true(dt >= 140, "slept only " .. dt .. " ms")
    local started = h.events_of(eng, id, "process.started")[1]
    local done = h.events_of(eng, id, "process.completed")[1]
    assert.is_true(done.at - started.at >= 140)
  end)

  it("a parent starts 10 children and awaits them all", function()
    local eng = h.open()
    eng:define("child", function(_, n) return n * 2 end)
    eng:define("parent", function(ctx)
      local ids = {}
      for i = 1, 10 do ids[i] = ctx:start("child", i) end
      local sum, outs = 0, {}
      for i, cid in ipairs(ids) do
        local o = ctx:await(cid, { timeout_ms = 5000 })
        outs[i] = o.status
        sum = sum + o.value
      end
      return { ids = ids, sum = sum, outs = outs }
    end)
    local id = assert(eng:start("parent", nil))
    local o = await(eng, id, 10000)
    assert.are.equal("completed", o.status)
    assert.are.equal(110, o.value.sum)
    local seen = {}
    for i, cid in ipairs(o.value.ids) do
      assert.are.equal("completed", o.value.outs[i])
      assert.is_nil(seen[cid])
      seen[cid] = true
      local r = eng:get(cid)
      assert.are.equal("child", r.kind)
      assert.are.equal(i * 2, r.outcome.value)
    end
  end)

  it("ctx:start with an id is idempotent, ctx:await returns failures as outcomes", function()
    local eng = h.open()
    eng:define("bad", function() error("child broke") end)
    eng:define("parent", function(ctx)
      local a = ctx:start("bad", nil, { id = ctx.id .. "/c" })
      local b = ctx:start("bad", nil, { id = ctx.id .. "/c" })
      local o = ctx:await(a, { timeout_ms = 5000 })
      return { same = (a == b), status = o.status, message = o.error and o.error.message }
    end)
    local id = assert(eng:start("parent", nil, { id = "p" }))
    local o = await(eng, id)
    assert.are.equal("completed", o.status)
    assert.is_true(o.value.same)
    assert.are.equal("failed", o.value.status)
    assert.is_truthy(o.value.message:find("child broke", 1, true))
    assert.are.equal(1, #eng:list { kind = "bad" })
  end)

  it("a parent awaiting its child completes at concurrency 1 (S8.71)", function()
    local eng = h.open(nil, { concurrency = 1 })
    eng:define("leaf", function(ctx, n)
      ctx:sleep(10)
      return n + 1
    end)
    eng:define("mid", function(ctx, n)
      local c = ctx:start("leaf", n)
      return ctx:await(c, { timeout_ms = 5000 }).value + 1
    end)
    eng:define("top", function(ctx, n)
      local c = ctx:start("mid", n)
      return ctx:await(c, { timeout_ms = 5000 }).value + 1
    end)
    local id = assert(eng:start("top", 0))
    assert.are.same({ status = "completed", value = 3 }, await(eng, id, 8000))
  end)

  it("cancel of a pending row ends it cancelled and never runs the body", function()
    local eng = h.open(nil, { eager_start = false })
    local ran = false
    eng:define("k", function() ran = true return 1 end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(eng:cancel(id, "nope"))
    eng:run { until_idle = true }
    assert.is_false(ran)
    assert.are.same({ status = "cancelled", reason = "nope" }, await(eng, id))
    assert.are.equal("cancelled", eng:get(id).status)
    assert.are.equal(0, #h.events_of(eng, id, "process.started"))
  end)

  it("cancel of a parked body ends it cancelled", function()
    local eng = h.open()
    local after_await = false
    eng:define("k", function(ctx)
      ctx:await_signal("go", { timeout_ms = 10000 })
      after_await = true
      return "not cancelled"
    end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.park(eng, id))
    assert.are.equal("waiting", eng:get(id).status)
    assert.is_truthy(eng:cancel(id, "stop"))
    assert.are.same({ status = "cancelled", reason = "stop" }, await(eng, id))
    assert.is_false(after_await)
    assert.are.equal(1, #h.events_of(eng, id, "process.cancelled"))
    assert.are.equal(1, #h.events_of(eng, id, "process.cancel_requested"))
  end)

  it("the parked body's await raises a cancellation error; ctx:cancelled() is true", function()
    local eng = h.open()
    local seen
    eng:define("k", function(ctx)
      local ok, err = pcall(ctx.await_signal, ctx, "go", { timeout_ms = 10000 })
      seen = { ok = ok, err = err, cancelled = ctx:cancelled() }
      error(err, 0)
    end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.park(eng, id))
    assert(eng:cancel(id, "halt"))
    local o = await(eng, id)
    assert.is_table(seen)
    assert.is_false(seen.ok)
    assert.is_not_nil(seen.err)
    assert.is_true(seen.cancelled)
    assert.are.same({ status = "cancelled", reason = "halt" }, o)
  end)

  it("a bare coroutine.yield inside a body fails that process, and only it", function()
    local eng = h.open()
    eng:define("yielder", function()
      coroutine.yield("sneaky")
      return "should not get here"
    end)
    eng:define("fine", function() return "ok" end)
    local bad = assert(eng:start("yielder", nil))
    local good = assert(eng:start("fine", nil))
    local o = await(eng, bad)
    assert.is_table(o, "await of the yielding process did not resolve")
    assert.are.equal("failed", o.status)
    assert.is_string(o.error.message)
    assert.are.same({ status = "completed", value = "ok" }, await(eng, good))
  end)

  it("on_event handlers see every event, in seq order per process (S8.60)", function()
    local eng = h.open()
    local seen = {}
    eng:on_event(function(ev)
      local list = seen[ev.process_id] or {}
      seen[ev.process_id] = list
      list[#list + 1] = { seq = ev.seq, type = ev.type, payload = ev.payload }
    end)
    eng:define("k", function(ctx, n)
      ctx:emit("a", n)
      ctx:sleep(5)
      ctx:emit("b", n)
      return n
    end)
    eng:define("sig", function(ctx) return ctx:await_signal("go", { timeout_ms = 5000 }) end)
    local ids = {}
    for i = 1, 3 do ids[i] = assert(eng:start("k", i)) end
    local s = assert(eng:start("sig", nil))
    ids[#ids + 1] = s
    assert.is_truthy(h.park(eng, s))
    assert(eng:signal(s, "go", "x"))
    for _, id in ipairs(ids) do await(eng, id) end
    assert.is_truthy(h.wait_until(eng, function()
      for _, id in ipairs(ids) do
        local l = seen[id]
        if not l or l[#l].type ~= "process.completed" then return false end
      end
      return true
    end, 3000), "the handler did not see every terminal event")
    for _, id in ipairs(ids) do
      local log = eng:events(id)
      local got = seen[id]
      assert.are.equal(#log, #got, id)
      for i, ev in ipairs(log) do
        assert.are.equal(ev.seq, got[i].seq)
        assert.are.equal(ev.type, got[i].type)
        assert.are.same(ev.payload, got[i].payload)
      end
    end
    local types = {}
    for _, ev in ipairs(seen[s]) do types[#types + 1] = ev.type end
    -- process.wait: the journal's entry of the wait's deadline (in the
    -- commit that shows it waiting)
    assert.are.same({ "process.started", "process.waiting", "process.wait", "signal.go",
      "process.resumed", "process.completed" }, types)
  end)

  it("on_event handlers run after the event is durably written", function()
    local eng = h.open()
    local checks = {}
    eng:on_event(function(ev)
      local stored = eng:events(ev.process_id, ev.seq - 1, 1)
      checks[#checks + 1] = stored and stored[1] and stored[1].seq == ev.seq or false
    end)
    eng:define("k", function(ctx)
      ctx:emit("x", 1)
      return 1
    end)
    local id = assert(eng:start("k", nil))
    await(eng, id)
    assert.is_truthy(h.wait_until(eng, function() return #checks >= 3 end, 3000))
    for i, ok in ipairs(checks) do assert.is_true(ok, "event #" .. i) end
  end)

  it("an on_event handler that raises does not undo or stop anything", function()
    local eng = h.open()
    local calls = 0
    eng:on_event(function()
      calls = calls + 1
      error("handler trouble")
    end)
    eng:define("k", function(ctx)
      ctx:emit("x", 1)
      return "fine"
    end)
    local id = assert(eng:start("k", nil))
    assert.are.same({ status = "completed", value = "fine" }, await(eng, id))
    assert.is_true(calls >= 1)
    assert.are.equal(1, #h.events_of(eng, id, "x"))
  end)
  it("a wait where the body cannot yield raises and leaves nothing behind", function()
    local eng = h.open()
    local err, slept
    eng:define("k", function(ctx)
      -- table.sort's comparator is a C call boundary: no yield possible
      local ok, e = pcall(table.sort, { 3, 1, 2 }, function(a, b)
        ctx:sleep(20)
        return a < b
      end)
      err = not ok and tostring(e)
      local t0 = eng:now()
      ctx:sleep(150)
      slept = eng:now() - t0
      return "after"
    end)
    local id = assert(eng:start("k", nil))
    assert.are.same({ status = "completed", value = "after" }, await(eng, id))
    assert.matches("cannot wait here", err, 1, true)
    -- the refused wait did not fire later and cut the real sleep short
    assert.is_true(slept >= 140, "slept " .. tostring(slept) .. " ms")
    local st = eng:stats()
    assert.are.equal(0, st.bodies_running)
    assert.are.equal(0, st.bodies_parked)
  end)

  it("never runs a body whose cancel request came in the commit that admitted it", function()
    local eng = h.open()
    local ran = 0
    eng:define("k", function()
      ran = ran + 1
      return "ran"
    end)
    eng:batch(function()
      assert(eng:start("k", nil, { id = "x" }))
      assert(eng:cancel("x", "stop"))
    end)
    assert.are.same({ status = "cancelled", reason = "stop" }, await(eng, "x"))
    assert.are.equal(0, ran)
  end)

  it("never runs a body whose cancel request came before its first resume", function()
    local eng = h.open()
    local ran = 0
    eng:define("k", function(ctx)
      ran = ran + 1
      ctx:sleep(10)
      return "ran"
    end)
    local id = assert(eng:start("k", {}))       -- started eagerly, not resumed yet
    assert(eng:cancel(id, "changed my mind"))
    assert.are.same({ status = "cancelled", reason = "changed my mind" }, await(eng, id))
    assert.are.equal(0, ran)
  end)

  it("a bare yield inside eng:batch in a body aborts the batch, fails the body", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      eng:batch(function()
        eng:append(ctx.id, "x")
        coroutine.yield()
      end)
      return 1
    end)
    local id = assert(eng:start("k", nil))
    eng:run { until_idle = true }
    assert.are.equal("failed", eng:get(id).status)
    assert.are.equal(0, #h.events_of(eng, id, "x")) -- the batch was aborted
    local id2 = assert(eng:start("k2-undefined", nil)) -- the engine writes again
    assert.are.equal("pending", eng:get(id2).status)
  end)
end)
