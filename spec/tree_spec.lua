-- spec/tree_spec.lua - show and events tell the whole story (issue 14.2):
-- eng:children / eng:tree, `lash tree`, `lash cancel --tree` (a parent and
-- all its live descendants), `lash show` with the lease and whether its
-- owner is alive (a real worker, then kill -9), the latest progress, when a
-- wait ends, the parent, the children and a failure's traceback, and
-- `lash events --full` printing payloads whole.
local h = require "spec.helpers"
local cjson = require "cjson"

-- A workflow: top starts mid (which starts two leaves) and a failing child,
-- then waits for a signal.
local function define(eng)
  eng:define("leaf", function(ctx) return ctx:await_signal("go") end)
  eng:define("boom", function() error("kaboom: no luck\nsecond line") end)
  eng:define("mid", function(ctx)
    local a = ctx:start("leaf", 1)
    ctx:start("leaf", 2)
    return ctx:await(a)
  end)
  eng:define("top", function(ctx)
    ctx:emit("progress", { pct = 10 })
    ctx:emit("progress", { pct = 40, note = "charging" })
    ctx:start("mid")
    ctx:start("boom")
    return ctx:await_signal("go", { timeout_ms = 600000 })
  end)
end

-- Runs eng until the five rows of top "t" are there and settled.
local function grow(eng)
  define(eng)
  eng:start("top", nil, { id = "t" })
  assert.truthy(h.wait_until(eng, function()
    local n = 0
    for _, r in ipairs(eng:list()) do
      if r.status == "waiting" or r.status == "failed" then n = n + 1 end
    end
    return n == 5
  end, 15000), "the workflow did not settle")
end

-- A store holding that workflow, its engine closed (for the CLI).
local function grown_db()
  local db = h.store_path()
  local eng = h.open(db)
  grow(eng)
  eng:close()
  return db
end

local function ids_of(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.id .. "=" .. r.status end
  return out
end

describe("children and trees", function()
  after_each(h.cleanup)

  it("eng:children lists the processes a process started, eng:tree all its descendants",
    function()
      local eng = h.open()
      grow(eng)
      assert.are.same({ "t/3=waiting", "t/4=failed" }, ids_of(eng:children("t")))
      assert.are.same({ "t/3/1=waiting", "t/3/2=waiting" }, ids_of(eng:children("t/3")))
      assert.are.same({}, eng:children("t/4"))
      local t = eng:tree("t")
      assert.are.equal("t", t.record.id)
      assert.are.equal(2, #t.children)
      assert.are.equal("t/3", t.children[1].record.id)
      assert.are.same({ "t/3/1", "t/3/2" },
        { t.children[1].children[1].record.id, t.children[1].children[2].record.id })
      local none, _, code = eng:tree("nope")
      assert.is_nil(none)
      assert.are.equal("ENOENT", code)
    end)

  it("eng:cancel(id, reason, {tree = true}) ends the process and all its live descendants",
    function()
      local eng = h.open()
      grow(eng)
      local done = eng:cancel("t", "stop it all", { tree = true })
      -- children first, the failed one left alone
      local order = {}
      for i, d in ipairs(done) do
        order[i] = d.id
        assert.is_true(math.type(d.seq) == "integer", d.id)
      end
      assert.are.same({ "t/3/1", "t/3/2", "t/3", "t" }, order)
      assert.truthy(h.wait_until(eng, function()
        for _, id in ipairs(order) do
          if h.status(eng, id) ~= "cancelled" then return false end
        end
        return true
      end, 15000), "not all cancelled")
      assert.are.equal("failed", h.status(eng, "t/4"))
      -- a plain cancel still returns its seq; an unknown option raises
      assert.has_error(function() eng:cancel("t", "x", { forest = true }) end)
    end)

  it("finds children through the index, ids too long for one key included", function()
    local eng = h.open()
    local long = string.rep("p", 200)
    eng:define("kid", function() return 1 end)
    eng:define("dad", function(ctx)
      ctx:start("kid", 1, { id = string.rep("k", 200) .. "-1" })
      ctx:start("kid", 2, { id = string.rep("k", 200) .. "-2" })
      ctx:start("kid", 3) -- long/<n>: 204 bytes, still too long beside the parent
      return ctx:await(string.rep("k", 200) .. "-1")
    end)
    eng:start("dad", nil, { id = long })
    eng:start("kid", 9, { id = "orphan" }) -- no parent: nobody's child
    eng:run { until_idle = true }
    local kids = eng:children(long)
    assert.are.same({ string.rep("k", 200) .. "-1=completed",
      string.rep("k", 200) .. "-2=completed", long .. "/3=completed" }, ids_of(kids))
    assert.are.same({}, eng:children("orphan"))
    assert.are.same({}, eng:children("nobody"))
    -- a pruned child drops out of the list
    eng:prune { before_ms = eng:now() + 1, status = "completed" }
    assert.are.same({}, eng:children(long))
  end)

  it("lash tree draws it; lash cancel --tree cancels it from another process", function()
    local db = grown_db()
    local code, out, err = h.cli(db, "tree", "t")
    assert.are.equal(0, code, err)
    assert.are.equal(table.concat({
      "t  top  waiting",
      "├─ t/3  mid  waiting",
      "│  ├─ t/3/1  leaf  waiting",
      "│  └─ t/3/2  leaf  waiting",
      "└─ t/4  boom  failed",
    }, "\n") .. "\n", out)
    code, out = h.cli(db, "tree", "t", "--json")
    assert.are.equal(0, code)
    local j = cjson.decode(out)
    assert.are.equal("t/3/2", j.children[1].children[2].id)
    local nope_err
    code, out, nope_err = h.cli(db, "tree", "nope")
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("nope", nope_err)
    code, out, err = h.cli(db, "cancel", "--tree", "t", "enough", "--json")
    assert.are.equal(0, code, err)
    local reps = cjson.decode(out)
    assert.are.equal(4, #reps)
    assert.are.equal("t", reps[4].id)
    -- every live row of the tree has its request now
    local eng = h.open(db)
    for _, id in ipairs { "t", "t/3", "t/3/1", "t/3/2" } do
      assert.is_true(eng:get(id).cancel_requested, id)
    end
    assert.is_false(eng:get("t/4").cancel_requested)
  end)
end)

describe("lash show", function()
  after_each(h.cleanup)

  it("tells the parent, the children, the latest progress and when the wait ends", function()
    local db = grown_db()
    local code, out, err = h.cli(db, "show", "t")
    assert.are.equal(0, code, err)
    assert.matches("\nprogress +{\"note\":\"charging\",\"pct\":40}  %(event 3", out)
    assert.matches("\nwaits until +%d%d%d%d%-%d%d%-%d%d [%d:.]+ %(in 9m%)", out)
    assert.matches("\nchildren +2: 1 failed, 1 waiting\n +t/3  mid  waiting\n +t/4  boom  failed",
      out)
    out = select(2, h.cli(db, "show", "t/3/1"))
    assert.matches("\nparent +t/3  %(mid, waiting%)", out)
    out = select(2, h.cli(db, "show", "t", "--json"))
    local j = cjson.decode(out)
    assert.are.equal(40, j.progress.payload.pct)
    assert.are.same({ "t/3", "t/4" }, { j.children[1].id, j.children[2].id })
  end)

  it("prints a failure's whole message and its traceback", function()
    local db = grown_db()
    local code, out = h.cli(db, "show", "t/4")
    assert.are.equal(0, code)
    assert.matches("\noutcome +failed: [^\n]*kaboom: no luck  %(message below%)\n", out)
    assert.matches("\nmessage\n  [^\n]*kaboom: no luck\n  second line\n", out)
    assert.matches("\ntraceback\n  stack traceback:\n", out)
  end)

  it("says whether the lease's owner is alive: a live worker, then kill -9", function()
    local db = h.store_path()
    local dir = h.tmpdir()
    h.write_file(dir .. "/k.lua", [[
return { nap = function(ctx) ctx:sleep(60000) end }
]])
    local code = h.cli(db, "start", "nap", "null", "--id", "n1")
    assert.are.equal(0, code)
    local bin = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")
    local p = assert(io.popen(string.format("%s --db %s worker --load %s --owner w1 " ..
      ">%s/log 2>&1 </dev/null & echo $!", h.q(bin), h.q(db), h.q(dir .. "/k.lua"), h.q(dir))))
    local pid = tonumber(p:read("l"))
    p:close()
    local out
    assert.truthy(h.poll(function()
      local _
      _, out = h.cli(db, "show", "n1")
      return out:find("\nlease +held by w1")
    end, 15000), out)
    if h.pg then
      -- PostgreSQL: no owner lock to probe yet (advisory locks come with kv)
      assert.matches("\nowner +", out)
    else
      assert.matches("\nowner +alive %(it holds its owner lock%)", out)
    end
    assert.matches("expires [^\n]+%(in %d+s%)", out)
    h.kill(pid, "KILL")
    assert.truthy(h.wait_exit(pid, 10000))
    local _, after = h.cli(db, "show", "n1")
    if not h.pg then
      assert.matches("\nowner +gone %(its owner lock is free", after)
    end
    local _, js = h.cli(db, "show", "n1", "--json")
    assert.are.equal("w1", cjson.decode(js).lease.owner)
  end)
end)

describe("lash events --full", function()
  after_each(h.cleanup)

  it("prints payloads whole where the table cuts them", function()
    local db = h.store_path()
    local eng = h.open(db)
    local id = eng:start("anything", nil, { id = "e1" })
    local long = string.rep("abcdefghij", 30) -- 300 characters
    eng:signal(id, "note", { text = long })
    eng:close()
    local code, out = h.cli(db, "events", "e1")
    assert.are.equal(0, code)
    assert.is_nil(out:find(long, 1, true))
    assert.matches("%.%.%.", out)
    code, out = h.cli(db, "events", "e1", "--full")
    assert.are.equal(0, code)
    assert.matches("signal%.note", out)
    assert.truthy(out:find('\n    {"text":"' .. long .. '"}', 1, true), out)
  end)
end)
