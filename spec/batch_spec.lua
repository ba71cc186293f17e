-- spec/batch_spec.lua - eng:batch(fn): everything fn writes commits in one
-- atomic transaction, or nothing does if fn raises.
local h = require "spec.helpers"

describe("eng:batch", function()
  after_each(h.cleanup)

  it("commits every start and signal fn made", function()
    local eng = h.open()
    local target = assert(eng:start("k", nil, { id = "target" }))
    local ids, seq = {}, nil
    eng:batch(function()
      for i = 1, 5 do ids[i] = assert(eng:start("k", i, { id = "b-" .. i })) end
      seq = assert(eng:signal(target, "go", "batched"))
    end)
    for i = 1, 5 do
      local r = assert(eng:get(ids[i]))
      assert.are.equal(i, r.input)
      assert.are.equal("pending", r.status)
    end
    local evs = h.events_of(eng, target, "signal.go")
    assert.are.equal(1, #evs)
    assert.are.equal(seq, evs[1].seq)
    assert.are.equal("batched", evs[1].payload)
    assert.are.equal(6, h.count_rows(eng))
  end)

  it("writes nothing if fn raises", function()
    local eng = h.open()
    local target = assert(eng:start("k", nil, { id = "target" }))
    local cs = eng:stats().change_seq
    local nev = #eng:events(target)
    local ok, r1, r2 = pcall(eng.batch, eng, function()
      for i = 1, 5 do assert(eng:start("k", i, { id = "gone-" .. i })) end
      assert(eng:signal(target, "go", 1))
      assert(eng:cancel(target, "in batch"))
      error("changed my mind")
    end)
    -- the error is surfaced: raised again, or returned as nil, msg
    if ok then assert.is_nil(r1) end
    local err = ok and r2 or r1
    assert.is_truthy(tostring(err):find("changed my mind", 1, true), tostring(err))
    for i = 1, 5 do
      local r, _, code = eng:get("gone-" .. i)
      assert.is_nil(r)
      assert.are.equal("ENOENT", code)
    end
    assert.are.equal(nev, #eng:events(target))
    assert.are.equal("pending", eng:get(target).status)
    assert.are.equal(cs, eng:stats().change_seq)
    assert.are.equal(1, h.count_rows(eng))
  end)

  it("the engine keeps working after a rolled-back batch", function()
    local eng = h.open()
    eng:define("k", function(_, n) return n end)
    pcall(eng.batch, eng, function()
      assert(eng:start("k", 1, { id = "x" }))
      error("no")
    end)
    local id = assert(eng:start("k", 2, { id = "x" }))
    assert.are.same({ status = "completed", value = 2 }, eng:await(id, { timeout_ms = 5000 }))
  end)

  -- On PostgreSQL the server ends a write idle for longer than the lease TTL
  -- less two renewals (at least 5 s), so that a worker stopped inside one cannot hold the
  -- store; a batch is exempt: its Lua runs between its statements.
  it("commits although fn runs for longer than a write may sit idle", function()
    local eng = h.open(nil, { lease_ttl_ms = 300, renew_ms = 100 })
    eng:batch(function()
      assert(eng:start("k", 1, { id = "slow-1" }))
      h.sleep_ms(5500) -- over the 5 s floor of the idle limit
      assert(eng:start("k", 2, { id = "slow-2" }))
    end)
    assert.are.equal("pending", assert(eng:get("slow-1")).status)
    assert.are.equal("pending", assert(eng:get("slow-2")).status)
  end)

  it("another OS process sees none of a batch's writes before it commits, all after", function()
    local dir = h.store_path()
    local eng = h.open(dir)
    assert(eng:start("k", nil, { id = "first" }))
    local tmp = h.tmpdir()
    local prefix = tmp .. "/peek"
    local log = tmp .. "/peek.log"
    local pid = h.spawn_worker("peek", { dir, "in-batch-3", prefix, "2" }, log)
    assert.is_truthy(h.poll(function() return h.read_file(prefix .. "ready") end, 10000, 5),
      "peek did not open the store: " .. tostring(h.read_file(log)))
    local during
    eng:batch(function()
      for i = 1, 3 do assert(eng:start("k", i, { id = "in-batch-" .. i })) end
      h.write_file(prefix .. "1.go", "")
      during = h.poll(function() return h.read_file(prefix .. "1.out") end, 10000, 5)
    end)
    h.write_file(prefix .. "2.go", "")
    local after = h.poll(function() return h.read_file(prefix .. "2.out") end, 10000, 5)
    h.wait_exit(pid, 5000)
    assert.are.equal("absent", during, "peek log: " .. tostring(h.read_file(log)))
    assert.are.equal("present", after, "peek log: " .. tostring(h.read_file(log)))
  end)

  it("a body's writes and a host batch do not mix up", function()
    local eng = h.open()
    eng:define("k", function(ctx, n)
      ctx:emit("e", n)
      return n
    end)
    local ids = {}
    eng:batch(function()
      for i = 1, 20 do ids[i] = assert(eng:start("k", i)) end
    end)
    eng:run { until_idle = true }
    for i, id in ipairs(ids) do
      local r = eng:get(id)
      assert.are.equal("completed", r.status)
      assert.are.equal(i, r.outcome.value)
      assert.are.equal(1, #h.events_of(eng, id, "e"))
    end
  end)
end)
