-- bench/engine/delayed.lua [N]: issue 13's "N delayed rows due at once
-- start at >= 50% of the plain drain rate". Twice, each in a fresh store
-- (durability "full"): a producer registers N no-op rows of kind "noop" in
-- eng:batch chunks and closes; a worker OS process (delayed_worker.lua,
-- concurrency 256) drains them and prints its rate. First plain rows (the
-- drain of the same run), then rows all started with the same run_at a
-- little ahead: the worker waits until that time, and its rate counts from
-- it (the timer fire of N rows, in batches, then their claims and runs).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000

local function produce(dir, run_at)
  local eng = C.open(lash, dir, { durability = "full" }, 4 << 30)
  local at = run_at and eng:now() + run_at or nil
  C.register(eng, "noop", N, "n%08d", nil, nil, 5000, function() return { run_at = at } end)
  if at and eng:now() >= at then
    error(("registering %d rows took past their run_at: give a larger lead"):format(N))
  end
  eng:close()
  return at
end

local function drain(dir, at)
  local out = C.run_worker("delayed_worker.lua", dir, N, at or 0)
  return assert(tonumber(out:match("rate (%S+)")), out)
end

local plain, delayed
C.with_store("delayed-plain", function(dir)
  produce(dir, nil)
  plain = drain(dir, nil)
end)
C.with_store("delayed", function(dir)
  -- the lead: registering N rows must end before their time
  local at = produce(dir, math.max(3000, N // 10))
  delayed = drain(dir, at)
end)
print(("engine delayed rows due at once  N=%d  full  %.0f processes/s  vs drain %.0f/s  " ..
  "ratio %.2f  (target >= 0.50)"):format(N, delayed, plain, delayed / plain))
