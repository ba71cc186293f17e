-- bench/engine/claim.lua [N]: issue 13 (claim). Five drains of N no-op rows
-- in one run, each in a fresh store by a separate worker OS process
-- (drain_worker.lua, concurrency 256, durability "full"): plain; with a
-- priority on every row (0..9, so the live index is ordered by it: in runs
-- of 1000 ids, and spread over every 10th id, where claiming in priority
-- order touches rows all over the id-keyed tables in each commit); with a
-- concurrency_key over 100 keys, limit 1 (at most 100 rows run at once: each
-- freed slot goes to the key's next row, which starts in a later commit)
-- and limit 3 (300 slots, more than the worker's 256: the bookkeeping).
-- Prints each rate (the better of two interleaved rounds) and the ratio to
-- the plain drain of the same run.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000

local function drain(tag, opts_of)
  local rate
  C.with_store("claim-" .. tag, function(dir)
    local eng = C.open(lash, dir, { durability = "full" }, 4 << 30)
    C.register(eng, "noop", N, "n%08d", nil, nil, 5000, opts_of)
    eng:close()
    rate = tonumber(C.run_worker("drain_worker.lua", dir, N):match("([%d.]+) processes/s"))
  end)
  return assert(rate, "no rate from the drain worker")
end

-- Two rounds, the drains interleaved (plain, priority, ..., plain, ...), and
-- the better rate of each: the machine's speed drifts between runs of one
-- drain, so a single run of each compares moments, not drains.
local configs = {
  { "plain", function() return {} end },
  { "priority", function(j) return { priority = (j // 1000) % 10 } end },
  { "priority-mixed", function(j) return { priority = (j * 7) % 10 } end },
  { "keys", function(j) return { concurrency_key = "k" .. (j % 100) } end },
  { "keys3", function(j) return { concurrency_key = "k" .. (j % 100), concurrency_limit = 3 } end },
}
local best = {}
for _ = 1, tonumber(os.getenv("LASH_BENCH_ROUNDS") or "2") do
  for _, c in ipairs(configs) do
    local r = drain(c[1], c[2])
    if not best[c[1]] or r > best[c[1]] then best[c[1]] = r end
  end
end
local plain, prio, prio_mixed = best.plain, best.priority, best["priority-mixed"]
local keyed, keyed3 = best.keys, best.keys3
print(("engine drain (plain, beside the claim lines)  N=%d  %.0f processes/s"):format(N, plain))
print(("engine drain with priority on every row (10 levels, runs of 1000 ids)  N=%d  %.0f"
  .. " processes/s  (%.0f%% of plain; target >= 50%%)"):format(N, prio, 100 * prio / plain))
print(("engine drain with priority on every row (10 levels, every 10th id)  N=%d  %.0f"
  .. " processes/s  (%.0f%% of plain)"):format(N, prio_mixed, 100 * prio_mixed / plain))
print(("engine drain with concurrency_key over 100 keys (limit 1: 100 run at once)  N=%d  %.0f"
  .. " processes/s  (%.0f%% of plain; target >= 50%%)"):format(N, keyed, 100 * keyed / plain))
print(("engine drain with concurrency_key over 100 keys (limit 3: 300 slots)  N=%d  %.0f"
  .. " processes/s  (%.0f%% of plain; target >= 50%%)"):format(N, keyed3, 100 * keyed3 / plain))
