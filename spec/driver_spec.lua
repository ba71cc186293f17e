-- spec/driver_spec.lua - the work driver (DESIGN §3, §8, SEMANTICS §3.7,
-- S8.62-S8.67), with real OS processes: workers racing on the same rows,
-- kill -9 mid-body, lease lapse, re-run per disposition, revenant owners.
local h = require "spec.helpers"

local function await(eng, id, ms)
  return eng:await(id, { timeout_ms = ms or 5000 })
end

describe("driver", function()
  after_each(h.cleanup)

  it("never runs external rows; every drive reports them deferred (S8.62)", function()
    local eng = h.open()
    local ran = false
    eng:define("remote", function() ran = true return "ran" end)
    local id = assert(eng:start("remote", { job = 1 }, { disposition = "external" }))
    for _ = 1, 3 do
      local rep = eng:drive()
      assert.are.equal(0, rep.admitted)
      assert.is_true(rep.deferred >= 1, "external row not reported deferred")
      eng:run { until_idle = true }
    end
    assert.is_false(ran)
    local r = eng:get(id)
    assert.are.equal("pending", r.status)
    assert.is_nil(r.attempt)
    assert.are.equal(0, #h.events_of(eng, id, "process.started"))
    assert.is_truthy(eng:complete(id, { status = "completed", value = "done elsewhere" },
      { authority = "external" }))
    assert.are.same({ status = "completed", value = "done elsewhere" }, await(eng, id))
    assert.is_false(ran)
  end)

  it("runs an unstarted owner_bound row once (S8.66)", function()
    local eng = h.open(nil, { owner = "me" })
    local runs = 0
    eng:define("ob", function() runs = runs + 1 return runs end, { disposition = "owner_bound" })
    local id = assert(eng:start("ob", nil))
    assert.are.same({ status = "completed", value = 1 }, await(eng, id))
    local r = eng:get(id)
    assert.are.equal("owner_bound", r.disposition)
    assert.are.equal("me", r.attempt.owner)
    assert.are.equal(1, r.attempt.number)
    eng:run { until_idle = true }
    assert.are.equal(1, runs)
  end)

  it("does not admit a row it is already running twice (S8.67)", function()
    local eng = h.open(nil, { eager_start = false })
    local runs = 0
    eng:define("k", function(ctx)
      runs = runs + 1
      return ctx:await_signal("go", { timeout_ms = 10000 })
    end)
    local id = assert(eng:start("k", nil))
    assert.are.equal(1, eng:drive().admitted)
    assert.is_truthy(h.park(eng, id))
    assert.are.equal("waiting", eng:get(id).status)
    for _ = 1, 3 do
      assert.are.equal(0, eng:drive().admitted)
      h.run_for(eng, 30)
    end
    assert.are.equal(1, runs)
    assert(eng:signal(id, "go", "once"))
    assert.are.same({ status = "completed", value = "once" }, await(eng, id))
    assert.are.equal(1, runs)
    assert.are.equal(1, #h.events_of(eng, id, "process.started"))
  end)

  it("does not re-run a body that raised, even with attempts left", function()
    local eng = h.open()
    local runs = 0
    eng:define("k", function() runs = runs + 1 error("once") end, { max_attempts = 3 })
    local id = assert(eng:start("k", nil))
    assert.are.equal("failed", await(eng, id).status)
    eng:run { until_idle = true }
    assert.are.equal(1, runs)
  end)

  describe("with real OS processes", function()
    it("4 workers drain the same 2,000 rows, each completed exactly once", function()
      local dir = h.store_path()
      local eng = h.open(dir)
      local total = 2000
      for i = 1, total do
        assert(eng:start("job", { n = i }, { id = string.format("job-%05d", i) }))
      end
      local tmp = h.tmpdir()
      local owners, pids, logs = {}, {}, {}
      for w = 1, 4 do
        owners[w] = "drain-" .. w
        logs[w] = tmp .. "/" .. owners[w] .. ".log"
        pids[w] = h.spawn_worker("drain", { dir, owners[w], tostring(total), logs[w] }, logs[w])
      end
      for w = 1, 4 do
        assert.is_truthy(h.wait_exit(pids[w], 90000), owners[w] .. " did not finish")
      end
      for w = 1, 4 do
        local lines = h.lines(logs[w])
        assert.are.equal("exit ok", lines[#lines], owners[w] .. ": " .. tostring(lines[#lines]))
      end
      -- every body execution, by any worker
      local runs, per_worker = {}, {}
      for w = 1, 4 do
        per_worker[owners[w]] = 0
        for _, l in ipairs(h.lines(logs[w])) do
          local id, owner = l:match("^run (%S+) (%S+)$")
          if id then
            runs[id] = (runs[id] or 0) + 1
            per_worker[owner] = per_worker[owner] + 1
          end
        end
      end
      local s = eng:stats()
      assert.are.equal(total, s.completed)
      local rows = eng:list { kind = "job" }
      assert.are.equal(total, #rows)
      for _, r in ipairs(rows) do
        assert.are.equal("completed", r.status, r.id)
        assert.are.equal(1, runs[r.id], r.id .. " ran " .. tostring(runs[r.id]) .. " times")
        local n = tonumber(r.id:match("(%d+)$"))
        assert.are.equal(n, r.outcome.value.n)
        assert.are.equal(r.attempt.owner, r.outcome.value.worker, r.id)
        assert.is_not_nil(per_worker[r.outcome.value.worker])
        assert.are.equal(1, r.attempt.number, r.id)
        local completed, started = 0, 0
        for _, ev in ipairs(eng:events(r.id)) do
          if ev.type == "process.completed" then completed = completed + 1 end
          if ev.type == "process.started" then started = started + 1 end
        end
        assert.are.equal(1, completed, r.id)
        assert.are.equal(1, started, r.id)
      end
      local sum = 0
      for _, c in pairs(per_worker) do sum = sum + c end
      assert.are.equal(total, sum)
    end)

    -- A worker OS process (owner "victim", lease ttl 300 ms) starts the rows
    -- and parks in their bodies; it is killed with SIGKILL; this engine then
    -- takes over as owner "rescuer".
    local function kill_scenario()
      local dir = h.store_path()
      local eng = h.open(dir, { owner = "rescuer", lease_ttl_ms = 300, renew_ms = 100 })
      local rr = { "rr-1", "rr-2", "rr-3" }
      local ob = { "ob-1", "ob-2" }
      local lim = "lim-1"
      for _, id in ipairs(rr) do assert(eng:start("slow_rr", { id = id }, { id = id })) end
      for _, id in ipairs(ob) do
        assert(eng:start("slow_ob", { id = id }, { id = id, disposition = "owner_bound" }))
      end
      assert(eng:start("slow_lim", nil, { id = lim, max_attempts = 1 }))
      local all = { lim }
      for _, id in ipairs(rr) do all[#all + 1] = id end
      for _, id in ipairs(ob) do all[#all + 1] = id end
      local log = h.tmpdir() .. "/victim.log"
      local pid = h.spawn_worker("victim", { dir, "victim", log }, log)
      local before = {}
      local started = h.poll(function()
        for _, id in ipairs(all) do
          local r = eng:get(id)
          if not (r.attempt and r.attempt.owner == "victim") then return false end
          before[id] = r
        end
        return true
      end, 10000, 10)
      assert.is_truthy(started, "the victim did not start its rows: " ..
        tostring(h.read_file(log)))
      h.kill(pid, "KILL")
      assert.is_truthy(h.wait_exit(pid, 5000))
      local executed = h.define_victim_kinds(eng, "rescuer")
      local settled = h.wait_until(eng, function()
        for _, id in ipairs(rr) do
          if not h.is_terminal(eng, id) then return false end
        end
        return h.is_terminal(eng, lim)
      end, 10000, { drive = true })
      -- give owner_bound rows every chance to be (wrongly) re-run
      h.run_for(eng, 700, { drive = true })
      return { eng = eng, rr = rr, ob = ob, lim = lim, before = before,
        executed = executed, settled = settled, log = log }
    end

    it("after kill -9, rerunnable rows are re-run once by another owner", function()
      local sc = kill_scenario()
      local eng = sc.eng
      assert.is_truthy(sc.settled, "rerunnable rows were not re-run after the lease lapsed")
      for _, id in ipairs(sc.rr) do
        local r = eng:get(id)
        assert.are.equal("completed", r.status, id)
        assert.are.equal("rescuer", r.outcome.value.worker, id)
        assert.are.equal(1, sc.executed[id], id)
        assert.are.equal("rescuer", r.attempt.owner)
        assert.are.equal(2, r.attempt.number, id)
        assert.are.equal(2, r.outcome.value.attempt, id)
        assert.is_true(r.attempt.fence > sc.before[id].attempt.fence, id)
        assert.are.equal(1, #h.events_of(eng, id, "process.completed"), id)
        assert.are.equal(2, #h.events_of(eng, id, "process.started"), id)
      end
    end)

    it("after kill -9, owner_bound rows the dead worker started are not re-run (S8.64)",
      function()
        local sc = kill_scenario()
        local eng = sc.eng
        for _, id in ipairs(sc.ob) do
          local r = eng:get(id)
          assert.is_nil(sc.executed[id], id .. " was re-run")
          assert.is_nil(h.TERMINAL[r.status], id .. " became " .. r.status)
          assert.are.equal("victim", r.attempt.owner, id)
          assert.are.equal(1, r.attempt.number, id)
          assert.are.equal(1, #h.events_of(eng, id, "process.started"), id)
        end
        -- an explicit abandon request ends it, naming the dead owner (S8.65)
        local id = sc.ob[1]
        assert.is_truthy(eng:abandon(id, "operator gave up"))
        local settled = h.wait_until(eng, function() return h.is_terminal(eng, id) end, 5000,
          { drive = true })
        assert.is_truthy(settled, "the abandon request was not honoured")
        local o = await(eng, id)
        assert.are.equal("abandoned", o.status)
        assert.are.equal("reconciled_request", o.writer)
        assert.are.equal("victim", o.owner)
        assert.is_nil(sc.executed[id])
        assert.is_nil(h.TERMINAL[eng:get(sc.ob[2]).status])
      end)

    it("after kill -9, a rerunnable row out of attempts is abandoned by engine_gave_up (S8.63)",
      function()
        local sc = kill_scenario()
        local eng = sc.eng
        local o = await(eng, sc.lim, 1000)
        assert.is_table(o)
        assert.are.equal("abandoned", o.status)
        assert.are.equal("engine_gave_up", o.writer)
        assert.are.equal("victim", o.owner)
        assert.is_nil(sc.executed[sc.lim], "the exhausted row was run again")
        assert.are.equal(1, #h.events_of(eng, sc.lim, "process.started"))
        assert.are.equal(1, #h.events_of(eng, sc.lim, "process.abandoned"))
      end)

    -- A worker OS process (owner "revenant") runs row rev-1 and is stopped
    -- (SIGSTOP) mid-body; this engine takes the row over after the lease
    -- lapses and completes it; then the revenant continues (SIGCONT).
    local function revenant(mode, running_status)
      local dir = h.store_path()
      local eng = h.open(dir, { owner = "rescuer", lease_ttl_ms = 300, renew_ms = 100 })
      local id = assert(eng:start("rev", nil, { id = "rev-1" }))
      local log = h.tmpdir() .. "/revenant.log"
      local pid = h.spawn_worker("revenant", { dir, "revenant", id, log, mode }, log)
      local first = h.poll(function()
        local r = eng:get(id)
        return r.attempt and r.attempt.owner == "revenant" and r.status == running_status and r
      end, 10000, 5)
      assert.is_truthy(first, "the revenant did not start the row: " .. tostring(h.read_file(log)))
      h.kill(pid, "STOP")
      local executed = 0
      eng:define("rev", function()
        executed = executed + 1
        return { worker = "rescuer" }
      end)
      local settled = h.wait_until(eng, function() return h.is_terminal(eng, id) end, 10000,
        { drive = true })
      assert.is_truthy(settled, "the rescuer did not take over after the lease lapsed")
      -- let the revenant's timers (sleep, renew) fall due while it is stopped
      h.sleep_ms(1200)
      h.kill(pid, "CONT")
      assert.is_truthy(h.wait_exit(pid, 15000), "the revenant did not exit")
      local r = eng:get(id)
      local why = "; revenant log: " .. tostring(h.read_file(log))
      assert.are.equal("completed", r.status)
      assert.are.same({ status = "completed", value = { worker = "rescuer" } }, r.outcome, why)
      assert.are.equal("rescuer", r.attempt.owner)
      assert.is_true(r.attempt.fence > first.attempt.fence)
      assert.are.equal(1, executed)
      assert.are.equal(1, #h.events_of(eng, id, "process.completed"), why)
      assert.are.equal(0, #h.events_of(eng, id, "after_sleep"), "the revenant's emit was written" ..
        why)
      local terminals = 0
      for _, ev in ipairs(eng:events(id)) do
        local st = ev.type:match("^process%.(%a+)$")
        if st and h.TERMINAL[st] then terminals = terminals + 1 end
      end
      assert.are.equal(1, terminals, "more than one terminal event was written" .. why)
      return h.lines(log)
    end

    it("refuses a revenant's writes: parked body resumed after a takeover", function()
      revenant("sleep", "waiting")
    end)

    it("refuses a revenant's writes: busy body that never yielded during the takeover",
      function()
        local lines = revenant("busy", "running")
        local emitted, spun
        for _, l in ipairs(lines) do
          if l:match("^emit ") then emitted = l end
          if l == "spun" then spun = true end
        end
        -- the revenant body went on after it was superseded; its write was
        -- refused (revenant() checks the log), and either that refusal came
        -- back to it, or the engine dropped the body first (its heartbeat
        -- thread saw the lease lost while the body spun)
        assert.is_true(spun, "the revenant did not go on: " .. table.concat(lines, " | "))
        if emitted then
          assert.is_nil(emitted:match("^emit true %d+"),
            "the revenant's emit was acknowledged: " .. emitted)
        end
      end)

    it("kill -9 right after acknowledgements loses nothing acknowledged (durability full)",
      function()
        local dir = h.store_path()
        local log = h.tmpdir() .. "/ack.log"
        local pid = h.spawn_worker("ack", { dir, log }, log)
        assert.is_truthy(h.wait_exit(pid, 20000), "the ack worker did not die")
        local lines = h.lines(log)
        local eng = h.open(dir)
        local starts, emits = 0, {}
        for _, l in ipairs(lines) do
          local sid = l:match("^start (%S+)$")
          if sid then
            starts = starts + 1
            local r = eng:get(sid)
            assert.is_table(r, "acknowledged start of " .. sid .. " was lost")
          end
          local i, seq = l:match("^emit (%d+) (%d+)$")
          if i then emits[#emits + 1] = { tonumber(i), math.tointeger(tonumber(seq)) } end
        end
        assert.are.equal(40, starts, table.concat(lines, " | "))
        assert.are.equal(10, #emits, "the body did not get to its kill: " ..
          table.concat(lines, " | "))
        assert.is_nil(table.concat(lines, "\n"):find("not killed", 1, true))
        local evs = h.events_of(eng, "em-1", "e")
        assert.is_true(#evs >= 10, "acknowledged emits lost: " .. #evs .. " of 10 stored")
        for k, e in ipairs(emits) do
          assert.are.equal(e[2], evs[k].seq)
          assert.are.equal(e[1], evs[k].payload)
        end
        local r = eng:get("em-1")
        assert.is_nil(h.TERMINAL[r.status], "em-1 should not be terminal, is " .. r.status)
      end)
  end)
end)
