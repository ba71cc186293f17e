-- bench/engine/parked.lua [N]: DESIGN §7 parked bodies. One worker
-- (concurrency 64, durability "full") starts N rows whose bodies park on
-- ctx:await_signal("never"), turns the loop until every row is waiting,
-- then reports VmRSS of this OS process.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000

C.with_store("parked", function(dir)
  local eng = C.open(lash, dir, { durability = "full", concurrency = 64 }, 4 << 30)
  local function body(ctx)
    ctx:await_signal("never")
    error("signal 'never' arrived")
  end
  eng:define("park", body, { disposition = "rerunnable" })
  local rss0 = C.rss_kib()
  local t0 = C.now_us()
  C.register(eng, "park", N, "p%08d", nil, body, 5000)
  local t1 = C.now_us()
  local function waiting() return C.count(C.stats(eng), "waiting") or -1 end
  -- stats() may be a store walk: poll it every 20 ms, not every loop turn.
  local next_check, w = 0, -1
  C.drive_until(eng, function()
    local t = C.now_us()
    if t >= next_check then
      w = waiting()
      next_check = t + 20000
    end
    return w >= N
  end, ("all %d rows to be waiting"):format(N), 60, function() return w end)
  local t2 = C.now_us()
  local st = C.stats(eng)
  local rss = C.rss_kib()
  C.note("registered in %.2f s, parked in %.2f s; waiting=%s running=%s parked bodies=%s; " ..
    "RSS before %d KiB", (t1 - t0) / 1e6, (t2 - t1) / 1e6, tostring(C.count(st, "waiting")),
    tostring(C.count(st, "running")), tostring(C.engine_stat(st, "parked")
      or C.engine_stat(st, "bodies_parked")), rss0)
  eng:close()
  print(("engine parked bodies  N=%d  RSS %.0f MiB  (target <= 1024 MiB)"):format(N, rss / 1024))
end)
