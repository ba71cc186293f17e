-- bench/engine/delayed_worker.lua DIR N AT: the worker OS process of
-- delayed.lua. Opens the store (concurrency 256, durability "full"),
-- defines "noop", waits until the store's clock reaches AT (0: at once),
-- runs until N rows completed and prints "rate <processes/s>" counted from
-- AT (or from its start).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local dir, N, at = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(dir and N and at, "usage: delayed_worker.lua DIR N AT")

local eng = C.open(lash, dir, { durability = "full", concurrency = 256 }, 4 << 30)
eng:define("noop", function(_, input) return input end, { disposition = "rerunnable" })
while eng:now() < at do eng:sleep(math.min(50, at - eng:now())) end

local t0 = C.now_us()
local function done() return C.count(C.stats(eng), "completed") or 0 end
local r, msg, code = eng:run({ until_idle = true })
if r == nil and msg ~= nil then
  error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
end
if done() < N then -- a timer still to fire: drive on
  C.drive_until(eng, function() return done() >= N end, "the delayed drain", 600, done)
end
local t1 = C.now_us()
local st = C.stats(eng)
eng:close()
if C.count(st, "completed") ~= N then
  error(("completed = %s, want %d"):format(tostring(C.count(st, "completed")), N))
end
C.note("drained %d in %.3f s", N, (t1 - t0) / 1e6)
print(("rate %.1f"):format(N / ((t1 - t0) / 1e6)))
