-- spec/workers/crash.lua DIR OWNER SIDEFILE [close]
-- A worker of the crash matrix (spec/crash_spec.lua), with short leases
-- (ttl 600 ms, renew 200 ms). Kind "job" (rerunnable): each attempt appends
-- "<id> <attempt>" to SIDEFILE (the side effect the spec counts), emits
-- "step", sleeps 250 ms (a renewal lands meanwhile) and returns {id=}.
-- Runs until no row is live (or 20 s), then closes; with "close" it closes
-- as soon as a body is parked in its sleep, so bodies are still running
-- (their leases are released at close). LASH_INJECT_DIE in its environment (a test-hooks
-- build) kills it at that injection point.
local W = require "spec.workers.common"
local dir, owner, sidefile, close_early = arg[1], arg[2], arg[3], arg[4] == "close"
local h = W.helpers
local eng = W.open(dir, { owner = owner, lease_ttl_ms = 600, renew_ms = 200 })
eng:define("job", function(ctx)
  local f = assert(io.open(sidefile, "a"))
  f:write(ctx.id, " ", tostring(ctx.attempt), "\n")
  f:close()
  assert(ctx:emit("step", { attempt = ctx.attempt }))
  ctx:sleep(250)
  return { id = ctx.id }
end)
local stop_at = h.mono_ms() + 20000
eng:spawn(function()
  while h.mono_ms() < stop_at do
    if close_early then
      if #eng:list({ status = "waiting" }) > 0 then break end
    elseif #eng:list({ status = "live" }) == 0 then
      break
    end
    eng:sleep(close_early and 1 or 20)
  end
  eng:stop()
end)
eng:run()
eng:close()
os.exit(0)
