-- spec/cron_spec.lua - durable cron schedules (issue 13, item 3) with real
-- worker OS processes (spec/workers/cron.lua): one child per tick exactly
-- once across 4 workers, also when one is kill -9'd mid-run; catch-up after
-- a pause (SIGSTOP); bad input names the field and writes nothing; the CLI.
-- Runs on LMDB and, with LASH_TEST_TARGET, on PostgreSQL.
local h = require "spec.helpers"
local lash = require "lash"

-- "2026-12-01T14:00:05Z" for epoch seconds.
local function iso(sec)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", sec)
end

-- Starts n cron workers; returns pids, logs, the stop file. Waits until each
-- logged "ready".
local function workers(dir, n, ttl)
  local tmp = h.tmpdir()
  local stop = tmp .. "/stop"
  local pids, logs = {}, {}
  for w = 1, n do
    logs[w] = tmp .. "/w" .. w .. ".log"
    pids[w] = h.spawn_worker("cron", { dir, "cron-" .. w, logs[w], stop, tostring(ttl or 1500) },
      logs[w])
  end
  assert.is_truthy(h.poll(function()
    for w = 1, n do
      if #h.lines(logs[w]) < 1 then return false end
    end
    return true
  end, 60000, 20), "the workers did not start")
  return pids, logs, stop
end

-- Ends the workers that are still alive (touching the stop file).
local function stop_workers(pids, stop)
  h.write_file(stop, "")
  for _, pid in ipairs(pids) do h.wait_exit(pid, 30000) end
end

-- id -> number of bodies run, from the logs.
local function runs_of(logs)
  local runs = {}
  for _, l in ipairs(logs) do
    for _, line in ipairs(h.lines(l)) do
      local id = line:match("^run (%S+) %S+$")
      if id then runs[id] = (runs[id] or 0) + 1 end
    end
  end
  return runs
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("cron schedules", function()
  after_each(h.cleanup)

  it("4 workers start exactly one child per tick for 10 ticks, also when one is kill -9'd",
    function()
      local dir = h.store_path()
      local eng = h.open(dir)
      local pids, logs, stop = workers(dir, 4)
      -- Ten ticks, one a second, from a few seconds ahead, inside one
      -- minute: the spec's seconds field lists exactly them.
      local first = h.now_ms() // 1000 + 4
      local d = os.date("!*t", first)
      if d.sec > 50 then
        first = first + 60 - d.sec
        d = os.date("!*t", first)
      end
      local spec = string.format("%d-%d %d %d %d %d *", d.sec, d.sec + 9, d.min, d.hour, d.day,
        d.month)
      -- catch_up "all": a tick a worker reaches late (a loaded machine) is
      -- still started; the default "skip" would drop it by design
      assert.are.same({ true, "created" },
        { eng:schedule("every", spec, "tick", { n = 1 }, { catch_up = "all" }) })
      local want = {}
      for i = 0, 9 do want["every@" .. iso(first + i)] = true end
      -- one worker killed after the first five children ran
      assert.is_truthy(h.poll(function() return count(runs_of(logs)) >= 5 end, 60000, 10),
        "five ticks did not run")
      h.kill(pids[1], "KILL")
      local done = h.poll(function()
        for id in pairs(want) do
          local r = eng:get(id)
          if not r or r.status ~= "completed" then return false end
        end
        return true
      end, 90000, 50)
      assert.is_truthy(done, "the ten children did not all complete")
      stop_workers(pids, stop)
      local rows = assert(eng:list { kind = "tick" })
      local got = {}
      for _, r in ipairs(rows) do
        got[r.id] = true
        assert.are.equal(1, #h.events_of(eng, r.id, "process.completed"), r.id)
        assert.are.same({ n = 1 }, r.input)
      end
      assert.are.same(want, got)
      local runs = runs_of(logs)
      for id in pairs(want) do assert.is_truthy((runs[id] or 0) >= 1, id .. " never ran") end
      local sc = assert(eng:schedules())[1]
      assert.are.equal(10, sc.started)
      -- the next tick is next year's
      assert.is_truthy(sc.next_at == nil or sc.next_at > (first + 9) * 1000)
      assert.are.same({}, eng:check())
    end)

  it("catches up after a pause: all starts each missed tick, skip none of them", function()
    local dir = h.store_path()
    local eng = h.open(dir)
    local pids, logs, stop = workers(dir, 1)
    assert(eng:schedule("pall", "* * * * * *", "tick", nil, { catch_up = "all" }))
    assert(eng:schedule("pskip", "* * * * * *", "tick", nil))
    local function ticks(name)
      local out = {}
      for _, r in ipairs(assert(eng:list { kind = "tick" })) do
        local t = r.id:match("^" .. name .. "@(.*)$")
        if t then out[#out + 1] = t end
      end
      table.sort(out)
      return out
    end
    assert.is_truthy(h.poll(function() return #ticks("pall") >= 2 and #ticks("pskip") >= 2 end,
      60000, 20), "the schedules did not tick")
    h.kill(pids[1], "STOP")
    h.sleep_ms(3500)
    h.kill(pids[1], "CONT")
    local after = #ticks("pskip")
    assert.is_truthy(h.poll(function() return #ticks("pskip") >= after + 2 end, 60000, 20),
      "pskip did not go on after the pause")
    assert(eng:unschedule("pall"))
    assert(eng:unschedule("pskip"))
    stop_workers(pids, stop)
    local function secs(list)
      local out = {}
      for i, t in ipairs(list) do
        local y, mo, dd, hh, mi, ss = t:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
        out[i] = os.time { year = y, month = mo, day = dd, hour = hh, min = mi, sec = ss }
      end
      return out
    end
    local all, skip = secs(ticks("pall")), secs(ticks("pskip"))
    for i = 2, #all do
      assert.are.equal(all[i - 1] + 1, all[i], "pall has a gap before its tick " .. i)
    end
    local gap = 0
    for i = 2, #skip do gap = math.max(gap, skip[i] - skip[i - 1]) end
    assert.is_truthy(gap >= 3, "pskip started ticks missed in the pause (largest gap " ..
      gap .. " s)")
    -- pall's children cover the pause, pskip's not
    assert.is_truthy(#all >= #skip + 2)
    local runs = runs_of(logs)
    for _, r in ipairs(assert(eng:list { kind = "tick" })) do
      assert.is_truthy(runs[r.id], r.id .. " never ran")
    end
  end)

  it("an engine that runs the kind starts the ticks of a schedule it just added", function()
    local eng = h.open()
    local ran = {}
    eng:define("tick", function(ctx) ran[#ran + 1] = ctx.id end)
    assert(eng:schedule("here", "* * * * * *", "tick"))
    assert.is_truthy(h.wait_until(eng, function() return #ran >= 2 end, 10000),
      "no tick ran within 10 s")
    assert.is_truthy(ran[1]:find("^here@%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), ran[1])
    -- unscheduled: no more children
    assert(eng:unschedule("here"))
    h.run_for(eng, 300)
    local n = #ran
    h.run_for(eng, 2200)
    assert.are.equal(n, #ran)
  end)

  it("refuses a bad spec, an unknown tz or catch_up, naming the field, and writes nothing",
    function()
      local eng = h.open()
      local cs = eng:stats().change_seq
      local ok, msg, code = eng:schedule("b", "61 * * * *", "tick")
      assert.is_nil(ok)
      local _
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("minute", 1, true) and msg:find("61", 1, true), msg)
      _, msg, code = eng:schedule("b", "*/0 * * * *", "tick")
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("step", 1, true), msg)
      _, msg, code = eng:schedule("b", "* * * * * * *", "tick")
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("fields", 1, true), msg)
      _, msg, code = eng:schedule("b", "@every 10x", "tick")
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("@every", 1, true), msg)
      _, msg, code = eng:schedule("b", "* * * * *", "tick", nil, { tz = "Mars/Olympus" })
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("tz", 1, true) and msg:find("Mars/Olympus", 1, true), msg)
      ok, msg, code = eng:schedule("b", "* * * * *", "tick", nil, { catch_up = "most" })
      assert.are.equal("EINVAL", code)
      assert.is_truthy(msg:find("catch_up", 1, true) and msg:find("most", 1, true), msg)
      assert.is_nil(ok)
      assert.has_error(function() eng:schedule("b", "* * * * *", "tick", nil, { tzz = "UTC" }) end)
      assert.has_error(function() eng:schedule("b", 5, "tick") end)
      assert.are.same({}, eng:schedules())
      assert.are.equal(cs, eng:stats().change_seq)
      ok, msg, code = eng:unschedule("b")
      assert.is_nil(ok)
      assert.are.equal("ENOENT", code)
      assert.is_truthy(msg:find("b", 1, true), msg)
      ok, msg = lash.cron_ticks("* * 31 2 *")
      assert.is_nil(ok)
      assert.is_truthy(msg:find("no date", 1, true), msg)
    end)

  it("replaces a schedule given other arguments and lists the next three ticks", function()
    local eng = h.open()
    local now = h.now_ms()
    assert.are.same({ true, "created" }, { eng:schedule("r", "*/5 * * * *", "tick", { a = 1 }) })
    assert.are.same({ true, "same" }, { eng:schedule("r", "*/5 * * * *", "tick", { a = 1 }) })
    assert.are.same({ true, "replaced" },
      { eng:schedule("r", "0 9 * * MON-FRI", "tick", { a = 2 }, { tz = "Europe/Berlin" }) })
    local list = eng:schedules()
    assert.are.equal(1, #list)
    local sc = list[1]
    assert.are.equal("0 9 * * MON-FRI", sc.spec)
    assert.are.equal("Europe/Berlin", sc.tz)
    assert.are.equal("skip", sc.catch_up)
    assert.are.same({ a = 2 }, sc.input)
    assert.are.equal(3, #sc.ticks)
    assert.is_truthy(sc.ticks[1] > now and sc.ticks[1] < sc.ticks[2] and sc.ticks[2] < sc.ticks[3])
    for _, t in ipairs(sc.ticks) do
      -- 09:00 in Berlin is 08:00 or 07:00 UTC, on a weekday
      local u = os.date("!*t", t // 1000)
      assert.is_truthy(u.min == 0 and (u.hour == 8 or u.hour == 7), os.date("!%c", t // 1000))
      assert.is_truthy(u.wday >= 2 and u.wday <= 6)
    end
    assert.are.same(sc.ticks, lash.cron_ticks("0 9 * * MON-FRI",
      { tz = "Europe/Berlin", after = sc.ticks[1] - 1 }))
  end)

  it("lash schedule, schedules, unschedule and the schedule of lash show", function()
    local dir = h.store_path()
    if not h.pg then
      local code, _, err = h.cli(dir, "schedule", "x", "61 * * * *", "tick")
      assert.are.equal(2, code)
      assert.is_truthy(err:find("minute", 1, true), err)
      local f = io.open(dir, "r")
      assert.is_nil(f, "a refused schedule created the store")
    end
    local _
    local code, out, err = h.cli(dir, "schedule", "x", "* * * * * *", "tick", '{"a":1}',
      "--tz", "Europe/Berlin", "--catch-up", "one")
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("schedule x created; next ticks ", 1, true), out)
    code, _, err = h.cli(dir, "schedule", "y", "* * * * *", "tick", "--tz", "Nowhere/X")
    assert.are.equal(2, code)
    assert.is_truthy(err:find("Nowhere/X", 1, true), err)
    code, _, err = h.cli(dir, "schedule", "y", "* * * * *", "tick", "--catch-up", "most")
    assert.are.equal(2, code)
    assert.is_truthy(err:find("catch-up", 1, true), err)
    code, out = h.cli(dir, "schedules")
    assert.are.equal(0, code)
    assert.is_truthy(out:find("NAME", 1, true) and out:find("Europe/Berlin", 1, true), out)
    assert.is_truthy(out:find("one", 1, true), out)
    code, out = h.cli(dir, "schedules", "--json")
    assert.are.equal(0, code)
    local okj, list = require("lash.format").from_json(out)
    assert.is_true(okj)
    assert.are.equal("x", list[1].name)
    assert.are.equal(3, #list[1].ticks)
    -- a child, run here, shows its schedule
    local eng = h.open(dir)
    eng:define("tick", function() return true end)
    local id = h.wait_until(eng, function()
      local rows = eng:list { kind = "tick", status = "completed" }
      return rows and rows[1] and rows[1].id
    end, 20000)
    assert.is_truthy(id, "no child ran")
    eng:close()
    code, out = h.cli(dir, "show", id)
    assert.are.equal(0, code)
    assert.is_truthy(out:find("schedule%s+x %(%* %* %* %* %* %*, Europe/Berlin, catch%-up one%)"),
      out)
    code, out = h.cli(dir, "unschedule", "x")
    assert.are.equal(0, code)
    assert.is_truthy(out:find("schedule x removed", 1, true), out)
    code, _, err = h.cli(dir, "unschedule", "x")
    assert.are.equal(1, code)
    assert.is_truthy(err:find('no schedule "x"', 1, true), err)
    code, out = h.cli(dir, "schedules")
    assert.are.equal(0, code)
    assert.is_truthy(out:find("no schedules", 1, true), out)
  end)
end)
