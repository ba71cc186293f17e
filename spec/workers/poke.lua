-- spec/workers/poke.lua DIR DELAY_MS ACTION ID [ARGS...]
-- Opens the store from another OS process, waits DELAY_MS, then:
--   complete ID VALUE   eng:complete(ID, {status="completed", value=VALUE},
--                                    {authority="external"})
--   signal ID NAME VALUE  eng:signal(ID, NAME, VALUE)
--   emit-start KIND ID  eng:start(KIND, nil, {id=ID})
-- and prints the results.
local W = require "spec.workers.common"
local dir, delay, action, id = arg[1], tonumber(arg[2]), arg[3], arg[4]
local eng = W.open(dir, { owner = "poke" })
W.helpers.sleep_ms(delay)
local r1, r2, r3
if action == "complete" then
  r1, r2, r3 = eng:complete(id, { status = "completed", value = arg[5] },
    { authority = "external" })
elseif action == "signal" then
  r1, r2, r3 = eng:signal(id, arg[5], arg[6])
else
  error("unknown action " .. tostring(action))
end
print(action, tostring(r1), tostring(r2), tostring(r3))
eng:close()
