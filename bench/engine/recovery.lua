-- bench/engine/recovery.lua [TRIALS]: recovery after kill -9 on one host
-- (issue 8 item 3). Per trial: N rerunnable rows; a victim worker OS
-- process (30 s leases) starts them and parks in their bodies; a rescuer
-- worker OS process (30 s leases too) is up and deferring them; the
-- victim is killed with SIGKILL. The figure is, per row, the time from the
-- kill to the rescuer's process.started of the new attempt (the record's
-- attempt.started_at, wall-clock ms, the clock the kill is stamped with).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"
local uv = require "luv"

local TRIALS = tonumber(arg[1]) or 20
local N = 4

local function wall_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us // 1000
end

-- Starts a worker in the background; returns its pid.
local function spawn(dir, role)
  local cmd = ("%s %s %s %s %d >/dev/null 2>&1 </dev/null & echo $!"):format(
    C.shquote(C.lua_bin()), C.shquote(here .. "recovery_worker.lua"), C.shquote(dir), role, N)
  local p = assert(io.popen("sh -c " .. C.shquote(cmd), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  return assert(pid, "could not start " .. role)
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local s = f:read("a") or ""
  f:close()
  local st = s:match("%) (%a)")
  return st ~= nil and st ~= "Z" and st ~= "X"
end

local function poll(fn, ms)
  local deadline = C.now_us() + ms * 1000
  while not fn() do
    if C.now_us() > deadline then return false end
    uv.sleep(5)
  end
  return true
end

local lat = {}
for trial = 1, TRIALS do
  C.with_store("recovery", function(dir)
    local eng = C.open(lash, dir, { durability = "none" })
    local ids = {}
    for i = 1, N do
      ids[i] = C.check("start", eng:start("hold", nil, { id = ("t%d-r%d"):format(trial, i) }))
    end
    local victim = spawn(dir, "victim")
    assert(poll(function()
      for _, id in ipairs(ids) do
        local r = eng:get(id)
        if not (r.attempt and r.attempt.owner == "victim") then return false end
      end
      return true
    end, 10000), "the victim did not start its rows")
    local rescuer = spawn(dir, "rescuer")
    uv.sleep(300) -- the rescuer is up and deferring the victim's rows
    local t_kill = wall_ms()
    os.execute("kill -KILL " .. victim)
    local done = poll(function()
      for _, id in ipairs(ids) do
        local r = eng:get(id)
        if r.status ~= "completed" then return false end
      end
      return true
    end, 40000)
    if alive(rescuer) then os.execute("kill -KILL " .. rescuer .. " 2>/dev/null") end
    assert(done, "the rows were not re-run within 40 s of the kill")
    for _, id in ipairs(ids) do
      local a = eng:get(id).attempt
      assert(a.owner == "rescuer" and a.number == 2, "row " .. id .. " not re-run by the rescuer")
      lat[#lat + 1] = a.started_at - t_kill
    end
    eng:close()
  end)
end
table.sort(lat)
local function pct(p) return lat[math.max(1, math.ceil(#lat * p))] end
C.note("%d trials x %d rows, min %d ms, max %d ms", TRIALS, N, lat[1], lat[#lat])
print(("engine kill -9 recovery  p50 %d ms  p99 %d ms  (target p99 <= 100 ms)"):format(pct(0.5),
  pct(0.99)))
