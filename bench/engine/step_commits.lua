-- bench/engine/step_commits.lua [N]: issue 9's "steps share the group
-- commit". N rows of a body of 20 ctx:steps and N rows of the same body
-- with the 20 functions called directly, each set drained by one engine
-- (concurrency 256, durability "full"); prints the commits each drain took
-- (eng:stats().commits) and their ratio (target <= 1.5).
local here = (arg[0]:match("^(.*/)") or "./")
local C = dofile(here .. "common.lua")
local lash = require "lash"

local N = tonumber(arg[1]) or 2000
local STEPS = 20

local function work(i, acc) return acc + i end

local BODIES = {
  steps20 = function(ctx)
    local acc = 0
    for i = 1, STEPS do
      acc = ctx:step("s" .. i, function() return work(i, acc) end)
    end
    return acc
  end,
  plain20 = function()
    local acc = 0
    for i = 1, STEPS do acc = work(i, acc) end
    return acc
  end,
}

local function commits(kind)
  return C.with_store("commits-" .. kind, function(dir)
    local eng = C.open(lash, dir, { durability = "full", concurrency = 256 }, 4 << 30)
    C.register(eng, kind, N, kind:sub(1, 1) .. "%08d", nil, BODIES[kind], 5000)
    eng:define(kind, BODIES[kind])
    local c0 = C.stats(eng).commits
    local r, msg, code = eng:run({ until_idle = true })
    if r == nil and msg ~= nil then
      error(("eng:run{until_idle=true}: nil, %s, %s"):format(tostring(msg), tostring(code)))
    end
    local st = C.stats(eng)
    eng:close()
    if C.count(st, "completed") ~= N then
      error(("%s: %s of %d rows completed"):format(kind, tostring(C.count(st, "completed")), N))
    end
    return st.commits - c0
  end)
end

local with, without = commits("steps20"), commits("plain20")
print(("engine commits of a 20-step body  N=%d  %d commits vs %d without steps  ratio %.2f"
  .. "  (target <= 1.5)"):format(N, with, without, with / math.max(1, without)))
