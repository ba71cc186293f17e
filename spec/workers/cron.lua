-- spec/workers/cron.lua DIR OWNER LOG STOPFILE [LEASE_TTL_MS]
-- A worker of kind "tick" (the children of the cron specs' schedules): logs
-- "run <id> <owner>" for every body it runs and returns {worker = OWNER};
-- runs until the file STOPFILE exists (or 120 s pass).
local W = require "spec.workers.common"
local dir, owner, logpath, stopfile, ttl = arg[1], arg[2], arg[3], arg[4], arg[5]
local log = W.log(logpath)
ttl = tonumber(ttl) or 10000
local eng = W.open(dir, { owner = owner, lease_ttl_ms = ttl, renew_ms = ttl // 3 })
eng:define("tick", function(ctx)
  log("run", ctx.id, owner)
  return { worker = owner }
end)
log("ready", owner)
local function stopped()
  local f = io.open(stopfile, "r")
  if f then f:close() end
  return f ~= nil
end
local ok = W.run_until(eng, owner, stopped, 120000, 50)
log("exit", ok and "ok" or "deadline")
eng:close()
os.exit(ok and 0 or 1)
