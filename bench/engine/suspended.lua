-- bench/engine/suspended.lua [N]: issue 9's suspended processes. A producer
-- registers N rows of kind "park" (a wait for a signal); a worker OS process
-- (suspend_worker.lua, suspend_after_ms = 0) runs them until all are
-- suspended, then idles; then a fresh worker opens the store and idles.
-- Prints each worker's RSS and their commits/s while idle, and (LMDB) the
-- store's commits over the first idle period (targets at 1,000,000 rows:
-- RSS <= 200 MiB, 0 commits/s while idle).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 100000
local IDLE_S = 5

local function last_txn(dir)
  if os.getenv("LASH_BENCH_TARGET") then return nil end
  local p = io.popen("mdb_stat -e " .. C.shquote(dir) .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("Last transaction ID: (%d+)"))
end

local function worker(dir, ...)
  local cmd = { C.shquote(C.lua_bin()), C.shquote(here .. "suspend_worker.lua"), C.shquote(dir) }
  for _, a in ipairs({ ... }) do cmd[#cmd + 1] = C.shquote(a) end
  return assert(io.popen(table.concat(cmd, " "), "r"))
end

local function expect(p, word)
  local l = p:read("l")
  if not l or not l:match("^" .. word) then
    error(("suspend_worker: expected %q, got %s"):format(word, tostring(l)))
  end
  return l
end

C.with_store("suspended", function(dir)
  local eng = C.open(lash, dir, { durability = "full" }, 64 << 30)
  local t0 = C.now_us()
  C.register(eng, "park", N, "s%08d", nil, nil, 5000)
  eng:close()
  local t1 = C.now_us()
  local p = worker(dir, "park", tostring(N), tostring(IDLE_S))
  local rss_run, anon_run = expect(p, "suspended"):match("(%d+) (%d+)$")
  local t2 = C.now_us()
  local x0 = last_txn(dir)
  local cps, rss_idle, anon_idle = expect(p, "idle"):match("^idle (%S+) (%d+) (%d+)$")
  local x1 = last_txn(dir)
  p:close()
  C.note("registered in %.1f s, suspended in %.1f s", (t1 - t0) / 1e6, (t2 - t1) / 1e6)
  local q = worker(dir, "idle", tostring(IDLE_S))
  expect(q, "ready")
  local fcps, frss = expect(q, "idle"):match("^idle (%S+) (%d+) %d+$")
  q:close()
  print(("engine suspended processes  N=%d  worker RSS %.0f MiB, of it heap %.0f MiB (idle %.0f"
    .. " MiB, heap %.0f MiB; a fresh worker %.0f MiB)  (target <= 200 MiB at 1000000; the rest is"
    .. " store pages mapped from the file)"):format(N, tonumber(rss_run) / 1024,
      tonumber(anon_run) / 1024, tonumber(rss_idle) / 1024, tonumber(anon_idle) / 1024,
      tonumber(frss) / 1024))
  print(("engine suspended processes idle  N=%d  %.2f commits/s (fresh worker %.2f)%s"
    .. "  (target 0)"):format(N, tonumber(cps), tonumber(fcps),
      x0 and (", store %d commits in %d s"):format(x1 - x0, IDLE_S) or ""))
end)
