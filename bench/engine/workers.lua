-- bench/engine/workers.lua [N]: issue 10, more workers on one store. For
-- each of 1, 2 and 4 worker OS processes: a fresh store of N queued no-op
-- rows (durability "full"), the workers started together
-- (workers_worker.lua, concurrency 256 each), the wall time from their
-- start until the last one is idle; prints each rate and its ratio to one
-- worker's, with the targets (2 >= 1.5x one, 4 >= one).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000

local function drain_with(k)
  return C.with_store("workers" .. k, function(dir)
    local eng = C.open(lash, dir, { durability = "full" }, 4 << 30)
    C.register(eng, "noop", N, "n%08d", nil, function(_, input) return input end, 5000)
    eng:close()
    local cmd = {}
    for i = 1, k do
      cmd[#cmd + 1] = ("%s %s %s > %s.out.%d 2>&1 &"):format(C.shquote(C.lua_bin()),
        C.shquote(here .. "workers_worker.lua"), C.shquote(dir), C.shquote(dir), i)
    end
    local t0 = C.now_us()
    assert(os.execute(table.concat(cmd, " ") .. " wait"))
    local t1 = C.now_us()
    local check = C.open(lash, dir, { durability = "full" })
    local done = C.count(C.stats(check), "completed")
    check:close()
    if done ~= N then
      error(("%d workers: %s of %d rows completed"):format(k, tostring(done), N))
    end
    return N / ((t1 - t0) / 1e6)
  end)
end

local one = drain_with(1)
local two = drain_with(2)
local four = drain_with(4)
print(("engine drain by worker processes  N=%d  full  1: %.0f/s  2: %.0f/s (%.2fx, target >= 1.5)"
  .. "  4: %.0f/s (%.2fx, target >= 1.0)"):format(N, one, two, two / one, four, four / one))
