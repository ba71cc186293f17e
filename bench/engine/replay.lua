-- bench/engine/replay.lua [R]: issue 9's replay cost. R rows of a body of
-- 100 journaled commands (60 ctx:steps, 20 ctx:now, 10 ctx:emit, 10
-- ctx:random) that then waits for a signal, in one engine with
-- suspend_after_ms = 0 (durability "full"): every body is suspended at its
-- wait, and the signal's resume replays the 100 commands from the journal.
-- The body times its 100 commands; the replays' p50/p99 are printed
-- (target <= 1 ms).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local R = tonumber(arg[1]) or 200

C.with_store("replay", function(dir)
  local eng = C.open(lash, dir, { durability = "full", concurrency = 256, suspend_after_ms = 0 },
    4 << 30)
  local runs, replay_us, done = {}, {}, 0
  local now_us = C.now_us
  eng:define("hundred", function(ctx)
    local t0 = now_us()
    local acc = 0
    for i = 1, 60 do acc = acc + ctx:step("s" .. i, function() return i end) end
    for _ = 1, 20 do acc = acc + ctx:now() % 7 end
    for i = 1, 10 do ctx:emit("tick", i) end
    for _ = 1, 10 do acc = acc + ctx:random(1, 3) end
    local t1 = now_us()
    runs[ctx.id] = (runs[ctx.id] or 0) + 1
    if runs[ctx.id] > 1 then replay_us[#replay_us + 1] = t1 - t0 end
    ctx:await_signal("go")
    done = done + 1
    return acc
  end)
  for i = 1, R do C.check("eng:start", eng:start("hundred", nil, { id = ("r%05d"):format(i) })) end
  local function suspended() return C.stats(eng).suspended or 0 end
  C.drive_until(eng, function() return suspended() >= R end, ("all %d rows suspended"):format(R),
    60, suspended)
  for i = 1, R do C.check("eng:signal", eng:signal(("r%05d"):format(i), "go", i)) end
  C.drive_until(eng, function() return done >= R end, "every row resumed", 60,
    function() return done end)
  eng:close()
  if #replay_us == 0 then error("no replay measured: the resumes did not replay the bodies") end
  print(("engine replay of a 100-command journal  R=%d  p50 %.3f ms  p99 %.3f ms"
    .. "  (target <= 1 ms)"):format(#replay_us, C.percentile(replay_us, 50) / 1000,
      C.percentile(replay_us, 99) / 1000))
end)
