-- spec/workers/victim.lua DIR OWNER LOG
-- Short leases (ttl 300 ms, renew 100 ms). Defines the kinds "slow_rr"
-- (rerunnable), "slow_ob" (owner_bound) and "slow_lim" (rerunnable): every
-- body logs "start <id> <attempt>" and then parks for ten minutes. Meant to
-- be killed with SIGKILL mid-body. Exits by itself after 30 s.
local W = require "spec.workers.common"
local dir, owner, logpath = arg[1], arg[2], arg[3]
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, lease_ttl_ms = 300, renew_ms = 100 })
local function body(ctx)
  log("start", ctx.id, tostring(ctx.attempt))
  ctx:sleep(600000)
  return { worker = owner }
end
eng:define("slow_rr", body)
eng:define("slow_ob", body, { disposition = "owner_bound" })
eng:define("slow_lim", body)
log("ready")
W.run_until(eng, owner, function() return false end, 30000, 50)
log("exit")
eng:close()
