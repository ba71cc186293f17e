-- spec/workers/claim.lua DIR OWNER TOTAL LOG
-- Issue 13 (claim): defines "cjob" (sleeps input.ms in its body; the row's
-- concurrency key is the spec's) and "rjob" (rate = 50 per second, returns
-- at once); logs "run <id> <owner>"; runs until TOTAL rows are completed in
-- the store (or 90 s pass).
local W = require "spec.workers.common"
local dir, owner, total, logpath = arg[1], arg[2], tonumber(arg[3]), arg[4]
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, concurrency = 2 })
eng:define("cjob", function(ctx, input)
  log("run", ctx.id, owner)
  ctx:sleep(input.ms or 30)
  return { worker = owner }
end)
assert(eng:define("rjob", function(ctx)
  log("run", ctx.id, owner)
  return { worker = owner }
end, { rate = { n = 50, per_ms = 1000 } }))
log("ready", owner)
local ok = W.run_until(eng, owner, function()
  return (eng:stats().completed or 0) >= total
end, 90000, 25)
log("exit", ok and "ok" or "deadline")
eng:close()
os.exit(ok and 0 or 1)
