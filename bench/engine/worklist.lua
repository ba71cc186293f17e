-- bench/engine/worklist.lua [TERMINAL]: DESIGN §7 worklist cost. A store
-- with 1k live rows of kind "live" gets one timed eng:drive() pass from a
-- fresh engine that defines only "live" (on a copy of the store, so the
-- rows stay pending); then TERMINAL (default 1M) rows of kind "done" are
-- registered and run to completion (setup at durability "none"), and the
-- same timed pass runs again. The cost should follow the live rows. When
-- building the terminal rows projects past 3 minutes, it stops at 200k and
-- says so.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local TERMINAL = tonumber(arg[1]) or 1000000
local LIVE = 1000
local BUDGET_S = 180
local FALLBACK = 200000
local MAP = 8 << 30  -- LMDB map size for 1M rows (the default is 1 GiB)

local function label(n)
  if n >= 1000000 and n % 1000000 == 0 then return ("%dM"):format(n // 1000000) end
  if n >= 1000 and n % 1000 == 0 then return ("%dk"):format(n // 1000) end
  return tostring(n)
end

local function live_body(ctx)
  ctx:await_signal("never")
end

-- One timed drive pass from a fresh engine (durability "full") that
-- defines only "live"; enough slots to admit every live row.
local function pass(dir)
  local eng = C.open(lash, dir, { durability = "full", concurrency = 1024 }, MAP)
  eng:define("live", live_body, { disposition = "rerunnable" })
  local t0 = C.now_us()
  local rep, msg, code = eng:drive()
  local t1 = C.now_us()
  if rep == nil then
    error(("eng:drive(): nil, %s, %s"):format(tostring(msg), tostring(code)))
  end
  eng:close()
  C.note("drive report admitted=%s deferred=%s coalesced=%s", tostring(rep.admitted),
    tostring(rep.deferred), tostring(rep.coalesced))
  return (t1 - t0) / 1000, rep.admitted
end

C.with_store("worklist", function(dir)
  -- 1k live rows, registered without defining "live" here (unless start
  -- insists on a definition).
  local eng = C.open(lash, dir, { durability = "none" }, MAP)
  C.register(eng, "live", LIVE, "l%06d", nil, live_body, LIVE)
  eng:close()
  -- Setup ran at durability "none": flush its dirty pages now, or the timed
  -- pass's fsync would pay for them.
  os.execute("sync")

  -- Pass over 1k live only, on a copy (the pass leaves its rows running).
  local copy = C.tmpdir("worklist-copy")
  os.execute(("cp -a %s/. %s/"):format(C.shquote(dir), C.shquote(copy)))
  local ok, a_ms, a_adm = pcall(pass, copy)
  C.rmdir(copy)
  if not ok then error(a_ms, 0) end

  -- The terminal rows: register in rounds, run each round to completion.
  eng = C.open(lash, dir, { durability = "none", concurrency = 256 }, MAP)
  eng:define("done", function() return true end, { disposition = "rerunnable" })
  local built, round = 0, 100000
  local t0 = C.now_us()
  local cut = false
  while built < TERMINAL do
    local n = math.min(round, TERMINAL - built)
    local base = built
    C.register(eng, "done", n, function(i) return ("d%08d"):format(base + i) end, nil, nil, 10000)
    local r, msg, code = eng:run({ until_idle = true })
    if r == nil and msg ~= nil then
      error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
    end
    built = built + n
    local secs = (C.now_us() - t0) / 1e6
    C.note("built %d terminal rows in %.1f s", built, secs)
    if built >= FALLBACK and built < TERMINAL and secs / built * TERMINAL > BUDGET_S then
      cut = true
      break
    end
  end
  local st = C.stats(eng)
  eng:close()
  local done = C.count(st, "completed")
  if done ~= built then
    error(("eng:stats().completed = %s after building, want %d"):format(tostring(done), built))
  end

  os.execute("sync")
  local b_ms, b_adm = pass(dir)
  print(("engine drive pass  0 terminal + %s live  admitted %s in %.2f ms")
    :format(label(LIVE), tostring(a_adm), a_ms))
  local what = label(built) .. " terminal"
  if cut then
    what = what .. (" (%s would take > 3 min to build)"):format(label(TERMINAL))
  end
  print(("engine drive pass  %s + %s live  admitted %s in %.2f ms")
    :format(what, label(LIVE), tostring(b_adm), b_ms))
end)
