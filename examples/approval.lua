-- examples/approval.lua - a process that reports progress and parks until a
-- human approves it (a signal), with a deadline.
--
--   scripts/run examples/approval.lua
--
-- Request 1 is approved by the host 100 ms after it starts waiting; request 2
-- is never approved and times out after 300 ms.
local lash = require "lash"

local dir = os.tmpname()
os.remove(dir)
dir = dir .. ".lash"
local eng = assert(lash.open(dir))

eng:define("approval", function(ctx, req)
  ctx:emit("progress", { step = "requested", amount = req.amount })
  local decision, msg, code = ctx:await_signal("approve", { timeout_ms = req.timeout_ms })
  if decision == nil then
    ctx:emit("progress", { step = "expired" })
    return { approved = false, why = code .. ": " .. msg }
  end
  ctx:emit("progress", { step = "decided" })
  return { approved = decision.ok, by = decision.by }
end)

-- 1: approved by the host shortly after the body parks.
local a = assert(eng:start("approval", { amount = 120, timeout_ms = 5000 }))
eng:spawn(function()
  -- eng:spawn runs this as an engine coroutine: its waits yield.
  assert(eng:await_event(a, "process.waiting", 0, { timeout_ms = 5000 }))
  print("host: " .. a .. " is " .. eng:get(a).status .. " on " .. eng:get(a).wait)
  eng:sleep(100)
  print("host: approving " .. a)
  assert(eng:signal(a, "approve", { ok = true, by = "bob" }))
end)
local oa = assert(eng:await(a, { timeout_ms = 10000 }))
print(string.format("request 1: %s, approved=%s by %s", oa.status,
  tostring(oa.value.approved), oa.value.by))
for _, ev in ipairs(eng:events(a)) do
  local step = type(ev.payload) == "table" and ev.payload.step
  print(string.format("  event %d %s%s", ev.seq, ev.type, step and (" " .. step) or ""))
end

-- 2: nobody approves.
local b = assert(eng:start("approval", { amount = 9000, timeout_ms = 300 }))
local ob = assert(eng:await(b, { timeout_ms = 10000 }))
print(string.format("request 2: %s, approved=%s (%s)", ob.status,
  tostring(ob.value.approved), ob.value.why))

eng:close()
os.execute("rm -rf '" .. dir .. "'")
local ok = oa.value.approved == true and ob.value.approved == false
print(ok and "ok" or "unexpected outcomes")
