-- spec/suspend_spec.lua - suspended processes (issue 9 item 4, Tests): with
-- suspend_after_ms = 0 a parked body leaves memory and its lease; its row
-- stays `waiting`, shows `suspended` and what would wake it, costs no write
-- while idle, and is resumed by whichever worker defines the kind when its
-- wake fires: a signal, or a timer that came due while no worker ran. Real OS
-- processes (spec/workers/suspender.lua); the first worker is killed with
-- SIGKILL before the second one (which did not start the rows) resumes them.
-- 2,000 rows here to keep it short (scripts/bench engine: 100,000).
local h = require "spec.helpers"

local N = tonumber(os.getenv("LASH_SUSPEND_ROWS") or "2000")

-- LMDB's last transaction id of the store at dir (every commit of every
-- process moves it), or nil on PostgreSQL.
local function last_txn(dir)
  if h.pg then return nil end
  local p = assert(io.popen("mdb_stat -e " .. h.q(dir) .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("Last transaction ID: (%d+)")), out
end

-- The last "<owner> commits <n>" of the log.
local function commits_logged(log, owner)
  local n
  for _, l in ipairs(h.lines(log)) do
    local o, c = l:match("^(%S+) commits (%d+)$")
    if o == owner then n = tonumber(c) end
  end
  return n
end

local function runs_by(log, owner)
  local out = {}
  for _, l in ipairs(h.lines(log)) do
    local o, id = l:match("^(%S+) run (%S+)$")
    if o == owner then out[#out + 1] = id end
  end
  return out
end

local function spawn(dir, owner, log, n)
  local pid = h.spawn_worker("suspender", { dir, owner, log, n and tostring(n) }, log)
  local ready = h.poll(function()
    for _, l in ipairs(h.lines(log)) do
      if l == owner .. " ready" then return true end
    end
    return not h.alive(pid) and "dead"
  end, 10000, 10)
  assert(ready == true, owner .. " did not start: " .. tostring(h.read_file(log)))
  return pid
end

local function kill(pid)
  h.kill(pid, "KILL")
  assert(h.wait_exit(pid, 5000))
end

describe("suspended processes", function()
  after_each(h.cleanup)

  it(N .. " waiters suspended in one worker: no writes while idle; after its kill -9 a " ..
    "worker that did not start them resumes the one signalled, and a timer that came due " ..
    "while no worker ran", function()
    local dir = h.store_path()
    local log = h.tmpdir() .. "/log"
    local eng = h.open(dir, { owner = "spec" }) -- defines nothing
    local w1 = spawn(dir, "w1", log, N)

    -- every row waiting, suspended, and what wakes it is the signal
    local all = h.poll(function()
      local n = 0
      for _, r in ipairs(assert(eng:list { kind = "waiter", status = "waiting" })) do
        if r.suspended == true then n = n + 1 end
      end
      return n == N
    end, 60000, 100)
    assert.is_truthy(all, "not all " .. N .. " rows suspended: " .. tostring(h.read_file(log)))
    local r = eng:get("w-1")
    assert.are.equal("waiting", r.status)
    assert.is_true(r.suspended)
    assert.are.same("signal.go", r.wake and r.wake.event)
    local code, out = h.cli(dir, "show", "w-7")
    assert.are.equal(0, code)
    assert.is_truthy(out:find("suspended", 1, true), "lash show: " .. out)
    assert.is_truthy(out:find("signal[.:]go"), "lash show names no wake: " .. out)
    local st = eng:stats()
    assert.are.equal(N, st.suspended, "stats().suspended")

    -- idle: no commit at all over 3 s (leases of 900 ms would be renewed 10 times)
    h.sleep_ms(300) -- the last suspensions' commits land
    local txn0, seq0, c0 = last_txn(dir), eng:stats().change_seq, commits_logged(log, "w1")
    h.sleep_ms(3000)
    local txn1, seq1, c1 = last_txn(dir), eng:stats().change_seq, commits_logged(log, "w1")
    assert.are.equal(seq0, seq1, "change_seq moved while idle")
    assert.are.equal(c0, c1, "the worker committed while idle")
    if txn0 then assert.are.equal(txn0, txn1, "the store committed while idle") end
    assert.is_truthy(h.alive(w1))

    -- a sleeping row, suspended with its wake_at; the worker dies before it
    assert(eng:start("napper", { ms = 800 }, { id = "nap" }))
    assert.is_truthy(h.poll(function()
      local n = eng:get("nap")
      return n.suspended == true and n.wake and n.wake.at
    end, 10000, 10), "the napper did not suspend")
    local wake_at = eng:get("nap").wake.at
    kill(w1)
    h.sleep_ms(math.max(0, wake_at + 300 - h.now_ms()))
    assert.are.equal("waiting", h.status(eng, "nap"))

    -- a second worker process: the timer fires there
    local w2 = spawn(dir, "w2", log)
    assert.is_truthy(h.poll(function() return h.is_terminal(eng, "nap") end, 10000, 10),
      "the due timer did not fire in the new worker")
    local nap = eng:get("nap")
    assert.are.equal("completed", nap.status)
    assert.are.same({ by = "w2" }, nap.outcome.value)

    -- signalling any one resumes it there
    math.randomseed(os.time())
    local k = math.random(1, N)
    local id = "w-" .. k
    assert(eng:signal(id, "go", k))
    assert.is_truthy(h.poll(function() return h.is_terminal(eng, id) end, 10000, 5),
      id .. " was not resumed")
    local done = eng:get(id)
    assert.are.equal("completed", done.status)
    assert.are.same({ by = "w2", got = k }, done.outcome.value)
    assert.is_falsy(done.suspended)

    -- and nothing else: the others stay suspended, w2 ran no other body
    h.sleep_ms(500)
    local ran = runs_by(log, "w2")
    table.sort(ran)
    local want = { "nap", id }
    table.sort(want)
    assert.are.same(want, ran)
    local other = "w-" .. (k % N + 1)
    assert.are.equal("waiting", h.status(eng, other))
    assert.is_true(eng:get(other).suspended)
    assert.are.equal(N - 1, #assert(eng:list { kind = "waiter", status = "waiting" }))
    kill(w2)
    local ccode, cout, cerr = h.cli(dir, "check")
    assert.are.equal(0, ccode, cout .. cerr)
  end)

  it("the options are checked: max_cached and suspend_after_ms take non-negative integers",
    function()
      local eng = h.open(nil, { max_cached = 10, suspend_after_ms = 0 })
      assert.is_truthy(eng)
      h.refuses(function() return require("lash").open(h.store_path(), { max_cached = -1 }) end,
        "max_cached")
      h.refuses(function()
        return require("lash").open(h.store_path(), { suspend_after_ms = "soon" })
      end, "suspend_after_ms")
    end)

  it("a body parked past suspend_after_ms is suspended; before it, it stays in memory",
    function()
      local eng = h.open(nil, { suspend_after_ms = 300 })
      local runs = 0
      eng:define("w", function(ctx)
        runs = runs + 1
        return ctx:await_signal("go")
      end)
      local id = assert(eng:start("w", nil, { id = "lazy" }))
      assert.is_truthy(h.park(eng, id))
      assert.is_falsy(eng:get(id).suspended)
      assert.is_truthy(h.wait_until(eng, function() return eng:get(id).suspended end, 5000),
        "not suspended after 300 ms")
      assert(eng:signal(id, "go", "yes"))
      local out = eng:await(id, { timeout_ms = 5000 })
      assert.are.equal("completed", out.status)
      assert.are.equal("yes", out.value)
      assert.are.equal(2, runs, "the resume replays the body from the top")
    end)
end)
