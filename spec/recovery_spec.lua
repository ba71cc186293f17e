-- spec/recovery_spec.lua - recovery on one host without waiting out the
-- lease TTL (issue 8 item 3): every engine holds its owner incarnation
-- (an flock in the store's owners/ folder) for its life; a claimer that
-- meets a live lease whose owner is gone takes the row over at once. Real
-- OS processes, real SIGKILL; the leases are 30 s long, so a recovery
-- within the 10 s bounds below could only come from the owner lock.
local h = require "spec.helpers"

local TTL = 30000

local function await(eng, id, ms)
  return eng:await(id, { timeout_ms = ms or 5000 })
end

-- A victim worker OS process (owner "victim", 30 s leases) starts the rows
-- and parks in their bodies. Returns the rescuer engine (this process,
-- owner "rescuer", 30 s leases too), the victim's pid and the row ids.
local function victim_holding(rows)
  local dir = h.store_path()
  local eng = h.open(dir, { owner = "rescuer", lease_ttl_ms = TTL })
  for _, r in ipairs(rows) do
    assert(eng:start(r.kind, { id = r.id }, { id = r.id, disposition = r.disposition,
      max_attempts = r.max_attempts }))
  end
  local log = h.tmpdir() .. "/victim.log"
  local pid = h.spawn_worker("victim", { dir, "victim", log, tostring(TTL) }, log)
  local started = h.poll(function()
    for _, r in ipairs(rows) do
      local rec = eng:get(r.id)
      if not (rec.attempt and rec.attempt.owner == "victim") then return false end
    end
    return true
  end, 10000, 10)
  assert.is_truthy(started, "the victim did not start its rows: " .. tostring(h.read_file(log)))
  return eng, pid, dir
end

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

-- Runs `lash --db DB ARGS...`; returns code, stdout, stderr.
local function cli(db, ...)
  local dir = h.tmpdir()
  local parts = { h.q(BIN), "--db", h.q(db) }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = h.q(a) end
  local _, _, code = os.execute(string.format("%s </dev/null >%s/out 2>%s/err",
    table.concat(parts, " "), h.q(dir), h.q(dir)))
  return code, h.read_file(dir .. "/out") or "", h.read_file(dir .. "/err") or ""
end

describe("recovery on one host", function()
  after_each(h.cleanup)

  it("a live owner's rows are never taken over; after its kill -9 they re-run well " ..
    "before the 30 s TTL", function()
    -- owner liveness is built on LMDB only so far: PostgreSQL waits out the TTL
    if h.lmdb_only(pending) then return end
    local rows = { { kind = "slow_rr", id = "rr-1" }, { kind = "slow_rr", id = "rr-2" } }
    local eng, pid = victim_holding(rows)
    local executed = h.define_victim_kinds(eng, "rescuer")
    -- The victim is alive: a second worker drives for a second and takes
    -- nothing (its owner lock is held).
    h.run_for(eng, 1000, { drive = true })
    assert.are.same({}, executed)
    for _, r in ipairs(rows) do
      assert.are.equal("victim", eng:get(r.id).attempt.owner)
      assert.are.equal(1, #h.events_of(eng, r.id, "process.started"))
    end
    local t0 = h.mono_ms()
    h.kill(pid, "KILL")
    assert.is_truthy(h.wait_exit(pid, 5000))
    local settled = h.wait_until(eng, function()
      for _, r in ipairs(rows) do
        if not h.is_terminal(eng, r.id) then return false end
      end
      return true
    end, 10000)
    local took = h.mono_ms() - t0
    assert.is_truthy(settled, "the rows were not re-run within 10 s of the kill (TTL 30 s)")
    local st = eng:stats()
    assert.is_true(st.owner_held)
    assert.are.equal(#rows, st.taken_over)
    assert.is_true(st.owners_gone >= 1)
    assert.is_true(took < 10000, "took " .. took .. " ms")
    for _, r in ipairs(rows) do
      local rec = eng:get(r.id)
      assert.are.equal("completed", rec.status, r.id)
      assert.are.equal("rescuer", rec.outcome.value.worker)
      assert.are.equal(1, executed[r.id], r.id)
      assert.are.equal(2, rec.attempt.number, r.id)
      assert.are.equal(2, #h.events_of(eng, r.id, "process.started"), r.id)
      assert.are.equal(1, #h.events_of(eng, r.id, "process.completed"), r.id)
    end
  end)

  it("after kill -9 an owner_bound row is not re-run, and an abandon request ends it " ..
    "at once", function()
    -- owner liveness is built on LMDB only so far: PostgreSQL waits out the TTL
    if h.lmdb_only(pending) then return end
    local rows = { { kind = "slow_ob", id = "ob-1", disposition = "owner_bound" },
      { kind = "slow_ob", id = "ob-2", disposition = "owner_bound" } }
    local eng, pid = victim_holding(rows)
    local executed = h.define_victim_kinds(eng, "rescuer")
    -- An abandon request while the owner lives is left to it.
    assert.is_truthy(eng:abandon("ob-1", "operator gave up"))
    h.run_for(eng, 500, { drive = true })
    assert.is_nil(h.TERMINAL[eng:get("ob-1").status])
    local t0 = h.mono_ms()
    h.kill(pid, "KILL")
    assert.is_truthy(h.wait_exit(pid, 5000))
    local settled = h.wait_until(eng, function() return h.is_terminal(eng, "ob-1") end, 10000)
    assert.is_truthy(settled, "the abandon request was not reconciled within 10 s (TTL 30 s)")
    assert.is_true(h.mono_ms() - t0 < 10000)
    local o = await(eng, "ob-1")
    assert.are.equal("abandoned", o.status)
    assert.are.equal("reconciled_request", o.writer)
    assert.are.equal("victim", o.owner)
    -- The other one is left to its (dead) owner: not re-run, not ended,
    -- its lease released.
    h.run_for(eng, 500, { drive = true })
    local r2 = eng:get("ob-2")
    assert.is_nil(h.TERMINAL[r2.status])
    assert.are.equal(1, #h.events_of(eng, "ob-2", "process.started"))
    assert.is_nil(executed["ob-1"])
    assert.is_nil(executed["ob-2"])
  end)

  it("after kill -9 a cancel request ends an owner_bound row cancelled", function()
    -- owner liveness is built on LMDB only so far: PostgreSQL waits out the TTL
    if h.lmdb_only(pending) then return end
    local rows = { { kind = "slow_ob", id = "ob-c", disposition = "owner_bound" },
      { kind = "slow_lim", id = "lim-c", max_attempts = 1 } }
    local eng, pid = victim_holding(rows)
    local executed = h.define_victim_kinds(eng, "rescuer")
    -- (a live owner's body would see the request itself: kill it first)
    h.kill(pid, "KILL")
    assert.is_truthy(h.wait_exit(pid, 5000))
    assert.is_truthy(eng:cancel("ob-c", "not needed"))
    assert.is_truthy(eng:cancel("lim-c", "not needed either"))
    local settled = h.wait_until(eng, function()
      return h.is_terminal(eng, "ob-c") and h.is_terminal(eng, "lim-c")
    end, 10000)
    assert.is_truthy(settled, "the cancel requests were not honoured within 10 s")
    local o = await(eng, "ob-c")
    assert.are.equal("cancelled", o.status, require("cjson").encode(o))
    assert.are.equal("not needed", o.reason or o.value)
    o = await(eng, "lim-c")
    assert.are.equal("cancelled", o.status)
    assert.is_nil(executed["ob-c"])
    assert.is_nil(executed["lim-c"])
  end)

  it("two live workers racing on the same rows never run one twice", function()
    local dir = h.store_path()
    local eng = h.open(dir, { owner = "checker", lease_ttl_ms = TTL })
    local ids = {}
    for i = 1, 40 do
      ids[i] = assert(eng:start("slow_rr", { i = i }, { id = string.format("r-%02d", i) }))
    end
    local logs, pids = {}, {}
    for w = 1, 2 do
      logs[w] = h.tmpdir() .. "/w.log"
      pids[w] = h.spawn_worker("victim", { dir, "w" .. w, logs[w], tostring(TTL) }, logs[w])
    end
    -- Both park in bodies of ten minutes; all rows end up started once.
    local all = h.poll(function()
      for _, id in ipairs(ids) do
        if not eng:get(id).attempt then return false end
      end
      return true
    end, 15000, 20)
    assert.is_truthy(all, "not every row was started")
    h.sleep_ms(500)
    local per = {}
    for _, id in ipairs(ids) do
      local starts = h.events_of(eng, id, "process.started")
      assert.are.equal(1, #starts, id .. " started " .. #starts .. " times")
      local owner = eng:get(id).attempt.owner
      per[owner] = (per[owner] or 0) + 1
    end
    for w = 1, 2 do h.kill(pids[w], "KILL") end
    assert.is_truthy((per.w1 or 0) + (per.w2 or 0) == #ids)
  end)

  it("lash abandon and lash cancel end a killed worker's rows with no worker running",
    function()
    -- owner liveness is built on LMDB only so far: PostgreSQL waits out the TTL
    if h.lmdb_only(pending) then return end
      local rows = { { kind = "slow_ob", id = "ob-a", disposition = "owner_bound" },
        { kind = "slow_ob", id = "ob-c", disposition = "owner_bound" },
        { kind = "slow_lim", id = "lim-c", max_attempts = 1 },
        { kind = "slow_ob", id = "ob-live", disposition = "owner_bound" } }
      local eng, pid, dir = victim_holding(rows)
      -- While the owner lives, the CLI leaves its row to it.
      local code, out, err = cli(dir, "abandon", "ob-live", "too early")
      assert.are.equal(0, code, err)
      assert.matches("owner victim", out)
      assert.matches("alive on this host", out)
      assert.is_nil(h.TERMINAL[eng:get("ob-live").status])
      h.kill(pid, "KILL")
      assert.is_truthy(h.wait_exit(pid, 5000))
      code, out, err = cli(dir, "abandon", "ob-a", "operator gave up")
      assert.are.equal(0, code, err)
      assert.matches("ended abandoned now %(reconciled_request, owner victim%)", out)
      local o = await(eng, "ob-a", 0)
      assert.are.equal("abandoned", o.status)
      assert.are.equal("reconciled_request", o.writer)
      assert.are.equal("victim", o.owner)
      code, out, err = cli(dir, "cancel", "ob-c", "no longer wanted")
      assert.are.equal(0, code, err)
      assert.matches("ended cancelled now", out)
      assert.are.equal("cancelled", await(eng, "ob-c", 0).status)
      code, out, err = cli(dir, "cancel", "lim-c", "--json")
      assert.are.equal(0, code, err)
      local rep = require("cjson").decode(out)
      assert.are.equal("ended", rep.result)
      assert.are.equal("cancelled", rep.status)
      assert.are.equal("cancelled", await(eng, "lim-c", 0).status)
      -- The request made while the owner lived is reconciled by the next
      -- command (or drive) once the owner is gone.
      code, out, err = cli(dir, "abandon", "ob-live", "too early")
      assert.are.equal(0, code, err)
      assert.matches("ended abandoned now", out)
      assert.are.equal("abandoned", await(eng, "ob-live", 0).status)
      for _, r in ipairs(rows) do
        assert.are.equal(1, #h.events_of(eng, r.id, "process.started"), r.id)
      end
      code, out = cli(dir, "check")
      assert.are.equal(0, code, out)
    end)
end)
