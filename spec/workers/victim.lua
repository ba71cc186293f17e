-- spec/workers/victim.lua DIR OWNER LOG [TTL_MS]
-- Short leases (ttl 300 ms, renew 100 ms; or TTL_MS, renew a third). Defines the kinds "slow_rr"
-- (rerunnable), "slow_ob" (owner_bound) and "slow_lim" (rerunnable): every
-- body logs "start <id> <attempt>" and then parks for ten minutes. Meant to
-- be killed with SIGKILL mid-body. Exits by itself after 30 s.
local W = require "spec.workers.common"
local dir, owner, logpath = arg[1], arg[2], arg[3]
local ttl = tonumber(arg[4]) or 300
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, lease_ttl_ms = ttl, renew_ms = ttl // 3 })
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
