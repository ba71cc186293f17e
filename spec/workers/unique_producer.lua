-- spec/workers/unique_producer.lua DIR OWNER LOG GO K - a producer for
-- spec/retry_spec.lua (issue 13 item 7): waits for the file GO, then
-- starts K rows of kind "u" with unique keys key-1..key-K (runs none) and
-- logs "OWNER key-N ID" for each, then "OWNER done".
local common = require "spec.workers.common"
local h = common.helpers

local dir, owner, log_path, go, k = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
local log = common.log(log_path)
local eng = common.open(dir, { owner = owner })
log(owner, "ready")
h.poll(function() return io.open(go, "r") ~= nil end, 30000, 2)
for i = 1, k do
  local key = "key-" .. i
  local id, msg = eng:start("u", { by = owner }, { unique_key = key })
  if not id then log(owner, "error", msg) os.exit(1) end
  log(owner, key, id)
end
log(owner, "done")
eng:close()
