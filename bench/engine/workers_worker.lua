-- bench/engine/workers_worker.lua DIR: one of the worker OS processes of
-- workers.lua: defines "noop" and runs until idle (no rows left to claim).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local dir = assert(arg[1], "usage: workers_worker.lua DIR")
local eng = C.open(lash, dir, { durability = "full", concurrency = 256 }, 4 << 30)
eng:define("noop", function(_, input) return input end, { disposition = "rerunnable" })
local r, msg, code = eng:run({ until_idle = true })
if r == nil and msg ~= nil then
  error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
end
eng:close()
