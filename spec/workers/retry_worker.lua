-- spec/workers/retry_worker.lua DIR OWNER LOG [MS] - a worker for
-- spec/retry_spec.lua (issue 13): defines "later" (logs "OWNER run ID AT"
-- with the store's clock when its body starts) and "flaky" (raises on
-- its first attempt, completes on the next: its define's retry policy),
-- logs "OWNER ready", and runs
-- for MS (default 30000) or until killed.
local common = require "spec.workers.common"

local dir, owner, log_path, ms = arg[1], arg[2], arg[3], tonumber(arg[4] or "30000")
local log = common.log(log_path)
local eng = common.open(dir, { owner = owner })

assert(eng:define("later", function(ctx)
  log(owner, "run", ctx.id, eng:now())
  return owner
end))
assert(eng:define("flaky", function(ctx)
  log(owner, "attempt", ctx.id, ctx.attempt)
  if ctx.attempt == 1 then error("first attempt fails") end
  return owner
end, { retry = { max_attempts = 3, initial_ms = 10 } }))
log(owner, "ready")
common.run_until(eng, owner, function() return false end, ms, 50)
