-- spec/exec_spec.lua - ctx:exec (issue 8 item 2): a command run from a body
-- on the engine's loop (uv_spawn), never blocking the other bodies of the
-- worker; output captured, a timeout that kills, clear failures.
local h = require "spec.helpers"

local function await(eng, id, ms)
  return eng:await(id, { timeout_ms = ms or 10000 })
end

-- Runs body as the one row of kind "k" until idle; it must complete.
local function run_one(eng, body)
  eng:define("k", body)
  local id = assert(eng:start("k", nil))
  eng:run { until_idle = true }
  assert.are.equal("completed", await(eng, id).status)
end

-- r = {nil, msg, code} of a failed call.
local function failed(r, pattern, code)
  assert.is_nil(r[1])
  assert.matches(pattern, r[2])
  assert.are.equal(code, r[3])
end

describe("ctx:exec", function()
  after_each(h.cleanup)

  it("does not block the loop: another body completes while `sleep 1` runs, and the row " ..
    "shows waiting on exec:sleep", function()
    local eng = h.open()
    local order = {}
    eng:define("slow", function(ctx)
      local r = assert(ctx:exec({ "sleep", "1" }))
      order[#order + 1] = "slow"
      return r.status
    end)
    eng:define("quick", function(ctx)
      ctx:sleep(100)
      order[#order + 1] = "quick"
      return "q"
    end)
    local slow = assert(eng:start("slow", nil))
    local quick = assert(eng:start("quick", nil))
    local waiting = h.wait_until(eng, function()
      local r = eng:get(slow)
      return r.status == "waiting" and r.wait == "exec:sleep"
    end, 5000)
    assert.is_truthy(waiting, "the row was not shown waiting on exec:sleep")
    local t0 = h.mono_ms()
    eng:run { until_idle = true }
    assert.are.same({ "quick", "slow" }, order)
    assert.are.equal("q", await(eng, quick).value)
    assert.are.equal(0, await(eng, slow).value)
    assert.is_true(h.mono_ms() - t0 < 10000)
  end)

  it("captures stdout, stderr and the exit status; a signal; output over max_output is " ..
    "cut and says so", function()
    local eng = h.open()
    local got = {}
    run_one(eng, function(ctx)
      got.plain = assert(ctx:exec({ "sh", "-c", "printf 'out\\n'; printf 'err' >&2; exit 3" }))
      got.sig = assert(ctx:exec({ "sh", "-c", "kill -TERM $$" }))
      got.big = assert(ctx:exec({ "sh", "-c", "head -c 100000 /dev/zero" }, { max_output = 1000 }))
      got.env = assert(ctx:exec({ "sh", "-c", "printf '%s|%s' \"$LASH_T\" \"$(pwd)\"" },
        { env = { LASH_T = "yes" }, cwd = "/" }))
      return true
    end)
    assert.are.equal(3, got.plain.status)
    assert.are.equal("out\n", got.plain.stdout)
    assert.are.equal("err", got.plain.stderr)
    assert.is_nil(got.plain.truncated)
    assert.are.equal(15, got.sig.signal)
    assert.is_nil(got.sig.status)
    assert.are.equal(1000, #got.big.stdout)
    assert.is_true(got.big.truncated)
    assert.are.equal(0, got.big.status)
    assert.are.equal("yes|/", got.env.stdout)
  end)

  it("timeout_ms kills the command and returns nil, msg, ETIMEDOUT", function()
    local eng = h.open()
    local pidfile = h.tmpdir() .. "/pid"
    local r
    run_one(eng, function(ctx)
      local t0 = h.mono_ms()
      r = { ctx:exec({ "sh", "-c", "echo $$ > " .. h.q(pidfile) .. "; exec sleep 30" },
        { timeout_ms = 300 }) }
      r.took = h.mono_ms() - t0
      return true
    end)
    failed(r, "sh timed out after 300 ms", "ETIMEDOUT")
    assert.is_true(r.took < 10000)
    local pid = tonumber(h.read_file(pidfile))
    assert.is_truthy(pid)
    assert.is_false(h.alive(pid), "the timed-out command still runs")
  end)

  it("a missing program is a clear failure naming it; bad arguments raise", function()
    local eng = h.open()
    local r, raised = nil, {}
    run_one(eng, function(ctx)
      r = { ctx:exec({ "lash-no-such-program" }) }
      raised.empty = select(2, pcall(ctx.exec, ctx, {}))
      raised.opt = select(2, pcall(ctx.exec, ctx, { "true" }, { timeout = 5 }))
      raised.arg = select(2, pcall(ctx.exec, ctx, { "echo", 5 }))
      return true
    end)
    failed(r, "cannot run lash%-no%-such%-program", "ENOENT")
    assert.matches("argv", raised.empty)
    assert.matches("timeout", raised.opt)
    assert.matches("unknown option", raised.opt)
    assert.matches("argv%[2%]", raised.arg)
  end)

  it("a cancellation request kills the command and ends the row cancelled", function()
    local eng = h.open()
    local pidfile = h.tmpdir() .. "/pid"
    eng:define("k", function(ctx)
      ctx:exec({ "sh", "-c", "echo $$ > " .. h.q(pidfile) .. "; exec sleep 30" })
      return "not reached"
    end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.wait_until(eng, function()
      -- (the file exists before the shell has written its pid into it)
      return tonumber(h.read_file(pidfile) or "") and eng:get(id).wait == "exec:sh"
    end, 5000))
    assert.is_truthy(eng:cancel(id, "stop it"))
    local o = await(eng, id, 10000)
    assert.are.equal("cancelled", o.status)
    local pid = tonumber(h.read_file(pidfile))
    assert.is_truthy(h.poll(function() return not h.alive(pid) end, 5000),
      "the command still runs after the cancellation")
  end)

  it("closing the engine while a command runs kills it and does not hang", function()
    local lash = require "lash"
    local eng = assert(lash.open(h.store_path(), { durability = "none" }))
    local pidfile = h.tmpdir() .. "/pid"
    eng:define("k", function(ctx)
      ctx:exec({ "sh", "-c", "echo $$ > " .. h.q(pidfile) .. "; exec sleep 30" })
    end)
    local id = assert(eng:start("k", nil))
    assert.is_truthy(h.wait_until(eng, function()
      -- (the file exists before the shell has written its pid into it)
      return tonumber(h.read_file(pidfile) or "") and eng:get(id).wait == "exec:sh"
    end, 5000))
    local t0 = h.mono_ms()
    eng:close()
    assert.is_true(h.mono_ms() - t0 < 5000)
    local pid = tonumber(h.read_file(pidfile))
    assert.is_truthy(h.poll(function() return not h.alive(pid) end, 5000))
  end)
end)
