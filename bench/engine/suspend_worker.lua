-- bench/engine/suspend_worker.lua DIR MODE [N] [S]: the worker OS process of
-- suspended.lua and suspended_xproc.lua (durability "full", concurrency 256,
-- suspend_after_ms = 0). Kind "park" waits for signal "go" and returns
-- {us = the wall clock in microseconds at its resume}. Output is line by line:
--   park N S  runs the store's rows until N are suspended, prints
--             "suspended <rss KiB>", stays idle S seconds, prints
--             "idle <commits/s> <rss KiB>"; then (S = 0) serves until killed
--   serve     prints "ready", runs until killed
--   idle S    prints "ready", stays idle S seconds, prints
--             "idle <commits/s> <rss KiB>" (a worker that started no row)
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"
local uv = require "luv"

io.stdout:setvbuf("line")
local dir, mode = arg[1], arg[2]
local eng = C.open(lash, dir, { durability = "full", concurrency = 256, suspend_after_ms = 0 },
  64 << 30)
eng:define("park", function(ctx)
  local v = ctx:await_signal("go")
  local s, us = uv.gettimeofday()
  return { us = s * 1000000 + us, v = v }
end)

local function idle(seconds)
  collectgarbage()
  local c0 = C.stats(eng).commits
  local stop = false
  eng:spawn(function()
    eng:sleep(seconds * 1000)
    stop = true
    eng:stop()
  end)
  while not stop do eng:run() end
  collectgarbage()
  print(("idle %.2f %d %d"):format((C.stats(eng).commits - c0) / seconds, C.rss_kib()))
end

local function serve()
  while true do eng:run() end
end

if mode == "park" then
  local n, s = tonumber(arg[3]), tonumber(arg[4]) or 0
  local next_check, got = 0, 0
  C.drive_until(eng, function()
    local t = C.now_us()
    if t >= next_check then
      got = C.stats(eng).suspended or 0
      next_check = t + 200000
    end
    return got >= n
  end, ("%d rows suspended"):format(n), 120, function() return got end)
  collectgarbage()
  print(("suspended %d %d"):format(C.rss_kib()))
  if s > 0 then
    idle(s)
  else
    serve()
  end
elseif mode == "serve" then
  print("ready")
  serve()
elseif mode == "idle" then
  print("ready")
  idle(tonumber(arg[3]))
else
  error("usage: suspend_worker.lua DIR park N S | serve | idle S")
end
eng:close()
