-- spec/migrate_spec.lua - `lash migrate --from A --to B` (issue 12, item 4):
-- a store copied into an empty one of any backend. The source is an LMDB
-- directory with rows in every state mid-flight: completed rows with
-- keyed events, pruned rows (tombstones), journaled bodies suspended on a
-- signal, a parent suspended on its child, a sleeper on a timer, and a row
-- running in a worker OS process killed with SIGKILL (its lease still
-- live). It goes to the backend under test (PostgreSQL with
-- LASH_TEST_TARGET, else a second LMDB directory) and on from there back to
-- LMDB; on the target every row goes on where it was.
local h = require "spec.helpers"
local lash = require "lash"

local steps = {} -- "<id>:<step>" -> times the step's fn ran, in this process

local function define(eng, worker, no_slow)
  eng:define("quick", function(_, input) return { n = input.n } end)
  eng:define("flow", function(ctx)
    local a = ctx:step("a", function()
      steps[ctx.id .. ":a"] = (steps[ctx.id .. ":a"] or 0) + 1
      return 1
    end)
    local b = ctx:step("b", function()
      steps[ctx.id .. ":b"] = (steps[ctx.id .. ":b"] or 0) + 1
      return 2
    end)
    local got = ctx:await_signal("go")
    ctx:step("c", function() steps[ctx.id .. ":c"] = (steps[ctx.id .. ":c"] or 0) + 1 end)
    return { a = a, b = b, got = got, worker = worker }
  end)
  eng:define("parent", function(ctx)
    local child = ctx:start("flow", nil, { id = "c-" .. ctx.id })
    local out = ctx:await(child)
    return { child = out.value.got, worker = worker }
  end)
  eng:define("nap", function(ctx)
    ctx:sleep(3600000)
    return "woke"
  end)
  if no_slow then return end -- the source leaves slow_rr to the victim worker
  eng:define("slow_rr", function(ctx) return { worker = worker, attempt = ctx.attempt } end)
end

local function migrate_cli(from, to, ...)
  return h.cli(from, "migrate", "--from", from, "--to", to, ...)
end

local function counts(eng)
  local s = eng:stats()
  local out = { tombstones = s.tombstones, change_seq = s.change_seq, total = s.total,
    suspended = s.suspended }
  for _, st in ipairs(lash.STATUSES) do out[st] = s[st] end
  return out
end

-- A source LMDB store with rows in every state; returns its path, the
-- seq of f-2's keyed signal and r-1's fence at the source.
local function source()
  local src = h.tmpdir() .. "/src"
  local eng = h.open(src, { owner = "src", suspend_after_ms = 0 })
  define(eng, "src", true)
  for i = 1, 5 do assert(eng:start("quick", { n = -i }, { id = "old-" .. i })) end
  eng:run { until_idle = true }
  h.sleep_ms(5)
  local cut = eng:now()
  h.sleep_ms(5)
  for i = 1, 20 do assert(eng:start("quick", { n = i }, { id = "q-" .. i })) end
  assert(eng:start("flow", nil, { id = "f-1" }))
  assert(eng:start("flow", nil, { id = "f-2" }))
  assert(eng:start("parent", nil, { id = "p-1" }))
  assert(eng:start("nap", nil, { id = "n-1" }))
  assert(eng:start("slow_rr", nil, { id = "r-1" }))
  local suspended = h.wait_until(eng, function()
    for _, id in ipairs { "f-1", "f-2", "p-1", "c-p-1", "n-1" } do
      local r = eng:get(id)
      if not (r and r.suspended) then return false end
    end
    return eng:get("q-20").status == "completed"
  end, 30000, { drive = true })
  assert.is_truthy(suspended, "the source rows did not all suspend")
  local note = assert(eng:signal("f-2", "note", { x = 1 }, { key = "k1" }))
  local pruned = assert(eng:prune { before_ms = cut })
  assert.are.equal(5, pruned.processes)
  -- r-1 runs in a worker OS process that dies by SIGKILL mid-body: its
  -- lease stays live at the source (ttl 10 minutes).
  local log = h.tmpdir() .. "/victim.log"
  local pid = h.spawn_worker("victim", { src, "victim", log, "600000" }, log)
  local started = h.poll(function()
    for _, l in ipairs(h.lines(log)) do
      if l == "start r-1 1" then return true end
    end
    return false
  end, 30000, 10)
  assert.is_truthy(started, "the victim did not start r-1: " .. tostring(h.read_file(log)))
  h.kill(pid, "KILL")
  assert.is_truthy(h.wait_exit(pid, 10000))
  local r = eng:get("r-1")
  -- its body parked in memory (a sleep), the lease held by a dead process
  assert.are.equal("waiting", r.status)
  assert.is_falsy(r.suspended)
  eng:close()
  return src, note, r.attempt.fence
end

describe("lash migrate", function()
  after_each(h.cleanup)

  it("copies LMDB to the backend under test and back, rows going on where they were",
    function()
      local src, note_seq, fence = source()
      local mid = h.store_path()
      local before = counts(h.open(src, { read_only = true }))
      local code, out, err = migrate_cli(src, mid)
      assert.are.equal(0, code, err .. out)
      assert.is_truthy(out:find("processes%s+" .. before.total), out)
      assert.is_truthy(out:find("tombstones%s+5"), out)
      assert.is_truthy(out:find("leases_released%s+1"), out)
      assert.is_truthy(out:find("suspended%s+5"), out)
      assert.is_truthy(out:find("check " .. src .. ": ok", 1, true), out)
      assert.is_truthy(out:find("check " .. mid .. ": ok", 1, true), out)

      local eng = h.open(mid, { owner = "dst", suspend_after_ms = 0 })
      local copied = counts(eng)
      assert.are.same(before, copied)
      -- the side table: the kinds the source defined, their stored options
      local kinds = {}
      for _, k in ipairs(eng:kinds()) do kinds[k.kind] = k.version end
      assert.are.equal(1, kinds.flow)
      assert.are.equal(1, kinds.nap)
      assert.is_truthy(out:find("side_table%s+[1-9]"), out)
      -- records and events as they were, keys included
      assert.are.same({ n = 7 }, eng:get("q-7").outcome.value)
      assert.is_nil(eng:get("old-1"))
      local seq, replayed = eng:signal("f-2", "note", { x = 1 }, { key = "k1" })
      assert.are.equal(note_seq, seq)
      assert.is_true(replayed)
      assert.are.equal(before.change_seq, eng:stats().change_seq)

      define(eng, "dst")
      -- the running row: re-run on the target at once, fenced above the source
      local done = h.wait_until(eng, function() return h.is_terminal(eng, "r-1") end, 30000,
        { drive = true })
      assert.is_truthy(done, "r-1 was not re-run on the target")
      local r = eng:get("r-1")
      assert.are.equal("completed", r.status)
      assert.are.same({ worker = "dst", attempt = 2 }, r.outcome.value)
      assert.is_truthy(r.attempt.fence > fence, r.attempt.fence .. " <= " .. fence)
      -- suspended journaled bodies: a signal on the target wakes them, the
      -- steps they journaled at the source are not run again
      assert.is_true(eng:get("f-1").suspended)
      assert(eng:signal("f-1", "go", "hi"))
      assert(eng:signal("c-p-1", "go", "child"))
      done = h.wait_until(eng, function()
        return h.is_terminal(eng, "f-1") and h.is_terminal(eng, "p-1")
      end, 30000, { drive = true })
      assert.is_truthy(done, "the signalled rows did not finish on the target")
      assert.are.same({ a = 1, b = 2, got = "hi", worker = "dst" }, eng:get("f-1").outcome.value)
      assert.are.same({ child = "child", worker = "dst" }, eng:get("p-1").outcome.value)
      assert.are.equal(1, steps["f-1:a"])
      assert.are.equal(1, steps["f-1:b"])
      assert.are.equal(1, steps["f-1:c"])
      -- the rows nobody woke stay suspended: f-2 on its signal, n-1 on its timer
      assert.is_true(eng:get("f-2").suspended)
      assert.is_true(eng:get("n-1").suspended)
      assert.are.same({}, eng:check())
      local mid_counts = counts(eng)
      local f1 = assert(eng:events("f-1", 0))
      eng:close()

      -- and back to LMDB, through the Lua call
      local back = h.tmpdir() .. "/back"
      local rep = assert(lash.migrate(mid, back))
      assert.are.equal(mid_counts.total, rep.processes)
      assert.are.equal(5, rep.tombstones)
      assert.are.equal(mid_counts.completed, rep.statuses.completed)
      assert.are.same({}, assert(lash.check(back)))
      local b = h.open(back, { owner = "back", suspend_after_ms = 0 })
      assert.are.same(mid_counts, counts(b))
      assert.are.same(f1, assert(b:events("f-1", 0)))
      define(b, "back")
      assert(b:signal("f-2", "go", "again"))
      done = h.wait_until(b, function() return h.is_terminal(b, "f-2") end, 30000,
        { drive = true })
      assert.is_truthy(done, "f-2 did not finish after the way back")
      assert.are.same({ a = 1, b = 2, got = "again", worker = "back" },
        b:get("f-2").outcome.value)
      assert.are.equal(1, steps["f-2:a"])
    end)

  it("refuses a target that is not empty, and writes nothing into it", function()
    local src = h.tmpdir() .. "/src"
    local e = h.open(src)
    for i = 1, 3 do assert(e:start("quick", { n = i }, { id = "a-" .. i })) end
    e:close()
    local dst = h.store_path()
    local d = h.open(dst)
    assert(d:start("quick", nil, { id = "there" }))
    local before = counts(d)
    d:close()
    local code, out, err = migrate_cli(src, dst)
    assert.are.equal(1, code, out)
    assert.is_truthy(err:find("not empty", 1, true), err)
    assert.is_truthy(err:find("1 processes", 1, true), err)
    local rep, msg, ecode = lash.migrate(src, dst)
    assert.is_nil(rep)
    assert.are.equal("EINVAL", ecode)
    assert.is_truthy(msg:find("empty store only", 1, true), msg)
    d = h.open(dst)
    assert.are.same(before, counts(d))
    assert.is_nil(d:get("a-1"))
  end)

  it("names a bad source or target, and creates nothing", function()
    local tmp = h.tmpdir()
    local src = tmp .. "/src"
    local e = h.open(src)
    assert(e:start("quick", nil, { id = "a" }))
    e:close()
    -- no such source: the target is not created
    local rep, msg, code = lash.migrate(tmp .. "/none", tmp .. "/t1")
    assert.is_nil(rep)
    assert.is_truthy(msg:find(tmp .. "/none", 1, true), msg)
    assert.is_truthy(code)
    assert.is_nil(io.open(tmp .. "/t1/data.mdb", "r"))
    -- a target whose parent does not exist
    rep, msg = lash.migrate(src, tmp .. "/no/such/dir")
    assert.is_nil(rep)
    assert.is_truthy(msg:find(tmp .. "/no/such/dir", 1, true), msg)
    -- a server nobody listens on
    rep, msg = lash.migrate(src, "postgresql://nobody@127.0.0.1:1/none")
    assert.is_nil(rep)
    assert.is_truthy(msg:find("127.0.0.1", 1, true), msg)
    -- the store into itself
    rep, msg, code = lash.migrate(src, src)
    assert.is_nil(rep)
    assert.are.equal("EINVAL", code)
    assert.is_truthy(msg:find("itself", 1, true), msg)
    -- the CLI: both flags required, unknown ones refused
    local c, _, err = h.cli(src, "migrate", "--from", src)
    assert.are.equal(2, c)
    assert.is_truthy(err:find("--to", 1, true), err)
    c, _, err = h.cli(src, "migrate", "--from", src, "--to", tmp .. "/t2", "--fast")
    assert.are.equal(2, c)
    assert.is_truthy(err:find("--fast", 1, true), err)
    assert.is_nil(io.open(tmp .. "/t2/data.mdb", "r"))
    local e2 = h.open(src, { read_only = true })
    assert.are.equal(1, e2:stats().total)
  end)
end)
