-- spec/reliability_stall_spec.lua - bodies that block their worker's loop
-- (issue 8, items 1 and 2), with real OS processes: the heartbeat thread
-- keeps leases through a blocking call, the stall watchdog fails a body
-- that never yields (naming where it was) and leaves one stuck in a C call
-- alone, SIGTERM reaches a worker whose body spins, and body time budgets
-- (timeout_ms per kind and per start) end attempts with ETIMEDOUT.
local h = require "spec.helpers"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

local function lines_of(path, word)
  local out = {}
  for _, l in ipairs(h.lines(path)) do
    if not word or l:find(word, 1, true) then out[#out + 1] = l end
  end
  return out
end

-- Starts spec/workers/stall.lua; returns pid and its stderr log path.
local function stall_worker(db, owner, ttl, renew, stall, seconds)
  local dir = h.tmpdir()
  local log, err = dir .. "/log", dir .. "/err"
  local pid = h.spawn_worker("stall", { db, owner, log, tostring(ttl), tostring(renew),
    tostring(stall), tostring(seconds or 30) }, err)
  assert(h.poll(function() return #lines_of(log, "ready") > 0 end, 10000), "worker not ready")
  return pid, log, err
end

-- An engine of the test process that runs no kind (it only reads and starts).
local function reader(db)
  return h.open(db, { eager_start = false })
end

-- Worker pids of the running test, killed (if still alive) after it.
local pids = {}
local function cleanup()
  for _, pid in ipairs(pids) do
    if h.alive(pid) then h.kill(pid, "KILL") end
  end
  pids = {}
  h.cleanup()
end

local function wait_terminal(eng, id, ms)
  return h.wait_until(eng, function() return h.is_terminal(eng, id) end, ms)
end

describe("a body that blocks its worker", function()
  after_each(cleanup)

  it("keeps its lease through a blocking call: one start, and later rows still run", function()
    local db = h.store_path()
    local eng = reader(db)
    -- Two workers: with the lease lapsing during the 4 s call, the other
    -- one would take the row over and run it a second time.
    local a, loga = stall_worker(db, "wa", 1500, 500, 60000)
    local b, logb = stall_worker(db, "wb", 1500, 500, 60000)
    pids = { a, b }
    assert(eng:start("sleeper", { s = 4 }, { id = "s1" }))
    assert.truthy(wait_terminal(eng, "s1", 20000), "s1 did not end")
    local r = eng:get("s1")
    assert.are.equal("completed", r.status)
    assert.are.equal(1, r.attempt.number)
    assert.are.equal(1, #h.events_of(eng, "s1", "process.started"))
    local starts = #lines_of(loga, "start s1") + #lines_of(logb, "start s1")
    assert.are.equal(1, starts, "the body ran once")
    -- A trivial row started afterwards completes (nothing is stranded).
    assert(eng:start("quick", nil, { id = "q1" }))
    assert.truthy(wait_terminal(eng, "q1", 10000), "q1 did not end")
    assert.are.equal("completed", eng:get("q1").status)
  end)

  it("fails a body that never yields with ETIMEDOUT naming it and where it spun", function()
    local db = h.store_path()
    local eng = reader(db)
    local a, _, err = stall_worker(db, "wspin", 3000, 1000, 500)
    pids = { a }
    assert(eng:start("spin", nil, { id = "spin1" }))
    assert.truthy(wait_terminal(eng, "spin1", 15000), "spin1 did not end")
    local o = eng:await("spin1", { timeout_ms = 1000 })
    assert.are.equal("failed", o.status)
    assert.are.equal("ETIMEDOUT", o.error.class)
    assert.matches("spin1", o.error.message, 1, true)
    assert.matches("kind spin", o.error.message, 1, true)
    assert.matches("stall%.lua:%d+", o.error.message)
    -- The worker goes on: other rows run there afterwards.
    assert(eng:start("quick", nil, { id = "q2" }))
    assert.truthy(wait_terminal(eng, "q2", 10000), "q2 did not end: " ..
      table.concat(h.lines(err), "\n"))
    assert.are.equal("completed", eng:get("q2").status)
    assert.are.equal(1, #h.events_of(eng, "spin1", "process.started"))
  end)

  it("does not fail a body that was stuck in a C call; it logs the stall", function()
    local db = h.store_path()
    local eng = reader(db)
    local a, _, err = stall_worker(db, "wblk", 3000, 1000, 500)
    pids = { a }
    assert(eng:start("sleeper", { s = 2 }, { id = "s2" }))
    assert.truthy(wait_terminal(eng, "s2", 15000), "s2 did not end")
    assert.are.equal("completed", eng:get("s2").status)
    local said = table.concat(lines_of(err, "stalled its worker"), "\n")
    assert.matches("process s2 %(kind sleeper%) stalled its worker for %d+ ms", said)
    assert.matches("wblk", said, 1, true)
  end)

  it("a worker whose body spins still stops on SIGTERM and gives its rows back", function()
    local db = h.store_path()
    local dir = h.tmpdir()
    local kinds = dir .. "/kinds.lua"
    h.write_file(kinds, [[
return {
  spin = function() while true do end end,
  spin_ob = { function() while true do end end, { disposition = "owner_bound" } },
}
]])
    local script = string.format("%s --db %s worker --load %s --concurrency 4 --grace 500 " ..
      ">%s/log 2>&1 </dev/null & echo $! >%s/pid; wait $!; echo $? >%s/rc",
      h.q(BIN), h.q(db), h.q(kinds), h.q(dir), h.q(dir), h.q(dir))
    local eng = reader(db)
    assert(eng:start("spin", nil, { id = "r1" }))
    assert(eng:start("spin_ob", nil, { id = "o1", disposition = "owner_bound" }))
    os.execute("sh -c " .. h.q(script) .. " >/dev/null 2>&1 &")
    local pid = h.poll(function() return tonumber(h.read_file(dir .. "/pid") or "") end, 3000)
    assert(pid, "the worker did not start")
    pids = { pid }
    assert.truthy(h.wait_until(eng, function()
      local r1, o1 = eng:get("r1"), eng:get("o1")
      return r1.status == "running" and o1.status == "running"
    end, 10000), "the rows were not claimed")
    h.kill(pid, "TERM")
    local rc = h.poll(function() return tonumber(h.read_file(dir .. "/rc") or "") end, 20000)
    assert.truthy(rc, "the worker did not exit after SIGTERM")
    local log = h.read_file(dir .. "/log") or ""
    assert.matches("did not answer the stop signal", log, 1, true)
    -- owner_bound: abandoned, as at drain.
    assert.truthy(wait_terminal(eng, "o1", 5000))
    local o1 = eng:get("o1")
    assert.are.equal("abandoned", o1.status)
    -- rerunnable: its lease was released (the default TTL is 30 s), so
    -- another engine claims it at once.
    local eng2 = h.open(db)
    eng2:define("spin", function() return { second = true } end)
    assert.truthy(h.wait_until(eng2, function() return h.is_terminal(eng2, "r1") end, 5000,
      { drive = true }), "r1 was not re-claimable")
    local r1 = eng2:get("r1")
    assert.are.equal("completed", r1.status)
    assert.are.equal(2, r1.attempt.number)
  end)
end)

describe("body time budgets", function()
  after_each(cleanup)

  it("a kind's timeout_ms ends a parked body with ETIMEDOUT naming the budget", function()
    local eng = h.open()
    assert(eng:define("slowpoke", function(ctx)
      ctx:sleep(5000)
      return { woke = true }
    end, { timeout_ms = 300 }))
    local id = assert(eng:start("slowpoke"))
    local o = eng:await(id, { timeout_ms = 4000 })
    assert.are.equal("failed", o.status)
    assert.are.equal("ETIMEDOUT", o.error.class)
    assert.matches("timeout_ms = 300", o.error.message, 1, true)
  end)

  it("a kind's timeout_ms ends a body that catches the wait's error", function()
    local eng = h.open()
    assert(eng:define("stubborn", function(ctx)
      pcall(ctx.sleep, ctx, 5000)
      return { ignored = true }
    end, { timeout_ms = 200 }))
    local id = assert(eng:start("stubborn"))
    local o = eng:await(id, { timeout_ms = 4000 })
    assert.are.equal("failed", o.status)
    assert.are.equal("ETIMEDOUT", o.error.class)
  end)

  it("a budget interrupts a body that spins past it", function()
    local eng = h.open(nil, { stall_ms = 60000 })
    assert(eng:define("spinner", function() while true do end end, { timeout_ms = 300 }))
    local id = assert(eng:start("spinner"))
    local o = eng:await(id, { timeout_ms = 10000 })
    assert.are.equal("failed", o.status)
    assert.are.equal("ETIMEDOUT", o.error.class)
    assert.matches("timeout_ms = 300", o.error.message, 1, true)
  end)

  it("refuses a bad timeout_ms", function()
    local eng = h.open()
    h.fails("EINVAL", "timeout_ms", eng:define("k", function() end, { timeout_ms = 0 }))
    h.fails("EINVAL", "timeout_ms", eng:start("k", nil, { timeout_ms = -5 }))
    h.raises_naming(function() eng:start("k", nil, { timeout_ms = "soon" }) end, "timeout_ms")
  end)

  it("a start's timeout_ms is stored on the row and survives a re-run elsewhere", function()
    local db = h.store_path()
    local eng = reader(db)
    local a, log = stall_worker(db, "wnap", 300, 100, 60000)
    pids = { a }
    local id = assert(eng:start("napper", nil, { id = "n1", timeout_ms = 1500 }))
    assert.are.equal(1500, eng:get(id).timeout_ms)
    assert.truthy(h.poll(function() return #lines_of(log, "start n1 1") > 0 end, 10000))
    h.kill(a, "KILL")
    assert.truthy(h.wait_exit(a, 5000))
    -- This engine re-runs it: its kind has no budget, the row's applies.
    local eng2 = h.open(db)
    eng2:define("napper", function(ctx)
      ctx:sleep(600000)
      return { napped = true }
    end)
    assert.truthy(h.wait_until(eng2, function() return h.is_terminal(eng2, id) end, 10000,
      { drive = true }), "the re-run did not end")
    local r = eng2:get(id)
    assert.are.equal(2, r.attempt.number)
    assert.are.equal("failed", r.status)
    local o = eng2:await(id, { timeout_ms = 1000 })
    assert.are.equal("ETIMEDOUT", o.error.class)
    assert.matches("timeout_ms = 1500", o.error.message, 1, true)
  end)
end)
