-- spec/kinds_spec.lua - kind definitions and live workers in the store
-- (issue 11 item 2): define (and lash worker --load) stores each kind's
-- options, versioned; a start of a kind the program does not define takes
-- the stored definition, and explicit options that conflict with it are
-- ECONFLICT; live workers have entries (pid, host, kinds), seen gone after
-- a kill -9 and removed; lash kinds / workers, and ps / show mark rows no
-- live worker defines. Real `lash worker` OS processes; LMDB and (with
-- LASH_TEST_TARGET) PostgreSQL.
local h = require "spec.helpers"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

-- `lash --db DB worker --load FILE` in the background; its pid.
local function spawn_cli_worker(db, file, log)
  local cmd = string.format("%s --db %s worker --load %s >>%s 2>&1 </dev/null & echo $!",
    h.q(BIN), h.q(db), h.q(file), h.q(log))
  local p = assert(io.popen("sh -c " .. h.q(cmd), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start lash worker")
  return pid
end

local function json(s)
  local ok, v = require("lash.format").from_json(s)
  assert(ok, v)
  return v
end

-- The entry of worker process pid in `lash workers --json`, or nil.
local function cli_worker(db, pid)
  local code, out = h.cli(db, "workers", "--json")
  if code ~= 0 then return nil end
  for _, w in ipairs(json(out)) do
    if w.pid == pid then return w end
  end
  return nil
end

local KINDS = [[
return {
  charge_once = { function(ctx) ctx:sleep(600000) return "charged" end,
    { disposition = "owner_bound", max_attempts = 2 } },
}
]]

describe("kind definitions in the store", function()
  after_each(h.cleanup)

  it("a worker's kinds file reaches a start from another shell; a kill -9 does not run it again",
    function()
      local db = h.store_path()
      local dir = h.tmpdir()
      local file = dir .. "/kinds.lua"
      h.write_file(file, KINDS)
      local w1 = spawn_cli_worker(db, file, dir .. "/w1.log")
      assert.truthy(h.poll(function() return cli_worker(db, w1) end, 20000),
        "the worker shows in lash workers")
      local w = cli_worker(db, w1)
      assert.is_true(w.alive)
      assert.same({ "charge_once" }, w.kinds)
      local code, out, err = h.cli(db, "start", "charge_once", "--id", "c-cli")
      assert.equal(0, code, err)
      assert.equal("c-cli", out:match("%S+"))
      local eng = h.open(db)
      local r = assert(eng:get("c-cli"))
      assert.equal("owner_bound", r.disposition)
      assert.equal(2, r.max_attempts)
      -- the worker started it (it sleeps in its body)
      assert.truthy(h.poll(function()
        local x = eng:get("c-cli")
        return x and x.status == "waiting"
      end, 20000), "the worker runs c-cli")
      h.kill(w1, "KILL")
      assert.truthy(h.wait_exit(w1, 10000))
      assert.truthy(h.poll(function()
        local e = cli_worker(db, w1)
        return e and e.alive == false
      end, 10000), "the killed worker shows not alive")
      local w2 = spawn_cli_worker(db, file, dir .. "/w2.log")
      assert.truthy(h.poll(function() return cli_worker(db, w2) end, 20000))
      -- its first commit removed the dead worker's entry
      assert.is_nil(cli_worker(db, w1))
      h.sleep_ms(1500) -- time to take rows over (the owner is gone: at once)
      assert.equal(1, #h.events_of(eng, "c-cli", "process.started"),
        "c-cli ran exactly once")
      h.kill(w2, "TERM")
      assert.truthy(h.wait_exit(w2, 20000))
      assert.is_nil(cli_worker(db, w2), "a worker that stops removes its entry")
    end)

  it("a kill -9'd worker's rerunnable row is taken over at once, not after the lease TTL",
    function()
      local db = h.store_path()
      local dir = h.tmpdir()
      local file = dir .. "/rerun.lua"
      h.write_file(file, [[
return { rerun = function(ctx) ctx:exec({ "sleep", "20" }) return "done" end }
]])
      -- leases of 60 s: only the owner's death can free the row sooner
      local function spawn(log)
        local cmd = string.format("%s --db %s --lease-ttl 60s worker --grace 200 --load %s " ..
          ">>%s 2>&1 " ..
          "</dev/null & echo $!", h.q(BIN), h.q(db), h.q(file), h.q(log))
        local p = assert(io.popen("sh -c " .. h.q(cmd), "r"))
        local pid = tonumber(p:read("l"))
        p:close()
        return pid
      end
      local w1 = spawn(dir .. "/w1.log")
      local w2
      local ok, err = pcall(function()
        assert.truthy(h.poll(function() return cli_worker(db, w1) end, 20000))
        local eng = h.open(db)
        assert(eng:start("rerun", nil, { id = "r-1" }))
        assert.truthy(h.poll(function()
          return #h.events_of(eng, "r-1", "process.started") == 1
        end, 20000), "the first worker runs r-1")
        h.kill(w1, "KILL")
        assert.truthy(h.wait_exit(w1, 10000))
        w2 = spawn(dir .. "/w2.log")
        assert.truthy(h.poll(function()
          return #h.events_of(eng, "r-1", "process.started") == 2
        end, 20000), "the second worker took r-1 over well before the 60 s TTL")
        local second = h.events_of(eng, "r-1", "process.started")[2]
        assert.equal(cli_worker(db, w2).owner, second.payload.owner)
      end)
      if w2 then
        h.kill(w2, "TERM")
        h.wait_exit(w2, 30000)
      end
      assert(ok, err)
    end)

  it("define stores versions: the same options write nothing, others the next version",
    function()
      local db = h.store_path()
      local eng = h.open(db)
      local fn = function() return 1 end
      assert(eng:define("k", fn, { disposition = "owner_bound", max_attempts = 3 }))
      local kinds = assert(eng:kinds())
      assert.equal(1, #kinds)
      assert.equal(1, kinds[1].version)
      assert.same({ disposition = "owner_bound", max_attempts = 3 }, kinds[1].options)
      local stored_at = kinds[1].updated_at
      assert.equal("number", type(stored_at))
      h.sleep_ms(5)
      local other = h.open(db)
      assert(other:define("k", fn, { max_attempts = 3, disposition = "owner_bound" }))
      local again = assert(other:kinds())[1]
      assert.equal(1, again.version, "an identical define")
      assert.equal(stored_at, again.updated_at, "... wrote nothing")
      assert(other:define("k", fn, { max_attempts = 4 }))
      kinds = assert(eng:kinds())
      assert.equal(2, kinds[1].version)
      assert.same({ max_attempts = 4 }, kinds[1].options)
    end)

  it("a start of a kind this program does not define takes the stored definition", function()
    local db = h.store_path()
    local worker = h.open(db)
    assert(worker:define("slow", function() return 1 end,
      { disposition = "external", max_attempts = 5, timeout_ms = 7000 }))
    local shell = h.open(db)
    local id = assert(shell:start("slow", nil, { id = "s-1" }))
    local r = assert(shell:get(id))
    assert.equal("external", r.disposition)
    assert.equal(5, r.max_attempts)
    assert.equal(7000, r.timeout_ms)
    -- a kind nobody defined keeps the defaults
    r = assert(shell:get(assert(shell:start("nobody", nil, { id = "n-1" }))))
    assert.equal("rerunnable", r.disposition)
  end)

  it("a start whose explicit options conflict with the stored definition is ECONFLICT naming both",
    function()
      local db = h.store_path()
      local worker = h.open(db)
      assert(worker:define("pay", function() return 1 end,
        { disposition = "owner_bound", max_attempts = 2 }))
      local shell = h.open(db)
      local id, msg, code = shell:start("pay", nil, { id = "p-1", disposition = "rerunnable" })
      assert.is_nil(id)
      assert.equal("ECONFLICT", code)
      assert.truthy(msg:find("owner_bound", 1, true), msg)
      assert.truthy(msg:find("rerunnable", 1, true), msg)
      assert.is_nil(shell:get("p-1"), "nothing was registered")
      local id2, msg2, code2 = shell:start("pay", nil, { id = "p-1", max_attempts = 9 })
      assert.is_nil(id2)
      assert.equal("ECONFLICT", code2, msg2)
      -- the same values are no conflict
      assert.equal("p-2", shell:start("pay", nil, { id = "p-2", disposition = "owner_bound" }))
      -- the CLI says so and exits 1
      local c, _, err = h.cli(db, "start", "pay", "--id", "p-3", "--disposition", "rerunnable")
      assert.equal(1, c)
      assert.truthy(err:find("owner_bound", 1, true), err)
    end)

  it("eng:workers lists a defining engine with pid, host and kinds until it closes", function()
    local db = h.store_path()
    local plain = h.open(db)
    assert.same({}, assert(plain:workers()), "an engine without kinds is no worker")
    local lash_ = require "lash"
    local w = assert(lash_.open(db, { durability = "none" }))
    assert(w:define("a", function() return 1 end))
    assert(w:define("b", function() return 2 end))
    local ws = assert(plain:workers())
    assert.equal(1, #ws)
    local owner, inc = w:owner()
    assert.equal(owner, ws[1].owner)
    assert.equal(inc, ws[1].incarnation)
    assert.is_true(ws[1].alive)
    assert.equal("number", type(ws[1].pid))
    assert.truthy(#ws[1].host > 0)
    assert.same({ "a", "b" }, ws[1].kinds)
    assert.truthy(ws[1].started_at > 0 and ws[1].heartbeat_at >= ws[1].started_at)
    local kinds = assert(plain:kinds())
    assert.equal(2, #kinds)
    assert.equal(owner, kinds[1].workers[1].owner)
    w:close()
    assert.same({}, assert(plain:workers()), "closing removes the entry")
  end)

  it("an idle worker makes no commits", function()
    local eng = h.open(h.store_path())
    assert(eng:define("idle", function() return 1 end))
    h.run_for(eng, 200)
    local c0 = eng:stats().commits
    h.run_for(eng, 600)
    assert.equal(c0, eng:stats().commits)
  end)

  it("lash kinds, lash workers, and ps / show mark rows no live worker defines", function()
    local db = h.store_path()
    local worker = h.open(db)
    assert(worker:define("greet", function() return "hi" end, { max_attempts = 3 }))
    local shell = h.open(db)
    assert(shell:start("orphan", { n = 1 }, { id = "o-1" }))
    assert(shell:start("orphan", { n = 2 }, { id = "o-2" }))
    assert(shell:start("greet", nil, { id = "g-1" }))
    local code, out, err = h.cli(db, "kinds")
    assert.equal(0, code, err)
    assert.truthy(out:find("KIND", 1, true))
    local greet = out:match("\ngreet[^\n]*")
    assert.truthy(greet and greet:find("max_attempts = 3", 1, true), out)
    assert.truthy(greet:find((worker:owner()), 1, true), out)
    local orphan = out:match("\norphan[^\n]*")
    assert.truthy(orphan and orphan:find("none", 1, true) and orphan:match("2%s*$"), out)
    code, out = h.cli(db, "kinds", "--json")
    assert.equal(0, code)
    local kinds = json(out)
    assert.equal("greet", kinds[1].kind)
    assert.equal(0, kinds[1].waiting)
    assert.equal("orphan", kinds[2].kind)
    assert.equal(2, kinds[2].waiting)
    code, out = h.cli(db, "workers")
    assert.equal(0, code)
    assert.truthy(out:find("ALIVE", 1, true) and out:find("greet", 1, true), out)
    code, out = h.cli(db, "ps")
    assert.equal(0, code)
    assert.truthy(out:find("no worker defines kind orphan", 1, true), out)
    assert.falsy(out:find("no worker defines kind greet", 1, true), out)
    code, out = h.cli(db, "show", "o-1")
    assert.equal(0, code)
    assert.truthy(out:find("no worker defines kind orphan", 1, true), out)
    code, out = h.cli(db, "show", "g-1")
    assert.equal(0, code)
    assert.falsy(out:find("no worker", 1, true), out)
    worker:close()
    code, out = h.cli(db, "show", "g-1")
    assert.equal(0, code)
    assert.truthy(out:find("no worker defines kind greet", 1, true), out)
  end)
end)
