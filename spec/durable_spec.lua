-- spec/durable_spec.lua - durable execution (issue 9): journaled commands
-- and their replay. A body runs in a worker OS process (spec/workers/
-- durable.lua, leases of 600 ms) that is killed with SIGKILL mid-body; this
-- process then defines the very same kinds (spec/workers/durable_kinds.lua)
-- and re-runs the row (owner liveness takes it over at once on LMDB, the
-- short TTL on PostgreSQL). The re-run replays the journal: steps are not
-- run again, values come back as journaled, children are not started again,
-- sleeps and deadlines keep their first wake time, signals are consumed
-- again in the same order, and a body that changed fails ENONDETERMINISM.
-- Every side effect goes to a ledger file ("<owner> <what> <id> ...").
local h = require "spec.helpers"
local K = require "spec.workers.durable_kinds"

local TTL = 600

-- A store, a ledger and this process's engine, which starts the rows but
-- defines no kind yet (so the worker runs them).
local function setup()
  local dir = h.store_path()
  local ledger = h.tmpdir() .. "/ledger"
  local eng = h.open(dir, { owner = "spec", lease_ttl_ms = TTL, renew_ms = TTL // 3 })
  return dir, ledger, eng
end

-- Starts a worker OS process and waits until it defined its kinds.
local function spawn(dir, ledger, owner) return K.spawn(dir, ledger, owner, TTL) end
local kill = K.kill

-- Polls (no loop of this engine) until fn() holds; fails naming what.
local function poll(what, fn, ms, ledger)
  local ok = h.poll(fn, ms or 10000, 10)
  assert(ok, "timed out waiting for " .. what .. "; ledger:\n" .. tostring(h.read_file(ledger))
    .. "\nworker log:\n" .. tostring(ledger and h.read_file(ledger .. ".log")))
  return ok
end

-- The events of id of the given type.
local function of_type(eng, id, etype)
  return h.events_of(eng, id, etype)
end

-- This engine defines the kinds (the re-run's version) and drives until id
-- is terminal; returns its record.
local function rerun(eng, ledger, id, variant, ms)
  K.define(eng, ledger, "rescuer", variant)
  local done = h.wait_until(eng, function() return h.is_terminal(eng, id) end, ms or 15000,
    { drive = true })
  assert(done, id .. " did not end after the re-run: " .. tostring(h.status(eng, id))
    .. "; ledger:\n" .. tostring(h.read_file(ledger)))
  return eng:get(id)
end

-- Runs the worker until ready(), kills it, returns.
local function crash_when(dir, ledger, what, ready)
  local pid = spawn(dir, ledger, "victim")
  poll(what, ready, 10000, ledger)
  kill(pid)
end

-- ready() for crash_when: the ledger has a line `what` of row id and the row
-- is parked (so whatever the body journaled before its wait is committed).
local function parked_after(eng, ledger, what, id)
  return function()
    return #K.find(ledger, what, id) == 1 and h.status(eng, id) == "waiting"
  end
end

describe("durable execution", function()
  after_each(h.cleanup)

  it("a step's function runs once across a re-run; the re-run gets its journaled value",
    function()
      local dir, ledger, eng = setup()
      local id = assert(eng:start("steps", nil, { id = "st-1" }))
      crash_when(dir, ledger, "the steps", parked_after(eng, ledger, "parked", id))
      local first = K.find(ledger, "parked", id)[1]
      assert(eng:signal(id, "go", true))
      local r = rerun(eng, ledger, id)
      assert.are.equal("completed", r.status, h.read_file(ledger))
      assert.are.equal(1, #K.find(ledger, "a", id), "step a ran again")
      assert.are.equal(1, #K.find(ledger, "b", id), "step b ran again")
      assert.are.equal(2, #K.find(ledger, "run", id), "the body ran twice (a re-run)")
      -- the value computed in the first run (a random number) came back
      assert.are.equal(tonumber(first[4]), r.outcome.value.a.r)
      assert.are.equal(tonumber(first[5]), r.outcome.value.b)
      assert.are.same({ n = 1, r = tonumber(first[4]) }, r.outcome.value.a)
      -- journaled once each, with the keys of their ordinals
      local steps = of_type(eng, id, "process.step")
      assert.are.equal(2, #steps)
      assert.are.equal("cmd:1", steps[1].key)
      assert.are.equal("a", steps[1].payload.name)
      assert.are.equal("cmd:2", steps[2].key)
      assert.are.equal("b", steps[2].payload.name)
    end)

  it("a step that raised re-raises the same error on a re-run without running again", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("raiser", nil, { id = "rs-1" }))
    crash_when(dir, ledger, "the raises", parked_after(eng, ledger, "raised", id))
    assert(eng:signal(id, "go", true))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    assert.are.equal(1, #K.find(ledger, "boom", id), "the raising step ran again")
    assert.are.equal(1, #K.find(ledger, "plain", id), "the raising step ran again")
    local lines = K.find(ledger, "raised", id)
    assert.are.equal(2, #lines)
    assert.are.same(lines[1][4], lines[2][4])
    -- a table error comes back as an equal table, a string as the same string
    assert.are.same({ code = "card_declined", n = 7, s = "plain words" }, r.outcome.value)
    local steps = of_type(eng, id, "process.step")
    assert.are.equal(2, #steps)
    assert.are.equal("boom", steps[1].payload.name)
    assert.are.equal("card_declined", steps[1].payload.error.code)
    assert.is_nil(steps[1].payload.value)
  end)

  it("opts.retry retries a raising step with backoff; only the final value is journaled",
    function()
      local eng = h.open(nil)
      local calls = 0
      eng:define("flaky", function(ctx)
        return ctx:step("try", function()
          calls = calls + 1
          if calls < 3 then error("not yet " .. calls) end
          return "done after " .. calls
        end, { retry = { max_attempts = 3, initial_ms = 10, factor = 2, max_ms = 100 } })
      end)
      local id = assert(eng:start("flaky", nil, { id = "fl-1" }))
      local out = eng:await(id, { timeout_ms = 5000 })
      assert.are.equal("completed", out.status, tostring(out.error and out.error.message))
      assert.are.equal("done after 3", out.value)
      assert.are.equal(3, calls)
      local steps = of_type(eng, id, "process.step")
      assert.are.equal(1, #steps)
      assert.are.equal("done after 3", steps[1].payload.value)
    end)

  it("now, random and uuid return their journaled values on a re-run", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("values", nil, { id = "va-1" }))
    crash_when(dir, ledger, "the values", parked_after(eng, ledger, "values", id))
    assert(eng:signal(id, "go", true))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    local lines = K.find(ledger, "values", id)
    assert.are.equal(2, #lines, "the body ran twice")
    assert.are.equal("victim", lines[1][1])
    for i = 4, 7 do
      assert.are.equal(lines[1][i], lines[2][i], "value " .. (i - 3) .. " differs on the re-run")
    end
    local v = r.outcome.value
    assert.are.equal("integer", math.type(v.now))
    assert.is_truthy(math.abs(v.now - h.now_ms()) < 60000)
    assert.is_truthy(v.r >= 0 and v.r < 1)
    assert.is_truthy(v.die >= 1 and v.die <= 6 and math.type(v.die) == "integer")
    assert.is_truthy(v.uuid:match(
      "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"),
      "not a v4 uuid: " .. v.uuid)
    local vals = of_type(eng, id, "process.value")
    assert.are.equal(4, #vals)
    assert.are.same({ "cmd:1", "cmd:2", "cmd:3", "cmd:4" },
      { vals[1].key, vals[2].key, vals[3].key, vals[4].key })
  end)

  it("ctx:start: children <parent>/<n> or opts.id, the parent recorded, none started again",
    function()
      local dir, ledger, eng = setup()
      local id = assert(eng:start("family", nil, { id = "fa-1" }))
      crash_when(dir, ledger, "the children", function()
        return parked_after(eng, ledger, "children", id)() and h.is_terminal(eng, "fa-1/1")
          and h.is_terminal(eng, "fa-1-named")
      end)
      local line = K.find(ledger, "children", id)[1]
      assert.are.equal("fa-1/1", line[4])
      assert.are.equal("fa-1-named", line[5])
      assert(eng:signal(id, "go", true))
      local r = rerun(eng, ledger, id)
      assert.are.equal("completed", r.status)
      assert.are.same({ c1 = "fa-1/1", c2 = "fa-1-named", v1 = 10, v2 = 20 }, r.outcome.value)
      local leaves = eng:list { kind = "leaf" }
      assert.are.equal(2, #leaves, "children were started again")
      for _, c in ipairs(leaves) do assert.are.equal(id, c.parent) end
      assert.are.equal(id, eng:get("fa-1/1").parent)
      assert.are.equal(id, eng:get("fa-1-named").parent)
      assert.is_nil(eng:get(id).parent)
      local kids = of_type(eng, id, "process.child")
      assert.are.equal(2, #kids)
      assert.are.equal("fa-1/1", kids[1].payload.id)
      assert.are.equal("leaf", kids[1].payload.kind)
      assert.are.equal("cmd:1", kids[1].key)
      assert.are.equal("cmd:2", kids[2].key)
    end)

  it("ctx:emit replays to the same seq and writes the event once", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("emitter", nil, { id = "em-1" }))
    crash_when(dir, ledger, "the emits", parked_after(eng, ledger, "emitted", id))
    local first = K.find(ledger, "emitted", id)[1]
    assert(eng:signal(id, "go", true))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    local lines = K.find(ledger, "emitted", id)
    assert.are.equal(2, #lines)
    assert.are.same({ first[4], first[5] }, { lines[2][4], lines[2][5] })
    assert.are.same({ s1 = tonumber(first[4]), s2 = tonumber(first[5]) }, r.outcome.value)
    local e1, e2 = of_type(eng, id, "e1"), of_type(eng, id, "e2")
    assert.are.equal(1, #e1)
    assert.are.equal(1, #e2)
    assert.are.equal(tonumber(first[4]), e1[1].seq)
    assert.are.equal("cmd:1", e1[1].key)
    assert.are.equal("cmd:2", e2[1].key)
  end)

  it("a sleep after a crash waits only the rest: it ends at its journaled wake_at", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("sleeper", { ms = 3000 }, { id = "sl-1" }))
    crash_when(dir, ledger, "the sleep journaled", function()
      return #of_type(eng, id, "process.sleep") == 1
    end)
    local sleep = of_type(eng, id, "process.sleep")[1]
    local wake_at = sleep.payload.wake_at
    assert.are.equal("integer", math.type(wake_at))
    assert.is_truthy(wake_at >= sleep.at + 2900 and wake_at <= sleep.at + 3100,
      "wake_at " .. wake_at .. " is not the sleep's start + 3000 ms (" .. sleep.at .. ")")
    -- crash a second into the sleep: a sleep started over would end 1 s late
    h.sleep_ms(math.max(0, sleep.at + 1000 - h.now_ms()))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    local done = of_type(eng, id, "process.completed")[1]
    assert.is_truthy(done.at >= wake_at - 2, "woke before wake_at")
    assert.is_truthy(done.at < wake_at + 600,
      ("the sleep started over: completed %d ms after wake_at"):format(done.at - wake_at))
    assert.are.equal(1, #of_type(eng, id, "process.sleep"), "the re-run journaled another sleep")
  end)

  it("a re-run whose wake_at has passed returns from the sleep at once", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("sleeper", { ms = 1500 }, { id = "sl-2" }))
    crash_when(dir, ledger, "the sleep journaled", function()
      return #of_type(eng, id, "process.sleep") == 1
    end)
    local wake_at = of_type(eng, id, "process.sleep")[1].payload.wake_at
    h.sleep_ms(math.max(0, wake_at + 200 - h.now_ms()))
    local t0 = h.now_ms()
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    local done = of_type(eng, id, "process.completed")[1]
    assert.is_truthy(done.at - t0 < 700,
      ("the passed sleep waited again: %d ms after the re-run began"):format(done.at - t0))
    assert.are.equal(2, #K.find(ledger, "run", id))
  end)

  it("a wait's deadline survives a crash: the re-run times out at the first deadline", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("deadline", { ms = 3000 }, { id = "dl-1" }))
    crash_when(dir, ledger, "the wait journaled", function()
      return #of_type(eng, id, "process.wait") == 1
    end)
    local wait = of_type(eng, id, "process.wait")[1]
    local deadline = wait.payload.deadline
    assert.is_truthy(deadline >= wait.at + 2900 and deadline <= wait.at + 3100)
    h.sleep_ms(math.max(0, wait.at + 1000 - h.now_ms()))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    assert.are.same({ code = "ETIMEDOUT" }, r.outcome.value)
    local tos = of_type(eng, id, "process.timeout")
    assert.are.equal(1, #tos)
    assert.are.equal("cmd:1.timeout", tos[1].key)
    assert.is_truthy(tos[1].at >= deadline - 2, "timed out before the deadline")
    assert.is_truthy(tos[1].at < deadline + 600,
      ("the deadline started over: timed out %d ms after it"):format(tos[1].at - deadline))
    assert.are.equal(1, #of_type(eng, id, "process.wait"))
  end)

  it("a wait that timed out times out again at once on a re-run, though the signal came since",
    function()
      local dir, ledger, eng = setup()
      local id = assert(eng:start("timedout", nil, { id = "to-1" }))
      crash_when(dir, ledger, "the timeout", parked_after(eng, ledger, "first", id))
      assert(eng:signal(id, "go", "late"))
      assert(eng:signal(id, "hold", true))
      local r = rerun(eng, ledger, id)
      assert.are.equal("completed", r.status)
      assert.are.same({ code = "ETIMEDOUT" }, r.outcome.value)
      local lines = K.find(ledger, "first", id)
      assert.are.equal(2, #lines)
      assert.are.same({ "nil", "ETIMEDOUT" }, { lines[2][4], lines[2][5] })
      assert.are.equal(1, #of_type(eng, id, "process.timeout"))
    end)

  it("signals consumed before the crash are consumed again in the same order", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("signals", nil, { id = "sg-1" }))
    local pid = spawn(dir, ledger, "victim")
    poll("the early wait to time out", function() return #K.find(ledger, "early", id) == 1 end,
      10000, ledger)
    assert(eng:signal(id, "s", 1))
    assert(eng:signal(id, "s", 2))
    poll("the two signals", function() return #K.find(ledger, "got", id) == 1 end, 10000, ledger)
    kill(pid)
    assert(eng:signal(id, "s", 3))
    assert(eng:signal(id, "hold", true))
    local r = rerun(eng, ledger, id)
    assert.are.equal("completed", r.status)
    -- the early wait timed out again (journaled), so 1 and 2 went where they went before
    assert.are.same({ a = 1, b = 2, c = 3 }, r.outcome.value)
    local got = K.find(ledger, "got", id)
    assert.are.equal(2, #got)
    assert.are.same({ "1", "2" }, { got[2][4], got[2][5] })
  end)

  it("a body changed between runs fails ENONDETERMINISM naming the ordinal; nothing else " ..
    "is written", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("nondet", nil, { id = "nd-1" }))
    crash_when(dir, ledger, "the charge", parked_after(eng, ledger, "parked", id))
    local before = #assert(eng:events(id))
    local r = rerun(eng, ledger, id, "v2-type")
    assert.are.equal("failed", r.status)
    assert.are.equal("ENONDETERMINISM", r.outcome.error.code)
    assert.are.equal("nondeterminism", r.outcome.error.class)
    local msg = r.outcome.error.message
    assert.is_truthy(msg:find("command 2", 1, true), msg)
    assert.is_truthy(msg:find("charge", 1, true), msg)
    assert.is_truthy(msg:find("sleep", 1, true), msg)
    assert.is_truthy(msg:find(id, 1, true), msg)
    local after = {}
    for _, ev in ipairs(assert(eng:events(id, before))) do after[#after + 1] = ev.type end
    for _, t in ipairs(after) do
      assert.is_truthy(t == "process.started" or t == "process.failed",
        "the failing re-run wrote " .. t .. " (" .. table.concat(after, ", ") .. ")")
    end
    assert.are.equal(1, #of_type(eng, id, "process.failed"))
    assert.are.equal(0, #K.find(ledger, "after", id))
    assert.are.equal(1, #K.find(ledger, "charge", id))
  end)

  it("a pcall around the mismatching command does not catch ENONDETERMINISM", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("nondet", nil, { id = "nd-2" }))
    crash_when(dir, ledger, "the charge", parked_after(eng, ledger, "parked", id))
    local r = rerun(eng, ledger, id, "v2-name")
    assert.are.equal("failed", r.status)
    assert.are.equal("ENONDETERMINISM", r.outcome.error.code)
    local msg = r.outcome.error.message
    assert.is_truthy(msg:find("command 2", 1, true), msg)
    assert.is_truthy(msg:find("charge", 1, true) and msg:find("refund", 1, true), msg)
    assert.are.equal(0, #K.find(ledger, "refund", id), "the new step's function ran")
    -- plain Lua after the pcall may run, but nothing it asks of ctx is written
    assert.are.equal(0, #of_type(eng, id, "after"), "an emit after the mismatch was written")
    assert.are.equal(1, #of_type(eng, id, "process.step"))
    assert.are.equal(1, #of_type(eng, id, "process.failed"))
  end)

  it("a cancel request before the body's first resume ends the row cancelled; the body " ..
    "never ran", function()
    local ledger = h.tmpdir() .. "/ledger"
    local eng = h.open(nil)
    K.define(eng, ledger, "spec")
    -- eager start: claimed and started in the commit that registers it
    local id = assert(eng:start("counted", nil, { id = "cn-1" }))
    assert(eng:cancel(id, "changed my mind"))
    -- and in one batch with its start
    local id2 = eng:batch(function()
      local i = assert(eng:start("counted", nil, { id = "cn-2" }))
      assert(eng:cancel(i, "at once"))
      return i
    end)
    assert.is_truthy(h.wait_until(eng, function()
      return h.is_terminal(eng, id) and h.is_terminal(eng, id2)
    end, 5000, { drive = true }))
    h.run_for(eng, 100)
    for _, i in ipairs({ id, id2 }) do
      local r = eng:get(i)
      assert.are.equal("cancelled", r.status, i .. " ended " .. r.status)
    end
    assert.are.same({}, K.find(ledger, "ran"), "a body ran after its cancel request")
  end)

  it("examples/order_crash.lua: the order workflow survives kill -9 of its worker, each " ..
    "step once", function()
    local out = h.tmpdir() .. "/out"
    local cmd = ("cd %s && env LUA_PATH=%s LUA_CPATH=%s timeout 60 lua5.4 %s >%s 2>&1 </dev/null")
      :format(h.q(h.root), h.q(package.path), h.q(package.cpath),
        h.q("examples/order_crash.lua"), h.q(out))
    local ok = os.execute(cmd)
    local text = h.read_file(out) or ""
    assert.is_true(ok, text)
    assert.is_truthy(text:find("ok: each step ran once across the crash", 1, true), text)
    assert.is_truthy(text:find("order-1: completed delivered", 1, true), text)
    assert.is_truthy(text:find("order-2: completed refunded", 1, true), text)
  end)

  it("the issue's scenario: three children, a sleep, kill -9 in the sleep: three children, " ..
    "the sleep ends at its first wake_at", function()
    local dir, ledger, eng = setup()
    local id = assert(eng:start("parent6", { ms = 3000 }, { id = "p6" }))
    local w1 = spawn(dir, ledger, "w1")
    poll("the sleep journaled", function() return #of_type(eng, id, "process.sleep") == 1 end,
      10000, ledger)
    local sleep = of_type(eng, id, "process.sleep")[1]
    local wake_at = sleep.payload.wake_at
    h.sleep_ms(math.max(0, sleep.at + 1000 - h.now_ms()))
    kill(w1)
    local w2 = spawn(dir, ledger, "w2")
    poll("the parent to end", function() return h.is_terminal(eng, id) end, 15000, ledger)
    local r = eng:get(id)
    assert.are.equal("completed", r.status, h.read_file(ledger))
    assert.are.same({ kids = { "p6/1", "p6/2", "p6/3" }, outs = { 2, 4, 6 } }, r.outcome.value)
    local kids = eng:list { kind = "child6" }
    assert.are.equal(3, #kids, "children: " .. #kids)
    for i, c in ipairs(kids) do
      assert.are.equal("p6/" .. i, c.id)
      assert.are.equal(id, c.parent)
      assert.are.equal("completed", c.status)
    end
    assert.are.equal(3, #of_type(eng, id, "process.child"))
    assert.are.equal(1, #of_type(eng, id, "process.sleep"))
    -- w2 re-ran the body (its second start), not the children's registrations
    local started = of_type(eng, id, "process.started")
    assert.are.equal(2, #started)
    assert.are.equal("w2", started[2].payload.owner)
    local done = of_type(eng, id, "process.completed")[1]
    assert.is_truthy(done.at >= wake_at - 2, "woke before wake_at")
    assert.is_truthy(done.at < wake_at + 700,
      ("the sleep started over: completed %d ms after the first wake_at"):format(done.at - wake_at))
    kill(w2)
    local code, out, err = h.cli(dir, "check")
    assert.are.equal(0, code, out .. err)
  end)
end)
