-- bench/engine/steps.lua [N]: issue 9's step cost. In one run, N rows of a
-- body of three ctx:steps and N no-op rows, each set registered by a
-- producer and drained by a worker OS process of its own (concurrency 256,
-- durability "full", one worker); prints both rates and their ratio (target:
-- the steps drain at >= 60% of the no-op rate).
--   steps.lua --worker DIR N KIND   (the worker OS process: prints "rate R")
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local function define(eng)
  eng:define("noop", function(_, input) return input end)
  eng:define("steps3", function(ctx, input)
    local a = ctx:step("a", function() return input end)
    local b = ctx:step("b", function() return a + 1 end)
    return ctx:step("c", function() return b + 1 end)
  end)
end

if arg[1] == "--worker" then
  local dir, n, kind = arg[2], tonumber(arg[3]), arg[4]
  local eng = C.open(lash, dir, { durability = "full", concurrency = 256 }, 4 << 30)
  define(eng)
  local t0 = C.now_us()
  local r, msg, code = eng:run({ until_idle = true })
  if r == nil and msg ~= nil then
    error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
  end
  local t1 = C.now_us()
  local done = C.count(C.stats(eng), "completed")
  eng:close()
  if done ~= n then error(("%s: %s of %d rows completed"):format(kind, tostring(done), n)) end
  print(("rate %.1f"):format(n / ((t1 - t0) / 1e6)))
  os.exit(0)
end

local N = tonumber(arg[1]) or 50000

local function drain(kind)
  return C.with_store("steps-" .. kind, function(dir)
    local eng = C.open(lash, dir, { durability = "full" }, 4 << 30)
    C.register(eng, kind, N, kind:sub(1, 1) .. "%08d", nil, nil, 5000)
    eng:close()
    local cmd = ("%s %s --worker %s %d %s"):format(C.shquote(C.lua_bin()),
      C.shquote(here .. "steps.lua"), C.shquote(dir), N, kind)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local ok = p:close()
    local rate = tonumber(out:match("rate ([%d.]+)"))
    if not ok or not rate then error(("%s worker failed: %s"):format(kind, out)) end
    return rate
  end)
end

local noop = drain("noop")
local steps = drain("steps3")
print(("engine 3-step bodies  N=%d  full  %.0f processes/s vs no-op %.0f/s  ratio %.2f"
  .. "  (target >= 0.60)"):format(N, steps, noop, steps / noop))
