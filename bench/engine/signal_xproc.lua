-- bench/engine/signal_xproc.lua [N]: a signal sent by ANOTHER OS process
-- resumes a body parked in an idle worker (durability "full"). Not a
-- DESIGN target; it shows the cross-process wake (the watch on data.mdb)
-- against the poll backoff alone (fs_wake = false). Each iteration: a body
-- parks, the worker idles 300 ms (its poll backoff grows), then a separate
-- lua5.4 process signals it; latency = resume time - the signal event's
-- `at` (both wall-clock ms from the same machine).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 20

local function run(dir, fs_wake)
  local eng = C.open(lash, dir, { durability = "full", fs_wake = fs_wake })
  local resumed = {}
  eng:define("park", function(ctx)
    ctx:await_signal("go")
    resumed[ctx.id] = eng:now()
    return true
  end)
  local ms = {}
  for i = 1, N do
    local id = ("x-%s-%d"):format(fs_wake and "w" or "p", i)
    C.check("eng:start", eng:start("park", nil, { id = id }))
    local idle_until = eng:now() + 300
    C.drive_until(eng, function() return eng:now() >= idle_until end, "idle", 30)
    local cmd = ("%s -e %s &"):format(C.shquote(C.lua_bin()), C.shquote(
      ("local e = assert(require('lash').open(%q)); assert(e:signal(%q, 'go', 1)); e:close()")
      :format(dir, id)))
    os.execute(cmd)
    C.drive_until(eng, function() return resumed[id] ~= nil end, "resume " .. id, 30)
    local at
    for _, ev in ipairs(eng:events(id)) do
      if ev.type == "signal.go" then at = ev.at end
    end
    ms[i] = resumed[id] - at
  end
  eng:close()
  return C.percentile(ms, 50), C.percentile(ms, 99)
end

C.with_store("signal-xproc", function(dir)
  local p50, p99 = run(dir, true)
  print(("engine signal from another process -> resume  file watch  p50 %d ms  p99 %d ms")
    :format(p50, p99))
end)
C.with_store("signal-xproc-poll", function(dir)
  local p50, p99 = run(dir, false)
  print(("engine signal from another process -> resume  poll only   p50 %d ms  p99 %d ms")
    :format(p50, p99))
end)
