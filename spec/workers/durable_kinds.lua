-- spec/workers/durable_kinds.lua - the kinds of the durable-execution specs
-- (spec/durable_spec.lua, spec/durable_crash_spec.lua), defined the same way
-- in the worker OS processes (spec/workers/durable.lua) and in the spec's own
-- engines, so that a re-run after a kill -9 runs the very same body.
--
-- Every side effect of a body goes to a ledger file, one line each:
-- "<owner> <what> <id> [values...]", appended and closed at once (one
-- worker writes at a time; a line written is on disk when the call returns).
local M = {}

-- Appends one line to the ledger at @p path.
function M.append(path, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  local f = assert(io.open(path, "a"))
  f:write(table.concat(parts, " "), "\n")
  f:close()
end

-- This OS process's pid.
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

-- The ledger's lines as arrays of words.
function M.read(path)
  local out = {}
  local f = io.open(path, "r")
  if not f then return out end
  for l in f:lines() do
    local w = {}
    for x in l:gmatch("%S+") do w[#w + 1] = x end
    out[#out + 1] = w
  end
  f:close()
  return out
end

-- The ledger lines whose word 2 is @p what (and word 3 is @p id, if given).
function M.find(path, what, id)
  local out = {}
  for _, w in ipairs(M.read(path)) do
    if w[2] == what and (id == nil or w[3] == id) then out[#out + 1] = w end
  end
  return out
end

-- Starts spec/workers/durable.lua as an OS process (leases of @p ttl ms)
-- and waits until it defined its kinds; returns its pid.
function M.spawn(dir, ledger, owner, ttl, seconds)
  local h = require "spec.helpers"
  local args = { dir, owner, ledger, tostring(ttl), tostring(seconds or 60) }
  local pid = h.spawn_worker("durable", args, ledger .. ".log")
  local ready = h.poll(function()
    for _, w in ipairs(M.find(ledger, "ready")) do
      if w[1] == owner then return true end
    end
    return not h.alive(pid) and "dead"
  end, 10000, 5)
  assert(ready == true, "worker " .. owner .. " did not start: "
    .. tostring(h.read_file(ledger .. ".log")))
  return pid
end

-- Kills a worker with SIGKILL and waits until it is gone.
function M.kill(pid)
  local h = require "spec.helpers"
  h.kill(pid, "KILL")
  assert(h.wait_exit(pid, 5000), "worker " .. pid .. " did not die")
end

-- The 20-step body of the crash spec: steps, two children, two sleeps, a
-- signal, emits and a uuid. Its outcome is a function of its input (plus the
-- uuid, which the "token" event carries too).
M.FLOW_STEPS = 20

function M.flow_expected(id, input)
  local sum = 0
  for k = 1, M.FLOW_STEPS do sum = sum + k * input.mul end
  return { sum = sum, sig = { round = input.round }, leaves = { 10, 20 }, id = id }
end

-- Defines the kinds on @p eng. @p ledger: the ledger path; @p owner: the
-- name written first on each line; @p variant: the version of kind "nondet"
-- ("v1" default, "v2-type": another command at its ordinal 2, "v2-name": a
-- step of another name there, inside a pcall).
function M.define(eng, ledger, owner, variant)
  local function note(...) M.append(ledger, owner, ...) end

  -- two steps, then parked on signal "go"
  assert(eng:define("steps", function(ctx)
    note("run", ctx.id)
    local a = ctx:step("a", function()
      note("a", ctx.id)
      return { n = 1, r = math.random(1, 1 << 40) }
    end)
    local b = ctx:step("b", function()
      note("b", ctx.id)
      return a.r + 1
    end)
    note("parked", ctx.id, a.r, b)
    ctx:await_signal("go")
    return { a = a, b = b }
  end))

  -- two steps that raise (a table, a string), caught, then parked
  assert(eng:define("raiser", function(ctx)
    local _, e1 = pcall(ctx.step, ctx, "boom", function()
      note("boom", ctx.id)
      error({ code = "card_declined", n = 7 })
    end)
    local _, e2 = pcall(ctx.step, ctx, "plain", function()
      note("plain", ctx.id)
      error("plain words", 0)
    end)
    note("raised", ctx.id, type(e1) == "table" and e1.code or tostring(e1))
    ctx:await_signal("go")
    return { code = e1.code, n = e1.n, s = e2 }
  end))

  -- the journaled values, then parked
  assert(eng:define("values", function(ctx)
    local now, r, die, u = ctx:now(), ctx:random(), ctx:random(1, 6), ctx:uuid()
    note("values", ctx.id, now, string.format("%.17g", r), die, u)
    ctx:await_signal("go")
    return { now = now, r = r, die = die, uuid = u }
  end))

  -- two children, one named by opts.id
  assert(eng:define("family", function(ctx)
    local c1 = ctx:start("leaf", { i = 1 })
    local c2 = ctx:start("leaf", { i = 2 }, { id = ctx.id .. "-named" })
    note("children", ctx.id, c1, c2)
    ctx:await_signal("go")
    local o1, o2 = ctx:await(c1), ctx:await(c2)
    return { c1 = c1, c2 = c2, v1 = o1.value, v2 = o2.value }
  end))
  assert(eng:define("leaf", function(ctx, input)
    note("leaf", ctx.id)
    return input.i * 10
  end))

  -- two emits, then parked
  assert(eng:define("emitter", function(ctx)
    local s1 = ctx:emit("e1", { k = 1 })
    local s2 = ctx:emit("e2", { k = 2 })
    note("emitted", ctx.id, s1, s2)
    ctx:await_signal("go")
    return { s1 = s1, s2 = s2 }
  end))

  -- one sleep of input.ms
  assert(eng:define("sleeper", function(ctx, input)
    note("run", ctx.id)
    ctx:sleep(input.ms)
    note("woke", ctx.id)
    return "slept"
  end))

  -- one wait on signal "go" with a deadline of input.ms
  assert(eng:define("deadline", function(ctx, input)
    note("run", ctx.id)
    local v, _, code = ctx:await_signal("go", { timeout_ms = input.ms })
    note("waited", ctx.id, tostring(v), tostring(code))
    return { v = v, code = code }
  end))

  -- a wait that times out (200 ms), then parked on "hold"
  assert(eng:define("timedout", function(ctx)
    local v, _, code = ctx:await_signal("go", { timeout_ms = 200 })
    note("first", ctx.id, tostring(v), tostring(code))
    ctx:await_signal("hold")
    return { v = v, code = code }
  end))

  -- signals "s" in order: one wait that times out first (no "s" yet), two
  -- consumed, parked on "hold", then a third
  assert(eng:define("signals", function(ctx)
    local early, _, code = ctx:await_signal("s", { timeout_ms = 150 })
    note("early", ctx.id, tostring(early), tostring(code))
    local a = ctx:await_signal("s")
    local b = ctx:await_signal("s")
    note("got", ctx.id, a, b)
    ctx:await_signal("hold")
    local c = ctx:await_signal("s")
    return { early = early, a = a, b = b, c = c }
  end))

  -- a body that changes between runs
  variant = variant or "v1"
  assert(eng:define("nondet", function(ctx)
    ctx:now()
    if variant == "v1" then
      ctx:step("charge", function()
        note("charge", ctx.id)
        return 42
      end)
      note("parked", ctx.id)
      ctx:await_signal("go")
      return "v1"
    elseif variant == "v2-type" then
      ctx:sleep(10)
    else
      local ok = pcall(ctx.step, ctx, "refund", function()
        note("refund", ctx.id)
        return 1
      end)
      note("caught", ctx.id, tostring(ok))
    end
    note("after", ctx.id)
    ctx:emit("after", { variant = variant })
    return variant
  end))

  -- counts its runs
  assert(eng:define("counted", function(ctx)
    note("ran", ctx.id)
    return true
  end))

  -- the scenario of issue 9: three children, a sleep of input.ms, await them
  assert(eng:define("parent6", function(ctx, input)
    local kids = {}
    for i = 1, 3 do kids[i] = ctx:start("child6", i) end
    note("sleeping", ctx.id)
    ctx:sleep(input.ms)
    local outs = {}
    for i = 1, 3 do outs[i] = ctx:await(kids[i]).value end
    return { kids = kids, outs = outs }
  end))
  assert(eng:define("child6", function(ctx, input)
    note("child", ctx.id)
    return input * 2
  end))

  -- the crash spec's 20-step body
  assert(eng:define("flow", function(ctx, input)
    local id, sum = ctx.id, 0
    local function step(k)
      sum = sum + ctx:step("s" .. k, function()
        note("step", id, "s" .. k)
        return k * input.mul
      end)
    end
    for k = 1, 5 do step(k) end
    local c1 = ctx:start("leaf", { i = 1 })
    for k = 6, 8 do step(k) end
    ctx:emit("mark", { n = 1 })
    local u = ctx:uuid()
    ctx:emit("token", { uuid = u })
    ctx:sleep(30)
    for k = 9, 12 do step(k) end
    local sig = ctx:await_signal("go")
    local c2 = ctx:start("leaf", { i = 2 })
    for k = 13, 16 do step(k) end
    ctx:sleep(20)
    ctx:emit("mark", { n = 2 })
    local o1, o2 = ctx:await(c1), ctx:await(c2)
    for k = 17, M.FLOW_STEPS do step(k) end
    return { sum = sum, sig = sig, leaves = { o1.value, o2.value }, id = id, uuid = u,
      children = { c1, c2 } }
  end))
end

return M
