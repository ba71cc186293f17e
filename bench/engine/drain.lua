-- bench/engine/drain.lua [N]: DESIGN §7 drain. A producer registers N no-op
-- rows of kind "noop" (durability "full", eng:batch chunks) and closes; a
-- separate worker OS process (drain_worker.lua) drains them with
-- concurrency 256 and prints the rate.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000

C.with_store("drain", function(dir)
  local eng = C.open(lash, dir, { durability = "full" }, 4 << 30)
  local t0 = C.now_us()
  C.register(eng, "noop", N, "n%08d", nil, function(_, input) return input end, 5000)
  local t1 = C.now_us()
  local pending = C.count(C.stats(eng), "pending")
  eng:close()
  C.note("registered %d rows in %.2f s (%.0f/s), pending=%s", N, (t1 - t0) / 1e6,
    N / ((t1 - t0) / 1e6), tostring(pending))
  if pending ~= nil and pending ~= N then
    error(("after registration: stats pending = %d, want %d"):format(pending, N))
  end

  io.write(C.run_worker("drain_worker.lua", dir, N))
  io.flush()
end)
