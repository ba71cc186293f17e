-- spec/workers/stall.lua DIR OWNER LOG TTL_MS RENEW_MS STALL_MS SECONDS
-- A worker whose bodies block its loop. Kinds: "sleeper" (a blocking
-- os.execute("sleep N"), N = input.s), "spin" (a Lua loop that never
-- yields), "quick" (returns at once), "napper" (parks in ctx:sleep for ten
-- minutes). Every body logs "start <id> <attempt>" first. Exits after
-- SECONDS (default 30).
local W = require "spec.workers.common"
local dir, owner, logpath = arg[1], arg[2], arg[3]
local ttl, renew, stall = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local seconds = tonumber(arg[7] or "30")
local log = W.log(logpath)
local eng = W.open(dir, { owner = owner, lease_ttl_ms = ttl, renew_ms = renew,
  stall_ms = stall })
eng:define("sleeper", function(ctx, input)
  log("start", ctx.id, tostring(ctx.attempt))
  os.execute("sleep " .. tostring(input.s))
  return { slept = input.s, by = owner }
end)
eng:define("spin", function(ctx)
  log("start", ctx.id, tostring(ctx.attempt))
  local n = 0
  while true do n = n + 1 end -- the line the watchdog names
end)
eng:define("quick", function(ctx)
  log("start", ctx.id, tostring(ctx.attempt))
  return { quick = true, by = owner }
end)
eng:define("napper", function(ctx)
  log("start", ctx.id, tostring(ctx.attempt))
  ctx:sleep(600000)
  return { napped = true }
end)
log("ready")
W.run_until(eng, owner, function() return false end, seconds * 1000, 50)
log("exit")
eng:close()
