-- spec/awaiter_spec.lua - the hub and awaiter (DESIGN §4, SEMANTICS §4,
-- S8.49-S8.57): point-read fast paths, hub wake-ups without backoff
-- re-reads, many awaiters, and rows changed by another OS process (seen by
-- backoff re-reads).
local h = require "spec.helpers"

describe("awaiter", function()
  after_each(h.cleanup)

  it("await on an already-terminal row returns at once (S8.52)", function()
    local eng = h.open()
    eng:define("k", function() return "v" end)
    local id = assert(eng:start("k", nil))
    eng:run { until_idle = true }
    assert.are.equal("completed", eng:get(id).status)
    local reads, wakes = eng:stats().backoff_reads, eng:stats().hub_wakes
    local o = eng:await(id, { timeout_ms = 5000 })
    assert.are.same({ status = "completed", value = "v" }, o)
    -- resolved by the point read: no re-read of any kind
    assert.are.equal(reads, eng:stats().backoff_reads)
    assert.are.equal(wakes, eng:stats().hub_wakes)
  end)

  it("await on an unknown id fails with ENOENT naming it (S8.53)", function()
    local eng = h.open()
    local r, msg, code = eng:await("who-is-this", { timeout_ms = 1000 })
    assert.is_nil(r)
    assert.are.equal("ENOENT", code)
    assert.is_truthy(msg:find("who-is-this", 1, true), msg)
  end)

  it("an in-process completion resolves the await with zero backoff re-reads", function()
    local eng = h.open()
    eng:define("k", function(_, n) return n end)
    local reads = eng:stats().backoff_reads
    for i = 1, 5 do
      local id = assert(eng:start("k", i))
      assert.are.same({ status = "completed", value = i }, eng:await(id, { timeout_ms = 5000 }))
    end
    assert.are.equal(reads, eng:stats().backoff_reads)
  end)

  it("16 awaiters racing one completion all get identical outcomes (S8.55)", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      return { got = ctx:await_signal("go", { timeout_ms = 10000 }), n = 1.5 }
    end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.park(eng, id))
    assert.are.equal("waiting", eng:get(id).status)
    local results, resolved_at = {}, {}
    local n = 0
    for i = 1, 16 do
      eng:spawn(function()
        results[i] = eng:await(id, { timeout_ms = 5000 })
        resolved_at[i] = h.mono_ms()
        n = n + 1
      end)
    end
    -- let every awaiter subscribe
    h.run_for(eng, 50)
    local reads = eng:stats().backoff_reads
    local t0 = h.mono_ms()
    assert(eng:signal(id, "go", { "payload", 7 }))
    assert.is_truthy(h.wait_until(eng, function() return n == 16 end, 5000),
      "only " .. n .. " of 16 awaiters resolved")
    local want = { status = "completed", value = { got = { "payload", 7 }, n = 1.5 } }
    for i = 1, 16 do
      assert.are.same(want, results[i], "awaiter " .. i)
      assert.is_true(resolved_at[i] - t0 < 1000, "awaiter " .. i .. " took too long")
    end
    -- Woken by the hub, not by backoff; allow a stray timer or two.
    assert.is_true(eng:stats().backoff_reads - reads <= 16,
      "backoff re-reads: " .. (eng:stats().backoff_reads - reads))
  end)

  it("await_event returns an already-present event at once (S8.57)", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      ctx:emit("progress", { pct = 10 })
      ctx:emit("progress", { pct = 90 })
      return true
    end)
    local id = assert(eng:start("k", nil))
    eng:run { until_idle = true }
    local reads = eng:stats().backoff_reads
    local t0 = h.mono_ms()
    local ev = assert(eng:await_event(id, "progress", 0, { timeout_ms = 5000 }))
    assert.is_true(h.mono_ms() - t0 < 20)
    assert.are.same({ pct = 10 }, ev.payload)
    local ev2 = assert(eng:await_event(id, "progress", ev.seq, { timeout_ms = 5000 }))
    assert.are.same({ pct = 90 }, ev2.payload)
    assert.is_true(ev2.seq > ev.seq)
    assert.are.equal(reads, eng:stats().backoff_reads)
  end)

  it("await_event waits for a future event", function()
    local eng = h.open()
    eng:define("k", function(ctx)
      ctx:sleep(100)
      ctx:emit("tick", "later")
      return true
    end)
    local id = assert(eng:start("k", nil))
    local ev = assert(eng:await_event(id, "tick", 0, { timeout_ms = 5000 }))
    assert.are.equal("tick", ev.type)
    assert.are.equal("later", ev.payload)
  end)

  it("await_event does not stop on a terminal row", function()
    local eng = h.open()
    eng:define("k", function() return 1 end)
    local id = assert(eng:start("k", nil))
    eng:await(id, { timeout_ms = 5000 })
    local r, _, code = eng:await_event(id, "never", 0, { timeout_ms = 150 })
    assert.is_nil(r)
    assert.are.equal("ETIMEDOUT", code)
  end)

  it("await inside an engine coroutine times out with ETIMEDOUT", function()
    local eng = h.open()
    local id = assert(eng:start("not-defined", nil))
    local res
    eng:spawn(function()
      res = { eng:await(id, { timeout_ms = 100 }) }
    end)
    assert.is_truthy(h.wait_until(eng, function() return res ~= nil end, 3000))
    assert.is_nil(res[1])
    assert.are.equal("ETIMEDOUT", res[3])
  end)

  it("await on a pruned id returns no_longer_retained (S8.49)", function()
    local eng = h.open()
    eng:define("k", function() return 1 end)
    local id = assert(eng:start("k", nil))
    eng:await(id, { timeout_ms = 5000 })
    local t0 = h.now_ms()
    local cutoff = t0 + 3600 * 1000
    assert.are.equal(1, eng:prune { before_ms = cutoff }.processes)
    local o = assert(eng:await(id, { timeout_ms = 1000 }))
    assert.are.equal("no_longer_retained", o.status)
    assert.are.equal("completed", o.terminal)
    assert.are.equal("integer", math.type(o.pruned_at))
    -- stamped with the prune time, not the cutoff
    assert.is_true(o.pruned_at >= t0 - 1000 and o.pruned_at <= h.now_ms() + 1000,
      "pruned_at " .. o.pruned_at)
    local r, _, code = eng:await_event(id, "x", 0, { timeout_ms = 100 })
    assert.is_nil(r)
    assert.are.equal("EPRUNED", code)
  end)

  describe("rows changed by another OS process", function()
    -- fs_wake = false: only the awaiter's backoff can notice the write.
    it("an await resolves through backoff when another process completes the row", function()
      local dir = h.store_path()
      local eng = h.open(dir, { fs_wake = false })
      local id = assert(eng:start("remote", nil, { disposition = "external", id = "x-1" }))
      local log = h.tmpdir() .. "/poke.log"
      local reads = eng:stats().backoff_reads
      local pid = h.spawn_worker("poke", { dir, "300", "complete", id, "from-afar" }, log)
      local o, msg = eng:await(id, { timeout_ms = 10000 })
      assert.is_truthy(h.wait_exit(pid, 5000))
      assert.are.same({ status = "completed", value = "from-afar" }, o,
        tostring(msg) .. " / worker said: " .. tostring(h.read_file(log)))
      assert.is_true(eng:stats().backoff_reads > reads, "no backoff re-reads were counted")
    end)

    it("with the store file watched, another process's write comes through the feed", function()
      local dir = h.store_path()
      local eng = h.open(dir) -- fs_wake is on by default
      local id = assert(eng:start("remote", nil, { disposition = "external", id = "x-3" }))
      local feed = eng:stats().feed_changes
      local log = h.tmpdir() .. "/poke.log"
      local pid = h.spawn_worker("poke", { dir, "300", "complete", id, "near" }, log)
      local o, msg = eng:await(id, { timeout_ms = 10000 })
      assert.is_truthy(h.wait_exit(pid, 5000))
      assert.are.same({ status = "completed", value = "near" }, o,
        tostring(msg) .. " / worker said: " .. tostring(h.read_file(log)))
      assert.is_true(eng:stats().feed_changes > feed, "the change feed saw nothing")
    end)

    it("a parked body resumes through backoff when another process signals it", function()
      local dir = h.store_path()
      local eng = h.open(dir, { fs_wake = false })
      eng:define("k", function(ctx)
        return { got = ctx:await_signal("go", { timeout_ms = 10000 }) }
      end)
      local id = assert(eng:start("k", nil, { id = "sig-1" }))
      assert.is_truthy(h.park(eng, id))
      assert.are.equal("waiting", eng:get(id).status)
      local reads = eng:stats().backoff_reads
      local log = h.tmpdir() .. "/poke.log"
      local pid = h.spawn_worker("poke", { dir, "300", "signal", id, "go", "hello" }, log)
      local o, msg = eng:await(id, { timeout_ms = 10000 })
      assert.is_truthy(h.wait_exit(pid, 5000))
      assert.are.same({ status = "completed", value = { got = "hello" } }, o,
        tostring(msg) .. " / worker said: " .. tostring(h.read_file(log)))
      assert.is_true(eng:stats().backoff_reads > reads, "no backoff re-reads were counted")
    end)

    it("awaiters in engine coroutines also see the foreign completion", function()
      local dir = h.store_path()
      local eng = h.open(dir)
      local id = assert(eng:start("remote", nil, { disposition = "external", id = "x-2" }))
      local results, n = {}, 0
      for i = 1, 4 do
        eng:spawn(function()
          results[i] = eng:await(id, { timeout_ms = 10000 })
          n = n + 1
        end)
      end
      local log = h.tmpdir() .. "/poke.log"
      local pid = h.spawn_worker("poke", { dir, "200", "complete", id, "v" }, log)
      assert.is_truthy(h.wait_until(eng, function() return n == 4 end, 10000),
        "worker said: " .. tostring(h.read_file(log)))
      h.wait_exit(pid, 5000)
      for i = 1, 4 do
        assert.are.same({ status = "completed", value = "v" }, results[i])
      end
    end)
  end)
end)
