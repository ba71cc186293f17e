-- examples/fanout.lua - a parent process starts N children and awaits them
-- all; each child squares its input.
--
--   scripts/run examples/fanout.lua [N]      (N defaults to 100)
local lash = require "lash"

local n = math.tointeger(tonumber(arg[1] or "100")) or 100
local dir = os.tmpname()
os.remove(dir)
dir = dir .. ".lash"
local eng = assert(lash.open(dir, { durability = "full" }))

eng:define("square", function(_, x)
  return x * x
end)

eng:define("fanout", function(ctx, count)
  local ids = {}
  for i = 1, count do ids[i] = assert(ctx:start("square", i)) end
  local sum = 0
  for _, id in ipairs(ids) do
    local o = assert(ctx:await(id, { timeout_ms = 60000 }))
    assert(o.status == "completed", id .. " ended " .. o.status)
    sum = sum + o.value
  end
  return { children = count, sum = sum }
end)

local t0 = eng:now()
local id = assert(eng:start("fanout", n))
local outcome = assert(eng:await(id, { timeout_ms = 120000 }))
local elapsed = eng:now() - t0
local want = n * (n + 1) * (2 * n + 1) // 6
print(string.format("fanout of %d children: %s, sum of squares = %d (expected %d), %d ms",
  outcome.value.children, outcome.status, outcome.value.sum, want, elapsed))
local stats = eng:stats()
print(string.format("store: %d completed, %d commits", stats.completed, stats.commits))

eng:close()
os.execute("rm -rf '" .. dir .. "'")
print(outcome.value.sum == want and "ok" or "unexpected sum")
