-- spec/workers/durable.lua DIR OWNER LEDGER [TTL_MS] [SECONDS]
-- A worker of the durable-execution specs: short leases (TTL_MS, default
-- 600; renewal a third), the kinds of spec/workers/durable_kinds.lua (their
-- side effects go to LEDGER). Writes "<OWNER> ready <pid>" to LEDGER once its
-- kinds are defined, then runs until SECONDS pass (default 60) or it is
-- killed (the specs kill it with SIGKILL mid-body).
local W = require "spec.workers.common"
local K = require "spec.workers.durable_kinds"
local dir, owner, ledger = arg[1], arg[2], arg[3]
local ttl = tonumber(arg[4]) or 600
local seconds = tonumber(arg[5]) or 60
local eng = W.open(dir, { owner = owner, lease_ttl_ms = ttl, renew_ms = ttl // 3 })
K.define(eng, ledger, owner)
K.append(ledger, owner, "ready", K.pid())
W.run_until(eng, owner, function() return false end, seconds * 1000, 50)
K.append(ledger, owner, "exit", K.pid())
eng:close()
