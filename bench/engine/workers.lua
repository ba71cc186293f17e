-- bench/engine/workers.lua [N]: issue 10, more workers on one store. For
-- each of 1, 2 and 4 worker OS processes: a fresh store of N queued no-op
-- rows (durability "full"), the workers started together
-- (workers_worker.lua, concurrency 256 each), the wall time from their
-- start until the last one is idle; prints each rate and its ratio to one
-- worker's, with the targets (2 >= 1.5x one, 4 >= one). On PostgreSQL
-- (LASH_BENCH_TARGET, issue 12): 1 and 3 workers (target: 3 >= one).
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
    -- a PostgreSQL target is no directory: the outputs go to a file of their own
    local out = dir:match("^postgresql:") and os.tmpname() or dir
    for i = 1, k do
      cmd[#cmd + 1] = ("%s %s %s > %s.out.%d 2>&1 &"):format(C.shquote(C.lua_bin()),
        C.shquote(here .. "workers_worker.lua"), C.shquote(dir), C.shquote(out), i)
    end
    local t0 = C.now_us()
    assert(os.execute(table.concat(cmd, " ") .. " wait"))
    local t1 = C.now_us()
    if out ~= dir then
      for i = 1, k do os.remove(("%s.out.%d"):format(out, i)) end
      os.remove(out)
    end
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
if (os.getenv("LASH_BENCH_TARGET") or "") ~= "" then
  -- issue 12 (PostgreSQL): three worker processes together >= one
  local three = drain_with(3)
  print(("engine drain by worker processes  N=%d  full  1: %.0f/s  3: %.0f/s"
    .. " (%.2fx, target >= 1.0)"):format(N, one, three, three / one))
  return
end
local two = drain_with(2)
local four = drain_with(4)
print(("engine drain by worker processes  N=%d  full  1: %.0f/s  2: %.0f/s (%.2fx, target >= 1.5)"
  .. "  4: %.0f/s (%.2fx, target >= 1.0)"):format(N, one, two, two / one, four, four / one))
