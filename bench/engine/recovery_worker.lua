-- bench/engine/recovery_worker.lua DIR ROLE N: a worker OS process of
-- recovery.lua, with 30 s leases. ROLE "victim": the bodies of kind "hold"
-- park for ten minutes (it is killed with SIGKILL). ROLE "rescuer": the
-- bodies return at once; it exits when the N rows are completed (or after
-- 60 s).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local dir, role = assert(arg[1]), assert(arg[2])
local N = assert(tonumber(arg[3]), "usage: recovery_worker.lua DIR ROLE N")
local eng = C.open(lash, dir, { owner = role, lease_ttl_ms = 30000, durability = "none" })
if role == "victim" then
  eng:define("hold", function(ctx) ctx:sleep(600000) end)
else
  eng:define("hold", function() return true end)
end
local sentinel = C.check("start", eng:start("sentinel", nil,
  { id = "sentinel-" .. role, disposition = "external" }))
local stop_at = C.now_us() + 60e6
eng:spawn(function()
  while C.now_us() < stop_at do
    if role == "rescuer" and C.count(C.stats(eng), "completed") == N then break end
    eng:await(sentinel, { timeout_ms = 20 })
  end
  eng:stop()
end)
eng:run()
eng:close()
