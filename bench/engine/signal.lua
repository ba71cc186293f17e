-- bench/engine/signal.lua [N]: DESIGN §7 signal -> parked body resumed, one
-- OS process, durability "full". Each iteration: a body parks on
-- ctx:await_signal("go"); once the row is waiting the host takes t0,
-- eng:signal(id, "go"), and turns the loop until the body has recorded its
-- resume time; latency = resume - t0. The row then completes (not timed).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 1000

C.with_store("signal", function(dir)
  local eng = C.open(lash, dir, { durability = "full" })
  local resumed = {}  -- id -> now_us() at resume, written by the bodies
  local now_us = C.now_us
  eng:define("park", function(ctx)
    local v = ctx:await_signal("go")
    resumed[ctx.id] = now_us()
    return v
  end, { disposition = "rerunnable" })

  local function status(id)
    local rec, msg, code = eng:get(id)
    if rec == nil then
      error(("eng:get(%q): nil, %s, %s"):format(id, tostring(msg), tostring(code)))
    end
    return rec.status
  end

  local us = {}
  for i = 1, N do
    local id = C.check(("eng:start(\"park\", %d)"):format(i), eng:start("park", i))
    C.drive_until(eng, function() return status(id) == "waiting" end,
      ("row %s to be waiting"):format(id), 30)
    local t0 = now_us()
    local seq, msg, code = eng:signal(id, "go", i)
    if seq == nil then
      error(("eng:signal(%q, \"go\", %d): nil, %s, %s"):format(id, i, tostring(msg),
        tostring(code)))
    end
    C.drive_until(eng, function() return resumed[id] ~= nil end,
      ("body %s to resume after its signal"):format(id), 30)
    us[i] = resumed[id] - t0
    resumed[id] = nil
    C.drive_until(eng, function() return status(id) == "completed" end,
      ("row %s to complete after resuming"):format(id), 30)
  end
  eng:close()
  local p50, p99 = C.percentile(us, 50) / 1000, C.percentile(us, 99) / 1000
  C.note("n=%d max %.2f ms", N, us[#us] / 1000)
  print(("engine signal -> resume  full  p50 %.2f ms  p99 %.2f ms  (target p99 <= 2 ms)")
    :format(p50, p99))
end)
