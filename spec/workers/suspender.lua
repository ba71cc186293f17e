-- spec/workers/suspender.lua DIR OWNER LOG [N]
-- A worker with suspend_after_ms = 0 (a parked body is suspended at once:
-- no lease, no coroutine) and short leases (ttl 900 ms, renew 300 ms, so an
-- engine that kept leases would rewrite them several times a second). Kinds:
-- "waiter" (waits for signal "go", returns {by = OWNER, got = payload}) and
-- "napper" (sleeps input.ms, returns {by = OWNER}); every body run logs
-- "<OWNER> run <id>". With N, it starts rows "w-1".."w-N" of "waiter" first
-- and logs "<OWNER> started N". Logs "<OWNER> ready" once its kinds are
-- defined and "<OWNER> commits <n>" (its engine's commit counter) every
-- 250 ms. Runs for 60 s or until killed.
local W = require "spec.workers.common"
local dir, owner, logpath, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local h = W.helpers
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, lease_ttl_ms = 900, renew_ms = 300,
  suspend_after_ms = 0 })
eng:define("waiter", function(ctx)
  log(owner, "run", ctx.id)
  local v = ctx:await_signal("go")
  return { by = owner, got = v }
end)
eng:define("napper", function(ctx, input)
  log(owner, "run", ctx.id)
  ctx:sleep(input.ms)
  return { by = owner }
end)
log(owner, "ready")
if n then
  local i = 1
  while i <= n do
    local last = math.min(n, i + 499)
    eng:batch(function()
      for j = i, last do assert(eng:start("waiter", nil, { id = "w-" .. j })) end
    end)
    i = last + 1
  end
  log(owner, "started", n)
end
local next_log = 0
W.run_until(eng, owner, function()
  local t = h.mono_ms()
  if t >= next_log then
    log(owner, "commits", eng:stats().commits)
    next_log = t + 250
  end
  return false
end, 60000, 50)
eng:close()
