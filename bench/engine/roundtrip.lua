-- bench/engine/roundtrip.lua [N]: DESIGN §7 await round trip in one OS
-- process, durability "full": id = eng:start("echo", i); eng:await(id) from
-- plain code (the engine runs its loop until the row is terminal), N times.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 2000

C.with_store("roundtrip", function(dir)
  local eng = C.open(lash, dir, { durability = "full" })
  eng:define("echo", function(_, input) return input end, { disposition = "rerunnable" })
  local us = {}
  for i = 1, N do
    local t0 = C.now_us()
    local id, msg, code = eng:start("echo", i)
    if id == nil then
      error(("eng:start(\"echo\", %d): nil, %s, %s"):format(i, tostring(msg), tostring(code)))
    end
    local out
    out, msg, code = eng:await(id, { timeout_ms = 10000 })
    local t1 = C.now_us()
    if out == nil then
      error(("eng:await(%q, {timeout_ms=10000}): nil, %s, %s"):format(id, tostring(msg),
        tostring(code)))
    end
    if type(out) ~= "table" or out.status ~= "completed" or out.value ~= i then
      error(("eng:await(%q): want {status=\"completed\", value=%d}, got status=%s value=%s")
        :format(tostring(id), i, tostring(type(out) == "table" and out.status or out),
          tostring(type(out) == "table" and out.value)))
    end
    us[i] = t1 - t0
  end
  eng:close()
  local p50, p99 = C.percentile(us, 50) / 1000, C.percentile(us, 99) / 1000
  C.note("n=%d max %.2f ms", N, us[#us] / 1000)
  print(("engine await round trip  full  p50 %.2f ms  p99 %.2f ms  (target p50 <= 1 ms)")
    :format(p50, p99))
end)
