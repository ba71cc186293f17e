-- spec/retry_spec.lua - retries with backoff and delays (issue 13 items 1
-- and 2): a raising body under a retry policy waits, without a lease and
-- unlisted, for its next attempt; the recorded times follow the policy
-- (process.attempt_failed carries retry_at, computed in the failing
-- commit: retry_at - at is the backoff exactly, and no next attempt starts
-- before it); lash.fatal and retry = false fail at once; used-up attempts
-- fail with the last error; eng:retry / `lash retry` re-queue a failed row;
-- a delayed row is pending and no worker (another OS process, nor the
-- start's own engine) starts it before its time; bad input writes nothing.
local h = require "spec.helpers"
local lash = require "lash"

local function types(eng, id)
  local out = {}
  for _, ev in ipairs(assert(eng:events(id, 0))) do out[#out + 1] = ev.type end
  return out
end

local function settle(eng, id, ms)
  assert.is_truthy(h.wait_until(eng, function() return h.is_terminal(eng, id) end, ms or 20000),
    "row " .. id .. " did not end: " .. table.concat(types(eng, id), ", "))
  return eng:get(id)
end

local function spawn(dir, owner, log)
  local pid = h.spawn_worker("retry_worker", { dir, owner, log }, log)
  local ready = h.poll(function()
    for _, l in ipairs(h.lines(log)) do
      if l == owner .. " ready" then return true end
    end
    return not h.alive(pid) and "dead"
  end, 20000, 10)
  assert(ready == true, owner .. " did not start: " .. tostring(h.read_file(log)))
  return pid
end

describe("retries", function()
  after_each(h.cleanup)

  it("backoff follows the policy: retry_at - at is min(max_ms, initial_ms * factor^(n-1)); " ..
    "no attempt starts before it; completed steps are not run again", function()
    local eng = h.open(nil, { owner = "spec" })
    local steps, runs = 0, 0
    assert(eng:define("flaky", function(ctx)
      runs = runs + 1
      ctx:step("charge", function() steps = steps + 1 return "charged" end)
      if ctx.attempt < 4 then error("gateway down " .. ctx.attempt) end
      return "done"
    end, { retry = { max_attempts = 5, initial_ms = 40, factor = 3, max_ms = 200 } }))
    local id = assert(eng:start("flaky", { n = 1 }))
    local r = settle(eng, id)
    assert.are.equal("completed", r.status)
    assert.are.equal("done", r.outcome.value)
    assert.are.equal(4, runs)
    assert.are.equal(1, steps) -- the journal replays the step
    assert.are.equal(4, r.attempt.number)
    assert.are.equal(3, r.failures)
    local failed = h.events_of(eng, id, "process.attempt_failed")
    local started = h.events_of(eng, id, "process.started")
    assert.are.equal(3, #failed)
    assert.are.equal(4, #started)
    local want = { 40, 120, 200 }
    for i, ev in ipairs(failed) do
      assert.are.equal(i, ev.payload.attempt)
      assert.are.equal("process:" .. id .. ":attempt-failed:attempt:" .. i, ev.key)
      assert.are.equal(want[i], ev.payload.retry_at - ev.at)
      assert.truthy(ev.payload.error.message:find("gateway down " .. i, 1, true))
      assert.is_true(started[i + 1].at >= ev.payload.retry_at,
        "attempt " .. (i + 1) .. " started before its retry_at")
      assert.are.equal(i + 1, started[i + 1].payload.attempt)
      assert.is_nil(started[i + 1].payload.resumed)
    end
    assert.same({}, eng:check())
  end)

  it("while it waits the row is pending with no lease, shows its next attempt, and " ..
    "`lash show` says so", function()
    local dir = h.store_path()
    local eng = h.open(dir, { owner = "spec" })
    assert(eng:define("slowretry", function() error("not yet") end,
      { retry = { max_attempts = 3, initial_ms = 60000 } }))
    local id = assert(eng:start("slowretry", nil))
    assert.is_truthy(h.wait_until(eng, function()
      return #h.events_of(eng, id, "process.attempt_failed") == 1
    end, 20000))
    local r = eng:get(id)
    assert.are.equal("pending", r.status)
    assert.is_true(r.suspended)
    assert.are.equal(1, r.failures)
    local ev = h.events_of(eng, id, "process.attempt_failed")[1]
    assert.are.equal(ev.payload.retry_at, r.retry_at)
    assert.are.equal(60000, r.retry_at - ev.at)
    assert.are.equal(3, r.retry.max_attempts)
    -- nobody holds it: a claim by another owner succeeds at once
    eng:close()
    local code, out = h.cli(dir, "show", id)
    assert.are.equal(0, code)
    assert.truthy(out:find("retry%s+up to 3 attempts; backoff 1m x2"), out)
    assert.truthy(out:find("failures%s+1 attempt failed"), out)
    assert.truthy(out:find("next attempt%s+%d%d%d%d%-"), out)
  end)

  it("used-up attempts fail the row with the last error", function()
    local eng = h.open(nil, { owner = "spec" })
    assert(eng:define("always", function(ctx) error("bad " .. ctx.attempt) end,
      { retry = { max_attempts = 3, initial_ms = 5 } }))
    local id = assert(eng:start("always", nil))
    local r = settle(eng, id)
    assert.are.equal("failed", r.status)
    assert.truthy(r.outcome.error.message:find("bad 3", 1, true))
    assert.are.equal(2, #h.events_of(eng, id, "process.attempt_failed"))
    assert.are.equal(3, #h.events_of(eng, id, "process.started"))
  end)

  it("lash.fatal and an error table with retry = false fail at once", function()
    local eng = h.open(nil, { owner = "spec" })
    local policy = { retry = { max_attempts = 5, initial_ms = 5 } }
    assert(eng:define("fatal", function() lash.fatal("card declined") end, policy))
    assert(eng:define("table", function() error({ code = "declined", retry = false }) end, policy))
    for _, kind in ipairs({ "fatal", "table" }) do
      local id = assert(eng:start(kind, nil))
      local r = settle(eng, id)
      assert.are.equal("failed", r.status)
      assert.are.equal(0, #h.events_of(eng, id, "process.attempt_failed"))
      assert.are.equal(1, #h.events_of(eng, id, "process.started"))
    end
    local r = eng:get(assert(eng:list { kind = "fatal" })[1].id)
    assert.are.equal("card declined", r.outcome.error.message)
  end)

  it("no retries unless asked; start's policy wins over define's", function()
    local eng = h.open(nil, { owner = "spec" })
    assert(eng:define("plain", function() error("once") end))
    local id = assert(eng:start("plain", nil))
    assert.are.equal("failed", settle(eng, id).status)
    assert.are.equal(0, #h.events_of(eng, id, "process.attempt_failed"))
    local n = 0
    assert(eng:define("twice", function() n = n + 1 error("x") end,
      { retry = { max_attempts = 5, initial_ms = 1 } }))
    id = assert(eng:start("twice", nil, { retry = { max_attempts = 2, initial_ms = 1 } }))
    assert.are.equal("failed", settle(eng, id).status)
    assert.are.equal(2, n)
  end)

  it("a worker retries under its define's policy a row started elsewhere without one",
    function()
    local dir = h.store_path()
    local log = h.tmpdir() .. "/log"
    local eng = h.open(dir, { owner = "spec" }) -- defines nothing
    spawn(dir, "w1", log)
    local id = assert(eng:start("flaky", nil))
    assert.is_truthy(h.poll(function() return h.is_terminal(eng, id) end, 20000, 20))
    local r = eng:get(id)
    assert.are.equal("completed", r.status, h.read_file(log))
    assert.are.equal(2, r.attempt.number)
    -- The row carries the kind's stored definition when the worker's define
    -- reached the store before this start (kinds in the store), else none
    -- and the worker's define applies: the same policy either way.
    if r.retry ~= nil then assert.are.equal(3, r.retry.max_attempts) end
    assert.are.equal(1, #h.events_of(eng, id, "process.attempt_failed"))
  end)

  it("retries do not use up max_attempts (crash re-runs)", function()
    local eng = h.open(nil, { owner = "spec" })
    assert(eng:define("budget", function(ctx)
      if ctx.attempt < 3 then error("again") end
      return ctx.attempt
    end, { max_attempts = 1, retry = { max_attempts = 3, initial_ms = 1 } }))
    local id = assert(eng:start("budget", nil))
    local r = settle(eng, id)
    assert.are.equal("completed", r.status)
    assert.are.equal(3, r.outcome.value)
  end)

  it("eng:retry and `lash retry` re-queue a failed row as a new attempt; other statuses " ..
    "are refused naming them", function()
    local dir = h.store_path()
    local eng = h.open(dir, { owner = "spec" })
    local ok = false
    assert(eng:define("flip", function()
      if not ok then error("not now") end
      return "fine"
    end))
    local id = assert(eng:start("flip", nil))
    assert.are.equal("failed", settle(eng, id).status)
    ok = true
    local seq = assert(eng:retry(id))
    local ev = h.events_of(eng, id, "process.retried")[1]
    assert.are.equal(seq, ev.seq)
    assert.are.equal(1, ev.payload.attempt)
    local r = settle(eng, id)
    assert.are.equal("completed", r.status)
    assert.are.equal(2, r.attempt.number)
    h.fails("EINVAL", "completed", eng:retry(id))
    local live = assert(eng:start("elsewhere", nil))
    h.fails("EINVAL", "pending", eng:retry(live))
    h.fails("ENOENT", nil, eng:retry("no-such-row"))
    -- the CLI, on a second failed row
    ok = false
    local id2 = assert(eng:start("flip", nil))
    assert.are.equal("failed", settle(eng, id2).status)
    eng:close()
    local code, out, err = h.cli(dir, "retry", id2)
    assert.are.equal(0, code, err)
    assert.truthy(out:find(id2 .. ": retried (event ", 1, true), out)
    local err2
    code, out, err2 = h.cli(dir, "retry", id)
    assert.are.equal(1, code, out)
    err = err2
    assert.truthy(err:find("completed", 1, true), err)
    eng = h.open(dir, { owner = "spec2" })
    ok = true
    assert(eng:define("flip", function()
      if not ok then error("not now") end
      return "fine"
    end))
    assert.are.equal("completed", settle(eng, id2).status)
  end)
end)

describe("delays", function()
  after_each(h.cleanup)

  it("a delayed row is pending, and neither another worker process nor the start's own " ..
    "engine starts it before its time", function()
    local dir = h.store_path()
    local log = h.tmpdir() .. "/log"
    local eng = h.open(dir, { owner = "spec" })
    local ran_here = {}
    assert(eng:define("later", function(ctx)
      ran_here[ctx.id] = eng:now()
      return "spec"
    end))
    spawn(dir, "w1", log)
    local a = assert(eng:start("later", nil, { delay_ms = 1500 }))
    local b = assert(eng:start("later", nil, { run_at = eng:now() + 1500 }))
    for _, id in ipairs({ a, b }) do
      local r = eng:get(id)
      assert.are.equal("pending", r.status)
      assert.is_true(r.suspended)
      assert.is_true(r.run_at >= r.created_at + 1500 - 50) -- one clock, read twice
    end
    for _, id in ipairs({ a, b }) do
      local r = settle(eng, id)
      assert.are.equal("completed", r.status)
      local st = h.events_of(eng, id, "process.started")
      assert.are.equal(1, #st)
      assert.is_true(st[1].at >= r.run_at, "started before its time")
      if ran_here[id] then assert.is_true(ran_here[id] >= r.run_at) end
      for _, l in ipairs(h.lines(log)) do
        local rid, at = l:match("^w1 run (%S+) (%d+)$")
        if rid == id then assert.is_true(tonumber(at) >= r.run_at, "w1 ran it early") end
      end
    end
    -- a time already past runs at once
    local c = assert(eng:start("later", nil, { run_at = 1000 }))
    assert.is_false(eng:get(c).suspended)
    assert.are.equal("completed", settle(eng, c).status)
  end)

  it("`lash start --delay` / `--at` store the time; `lash show` shows it", function()
    local dir = h.store_path()
    h.open(dir):close()
    local code, out, err = h.cli(dir, "start", "k", "--delay", "5s")
    assert.are.equal(0, code, err)
    local id = out:match("^(%S+)")
    code, out = h.cli(dir, "show", id)
    assert.are.equal(0, code)
    assert.truthy(out:find("delayed until%s+%d%d%d%d%-%d%d%-%d%d .-%(in %d+s%)"), out)
    code, out, err = h.cli(dir, "start", "k", "--at", "2036-12-24T18:00Z", "--json")
    assert.are.equal(0, code, err)
    local eng = h.open(dir)
    local r = eng:get(out:match('"id":"([^"]+)"'))
    assert.are.equal(2113754400000, r.run_at) -- 2036-12-24T18:00:00Z
    code, out = h.cli(dir, "start", "k", "--at", "2036-12-24T19:00+01:00", "--json")
    assert.are.equal(0, code)
    assert.are.equal(r.run_at, eng:get(out:match('"id":"([^"]+)"')).run_at)
  end)
end)

describe("bad input", function()
  after_each(h.cleanup)

  it("is a clear error naming the field, and writes nothing", function()
    local dir = h.store_path()
    local eng = h.open(dir)
    local cases = {
      { { delay_ms = -1 }, "delay_ms" },
      { { delay_ms = 5, run_at = 10 }, "delay_ms and run_at" },
      { { run_at = "tomorrow" }, "run_at" },
      { { run_at = -5 }, "run_at" },
      { { retry = { max_attempts = 0 } }, "retry.max_attempts" },
      { { retry = { initial_ms = 5 } }, "retry.max_attempts" },
      { { retry = { max_attempts = 3, initial_ms = -1 } }, "retry.initial_ms" },
      { { retry = { max_attempts = 3, factor = 0.5 } }, "retry.factor" },
      { { retry = { max_attempts = 3, jitter = 2 } }, "retry.jitter" },
      { { retry = { max_attempts = 3, max_ms = -2 } }, "retry.max_ms" },
    }
    for _, c in ipairs(cases) do
      h.fails("EINVAL", c[2], eng:start("k", nil, c[1]))
    end
    h.fails("EINVAL", "retry.jitter", eng:define("k", function() end,
      { retry = { max_attempts = 2, jitter = -1 } }))
    assert.is_false(pcall(eng.start, eng, "k", nil, { retry = { max_attempt = 3 } }))
    assert.is_false(pcall(eng.start, eng, "k", nil, { retry = 3 }))
    assert.is_false(pcall(eng.start, eng, "k", nil, { delay_ms = 1.5 }))
    assert.are.equal(0, h.count_rows(eng))
    eng:close()
    for _, args in ipairs({ { "--delay", "-1s" }, { "--at", "2026-12-24 18:00" },
      { "--at", "2026-13-01T00:00Z" }, { "--delay", "1s", "--at", "2026-12-24T18:00Z" },
      { "--retry", "0" }, { "--retry", "[1]" }, { "--retry", '{"max_attempts":2,"factor":0}' } }) do
      local code, _, err = h.cli(dir, "start", "k", table.unpack(args))
      assert.are.equal(2, code, table.concat(args, " ") .. ": " .. err)
    end
    eng = h.open(dir)
    assert.are.equal(0, h.count_rows(eng))
  end)
end)

describe("unique keys", function()
  after_each(h.cleanup)

  it("a second start while the holder is live returns its id and writes nothing; after " ..
    "its end a new row takes the key, unless within unique_for_ms (await: its outcome)", function()
    local eng = h.open(nil, { owner = "spec" })
    local a = assert(eng:start("u", 1, { unique_key = "cust-1" }))
    local seq = eng:get(a).last_seq
    assert.are.equal(a, assert(eng:start("u", 2, { unique_key = "cust-1" })))
    assert.are.equal(1, h.count_rows(eng))
    assert.are.equal(seq, eng:get(a).last_seq)
    assert.are.equal("cust-1", eng:get(a).unique_key)
    assert(eng:complete(a, { status = "completed", value = "one" }, { authority = "workflow" }))
    local b = assert(eng:start("u", 3, { unique_key = "cust-1" }))
    assert.are_not.equal(a, b)
    local c = assert(eng:start("u", 4, { unique_key = "cust-2", unique_for_ms = 60000 }))
    assert(eng:complete(c, { status = "completed", value = "two" }, { authority = "workflow" }))
    local d = assert(eng:start("u", 5, { unique_key = "cust-2", unique_for_ms = 60000 }))
    assert.are.equal(c, d)
    assert.are.equal("two", eng:await(d, { timeout_ms = 1000 }).value)
    assert.are.equal(3, h.count_rows(eng))
    h.fails("EINVAL", "unique_for_ms", eng:start("u", 1, { unique_for_ms = 5 }))
    h.fails("EINVAL", "unique_key", eng:start("u", 1, { unique_key = "" }))
    assert.are.equal(3, h.count_rows(eng))
  end)

  it("`lash start --unique-key K [--unique-for D]` prints the holder's id and creates nothing; " ..
    "a bad flag is a usage error", function()
    local dir = h.store_path()
    h.open(dir):close()
    local code, out, err = h.cli(dir, "start", "u", "1", "--unique-key", "cust-9")
    assert.are.equal(0, code, err)
    local a = out:match("^(%S+)")
    code, out, err = h.cli(dir, "start", "u", "2", "--unique-key", "cust-9", "--unique-for", "1m")
    assert.are.equal(0, code, err)
    assert.are.equal(a, out:match("^(%S+)"))
    local eng = h.open(dir)
    assert.are.equal(1, h.count_rows(eng))
    assert(eng:complete(a, { status = "completed", value = "one" }, { authority = "workflow" }))
    eng:close()
    -- ended: a new row takes the key (the first start had no window)
    code, out, err = h.cli(dir, "start", "u", "3", "--unique-key", "cust-9", "--unique-for", "1m")
    assert.are.equal(0, code, err)
    local b = out:match("^(%S+)")
    assert.are_not.equal(a, b)
    eng = h.open(dir)
    assert(eng:complete(b, { status = "completed", value = "two" }, { authority = "workflow" }))
    eng:close()
    -- within b's window: b's id, though ended (not "already completed")
    code, out, err = h.cli(dir, "start", "u", "4", "--unique-key", "cust-9")
    assert.are.equal(0, code, err)
    assert.are.equal(b, out:match("^(%S+)"))
    local _
    code, _, err = h.cli(dir, "start", "u", "--unique-for", "1m")
    assert.are.equal(2, code)
    assert.truthy(err:find("--unique-key", 1, true), err)
    code, _, err = h.cli(dir, "start", "u", "--unique-key", "k", "--unique-for", "soon")
    assert.are.equal(2, code)
    assert.truthy(err:find("--unique-for", 1, true), err)
    eng = h.open(dir)
    assert.are.equal(2, h.count_rows(eng))
  end)

  it("4 racing producer OS processes dedupe exactly", function()
    local dir = h.store_path()
    local tmp = h.tmpdir()
    local log, go, K = tmp .. "/log", tmp .. "/go", 50
    h.open(dir):close()
    local pids = {}
    for i = 1, 4 do
      pids[i] = h.spawn_worker("unique_producer", { dir, "p" .. i, log, go, tostring(K) }, log)
    end
    assert.is_truthy(h.poll(function()
      local n = 0
      for _, l in ipairs(h.lines(log)) do if l:match("^p%d ready$") then n = n + 1 end end
      return n == 4
    end, 30000, 10), h.read_file(log))
    h.write_file(go, "go")
    for _, pid in ipairs(pids) do assert.is_true(h.wait_exit(pid, 60000)) end
    local by_key, lines = {}, 0
    for _, l in ipairs(h.lines(log)) do
      local key, id = l:match("^p%d (key%-%d+) (%S+)$")
      if key then
        lines = lines + 1
        by_key[key] = by_key[key] or id
        assert.are.equal(by_key[key], id, key .. " got two ids")
      end
    end
    assert.are.equal(4 * K, lines, h.read_file(log))
    local eng = h.open(dir)
    local rows = assert(eng:list { kind = "u" })
    assert.are.equal(K, #rows)
    for _, r in ipairs(rows) do assert.are.equal(r.id, by_key[r.unique_key]) end
  end)
end)
