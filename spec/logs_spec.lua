-- spec/logs_spec.lua - the worker's log (issue 14.1): real `lash worker`
-- processes write one line per notable moment (a failure with its kind, id,
-- attempt and the error's first line; a row taken over from a killed
-- worker), human or JSON (every line parses), --quiet and --verbose; and the
-- observer hook under it (eng:on_log) with its suspension summary.
local h = require "spec.helpers"
local cjson = require "cjson"


local KINDS = [[
return {
  boom = function() error("kaboom: the card was declined\nsecond line of the message") end,
  fine = function(_, input) return { ok = input } end,
  flaky = { function(ctx)
    if ctx.attempt == 1 then error("the first try fails\nsecond line") end
    return ctx.attempt
  end, { retry = { max_attempts = 3, initial_ms = 50 } } },
  nap = function(ctx, input)
    ctx:sleep(input and input.ms or 300)
    return { slept = true, attempt = ctx.attempt }
  end,
}
]]

local workers = {}

-- `lash --db DB worker --load KINDS ARGS...` in the background; its stdout
-- and stderr go to w.log.
local function worker(db, ...)
  local w = h.cli_worker(db, { "--load", h.kinds_file(KINDS), ... }, 15000)
  workers[#workers + 1] = w
  return w
end

local function start(db, kind, input, id)
  local code, out, err = h.cli(db, "start", kind, input or "null", "--id", id)
  assert(code == 0, "start failed: " .. err)
  return (out:gsub("%s+$", ""))
end

local function status(db, id)
  local code, out = h.cli(db, "show", id, "--json")
  if code ~= 0 then return nil end
  return cjson.decode(out).status
end

-- A store with worker "alpha" (lease TTL ttl) parked in row `id`'s long
-- sleep: db, that worker.
local function napping(id, ttl)
  local db = h.store_path()
  start(db, "fine", "1", "f-" .. id)
  local a = worker(db, "--owner", "alpha", "--lease-ttl", ttl)
  start(db, "nap", '{"ms":60000}', id)
  assert.truthy(h.poll(function() return status(db, id) == "waiting" end, 15000))
  return db, a
end

describe("worker logs", function()
  after_each(function()
    for _, w in ipairs(workers) do
      if h.alive(w.pid) then h.kill(w.pid, "KILL") end
    end
    workers = {}
    h.cleanup()
  end)

  it("say a failure in one human line: kind, id, attempt, the error's first line", function()
    local db = h.store_path()
    start(db, "fine", "1", "f-0") -- creates the store before the worker opens it
    local w = worker(db)
    assert.truthy(w.line("worker: .* on "), "no start line: " .. w.text())
    start(db, "boom", "null", "b-1")
    local line = w.line("failed boom b%-1")
    assert.truthy(line, "no failure line: " .. w.text())
    assert.matches("ERROR failed boom b%-1 %(attempt 1%): .*kaboom: the card was declined$", line)
    assert.is_nil(w.text():find("second line of the message", 1, true))
    -- the start and stop lines are there; a completion is not (normal level)
    h.kill(w.pid, "TERM")
    assert.are.equal(0, w.wait())
    assert.matches("worker: stopped", w.text())
    assert.is_nil(w.text():find("completed fine", 1, true))
  end)

  it("--log-format json writes one object per line, each of which parses", function()
    local db = h.store_path()
    start(db, "fine", "1", "f-1")
    local w = worker(db, "--log-format", "json", "--verbose")
    start(db, "boom", "null", "b-2")
    assert.truthy(w.line('"failed"'), w.text())
    assert.truthy(w.line('"completed"'), w.text())
    h.kill(w.pid, "TERM")
    assert.are.equal(0, w.wait())
    local lines = h.lines(w.log)
    assert.is_true(#lines >= 4, w.text())
    local failed, completed, stopped
    for _, l in ipairs(lines) do
      local ok, o = pcall(cjson.decode, l)
      assert.is_true(ok, "not JSON: " .. l)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", o.ts)
      assert.is_string(o.level)
      assert.is_string(o.event)
      if o.event == "failed" then failed = o end
      if o.event == "completed" and o.id == "f-1" then completed = o end
      if o.event == "worker" and tostring(o.msg):find("stopped") then stopped = o end
    end
    assert.truthy(failed, w.text())
    assert.are.same({ "b-2", "boom", 1, "error" },
      { failed.id, failed.kind, failed.attempt, failed.level })
    assert.matches("kaboom: the card was declined$", failed.error)
    assert.truthy(completed, w.text())
    assert.truthy(stopped, w.text())
  end)

  it("says a failed attempt that will be retried as a retry, with when", function()
    local db = h.store_path()
    start(db, "fine", "1", "f-r")
    local w = worker(db)
    start(db, "flaky", "null", "r-1")
    local line = w.line("attempt failed flaky r%-1")
    assert.truthy(line, w.text())
    assert.matches("WARN attempt failed flaky r%-1 %(attempt 1%): [^\n]*the first try fails, " ..
      "retry at %d%d%d%d%-%d%d%-%d%dT[%d:.]+Z$", line)
    assert.truthy(h.poll(function() return status(db, "r-1") == "completed" end, 15000))
    assert.is_nil(w.text():find("ERROR failed flaky", 1, true), w.text())
  end)

  it("--quiet keeps failures and drops the start and stop lines", function()
    local db = h.store_path()
    start(db, "fine", "1", "f-2")
    local w = worker(db, "--quiet")
    start(db, "boom", "null", "b-3")
    assert.truthy(w.line("failed boom b%-3"), w.text())
    h.kill(w.pid, "TERM")
    assert.are.equal(0, w.wait())
    -- (a warning stays: PostgreSQL without an owner lock says so)
    assert.is_nil(w.text():find(" INFO ", 1, true), w.text())
    assert.is_nil(w.text():find("worker: stopped", 1, true), w.text())
  end)

  it("says a row was taken over from a killed worker", function()
    -- (a short TTL, in case the owner's death is not seen)
    local db, a = napping("n-1", "2s")
    h.kill(a.pid, "KILL")
    a.wait()
    local b = worker(db, "--owner", "beta", "--lease-ttl", "2s")
    local line = b.line("took over n%-1")
    assert.truthy(line, b.text())
    -- Both backends see the owner's death (LMDB: its lock file, PostgreSQL:
    -- its advisory lock); a takeover that came after the TTL says so.
    if not line:find("INFO took over n-1 from gone owner alpha", 1, true) then
      assert.matches("INFO took over n%-1 from alpha %(its lease lapsed%)", line)
    end
  end)

  it("says a stopped worker lost its lease when it runs again", function()
    local db, a = napping("n-2", "1s")
    h.kill(a.pid, "STOP") -- alive (its owner lock held) but silent: the lease lapses
    local b = worker(db, "--owner", "beta", "--lease-ttl", "1s")
    assert.truthy(b.line("took over n%-2 from alpha %(its lease lapsed%)"), b.text())
    h.kill(a.pid, "CONT")
    local line = a.line("lease lost nap n%-2")
    assert.truthy(line, a.text())
    assert.matches("WARN lease lost nap n%-2 %(attempt 1%): its renewal was refused", line)
  end)

  it("formats each kind of line, retries included, in both formats", function()
    local log = require "lash.log"
    local got = {}
    local out = { write = function(_, ...) got[#got + 1] = table.concat({ ... }) end,
      flush = function() end }
    local at = 1796136661641
    local l = log.new { out = out, now = function() return at end, json = cjson.encode }
    l { type = "process.attempt_failed", id = "a", kind = "k", attempt = 2,
      error = "boom\nmore", retry_at = at + 1000 }
    l { type = "summary", suspended = 12, period_ms = 60000 }
    l { type = "storage", store = "/s", code = "EFULL", msg = "the map is full",
      todo = "restart the worker with a larger --map-size" }
    l { type = "finished", status = "completed", id = "d", kind = "k", attempt = 1 }
    assert.are.same({
      "2026-12-01T14:51:01.641Z WARN attempt failed k a (attempt 2): boom, " ..
        "retry at 2026-12-01T14:51:02.641Z\n",
      "2026-12-01T14:51:01.641Z INFO 12 suspensions in the last 60s\n",
      "2026-12-01T14:51:01.641Z ERROR storage error on /s: the map is full (EFULL): " ..
        "restart the worker with a larger --map-size\n",
    }, got)
    got = {}
    local j = log.new { out = out, format = "json", level = "quiet", now = function() return at end,
      json = cjson.encode }
    j { type = "process.attempt_failed", id = "a", kind = "k", attempt = 2, error = "boom" }
    j { type = "taken_over", id = "t", owner = "x", owner_gone = true } -- info: not at quiet
    assert.are.equal(1, #got)
    local o = cjson.decode(got[1])
    assert.are.same({ "retry", "warn", "a", 2, "boom" }, { o.event, o.level, o.id, o.attempt,
      o.error })
  end)

  it("refuses an unknown --log-format and --quiet with --verbose", function()
    local db = h.store_path()
    local code, _, err = h.cli(db, "worker", "--load", h.kinds_file(KINDS), "--log-format", "xml")
    assert.are.equal(2, code)
    assert.matches("%-%-log%-format takes human or json, got \"xml\"", err)
    code, _, err = h.cli(db, "worker", "--load", h.kinds_file(KINDS), "--quiet", "--verbose")
    assert.are.equal(2, code)
    assert.matches("exclude each other", err)
  end)

  describe("eng:on_log", function()
    it("hears a body's end after it is durable, with the decoded outcome", function()
      local eng = h.open()
      local seen = {}
      eng:on_log(function(ob) seen[#seen + 1] = ob end)
      eng:define("boom", function() error("no luck") end)
      local id = eng:start("boom", nil)
      eng:run { until_idle = true }
      assert.are.equal(1, #seen)
      local ob = seen[1]
      assert.are.same({ "finished", id, "boom", 1, "failed" },
        { ob.type, ob.id, ob.kind, ob.attempt, ob.status })
      assert.matches("no luck", ob.outcome.error.message)
      assert.are.equal("failed", h.status(eng, id))
    end)

    it("counts suspensions and reports them each summary period", function()
      local eng = h.open(nil, { suspend_after_ms = 0 })
      local seen = {}
      eng:on_log(function(ob) seen[#seen + 1] = ob end, { summary_ms = 100 })
      eng:define("waiter", function(ctx) return ctx:await_signal("go") end)
      for i = 1, 3 do eng:start("waiter", nil, { id = "w-" .. i }) end
      local summary
      h.wait_until(eng, function()
        for _, ob in ipairs(seen) do
          if ob.type == "summary" then summary = ob end
        end
        return summary
      end, 10000)
      assert.truthy(summary, "no summary")
      assert.are.equal(3, summary.suspended)
      assert.are.equal(100, summary.period_ms)
      local n = 0
      for _, ob in ipairs(seen) do if ob.type == "suspended" then n = n + 1 end end
      assert.are.equal(3, n)
    end)

    it("refuses a bad function or an unknown option", function()
      local eng = h.open()
      assert.has_error(function() eng:on_log(42) end)
      assert.has_error(function() eng:on_log(function() end, { every = 1 }) end)
      eng:on_log(nil) -- stops it
    end)
  end)
end)
