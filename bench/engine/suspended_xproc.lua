-- bench/engine/suspended_xproc.lua [N]: issue 9's signal -> suspended
-- process resumed in another worker process. This process starts N rows of
-- kind "park"; a first worker OS process (suspend_worker.lua,
-- suspend_after_ms = 0) runs them until all are suspended and is killed
-- with SIGKILL; a second worker process, which started none of them, serves.
-- Then, one row at a time, this process signals a row; latency = the body's
-- wall clock at its resume (in the second worker) - the wall clock just
-- before eng:signal. Prints p50/p99 (targets <= 3 ms, <= 10 ms).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"
local uv = require "luv"

local N = tonumber(arg[1]) or 200

local function wall_us()
  local s, us = uv.gettimeofday()
  return s * 1000000 + us
end

-- Starts a worker OS process and reads its first line; returns pid, line.
local function worker(dir, out, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = C.shquote(a) end
  local cmd = ("%s %s %s %s >%s 2>&1 </dev/null & echo $!"):format(C.shquote(C.lua_bin()),
    C.shquote(here .. "suspend_worker.lua"), C.shquote(dir), table.concat(args, " "),
    C.shquote(out))
  local p = assert(io.popen(cmd, "r"))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local deadline = C.now_us() + 120e6
  while C.now_us() < deadline do
    local f = io.open(out)
    local l = f and f:read("l")
    if f then f:close() end
    if l then return pid, l end
    uv.sleep(20)
  end
  os.execute("kill -9 " .. pid)
  error("worker did not report: " .. out)
end

C.with_store("suspended-xproc", function(dir)
  local eng = C.open(lash, dir, { durability = "full" })
  for i = 1, N do C.check("eng:start", eng:start("park", i, { id = ("x%05d"):format(i) })) end
  local w1 = worker(dir, dir .. "/w1.out", "park", tostring(N), "0")
  os.execute("kill -9 " .. w1)
  local w2, l2 = worker(dir, dir .. "/w2.out", "serve")
  local ok, err = pcall(function()
    assert(l2 == "ready", l2)
    local ms = {}
    for i = 1, N do
      local id = ("x%05d"):format(i)
      local t0 = wall_us()
      C.check("eng:signal", eng:signal(id, "go", i))
      local out = C.check("eng:await", eng:await(id, { timeout_ms = 10000 }))
      if out.status ~= "completed" then error(id .. " " .. out.status) end
      ms[i] = (out.value.us - t0) / 1000
    end
    print(("engine signal -> suspended process resumed in another worker  N=%d  p50 %.2f ms"
      .. "  p99 %.2f ms  (targets <= 3 ms, <= 10 ms)"):format(N, C.percentile(ms, 50),
        C.percentile(ms, 99)))
  end)
  os.execute("kill -9 " .. w2)
  eng:close()
  if not ok then error(err, 0) end
end)
