-- bench/engine/drain_worker.lua DIR N: the worker OS process of drain.lua.
-- Opens the store with concurrency 256 (durability "full"), defines "noop",
-- runs until idle, checks that N rows completed, prints the rate and the
-- longest write transaction.
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local dir = assert(arg[1], "usage: drain_worker.lua DIR N")
local N = assert(tonumber(arg[2]), "usage: drain_worker.lua DIR N")

local eng = C.open(lash, dir, { durability = "full", concurrency = 256 }, 4 << 30)
eng:define("noop", function(_, input) return input end, { disposition = "rerunnable" })

local t0 = C.now_us()
local r, msg, code = eng:run({ until_idle = true })
local t1 = C.now_us()
if r == nil and msg ~= nil then
  error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
end

local st = C.stats(eng)
local done = C.count(st, "completed")
eng:close()
if done ~= N then
  error(("eng:stats().completed = %s after run{until_idle=true}, want %d"
    .. " (failed=%s pending=%s running=%s)")
    :format(tostring(done), N, tostring(C.count(st, "failed")), tostring(C.count(st, "pending")),
      tostring(C.count(st, "running"))))
end
local secs = (t1 - t0) / 1e6
C.note("drained %d in %.3f s", N, secs)
print(("engine drain  N=%d  full  %.0f processes/s  (target >= 30000)"):format(N, N / secs))
-- What a completed no-op row costs on disk: the pages holding data (its
-- record, events, lease, index entries; not the free pages) over the rows.
if (st.bytes_data or 0) > 0 then
  print(("engine bytes per completed no-op row  %.0f bytes  (data pages %d / %d rows)")
    :format(st.bytes_data / N, st.bytes_data, N))
end
-- While a write transaction runs, every other writer of the store waits
-- (LMDB's one writer lock): the longest one of this drain.
print(("engine longest write transaction  %.2f ms  (drain N=%d)")
  :format((st.longest_write_us or 0) / 1000, N))
