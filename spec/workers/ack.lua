-- spec/workers/ack.lua DIR LOG
-- durability "full". From plain code: starts rows "ack-1".."ack-40", logging
-- "start <id>" after each start returned. Then runs kind "emitter" (row
-- "em-1"), whose body logs "emit <i> <seq>" after each ctx:emit returned and
-- kills its own OS process with SIGKILL after the 10th. Whatever it logged
-- was acknowledged and must be in the store afterwards.
local W = require "spec.workers.common"
local dir, logpath = arg[1], arg[2]
local log = W.log(logpath)
local eng = W.open(dir, { owner = "ack", durability = "full" })
local function self_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end
for i = 1, 40 do
  local id = assert(eng:start("later", { i = i }, { id = "ack-" .. i }))
  log("start", id)
end
eng:define("emitter", function(ctx)
  for i = 1, 10 do
    local seq = assert(ctx:emit("e", i))
    log("emit", i, seq)
  end
  os.execute("kill -9 " .. self_pid())
  W.helpers.sleep_ms(5000)
  return "unreachable"
end)
assert(eng:start("emitter", nil, { id = "em-1" }))
log("started em-1")
eng:await("em-1", { timeout_ms = 10000 })
log("not killed")
