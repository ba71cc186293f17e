-- spec/workers/drain.lua DIR OWNER TOTAL LOG [LEASE_TTL_MS [PARK_MS]]
-- Defines kind "job" (rerunnable), logs "run <id> <owner>" for every body it
-- runs, returns {worker = OWNER, n = input.n}, and runs until TOTAL "job"
-- rows are completed in the store (or 240 s pass: generous for a loaded
-- machine). LOG "-" is stdout. With
-- PARK_MS the body first journals a step whose value is OWNER (a fenced
-- write), then parks in ctx:sleep(PARK_MS) holding its lease, and logs
-- "done <id> <owner>" after it: a host cut off meanwhile has bodies in
-- flight whose leases lapse.
local W = require "spec.workers.common"
local dir, owner, total, logpath, ttl = arg[1], arg[2], tonumber(arg[3]), arg[4], arg[5]
local park = tonumber(arg[6])
local log = W.log(logpath)
ttl = tonumber(ttl) or 10000
local eng = W.open(dir, { owner = owner, lease_ttl_ms = ttl, renew_ms = ttl // 3 })
eng:define("job", function(ctx, input)
  log("run", ctx.id, owner)
  if park then
    ctx:step("by", function() return owner end)
    ctx:sleep(park)
    log("done", ctx.id, owner)
  end
  return { worker = owner, n = input.n }
end)
local ok = W.run_until(eng, owner, function()
  return (eng:stats().completed or 0) >= total
end, 240000, 25)
log("exit", ok and "ok" or "deadline")
eng:close()
os.exit(ok and 0 or 1)
