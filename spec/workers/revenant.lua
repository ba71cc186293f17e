-- spec/workers/revenant.lua DIR OWNER ID LOG [MODE]
-- Short leases (ttl 300 ms, renew 100 ms). Kind "rev": logs "start", then
-- MODE "sleep" (default): ctx:sleep(1000), parked; MODE "busy": spins for
-- 1 s of wall-clock time without yielding. Then it tries
-- ctx:emit("after_sleep"), logs the result, and returns {worker = OWNER}.
-- The spec stops this process (SIGSTOP) mid-body, lets another owner take
-- over and complete the row, then continues it (SIGCONT): every write it
-- then tries must be refused. Runs until row ID is terminal and 1.5 s more
-- have passed (or 30 s).
local W = require "spec.workers.common"
local dir, owner, id, logpath, mode = arg[1], arg[2], arg[3], arg[4], arg[5] or "sleep"
local h = W.helpers
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, lease_ttl_ms = 300, renew_ms = 100 })
eng:define("rev", function(ctx)
  log("start", ctx.id, tostring(ctx.attempt))
  if mode == "busy" then
    local stop_at = h.mono_ms() + 1000
    while h.mono_ms() < stop_at do end
    log("spun")
  else
    local ok, err = pcall(ctx.sleep, ctx, 1000)
    log("slept", tostring(ok), tostring(err))
  end
  local ok, seq, msg, code = pcall(ctx.emit, ctx, "after_sleep", { by = owner })
  log("emit", tostring(ok), tostring(seq), tostring(msg), tostring(code))
  if not ok then error(seq, 0) end
  return { worker = owner }
end)
local terminal_at
W.run_until(eng, owner, function()
  local r = eng:get(id)
  if r and h.TERMINAL[r.status] and not terminal_at then
    terminal_at = h.mono_ms()
  end
  return terminal_at ~= nil and h.mono_ms() - terminal_at > 1500
end, 30000, 50)
log("exit")
eng:close()
