-- examples/order_crash.lua - the durable order of examples/order_workflow.lua
-- survives kill -9 in the middle.
--
--   scripts/run examples/order_crash.lua
--
-- Starts a worker OS process (`lash worker --load examples/order_workflow.lua`),
-- registers two orders, and kills the worker with SIGKILL while both
-- shipments are in transit (charged, reserved, labelled, sleeping). A second
-- worker process takes the rows over and replays them: nothing that was
-- journaled runs again, the shipments arrive at their first wake time. Order
-- 1 is then confirmed ("delivered" signal); order 2 is not, its deadline
-- passes and the compensation refunds it. Prints the outcomes and the
-- ledger: each step ran once.
local lash = require "lash"

local here = (arg and arg[0] or ""):match("^(.*)/examples/[^/]*$") or "."
local bin = os.getenv("LASH_BIN") or (here .. "/build/bindings/lash")
local kinds = here .. "/examples/order_workflow.lua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = os.tmpname()
os.remove(dir)
local store, ledger, log = dir .. ".lash", dir .. ".ledger", dir .. ".log"

local pids = {}
local function cleanup()
  for _, pid in ipairs(pids) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  os.execute("sleep 0.2; rm -rf " .. q(store) .. " " .. q(ledger) .. " " .. q(log))
end

-- A worker OS process; returns its pid.
local function worker(owner)
  local cmd = ("%s --db %s --lease-ttl 2s worker --load %s --owner %s >>%s 2>&1 </dev/null"
    .. " & echo $!"):format(q(bin), q(store), q(kinds), q(owner), q(log))
  local p = assert(io.popen(cmd))
  local pid = assert(tonumber(p:read("l")), "could not start the worker")
  p:close()
  pids[#pids + 1] = pid
  return pid
end

local function ledger_lines()
  local out = {}
  local f = io.open(ledger)
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

local eng = assert(lash.open(store)) -- defines no kind: the workers run them
local function wait_for(what, pred, ms)
  local deadline = eng:now() + ms
  while not pred() do
    if eng:now() > deadline then
      error("timed out waiting for " .. what)
    end
    eng:sleep(20)
  end
end

local function main()
  local w1 = worker("worker-1")
  local o1 = assert(eng:start("order", { amount = 30, item = "mug", ledger = ledger,
    transit_ms = 1500, confirm_ms = 5000 }, { id = "order-1" }))
  local o2 = assert(eng:start("order", { amount = 12, item = "tea", ledger = ledger,
    transit_ms = 1500, confirm_ms = 800 }, { id = "order-2" }))

  -- the middle: both shipments labelled and in transit
  wait_for("both shipments in transit", function()
    local labels = 0
    for _, l in ipairs(ledger_lines()) do
      if l:find(" label ", 1, true) then labels = labels + 1 end
    end
    local s1, s2 = eng:get(o1 .. "/3"), eng:get(o2 .. "/3")
    return labels == 2 and s1 and s2 and s1.status == "waiting" and s2.status == "waiting"
  end, 10000)
  eng:sleep(300)
  os.execute("kill -9 " .. w1)
  print(("killed worker-1 (pid %d) with SIGKILL mid-transit"):format(w1))
  eng:sleep(100)

  local w2 = worker("worker-2")
  print(("started worker-2 (pid %d)"):format(w2))
  wait_for("order-1's shipment", function()
    local r = eng:get(o1 .. "/3")
    return r and r.status == "completed"
  end, 10000)
  assert(eng:signal(o1, "delivered", { by = "courier" }))

  local out1 = assert(eng:await(o1, { timeout_ms = 10000 }))
  local out2 = assert(eng:await(o2, { timeout_ms = 10000 }))
  os.execute("kill -TERM " .. w2)
  for _, o in ipairs({ { o1, out1 }, { o2, out2 } }) do
    local v = o[2].value or {}
    print(("%s: %s %s (%s)"):format(o[1], o[2].status, tostring(v.status),
      tostring(v.tracking)))
  end

  print("ledger:")
  local count, ok = {}, true
  for _, l in ipairs(ledger_lines()) do
    print("  " .. l)
    local key = l:match("^(%S+ %S+)")
    count[key] = (count[key] or 0) + 1
  end
  for key, n in pairs(count) do
    if n > 1 then
      print(key .. " ran " .. n .. " times")
      ok = false
    end
  end
  local want = {
    ["order-1 charge"] = 1, ["order-1 reserve"] = 1, ["order-1/3 label"] = 1,
    ["order-1/3 handover"] = 1, ["order-2 charge"] = 1, ["order-2 reserve"] = 1,
    ["order-2/3 label"] = 1, ["order-2/3 handover"] = 1, ["order-2 refund"] = 1,
    ["order-2 release"] = 1,
  }
  for key in pairs(want) do
    if count[key] ~= 1 then
      print("missing from the ledger: " .. key)
      ok = false
    end
  end
  ok = ok and out1.value and out1.value.status == "delivered" and out2.value
    and out2.value.status == "refunded"
  return ok
end

local done, ok = xpcall(main, debug.traceback)
eng:close()
cleanup()
if not done then error(ok, 0) end
print(ok and "ok: each step ran once across the crash" or "unexpected outcome")
os.exit(ok and 0 or 1)
