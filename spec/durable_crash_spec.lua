-- spec/durable_crash_spec.lua - kill -9 at random points of a durable body
-- (issue 9, Tests). The 20-step body "flow" of spec/workers/durable_kinds.lua
-- (steps, two children, two sleeps, a signal, emits, a uuid) runs in worker
-- OS processes (spec/workers/durable.lua, leases of 600 ms; owner liveness
-- makes the next worker take over at once); each round starts new rows,
-- starts a worker and kills it with SIGKILL after a random delay; a last
-- worker finishes everything. Then, for every row:
-- - each step's function ran exactly once, except that the steps a killed
--   worker ran after its last commit repeat (a step's entry joins the next
--   group commit, so a crash before it repeats the steps since the previous
--   one: docs/lua-api.md, ctx:step): the repeated first runs are the tail of
--   the killed worker's lines for that row;
-- - no two events share a replay key (eng:events and `lash events --json`);
--   every journal event exists once; exactly two children;
-- - the outcome is the one of a crash-free run of the same input;
-- and `lash check` is clean.
local h = require "spec.helpers"
local K = require "spec.workers.durable_kinds"
local core = require "lash.core"

local ROUNDS = tonumber(os.getenv("LASH_CRASH_ROUNDS") or "50")
local PER_ROUND = 3
local TTL = 600
local SEED = tonumber(os.getenv("LASH_CRASH_SEED") or "") or os.time()

local function spawn(dir, ledger, owner) return K.spawn(dir, ledger, owner, TTL) end
local kill = K.kill

-- The ledger's step lines checked against the rule above; returns the
-- number of allowed repeats seen.
local function check_ledger(ledger, ids, killed)
  local per = {} -- id -> array of {owner, step}
  for _, w in ipairs(K.read(ledger)) do
    if w[2] == "step" then
      local l = per[w[3]] or {}
      l[#l + 1] = { owner = w[1], step = w[4] }
      per[w[3]] = l
    end
  end
  local repeats = 0
  for _, id in ipairs(ids) do
    local lines = assert(per[id], id .. " ran no step")
    local last_of = {} -- owner -> index of its last line for this row
    for i, l in ipairs(lines) do last_of[l.owner] = i end
    -- repeated[i]: the step of line i runs again later, by another owner
    local repeated = {}
    for i, l in ipairs(lines) do
      for j = i + 1, #lines do
        if lines[j].step == l.step and lines[j].owner ~= l.owner then
          repeated[i] = true
          break
        end
      end
    end
    local seen = {}
    for i, l in ipairs(lines) do
      local prev = seen[l.step]
      if prev then
        local p = lines[prev]
        -- every later line of that worker for this row repeats too: the
        -- repeats are what it did after its last commit
        local tail = true
        for k = prev + 1, last_of[p.owner] do
          if lines[k].owner == p.owner and not repeated[k] then tail = false end
        end
        assert.is_truthy(tail and killed[p.owner] and p.owner ~= l.owner,
          ("%s: step %s ran again (line %d by %s, first by %s) though its first run was not "
            .. "in the tail of a killed worker's side effects (seed %d)"):format(id, l.step, i,
            l.owner, p.owner, SEED))
        repeats = repeats + 1
      end
      seen[l.step] = i
    end
    for k = 1, K.FLOW_STEPS do
      assert.is_truthy(seen["s" .. k], id .. ": step s" .. k .. " never ran")
    end
  end
  return repeats
end

-- The outcome of a crash-free run of the flow body, in a store of its own
-- (this process), with ids relative to the row.
local function crash_free(input)
  local eng = h.open(nil)
  K.define(eng, h.tmpdir() .. "/ledger", "clean")
  local id = assert(eng:start("flow", input, { id = "ref" }))
  assert(eng:signal(id, "go", { round = input.round }))
  local out = eng:await(id, { timeout_ms = 10000 })
  assert.are.equal("completed", out.status, tostring(out.error and out.error.message))
  local v = out.value
  eng:close()
  return v
end

local function relative(v, id)
  local c = {}
  for i, x in ipairs(v.children) do c[i] = x:gsub("^" .. id:gsub("%p", "%%%0"), "") end
  return { sum = v.sum, sig = v.sig, leaves = v.leaves, children = c }
end

describe("kill -9 at random points of a durable body", function()
  after_each(h.cleanup)

  it(ROUNDS .. " rounds: every step once (but a crash between effect and commit), no " ..
    "duplicate event, the crash-free outcome, lash check clean", function()
    math.randomseed(SEED)
    local dir = h.store_path()
    local ledger = h.tmpdir() .. "/ledger"
    local eng = h.open(dir, { owner = "spec" }) -- defines nothing: only starts and signals
    local ids, killed = {}, {}
    for round = 1, ROUNDS do
      for j = 1, PER_ROUND do
        local id = ("f%02d-%d"):format(round, j)
        assert(eng:start("flow", { mul = j, round = round }, { id = id }))
        assert(eng:signal(id, "go", { round = round }))
        ids[#ids + 1] = id
      end
      local owner = "w" .. round
      local pid = spawn(dir, ledger, owner)
      h.sleep_ms(math.random(0, 150))
      kill(pid)
      killed[owner] = true
    end
    local last = spawn(dir, ledger, "last")
    local all = h.poll(function()
      for _, id in ipairs(ids) do
        if not h.is_terminal(eng, id) then return false end
      end
      return true
    end, 40000, 50)
    kill(last)
    assert.is_truthy(all,
      "rows still live 40 s after the last worker started (seed " .. SEED .. ")")

    local repeats = check_ledger(ledger, ids, killed)
    local ref = relative(crash_free({ mul = 1, round = 0 }), "ref")
    local cli_sample, rerun = {}, 0
    local leaves = assert(eng:list { kind = "leaf" })
    assert.are.equal(2 * #ids, #leaves, "leaf rows")
    for i, id in ipairs(ids) do
      local r = eng:get(id)
      local err = r.outcome and r.outcome.error
      assert.are.equal("completed", r.status,
        id .. " ended " .. r.status .. ": " .. tostring(err and err.message))
      local v, input = r.outcome.value, r.input
      local want = K.flow_expected(id, input)
      assert.are.same(want, { sum = v.sum, sig = v.sig, leaves = v.leaves, id = v.id })
      local rel = relative(v, id)
      assert.are.same(ref.children, rel.children, id .. ": children at other ordinals")
      assert.are.same(ref.leaves, rel.leaves)
      -- events: keys unique, journal events once each
      local keys, n = {}, {}
      for _, ev in ipairs(assert(eng:events(id))) do
        if ev.key then
          assert.is_nil(keys[ev.key], id .. ": two events with key " .. ev.key)
          keys[ev.key] = ev.seq
        end
        n[ev.type] = (n[ev.type] or 0) + 1
      end
      assert.are.equal(K.FLOW_STEPS, n["process.step"], id .. ": process.step events")
      assert.are.equal(2, n["process.child"], id .. ": process.child events")
      assert.are.equal(2, n["process.sleep"], id .. ": process.sleep events")
      assert.are.equal(2, n["mark"], id .. ": mark events")
      assert.are.equal(1, n["token"], id .. ": token events")
      assert.are.equal(v.uuid, h.events_of(eng, id, "token")[1].payload.uuid,
        id .. ": the uuid of the outcome is not the one emitted")
      local kids = 0
      for _, c in ipairs(v.children) do
        local rec = assert(eng:get(c))
        assert.are.equal(id, rec.parent, c .. ": parent")
        kids = kids + 1
      end
      local prefix = id .. "/"
      for _, c in ipairs(leaves) do
        if c.id:sub(1, #prefix) == prefix then kids = kids - 1 end
      end
      assert.are.equal(0, kids, id .. ": children other than the outcome's two")
      if #h.events_of(eng, id, "process.started") > 1 then rerun = rerun + 1 end
      if i % 25 == 1 then cli_sample[#cli_sample + 1] = id end
    end
    for _, id in ipairs(cli_sample) do
      local code, out, err = h.cli(dir, "events", id, "--json")
      assert.are.equal(0, code, err)
      local ok, list = core.json_decode(out)
      assert(ok, "lash events --json: " .. tostring(list))
      local keys = {}
      for _, ev in ipairs(list) do
        if ev.key then
          assert.is_nil(keys[ev.key], id .. ": lash events shows key " .. ev.key .. " twice")
          keys[ev.key] = true
        end
      end
      assert.is_truthy(keys["cmd:1"], id .. ": lash events shows no replay keys")
    end
    local code, out, err = h.cli(dir, "check")
    assert.are.equal(0, code, "lash check: " .. out .. err)
    io.stderr:write(("[durable crash] seed %d, %d rows, %d re-run after a kill, %d step "
      .. "repeats after a crash\n"):format(SEED, #ids, rerun, repeats))
    -- the test tests something: kills landed mid-body
    assert.is_truthy(rerun >= math.max(1, ROUNDS // 5),
      "only " .. rerun .. " rows were interrupted by a kill")
  end)
end)
